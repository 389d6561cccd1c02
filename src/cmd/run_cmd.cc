#include "cmd/run_cmd.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>

#include "cmd/local_cluster.h"
#include "cmd/region_store.h"
#include "common/clock.h"
#include "common/units.h"
#include "preload/report.h"
#include "proto/redundancy.h"
#include "tessera/client.h"
#include "vnode/agent.h"
#include "vnode/space.h"

extern char** environ;

namespace tessera::cmd {
namespace {

constexpr int kTesseraFailed = 125;

int Fail(const std::string& what) {
  std::fprintf(stderr, "tessera run: %s\n", what.c_str());
  return kTesseraFailed;
}

// The shim beside this binary in the build tree, unless TESSERA_PRELOAD says
// otherwise.
Result<std::string> FindShim() {
  if (const char* p = std::getenv("TESSERA_PRELOAD"); p != nullptr && *p != '\0') return std::string(p);
  std::error_code ec;
  std::filesystem::path self = std::filesystem::read_symlink("/proc/self/exe", ec);
  for (const char* rel : {"../preload/libtessera-preload.so", "libtessera-preload.so",
                          "../lib/tessera/libtessera-preload.so"}) {
    std::filesystem::path p = self.parent_path() / rel;
    if (std::filesystem::exists(p, ec)) return std::filesystem::weakly_canonical(p, ec).string();
  }
  return NotFound("cannot find libtessera-preload.so beside " + self.string() + " (set TESSERA_PRELOAD)");
}

// The environment the program starts with: ours plus the shim's settings.
std::vector<std::string> ChildEnvironment(const std::string& shim, const std::string& agent,
                                          const std::string& stats_file) {
  std::vector<std::string> env;
  std::string preload = shim;
  for (char** e = environ; *e != nullptr; ++e) {
    std::string kv = *e;
    if (kv.rfind("TESSERA_", 0) == 0) continue;
    if (kv.rfind("LD_PRELOAD=", 0) == 0) {
      preload += ":" + kv.substr(11);
      continue;
    }
    env.push_back(kv);
  }
  env.push_back("LD_PRELOAD=" + preload);
  env.push_back("TESSERA_AGENT=" + agent);
  env.push_back("TESSERA_STATS_FILE=" + stats_file);
  return env;
}

// fork + exec; the child's exec failure is reported through a pipe.
Result<pid_t> StartProgram(const std::vector<std::string>& argv, const std::vector<std::string>& env) {
  std::vector<char*> args, envp;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  for (const std::string& e : env) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) return Status::FromErrno(errno, "pipe");
  pid_t pid = fork();
  if (pid < 0) return Status::FromErrno(errno, "fork");
  if (pid == 0) {
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);  // the parent blocks signals for its signal thread
    execvpe(args[0], args.data(), envp.data());
    int err = errno;
    (void)!write(fds[1], &err, sizeof err);
    _exit(err == ENOENT ? 127 : 126);
  }
  close(fds[1]);
  int err = 0;
  ssize_t n = read(fds[0], &err, sizeof err);
  close(fds[0]);
  if (n == sizeof err) {
    int status;
    waitpid(pid, &status, 0);
    return Status::FromErrno(err, "cannot execute " + argv[0]);
  }
  return pid;
}

std::string Percent(double x) {
  char b[32];
  std::snprintf(b, sizeof b, "%.1f%%", 100.0 * x);
  return b;
}

std::string Micros(uint64_t ns) {
  char b[32];
  std::snprintf(b, sizeof b, ns >= 10'000'000 ? "%.0f ms" : ns >= 1'000'000 ? "%.2f ms" : "%.0f us",
                ns >= 1'000'000 ? ns / 1e6 : ns / 1e3);
  return b;
}

// CPU time `tessera run` itself used — the agent, which pages for every
// process of the program; the embedded cluster's daemons are processes of
// their own and not counted. 0 if it cannot be read.
double AgentCpuSeconds() {
  rusage u;
  if (getrusage(RUSAGE_SELF, &u) != 0) return 0.0;
  auto secs = [](const timeval& t) { return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) / 1e6; };
  return secs(u.ru_utime) + secs(u.ru_stime);
}

// The report the agent and the shim fill (preload/report.h), mapped shared
// in a file the shim maps too: it outlives the program however it ends.
class Report {
 public:
  static Result<std::unique_ptr<Report>> Create(const std::string& path) {
    int fd = open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) return Status::FromErrno(errno, "create " + path);
    if (ftruncate(fd, sizeof(preload::SharedReport)) != 0) {
      int err = errno;
      close(fd);
      return Status::FromErrno(err, "size " + path);
    }
    void* m = mmap(nullptr, sizeof(preload::SharedReport), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    int err = errno;
    close(fd);
    if (m == MAP_FAILED) return Status::FromErrno(err, "map " + path);
    return std::unique_ptr<Report>(new Report(path, new (m) preload::SharedReport));
  }
  ~Report() {
    munmap(r_, sizeof *r_);
    std::filesystem::remove(path_);
  }
  preload::SharedReport* get() { return r_; }
  const std::string& path() const { return path_; }

 private:
  Report(std::string path, preload::SharedReport* r) : path_(std::move(path)), r_(r) {}
  std::string path_;
  preload::SharedReport* r_;
};

// The report as JSON with the names the summary uses. NotFound if the
// program never got as far as its first fault.
Result<nlohmann::json> ReadReport(preload::SharedReport* r) {
  nlohmann::json j;
  if (r->pager.faults.load() > 0 || r->heap.peak.load() > 0) {
    vnode::PagerStats s = vnode::Snapshot(r->pager, r->page_size);
    j = {{"heap_peak_bytes", r->heap.peak.load()}, {"heap_live_bytes", r->heap.live.load()},
         {"cache_peak_bytes", s.peak_used_bytes}, {"faults", s.faults}, {"zero_fills", s.zero_fills},
         {"remote_faults", s.remote_faults}, {"rescues", s.rescues}, {"waits", s.waits},
         {"prefetches", s.prefetches}, {"prefetch_hits", s.prefetch_hits}, {"probes_touched", s.probes_touched},
         {"probes_untouched", s.probes_untouched}, {"pages_read", s.pages_read}, {"pages_written", s.pages_written},
         {"pages_released", s.pages_released}, {"evictions", s.evictions}, {"eviction_moves", s.eviction_moves}, {"clean_drops", s.clean_drops}, {"io_errors", s.io_errors},
         {"fault_p50_ns", s.fault_p50_ns}, {"fault_p99_ns", s.fault_p99_ns}, {"page_size", r->page_size}};
  }
  if (j.is_null()) return NotFound("it never touched the pool");
  return j;
}

// How many other processes the program had: forked children, and programs
// its processes exec'd, served or kept local (vnode::Agent's counts).
struct Children {
  uint64_t forked = 0, programs = 0, kept_local = 0;
};

// What the pagers of the program's other processes did, together, with the
// regions made for them (`made`).
nlohmann::json ChildReport(vnode::PagerCounters& c, uint64_t page_size, const Children& n,
                           const RegionStore::Made& made) {
  vnode::PagerStats s = vnode::Snapshot(c, page_size);
  return {{"forked", n.forked}, {"copies", made.copies.load()}, {"programs", n.programs},
          {"program_regions", made.fresh.load()}, {"kept_local", n.kept_local}, {"faults", s.faults},
          {"remote_faults", s.remote_faults}, {"bytes_read", s.pages_read * page_size},
          {"bytes_written", s.pages_written * page_size}, {"largest_cache_peak_bytes", s.peak_used_bytes}};
}

// Adds the derived figures to the shim's report and prints the summary.
nlohmann::json Summarize(nlohmann::json r, const RunOptions& o, int exit_code, double seconds) {
  auto u = [&](const char* k) { return r.value(k, uint64_t{0}); };
  const uint64_t page = std::max<uint64_t>(u("page_size"), 1);
  const uint64_t faults = u("faults"), remote = u("remote_faults");
  const uint64_t probes = u("probes_touched") + u("probes_untouched");
  const double accuracy = probes > 0 ? static_cast<double>(u("probes_touched")) / probes : 0.0;
  const double used_prefetches = accuracy * static_cast<double>(u("prefetches"));
  r["program"] = o.argv[0];
  r["exit_code"] = exit_code;
  r["seconds"] = seconds;
  r["cache_bytes"] = o.cache_bytes;
  r["redundancy"] = o.redundancy;
  r["layout"] = o.layout;
  r["fault_hit_rate"] = faults > 0 ? 1.0 - static_cast<double>(remote) / faults : 1.0;
  r["prefetch_accuracy"] = accuracy;
  r["prefetch_coverage"] = used_prefetches + remote > 0 ? used_prefetches / (used_prefetches + remote) : 0.0;
  r["bytes_read"] = u("pages_read") * page;
  r["bytes_written"] = u("pages_written") * page;
  r["bytes_released"] = u("pages_released") * page;
  // Per remote fault of every process the agent served.
  const uint64_t all_remote = remote + r.value("children", nlohmann::json::object()).value("remote_faults", uint64_t{0});
  const double cpu = r.value("agent_cpu_seconds", 0.0);
  r["agent_cpu_ns_per_remote_fault"] = all_remote > 0 ? static_cast<uint64_t>(cpu * 1e9 / all_remote) : 0;
  std::fprintf(stderr,
               "tessera run: %s exited with status %d after %s\n"
               "  memory    peak %s in the pool (%s%s), local cache %s (peak %s), process RSS peak %s\n"
               "  faults    %llu: %llu zero-filled, %llu back from staging, %llu joined a read, %llu remote\n"
               "  hit rate  %s of faults served without a round trip\n"
               "  prefetch  %llu pages, accuracy %s (%llu of %llu probes touched), coverage %s\n"
               "  moved     %s read, %s written, %s released (freed by the program)\n"
               "  latency   remote fault p50 %s, p99 %s\n"
               "  cpu       tessera run (the pager) %s, %s of a core, %s per remote fault\n",
               o.argv[0].c_str(), exit_code, FormatSeconds(seconds).c_str(), FormatSize(u("heap_peak_bytes")).c_str(),
               o.redundancy.c_str(), o.layout == "span" ? ", span layout" : "", FormatSize(o.cache_bytes).c_str(), FormatSize(u("cache_peak_bytes")).c_str(),
               FormatSize(u("peak_rss_bytes")).c_str(),
               static_cast<unsigned long long>(faults), static_cast<unsigned long long>(u("zero_fills")),
               static_cast<unsigned long long>(u("rescues")),
               static_cast<unsigned long long>(u("waits") + u("prefetch_hits")), static_cast<unsigned long long>(remote),
               Percent(r["fault_hit_rate"].get<double>()).c_str(), static_cast<unsigned long long>(u("prefetches")),
               probes > 0 ? Percent(accuracy).c_str() : "n/a", static_cast<unsigned long long>(u("probes_touched")),
               static_cast<unsigned long long>(probes), Percent(r["prefetch_coverage"].get<double>()).c_str(),
               FormatSize(u("pages_read") * page).c_str(), FormatSize(u("pages_written") * page).c_str(),
               FormatSize(u("pages_released") * page).c_str(), Micros(u("fault_p50_ns")).c_str(), Micros(u("fault_p99_ns")).c_str(),
               FormatSeconds(cpu).c_str(), Percent(seconds > 0 ? cpu / seconds : 0.0).c_str(),
               all_remote > 0 ? Micros(r["agent_cpu_ns_per_remote_fault"].get<uint64_t>()).c_str() : "n/a");
  if (const nlohmann::json f = r.value("children", nlohmann::json::object());
      f.is_object() && f.value("forked", uint64_t{0}) + f.value("programs", uint64_t{0}) + f.value("kept_local", uint64_t{0}) > 0) {
    auto n = [&](const char* k) { return static_cast<unsigned long long>(f.value(k, uint64_t{0})); };
    std::fprintf(stderr,
                 "  children  %llu forked (%llu needed a copy of the heap), %llu programs exec'd by the program's "
                 "processes (%llu needed a region of their own)\n"
                 "            together: %llu faults, %llu remote, %s read, %s written, largest cache peak %s "
                 "(the figures above are the first process's)\n",
                 n("forked"), n("copies"), n("programs"), n("program_regions"), n("faults"), n("remote_faults"),
                 FormatSize(n("bytes_read")).c_str(), FormatSize(n("bytes_written")).c_str(),
                 FormatSize(n("largest_cache_peak_bytes")).c_str());
    if (n("kept_local") > 0) {
      std::fprintf(stderr, "  note      %llu processes ran on local memory: over %zu programs were served at once\n",
                   n("kept_local"), vnode::Agent::kMaxOtherImages);
    }
  }
  return r;
}

// VmRSS of `pid` in bytes, 0 if it cannot be read.
uint64_t ResidentBytes(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::strtoull(line.c_str() + 6, nullptr, 10) * 1024;
  }
  return 0;
}

// Waits for `pid`, sampling its resident memory from outside meanwhile.
int WaitSampling(pid_t pid, uint64_t* peak_rss) {
  int status = 0;
  for (;;) {
    pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid) return status;
    if (r < 0 && errno != EINTR) return status;
    *peak_rss = std::max(*peak_rss, ResidentBytes(pid));
    usleep(20'000);
  }
}

// A process of the program's may outlive it — a daemon's parent exits as
// soon as it has forked — and its memory is served from here: stay until the
// last one ends, or a signal says to stop waiting (they are then stopped:
// their pages exist nowhere else).
void ServeSurvivors(vnode::Agent& agent, SignalWaiter& signals, const std::string& program) {
  auto live = [&agent] { return agent.live_forks() + agent.live_other_images(); };
  // Pagers of processes that ended with the program notice within a probe.
  for (int i = 0; i < 50 && live() > 0; ++i) usleep(20'000);
  if (live() == 0) return;
  std::fprintf(stderr, "tessera run: %s exited; %zu of its processes live on, served from the pool until they end\n",
               program.c_str(), live());
  std::atomic<bool> stop{false};
  signals.OnSignal([&stop] { stop.store(true); });
  while (live() > 0 && !stop.load()) usleep(20'000);
  signals.Disarm();
}

int ExitCodeOf(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return kTesseraFailed;
}

// A private directory for the agent's socket (short: a socket path has a
// limit of 107 bytes), removed on destruction.
class TempDir {
 public:
  static Result<TempDir> Create() {
    std::string t = std::filesystem::temp_directory_path().string() + "/tessera-run-XXXXXX";
    if (mkdtemp(t.data()) == nullptr) return Status::FromErrno(errno, "mkdtemp " + t);
    return TempDir(t);
  }
  TempDir(TempDir&& o) noexcept : path_(std::exchange(o.path_, "")) {}
  ~TempDir() {
    std::error_code ec;
    if (!path_.empty()) std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  explicit TempDir(std::string p) : path_(std::move(p)) {}
  std::string path_;
};

// Serves the region to the program through an agent (vnode/agent.h) while it
// runs, then prints the summary. Returns the exit code.
int RunUnderAgent(const RunOptions& o, SignalWaiter& signals, Client& client, Leases& leases,
                  std::unique_ptr<Region> region, const std::string& shim) {
  Result<TempDir> dir = TempDir::Create();
  if (!dir.ok()) return Fail(dir.status().ToString());
  Result<std::unique_ptr<Report>> report = Report::Create(dir->path() + "/report");
  if (!report.ok()) return Fail(report.status().ToString());
  const uint32_t page_size = region->page_size();
  const uint64_t pages = region->num_pages();
  (*report)->get()->page_size = page_size;
  vnode::PagerCounters fork_counters;  // outlives the agent
  auto made = std::make_shared<RegionStore::Made>();
  auto store = std::make_shared<RegionStore>(client, leases, std::move(region), o.layout, /*owned=*/false, made);
  auto agent = vnode::Agent::Start(
      {.socket_path = dir->path() + "/agent.sock",
       .pager = {.cache_bytes = o.cache_bytes, .prefetch = o.prefetch, .page_size = page_size,
                 .counters = &(*report)->get()->pager},
       .pages = pages,
       .store = store,
       .fresh_store = [store] { return store->Fresh(); },
       .fork_counters = &fork_counters});
  if (!agent.ok()) return Fail("cannot start the agent: " + agent.status().ToString());

  const uint64_t start = NowNanos();
  Result<pid_t> child = StartProgram(o.argv, ChildEnvironment(shim, dir->path() + "/agent.sock", (*report)->path()));
  if (!child.ok()) {
    std::fprintf(stderr, "tessera run: %s\n", child.status().ToString().c_str());
    return child.status().message().find("No such file") != std::string::npos ? 127 : 126;
  }
  pid_t pid = *child;
  signals.OnSignal([pid] { kill(pid, SIGTERM); });  // a second signal ends us too
  uint64_t peak_rss = 0;
  int status = WaitSampling(pid, &peak_rss);
  signals.Disarm();
  ServeSurvivors(**agent, signals, o.argv[0]);
  const Children children{(*agent)->forks(), (*agent)->other_images(), (*agent)->declined()};
  agent->reset();  // the program's writes are in
  const int code = ExitCodeOf(status);
  const double seconds = static_cast<double>(NowNanos() - start) / 1e9;
  Result<nlohmann::json> summary = ReadReport((*report)->get());
  if (!summary.ok()) {
    std::fprintf(stderr, "tessera run: %s exited with status %d before its memory reached the pool (%s)\n",
                 o.argv[0].c_str(), code, summary.status().message().c_str());
    return code;
  }
  (*summary)["peak_rss_bytes"] = peak_rss;
  (*summary)["children"] = ChildReport(fork_counters, page_size, children, *made);
  (*summary)["agent_cpu_seconds"] = AgentCpuSeconds();
  nlohmann::json full = Summarize(*summary, o, code, seconds);
  if (!o.stats_json.empty()) {
    std::ofstream out(o.stats_json);
    out << full.dump(2) << "\n";
    if (!out) std::fprintf(stderr, "tessera run: cannot write %s\n", o.stats_json.c_str());
  }
  return code;
}

}  // namespace

// RunProgram with the layout resolved and the redundancy parsed.
int RunResolved(const RunOptions& o, const proto::Redundancy& red, SignalWaiter& signals);

int RunProgram(const RunOptions& o, SignalWaiter& signals) {
  if (o.argv.empty()) return Fail("no program given (usage: tessera run [OPTIONS] -- PROGRAM ARGS...)");
  if (o.cache_bytes < (64 << 10)) return Fail("--cache " + FormatSize(o.cache_bytes) + " is too small: at least 64 KiB");
  if (o.heap_bytes < o.cache_bytes) return Fail("--heap must be at least --cache");
  if (o.lease_ms < 1000) return Fail("--lease-ms " + std::to_string(o.lease_ms) + " is too short: at least 1000");
  auto redundancy = proto::ParseRedundancy(o.redundancy);
  if (!redundancy.ok()) return Fail("--redundancy: " + redundancy.status().ToString());
  const bool erasure = redundancy->kind == proto::Redundancy::Kind::kErasure;
  if (o.layout == "span" && !erasure) {
    return Fail("--layout span keeps pages whole in erasure-coded stripes: it needs --redundancy ec:K+M, not " +
                redundancy->ToString());
  }
  RunOptions resolved = o;
  if (o.layout == "auto") resolved.layout = erasure ? "span" : "split";
  return RunResolved(resolved, *redundancy, signals);
}

int RunResolved(const RunOptions& o, const proto::Redundancy& red, SignalWaiter& signals) {
  // Fail here, with the fix, rather than inside the program.
  auto uffd = vnode::Uffd::Open(vnode::kRemoteSpaceFeatures, vnode::kRemoteSpaceFeatures);
  if (!uffd.ok()) return Fail(uffd.status().message());
  Result<std::string> shim = FindShim();
  if (!shim.ok()) return Fail(shim.status().message());

  std::unique_ptr<LocalCluster> cluster;
  std::string controller = o.controller;
  if (controller.empty()) {
    // Room for the region on every node (a span region's eighth of slack
    // rows included), with slack for a rebuild, and for the copies of
    // kForkRoom children forked at once; the nodes' memory is reserved
    // lazily, so capacity costs nothing unused.
    constexpr int kForkRoom = 8;
    const int nodes = std::max(o.memnodes, red.width() + 1);
    const double per_node = static_cast<double>(o.heap_bytes) * red.overhead() * (o.layout == "span" ? 1.125 : 1.0) / (nodes - 1);
    auto c = LocalCluster::Start(
        {.memnodes = nodes, .capacity_bytes = static_cast<uint64_t>(per_node * 1.25 * (1 + kForkRoom)) + (64ull << 20)});
    if (!c.ok()) return Fail("cannot start the embedded cluster: " + c.status().ToString());
    cluster = std::move(*c);
    controller = cluster->controller_address();
  }
  auto client = Client::Connect({.controller = controller});
  if (!client.ok()) return Fail(client.status().ToString());
  const std::string region = "run-" + std::to_string(getpid()) + "-" + std::to_string(NowNanos() % 1000000007);
  // If we are killed, the controller deletes the regions once their lease runs out.
  Leases leases(**client, o.lease_ms);
  auto r = (*client)->CreateRegion(region, o.heap_bytes,
                                   {.redundancy = red.ToString(), .layout = o.layout, .lease_ms = o.lease_ms});
  if (!r.ok()) return Fail("cannot create the program's region: " + r.status().ToString());
  leases.Add(region);
  int code = RunUnderAgent(o, signals, **client, leases, std::move(*r), *shim);
  leases.Remove(region);
  if (Status s = (*client)->DeleteRegion(region); !s.ok()) {
    std::fprintf(stderr, "tessera run: could not delete region %s: %s\n", region.c_str(), s.ToString().c_str());
  }
  return code;
}

}  // namespace tessera::cmd
