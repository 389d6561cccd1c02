#include "preload/runtime.h"

#include <errno.h>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdio>
#include <new>
#include <cstdlib>
#include <memory>
#include <string>

#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include "common/units.h"
#include "preload/report.h"
#include "tessera/client.h"
#include "vnode/pager.h"

namespace tessera::preload {
namespace {

struct State {
  SharedReport* report = nullptr;  // mapped shared; lives as long as the process
  std::unique_ptr<Client> client;
  std::unique_ptr<Region> region;
  std::unique_ptr<vnode::Pager> pager;
  std::unique_ptr<ManagedHeap> heap;
};
State* g_state = nullptr;  // set once by StartRuntime, never freed

const char* Env(const char* name) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? v : nullptr;
}

void Discard(void* addr, size_t len) { syscall(SYS_madvise, addr, len, MADV_DONTNEED); }

// The client library logs on the pager's thread. Never to the program's
// stdout, and with UTC times: local time would read the time zone state the
// program may have put in its (paged) heap, which that thread must not touch.
void QuietLogging() {
  auto logger = spdlog::stderr_logger_mt("tessera-shim");
  logger->set_pattern("%Y-%m-%dT%H:%M:%S.%eZ tessera: %l: %v", spdlog::pattern_time_type::utc);
  logger->set_level(spdlog::level::warn);
  spdlog::set_default_logger(std::move(logger));
}

// The report lives in `path`, mapped shared, from the start: it survives the
// process however it ends.
Result<SharedReport*> MapReport(const char* path) {
  int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return Status::FromErrno(errno, std::string("open ") + path);
  if (ftruncate(fd, sizeof(SharedReport)) != 0) {
    int err = errno;
    close(fd);
    return Status::FromErrno(err, std::string("size ") + path);
  }
  long m = syscall(SYS_mmap, nullptr, sizeof(SharedReport), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  int err = errno;
  close(fd);
  if (m == -1) return Status::FromErrno(err, std::string("map ") + path);
  return new (reinterpret_cast<void*>(m)) SharedReport;
}

}  // namespace

Result<ManagedHeap*> StartRuntime(void (*mark_thread_unmanaged)()) {
  const char* region_name = Env("TESSERA_REGION");
  if (region_name == nullptr) return static_cast<ManagedHeap*>(nullptr);
  // The region belongs to one process: the first to load the shim, and the
  // images it execs (wrappers such as env or a shell script exec the real
  // program in the same process, whose memory then starts afresh). Other
  // processes it starts run on local memory.
  std::string me = std::to_string(getpid());
  const char* owner = Env("TESSERA_OWNER_PID");
  if (owner != nullptr && me != owner) return static_cast<ManagedHeap*>(nullptr);
  setenv("TESSERA_OWNER_PID", me.c_str(), 1);
  QuietLogging();
  auto st = std::make_unique<State>();
  std::string name = region_name;
  if (const char* f = Env("TESSERA_STATS_FILE")) {
    TS_ASSIGN_OR_RETURN(st->report, MapReport(f));
  }
  ClientOptions co;
  if (const char* c = Env("TESSERA_CONTROLLER")) co.controller = c;
  TS_ASSIGN_OR_RETURN(st->client, Client::Connect(co));
  TS_ASSIGN_OR_RETURN(st->region, st->client->OpenRegion(name));
  vnode::PagerOptions po{.on_thread_start = mark_thread_unmanaged,
                         .counters = st->report != nullptr ? &st->report->pager : nullptr};
  if (const char* c = Env("TESSERA_CACHE")) {
    TS_ASSIGN_OR_RETURN(po.cache_bytes, ParseSize(c));
  }
  po.prefetch = Env("TESSERA_PREFETCH") == nullptr || std::string(Env("TESSERA_PREFETCH")) != "0";
  po.page_size = st->region->page_size();
  TS_ASSIGN_OR_RETURN(st->pager, vnode::Pager::Start(po, st->region->NewQueue({.depth = 128}), st->region->num_pages()));
  if (st->report != nullptr) st->report->page_size = po.page_size;
  TS_ASSIGN_OR_RETURN(st->heap, ManagedHeap::Create(st->pager->base(), st->pager->bytes(), Discard,
                                                    st->report != nullptr ? &st->report->heap : nullptr));
  g_state = st.release();
  return g_state->heap.get();
}

}  // namespace tessera::preload
