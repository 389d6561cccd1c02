#include "cmd/run_cmd.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>

#include "cmd/local_cluster.h"
#include "common/clock.h"
#include "common/units.h"
#include "preload/report.h"
#include "proto/redundancy.h"
#include "tessera/client.h"
#include "vnode/pager.h"
#include "vnode/uffd.h"

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
std::vector<std::string> ChildEnvironment(const std::string& shim, const std::string& controller,
                                          const std::string& region, const RunOptions& o,
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
  env.push_back("TESSERA_CONTROLLER=" + controller);
  env.push_back("TESSERA_REGION=" + region);
  env.push_back("TESSERA_CACHE=" + std::to_string(o.cache_bytes));
  env.push_back(std::string("TESSERA_PREFETCH=") + (o.prefetch ? "1" : "0"));
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

// The shim's shared report (preload/report.h), as JSON with the names the
// summary uses. NotFound if the program never got as far as mapping it.
Result<nlohmann::json> ReadReport(const std::string& path) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return NotFound("no report");
  struct stat st{};
  fstat(fd, &st);
  if (static_cast<size_t>(st.st_size) != sizeof(preload::SharedReport)) {
    close(fd);
    return NotFound("no report (" + std::to_string(st.st_size) + " bytes)");
  }
  // Private and writable: reading the latency histogram takes its lock.
  void* m = mmap(nullptr, sizeof(preload::SharedReport), PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
  close(fd);
  if (m == MAP_FAILED) return Status::FromErrno(errno, "map the report");
  auto* r = static_cast<preload::SharedReport*>(m);
  nlohmann::json j;
  if (r->magic == preload::SharedReport::kMagic && r->size == sizeof *r) {
    vnode::PagerStats s = vnode::Snapshot(r->pager, r->page_size);
    j = {{"heap_peak_bytes", r->heap.peak.load()}, {"heap_live_bytes", r->heap.live.load()},
         {"cache_peak_bytes", s.peak_used_bytes}, {"faults", s.faults}, {"zero_fills", s.zero_fills},
         {"remote_faults", s.remote_faults}, {"rescues", s.rescues}, {"waits", s.waits},
         {"prefetches", s.prefetches}, {"prefetch_hits", s.prefetch_hits}, {"probes_touched", s.probes_touched},
         {"probes_untouched", s.probes_untouched}, {"pages_read", s.pages_read}, {"pages_written", s.pages_written},
         {"evictions", s.evictions}, {"clean_drops", s.clean_drops}, {"io_errors", s.io_errors},
         {"fault_p50_ns", s.fault_p50_ns}, {"fault_p99_ns", s.fault_p99_ns}, {"page_size", r->page_size}};
  }
  munmap(m, sizeof(preload::SharedReport));
  if (j.is_null()) return NotFound("the report is from another build of Tessera");
  return j;
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
  r["fault_hit_rate"] = faults > 0 ? 1.0 - static_cast<double>(remote) / faults : 1.0;
  r["prefetch_accuracy"] = accuracy;
  r["prefetch_coverage"] = used_prefetches + remote > 0 ? used_prefetches / (used_prefetches + remote) : 0.0;
  r["bytes_read"] = u("pages_read") * page;
  r["bytes_written"] = u("pages_written") * page;
  std::fprintf(stderr,
               "tessera run: %s exited with status %d after %s\n"
               "  memory    peak %s in the pool (%s), local cache %s (peak %s), process RSS peak %s\n"
               "  faults    %llu: %llu zero-filled, %llu back from staging, %llu joined a read, %llu remote\n"
               "  hit rate  %s of faults served without a round trip\n"
               "  prefetch  %llu pages, accuracy %s (%llu of %llu probes touched), coverage %s\n"
               "  moved     %s read, %s written\n"
               "  latency   remote fault p50 %s, p99 %s\n",
               o.argv[0].c_str(), exit_code, FormatSeconds(seconds).c_str(), FormatSize(u("heap_peak_bytes")).c_str(),
               o.redundancy.c_str(), FormatSize(o.cache_bytes).c_str(), FormatSize(u("cache_peak_bytes")).c_str(),
               FormatSize(u("peak_rss_bytes")).c_str(),
               static_cast<unsigned long long>(faults), static_cast<unsigned long long>(u("zero_fills")),
               static_cast<unsigned long long>(u("rescues")),
               static_cast<unsigned long long>(u("waits") + u("prefetch_hits")), static_cast<unsigned long long>(remote),
               Percent(r["fault_hit_rate"].get<double>()).c_str(), static_cast<unsigned long long>(u("prefetches")),
               probes > 0 ? Percent(accuracy).c_str() : "n/a", static_cast<unsigned long long>(u("probes_touched")),
               static_cast<unsigned long long>(probes), Percent(r["prefetch_coverage"].get<double>()).c_str(),
               FormatSize(u("pages_read") * page).c_str(), FormatSize(u("pages_written") * page).c_str(),
               Micros(u("fault_p50_ns")).c_str(), Micros(u("fault_p99_ns")).c_str());
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

int ExitCodeOf(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return kTesseraFailed;
}

}  // namespace

int RunProgram(const RunOptions& o, SignalWaiter& signals) {
  if (o.argv.empty()) return Fail("no program given (usage: tessera run [OPTIONS] -- PROGRAM ARGS...)");
  if (o.cache_bytes < (64 << 10)) return Fail("--cache " + FormatSize(o.cache_bytes) + " is too small: at least 64 KiB");
  if (o.heap_bytes < o.cache_bytes) return Fail("--heap must be at least --cache");
  auto redundancy = proto::ParseRedundancy(o.redundancy);
  if (!redundancy.ok()) return Fail("--redundancy: " + redundancy.status().ToString());
  // Fail here, with the fix, rather than inside the program.
  auto uffd = vnode::Uffd::Open({.move = true, .event_remove = true, .event_unmap = true},
                                {.move = true, .event_remove = true, .event_unmap = true});
  if (!uffd.ok()) return Fail(uffd.status().message());
  Result<std::string> shim = FindShim();
  if (!shim.ok()) return Fail(shim.status().message());

  std::unique_ptr<LocalCluster> cluster;
  std::string controller = o.controller;
  if (controller.empty()) {
    // Room for the region on every node, with slack for a rebuild; the
    // nodes' memory is reserved lazily, so capacity costs nothing unused.
    const int nodes = std::max(o.memnodes, redundancy->width() + 1);
    const double per_node = static_cast<double>(o.heap_bytes) * redundancy->overhead() / (nodes - 1);
    auto c = LocalCluster::Start({.memnodes = nodes, .capacity_bytes = static_cast<uint64_t>(per_node * 1.25) + (64ull << 20)});
    if (!c.ok()) return Fail("cannot start the embedded cluster: " + c.status().ToString());
    cluster = std::move(*c);
    controller = cluster->controller_address();
  }
  auto client = Client::Connect({.controller = controller});
  if (!client.ok()) return Fail(client.status().ToString());
  const std::string region = "run-" + std::to_string(getpid()) + "-" + std::to_string(NowNanos() % 1000000007);
  {
    auto r = (*client)->CreateRegion(region, o.heap_bytes, {.redundancy = redundancy->ToString()});
    if (!r.ok()) return Fail("cannot create the program's region: " + r.status().ToString());
  }
  std::string stats_file = (cluster ? cluster->data_dir() : std::filesystem::temp_directory_path().string()) +
                           "/" + region + ".stats.json";
  uint64_t start = NowNanos();
  Result<pid_t> child = StartProgram(o.argv, ChildEnvironment(*shim, controller, region, o, stats_file));
  int code;
  if (!child.ok()) {
    std::fprintf(stderr, "tessera run: %s\n", child.status().ToString().c_str());
    code = child.status().message().find("No such file") != std::string::npos ? 127 : 126;
  } else {
    pid_t pid = *child;
    signals.OnSignal([pid] { kill(pid, SIGTERM); });  // a second signal ends us too
    uint64_t peak_rss = 0;
    int status = WaitSampling(pid, &peak_rss);
    signals.Disarm();
    code = ExitCodeOf(status);
    double seconds = static_cast<double>(NowNanos() - start) / 1e9;
    Result<nlohmann::json> report = ReadReport(stats_file);
    if (!report.ok()) {
      std::fprintf(stderr, "tessera run: %s exited with status %d before its memory reached the pool (%s)\n",
                   o.argv[0].c_str(), code, report.status().message().c_str());
    } else {
      (*report)["peak_rss_bytes"] = peak_rss;
      nlohmann::json full = Summarize(*report, o, code, seconds);
      if (!o.stats_json.empty()) {
        std::ofstream out(o.stats_json);
        out << full.dump(2) << "\n";
        if (!out) std::fprintf(stderr, "tessera run: cannot write %s\n", o.stats_json.c_str());
      }
    }
    std::filesystem::remove(stats_file);
  }
  if (Status s = (*client)->DeleteRegion(region); !s.ok()) {
    std::fprintf(stderr, "tessera run: could not delete region %s: %s\n", region.c_str(), s.ToString().c_str());
  }
  return code;
}

}  // namespace tessera::cmd
