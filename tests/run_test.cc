// `tessera run` end to end: the real binary starts an embedded cluster and an
// unmodified python3 with the preload shim; its output must match a plain
// run byte for byte while its heap is several times the local cache.
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace tessera {
namespace {

struct Output {
  int exit_code = -1;
  std::string out;  // stdout
  std::string err;  // stderr
};

Output Shell(const std::string& cmd, const std::string& dir) {
  std::string err_file = dir + "/stderr";
  FILE* p = popen((cmd + " 2>" + err_file).c_str(), "r");
  Output o;
  if (p == nullptr) return o;
  std::array<char, 4096> buf;
  while (size_t n = fread(buf.data(), 1, buf.size(), p)) o.out.append(buf.data(), n);
  int st = pclose(p);
  o.exit_code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  std::ifstream e(err_file);
  o.err.assign(std::istreambuf_iterator<char>(e), {});
  return o;
}

class RunTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_NE(std::getenv("TESSERA_BIN"), nullptr) << "run through ctest, which sets TESSERA_BIN";
    char tmpl[] = "/tmp/tessera-run-XXXXXX";
    dir_ = mkdtemp(tmpl);
    bin_ = std::getenv("TESSERA_BIN");
    workloads_ = TESSERA_WORKLOADS;  // compiled in (tests/CMakeLists.txt)
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  // Shell lines that start `tessera up` (7 memory nodes) in the background:
  // B is the binary, UP its pid, ADDR its controller, DIR/up.log its log.
  std::string UpScript() const {
    return "set -u\n"
           "B=" + bin_ + "\n"
           "$B up --listen 127.0.0.1:0 --memnodes 7 --capacity 4G > " + dir_ + "/up.log 2>&1 & UP=$!\n"
           "for i in $(seq 100); do grep -q '^ready' " + dir_ + "/up.log && break; sleep 0.1; done\n"
           "ADDR=$(sed -n 's/^controller *\\([^ ]*\\).*/\\1/p' " + dir_ + "/up.log)\n";
  }
  nlohmann::json Stats() {
    std::ifstream in(dir_ + "/stats.json");
    return nlohmann::json::parse(in, nullptr, false);
  }
  // Runs `script` natively, then under `tessera run FLAGS`; expects both to
  // succeed with the same stdout. Returns the run's output.
  Output RunLikeNative(const std::string& script, const std::string& flags) {
    Output native = Shell(script, dir_);
    EXPECT_EQ(native.exit_code, 0) << native.err;
    Output run = Shell(bin_ + " run " + flags + " --stats-json " + dir_ + "/stats.json -- " + script, dir_);
    EXPECT_EQ(run.exit_code, 0) << run.err;
    EXPECT_EQ(run.out, native.out);
    return run;
  }
  // Runs hash_structure.py on an ec:4+2 region of a `tessera up` cluster
  // (`flags` for `tessera run`), kill -9s `victims` memory nodes a second
  // apart while it runs, and expects the native output and exactly those
  // deaths in the controller's log.
  void KillMemnodesUnderARun(const std::string& flags, int victims) {
    const std::string script = "/usr/bin/python3 " + workloads_ + "/hash_structure.py 32";
    Output native = Shell(script, dir_);
    ASSERT_EQ(native.exit_code, 0) << native.err;
    const std::string d = dir_;
    const std::string sh =
        UpScript() +
        "($B run --controller $ADDR --heap 256M --cache 8M " + flags + " -- " + script + " > " + d + "/out 2> " + d +
        "/err; echo $? > " + d + "/rc) & RUN=$!\n"
        "for i in $(seq 100); do grep -q 'created region' " + d + "/up.log && break; sleep 0.1; done\n"
        "sleep 2\n"
        "[ -e " + d + "/rc ] || echo killed-while-running\n"
        "for v in $(seq " + std::to_string(victims) + "); do\n"
        "  kill -9 $(pgrep -f \"memnode --listen [^ ]* --controller $ADDR\" | head -1); sleep 1\n"
        "done\n"
        "wait $RUN\n"
        "kill $UP; wait $UP\n"
        "cat " + d + "/rc\n";
    std::ofstream(d + "/kill.sh") << sh;
    Output o = Shell("bash " + d + "/kill.sh", d);
    EXPECT_EQ(o.out, "killed-while-running\n0\n") << o.err;
    std::ifstream out(d + "/out"), err(d + "/err"), up(d + "/up.log");
    std::string got((std::istreambuf_iterator<char>(out)), {}), why((std::istreambuf_iterator<char>(err)), {});
    std::string log((std::istreambuf_iterator<char>(up)), {});
    EXPECT_EQ(got, native.out) << why;
    // Exactly the killed nodes are declared dead: a controller busy publishing
    // the new map must not take the others' quiet meanwhile for deaths.
    int deaths = 0;
    for (size_t at = log.find("declared dead"); at != std::string::npos; at = log.find("declared dead", at + 1)) ++deaths;
    EXPECT_EQ(deaths, victims) << log;
  }
  std::string dir_, bin_, workloads_;
};

TEST_F(RunTest, PythonHashesAStructureFourTimesTheCacheExactlyAsNatively) {
  Output run = RunLikeNative("/usr/bin/python3 " + workloads_ + "/hash_structure.py 32", "--cache 8M");
  EXPECT_NE(run.err.find("exited with status 0"), std::string::npos) << run.err;
  nlohmann::json s = Stats();
  ASSERT_TRUE(s.is_object());
  EXPECT_LE(s["cache_peak_bytes"].get<uint64_t>(), 8u << 20);
  EXPECT_GE(s["heap_peak_bytes"].get<uint64_t>(), 32u << 20);  // four times the cache
  EXPECT_GT(s["pages_written"].get<uint64_t>(), 0u);
  EXPECT_GT(s["pages_read"].get<uint64_t>(), 0u);
  EXPECT_EQ(s["io_errors"].get<uint64_t>(), 0u);
  // It drops its first structures while it builds the next: what the pool
  // held of them is released at the memory nodes (31-80 MiB in runs here).
  EXPECT_GE(s["bytes_released"].get<uint64_t>(), 8u << 20);
}

// GNU sort and sqlite3, unmodified, with the cache a quarter or less of the
// memory they touch: output byte for byte as natively. (The issue asks for
// 1 GiB each; at this machine's remote-fault rate that takes hours, see
// doc/notes/2026-11-26-vnode-release.md — these run the same code paths small.)
TEST_F(RunTest, GnuSortOrdersAFileExactlyAsNatively) {
  ASSERT_EQ(Shell("/usr/bin/python3 " + workloads_ + "/sort_input.py 30000 > " + dir_ + "/input", dir_).exit_code, 0);
  setenv("LC_ALL", "C", 1);  // byte order, here and natively
  RunLikeNative("/usr/bin/sort -S 64M " + dir_ + "/input", "--cache 512K");
  unsetenv("LC_ALL");
  nlohmann::json s = Stats();
  ASSERT_TRUE(s.is_object());
  EXPECT_LE(s["cache_peak_bytes"].get<uint64_t>(), 512u << 10);
  EXPECT_GE(s["pages_read"].get<uint64_t>(), 4u * 128) << "it read more than four caches' worth from the pool";
  EXPECT_EQ(s["io_errors"].get<uint64_t>(), 0u);
  // What the pager cost: tessera run's own CPU, and that per remote fault.
  EXPECT_GT(s["agent_cpu_seconds"].get<double>(), 0.0);
  EXPECT_GT(s["agent_cpu_ns_per_remote_fault"].get<uint64_t>(), 0u);
}

TEST_F(RunTest, Sqlite3AnswersQueriesOnAnInMemoryDatabaseExactlyAsNatively) {
  ASSERT_EQ(Shell("/usr/bin/python3 " + workloads_ + "/sqlite_queries.py 15000 > " + dir_ + "/queries.sql", dir_).exit_code, 0);
  RunLikeNative("/usr/bin/sqlite3 :memory: < " + dir_ + "/queries.sql", "--cache 320K");
  nlohmann::json s = Stats();
  ASSERT_TRUE(s.is_object());
  EXPECT_LE(s["cache_peak_bytes"].get<uint64_t>(), 320u << 10);
  EXPECT_GE(s["heap_peak_bytes"].get<uint64_t>(), 4u * (320u << 10)) << "the cache is a quarter of its memory or less";
  EXPECT_GE(s["pages_read"].get<uint64_t>(), 4u * 128);
  EXPECT_EQ(s["io_errors"].get<uint64_t>(), 0u);
}

// A multiprocessing pool with the fork start method: the workers read the
// parent's pages (most of them evicted to the pool when it forks) and write
// their own; a child forked with os.fork changes a page the parent must not
// see. Children that exec run on the way. Output byte for byte as natively.
TEST_F(RunTest, ForkedWorkersSeeTheParentsMemoryAndKeepTheirWritesToThemselves) {
  Output run = RunLikeNative("/usr/bin/python3 " + workloads_ + "/fork_workers.py 24", "--cache 4M --heap 256M");
  EXPECT_NE(run.out.find("child exit 0"), std::string::npos) << run.out;
  nlohmann::json s = Stats();
  ASSERT_TRUE(s.is_object());
  EXPECT_LE(s["cache_peak_bytes"].get<uint64_t>(), 4u << 20);
  EXPECT_GT(s["pages_written"].get<uint64_t>(), 0u) << "the parent's pages went to the pool before the forks";
  // The pool's four workers and the os.fork child; subprocess execs through
  // vfork, which shares the parent's memory and is no fork to serve.
  EXPECT_EQ(s["children"]["forked"].get<uint64_t>(), 5u);
  EXPECT_GT(s["children"]["remote_faults"].get<uint64_t>(), 0u) << "the workers read the parent's evicted pages";
  EXPECT_LE(s["children"]["largest_cache_peak_bytes"].get<uint64_t>(), 4u << 20) << "each child keeps to --cache";
}

// The same on the span layout: each child's copy is a clone of the rows with
// a copy of the parent's map of them.
TEST_F(RunTest, ForkedWorkersOnTheSpanLayoutSeeWhatTheyWouldNatively) {
  RunLikeNative("/usr/bin/python3 " + workloads_ + "/fork_workers.py 24", "--layout span --cache 4M --heap 256M");
  nlohmann::json s = Stats();
  ASSERT_TRUE(s.is_object());
  EXPECT_EQ(s["layout"], "span");
  EXPECT_EQ(s["children"]["forked"].get<uint64_t>(), 5u);
  EXPECT_GT(s["children"]["remote_faults"].get<uint64_t>(), 0u) << "the workers read the parent's evicted pages";
}

// Children forked with os.fork read pages the parent had evicted, then exec:
// they read the parent's pages in the pool, and none needs a copy of them.
TEST_F(RunTest, ChildrenThatReadThenExecCostNoCopyOfTheHeap) {
  RunLikeNative("/usr/bin/python3 " + workloads_ + "/fork_exec.py 24 5", "--cache 4M --heap 256M");
  nlohmann::json s = Stats();
  ASSERT_TRUE(s.is_object());
  EXPECT_EQ(s["children"]["forked"].get<uint64_t>(), 5u);
  EXPECT_GT(s["children"]["remote_faults"].get<uint64_t>(), 0u) << "the children read the parent's evicted pages";
  EXPECT_EQ(s["children"]["copies"].get<uint64_t>(), 0u);
}

// Each parent of a chain of forks exits the moment its fork returns, as a
// daemon's does: its pages must reach the child first, and `tessera run`
// serves the last child, which outlives the program it started.
TEST_F(RunTest, ADaemonsChildrenSeeTheirParentsMemoryAfterItLeaves) {
  Output run = RunLikeNative("/usr/bin/python3 " + workloads_ + "/daemon_chain.py 24 4", "--cache 4M --heap 256M");
  EXPECT_NE(run.out.find("generation 4 sees"), std::string::npos) << run.out;
  nlohmann::json s = Stats();
  ASSERT_TRUE(s.is_object());
  EXPECT_EQ(s["children"]["forked"].get<uint64_t>(), 4u);
  EXPECT_GT(s["children"]["remote_faults"].get<uint64_t>(), 0u) << "the children read evicted pages from the pool";
}

// A shell between `tessera run` and the program: bash forks a child to run
// python (not its last command), which execs it; then it execs cat in its
// own process. Python's memory is served from a region of its own, under the
// same cache limit, and the output is the native one.
TEST_F(RunTest, AProgramAShellStartsIsServedFromARegionOfItsOwn) {
  const std::string out = dir_ + "/out";
  RunLikeNative("/bin/bash -c '/usr/bin/python3 " + workloads_ + "/hash_structure.py 16 > " + out + "; cat " + out + "'",
                "--redundancy none --cache 4M");
  nlohmann::json s = Stats();
  ASSERT_TRUE(s.is_object());
  EXPECT_EQ(s["children"]["forked"].get<uint64_t>(), 1u);
  EXPECT_EQ(s["children"]["programs"].get<uint64_t>(), 1u) << "python, exec'd by the child bash forked";
  EXPECT_EQ(s["children"]["program_regions"].get<uint64_t>(), 1u) << "python's memory outgrew its cache";
  EXPECT_GT(s["children"]["remote_faults"].get<uint64_t>(), 0u) << "python's evicted pages came back from the pool";
  EXPECT_LE(s["children"]["largest_cache_peak_bytes"].get<uint64_t>(), 4u << 20);
  EXPECT_LT(s["heap_peak_bytes"].get<uint64_t>(), 4u << 20) << "the shell itself holds little";
}

// bash holds a command's 20 MB of output in a variable: it grows the string a
// few pages at a time (realloc), which extends it where it lies. Copied at
// each page it gains, its pages would be faulted millions of times (the run
// took 210 s, not 2). And its memory is the program's in the report though
// bash brings its own getenv and setenv.
TEST_F(RunTest, AShellsStringFiveTimesTheCacheGrowsWhereItLies) {
  Output run = RunLikeNative(R"(/bin/bash -c 'x=$(head -c 20000000 /dev/zero | tr "\0" a); echo ${#x} ${x:19999990}')",
                             "--redundancy none --cache 4M");
  EXPECT_EQ(run.out, "20000000 aaaaaaaaaa\n");
  nlohmann::json s = Stats();
  ASSERT_TRUE(s.is_object());
  EXPECT_GE(s["heap_peak_bytes"].get<uint64_t>(), 20000000u);
  EXPECT_LE(s["cache_peak_bytes"].get<uint64_t>(), 4u << 20);
  EXPECT_LT(s["faults"].get<uint64_t>(), 12u * 20000000 / 4096) << "a few faults per page of the string, not one per copy";
}

// A memory node is kill -9ed while the program runs on an ec:4+2 region:
// reads go degraded, the controller rebuilds, and the program's output is
// still exactly the native one. The region is 256 MiB, not the default 8 GiB:
// with 49 k fragments the controller takes seconds (release) to half a
// minute (debug) to publish each new map, and rebuilds in small rounds —
// a scaling problem of its own (doc/notes/2026-11-25-vnode-pipeline.md).
TEST_F(RunTest, AMemoryNodeKilledUnderTheProgramChangesNothingItSees) { KillMemnodesUnderARun("", 1); }

// The same on the span layout (each page whole on one node), two nodes
// killed one after the other: reads of their pages decode from the rows.
TEST_F(RunTest, TwoMemoryNodesKilledUnderASpanProgramChangeNothingItSees) {
  KillMemnodesUnderARun("--layout span", 2);
}

// `tessera run` is kill -9ed while its program (and a child it forked, given a
// copy of the heap by the program's writes after the fork) run on
// a cluster of their own: the program stops (its pages lived in the run), and
// the controller deletes the run's regions once their lease runs out.
TEST_F(RunTest, AKilledRunLeavesNoRegionBehindForLong) {
  const std::string d = dir_;
  std::ofstream(d + "/hold.py") << "import os, time\n"
                                   "x = bytearray(64 << 20)\n"
                                   "for i in range(0, len(x), 4096): x[i] = 1\n"
                                   "if os.fork() == 0:\n"
                                   "    time.sleep(120)\n"
                                   "    os._exit(0)\n"
                                   "for i in range(0, len(x), 4096): x[i] = 2\n"  // the child needs its copy now
                                   "print('ready', flush=True)\n"
                                   "time.sleep(120)\n";
  const std::string sh =
      UpScript() +
      "$B run --controller $ADDR --lease-ms 1500 --heap 256M --cache 16M -- /usr/bin/python3 " + d +
      "/hold.py > " + d + "/out 2> " + d + "/err & RUN=$!\n"
      "for i in $(seq 600); do grep -q ready " + d + "/out && break; sleep 0.1; done\n"
      "echo regions $($B region --controller $ADDR ls | grep -c run-)\n"
      "kill -9 $RUN\n"
      "for i in $(seq 100); do pgrep -f " + d + "/hold.py > /dev/null || break; sleep 0.1; done\n"
      "pgrep -f " + d + "/hold.py > /dev/null && echo program still running || echo program stopped\n"
      "for i in $(seq 100); do [ $($B region --controller $ADDR ls | grep -c run-) = 0 ] && break; sleep 0.1; done\n"
      "echo regions $($B region --controller $ADDR ls | grep -c run-)\n"
      "pkill -9 -f " + d + "/hold.py\n"
      "kill $UP; wait $UP\n";
  std::ofstream(d + "/kill.sh") << sh;
  Output o = Shell("bash " + d + "/kill.sh", d);
  std::ifstream up(d + "/up.log");
  std::string log((std::istreambuf_iterator<char>(up)), {});
  EXPECT_EQ(o.out, "regions 2\nprogram stopped\nregions 0\n") << o.err << log;
  EXPECT_NE(log.find("lease of 1500 ms ran out"), std::string::npos) << log;
}

// Ctrl-C in a terminal signals the whole foreground process group: the
// program stops, and tessera run, whose embedded cluster is in groups of its
// own, still prints the summary and deletes the region.
TEST_F(RunTest, ASignalToTheProcessGroupStopsTheProgramNotItsPool) {
  const std::string d = dir_;
  std::ofstream(d + "/hold.py") << "import time\n"
                                   "x = bytearray(32 << 20)\n"
                                   "for i in range(0, len(x), 4096): x[i] = 1\n"
                                   "print('ready', flush=True)\n"
                                   "while True:\n"
                                   "    for i in range(0, len(x), 4096): x[i] += 1\n";
  const std::string sh = "setsid bash -c 'echo $$ > " + d + "/pgid; exec " + bin_ +
                         " run --cache 4M -- /usr/bin/python3 " + d + "/hold.py > " + d + "/out 2> " + d +
                         "/err' &\n"
                         "for i in $(seq 600); do grep -q ready " + d + "/out 2>/dev/null && break; sleep 0.1; done\n"
                         "kill -INT -- -$(cat " + d + "/pgid)\n"
                         "for i in $(seq 300); do grep -q 'exited with' " + d + "/err && break; sleep 0.1; done\n"
                         "sleep 0.5\n";
  std::ofstream(d + "/sig.sh") << sh;
  Shell("bash " + d + "/sig.sh", d);
  std::ifstream e(d + "/err");
  std::string err((std::istreambuf_iterator<char>(e)), {});
  EXPECT_NE(err.find("exited with status"), std::string::npos) << err;
  EXPECT_EQ(err.find("went away"), std::string::npos) << err;
  EXPECT_EQ(err.find("could not delete region"), std::string::npos) << err;
}

TEST_F(RunTest, ExitStatusesAndErrorsReachTheCaller) {
  EXPECT_EQ(Shell(bin_ + " run --cache 1M -- /bin/sh -c 'exit 7'", dir_).exit_code, 7);
  Output missing = Shell(bin_ + " run -- /nonexistent/program", dir_);
  EXPECT_EQ(missing.exit_code, 127);
  EXPECT_NE(missing.err.find("No such file"), std::string::npos) << missing.err;
  Output tiny = Shell(bin_ + " run --cache 1K -- /bin/true", dir_);
  EXPECT_EQ(tiny.exit_code, 125);
  EXPECT_NE(tiny.err.find("too small"), std::string::npos) << tiny.err;
  // Killed: the status says so, and the summary is still there.
  Output killed = Shell(bin_ + " run --cache 4M --stats-json " + dir_ + "/stats.json -- /usr/bin/python3 -c "
                               "'import os, signal; x = bytearray(32 << 20); os.kill(os.getpid(), signal.SIGKILL)'",
                        dir_);
  EXPECT_EQ(killed.exit_code, 128 + 9);
  nlohmann::json s = Stats();
  ASSERT_TRUE(s.is_object()) << killed.err;
  EXPECT_EQ(s["exit_code"].get<int>(), 137);
  EXPECT_GE(s["heap_peak_bytes"].get<uint64_t>(), 32u << 20);
  EXPECT_LE(s["cache_peak_bytes"].get<uint64_t>(), 4u << 20);
}

}  // namespace
}  // namespace tessera
