#include "preload/runtime.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>

#include "common/units.h"
#include "tessera/client.h"
#include "vnode/pager.h"

namespace tessera::preload {
namespace {

struct State {
  std::unique_ptr<Client> client;
  std::unique_ptr<Region> region;
  std::unique_ptr<vnode::Pager> pager;
  std::unique_ptr<ManagedHeap> heap;
  std::string stats_file;
};
State* g_state = nullptr;  // set once by StartRuntime, never freed

const char* Env(const char* name) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? v : nullptr;
}

void Discard(void* addr, size_t len) { syscall(SYS_madvise, addr, len, MADV_DONTNEED); }

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
  auto st = std::make_unique<State>();
  std::string name = region_name;
  if (const char* f = Env("TESSERA_STATS_FILE")) st->stats_file = f;
  ClientOptions co;
  if (const char* c = Env("TESSERA_CONTROLLER")) co.controller = c;
  TS_ASSIGN_OR_RETURN(st->client, Client::Connect(co));
  TS_ASSIGN_OR_RETURN(st->region, st->client->OpenRegion(name));
  vnode::PagerOptions po{.on_thread_start = mark_thread_unmanaged};
  if (const char* c = Env("TESSERA_CACHE")) {
    TS_ASSIGN_OR_RETURN(po.cache_bytes, ParseSize(c));
  }
  po.prefetch = Env("TESSERA_PREFETCH") == nullptr || std::string(Env("TESSERA_PREFETCH")) != "0";
  po.page_size = st->region->page_size();
  TS_ASSIGN_OR_RETURN(st->pager, vnode::Pager::Start(po, st->region->NewQueue({.depth = 128}), st->region->num_pages()));
  TS_ASSIGN_OR_RETURN(st->heap, ManagedHeap::Create(st->pager->base(), st->pager->bytes(), Discard));
  g_state = st.release();
  return g_state->heap.get();
}

void WriteReport() {
  if (g_state == nullptr || g_state->stats_file.empty()) return;
  vnode::PagerStats s = g_state->pager->Stats();
  char buf[1536];
  int n = std::snprintf(
      buf, sizeof buf,
      "{\"heap_peak_bytes\":%llu,\"heap_live_bytes\":%llu,\"cache_peak_bytes\":%llu,\"faults\":%llu,"
      "\"zero_fills\":%llu,\"remote_faults\":%llu,\"rescues\":%llu,\"waits\":%llu,\"prefetches\":%llu,"
      "\"prefetch_hits\":%llu,\"probes_touched\":%llu,\"probes_untouched\":%llu,\"pages_read\":%llu,"
      "\"pages_written\":%llu,\"evictions\":%llu,\"clean_drops\":%llu,\"io_errors\":%llu,"
      "\"fault_p50_ns\":%llu,\"fault_p99_ns\":%llu,\"page_size\":%u}\n",
      static_cast<unsigned long long>(g_state->heap->peak_bytes()),
      static_cast<unsigned long long>(g_state->heap->live_bytes()),
      static_cast<unsigned long long>(s.peak_used_bytes), static_cast<unsigned long long>(s.faults),
      static_cast<unsigned long long>(s.zero_fills), static_cast<unsigned long long>(s.remote_faults),
      static_cast<unsigned long long>(s.rescues), static_cast<unsigned long long>(s.waits),
      static_cast<unsigned long long>(s.prefetches), static_cast<unsigned long long>(s.prefetch_hits),
      static_cast<unsigned long long>(s.probes_touched), static_cast<unsigned long long>(s.probes_untouched),
      static_cast<unsigned long long>(s.pages_read), static_cast<unsigned long long>(s.pages_written),
      static_cast<unsigned long long>(s.evictions), static_cast<unsigned long long>(s.clean_drops),
      static_cast<unsigned long long>(s.io_errors), static_cast<unsigned long long>(s.fault_p50_ns),
      static_cast<unsigned long long>(s.fault_p99_ns), g_state->region->page_size());
  // Opened here, not earlier: some programs close every descriptor they did
  // not open (coreutils closes stderr) before exit.
  int fd = open(g_state->stats_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return;
  if (n > 0) (void)!write(fd, buf, static_cast<size_t>(std::min<int>(n, sizeof buf - 1)));
  close(fd);
}

}  // namespace tessera::preload
