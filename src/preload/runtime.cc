#include "preload/runtime.h"

#include <errno.h>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdlib>
#include <memory>
#include <string>

#include "preload/report.h"
#include "vnode/agent_link.h"

namespace tessera::preload {
namespace {

struct State {
  SharedReport* report = nullptr;  // mapped shared; lives as long as the process
  vnode::AgentLink* link = nullptr;  // lives until the process ends
  std::unique_ptr<ManagedHeap> heap;
};
State* g_state = nullptr;  // set once by StartRuntime, never freed

const char* Env(const char* name) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? v : nullptr;
}

void Discard(void* addr, size_t len) { syscall(SYS_madvise, addr, len, MADV_DONTNEED); }

// The report `tessera run` created, mapped shared: it survives the process
// however it ends.
Result<SharedReport*> MapReport(const char* path) {
  int fd = open(path, O_RDWR | O_CLOEXEC);
  if (fd < 0) return Status::FromErrno(errno, std::string("open ") + path);
  long m = syscall(SYS_mmap, nullptr, sizeof(SharedReport), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  int err = errno;
  close(fd);
  if (m == -1) return Status::FromErrno(err, std::string("map ") + path);
  auto* r = reinterpret_cast<SharedReport*>(m);
  if (r->magic != SharedReport::kMagic || r->size != sizeof(SharedReport)) {
    return InvalidArgument(std::string(path) + " is not a report of this build of Tessera");
  }
  return r;
}

}  // namespace

Result<ManagedHeap*> StartRuntime(void (*mark_thread_unmanaged)()) {
  const char* agent = Env("TESSERA_AGENT");
  if (agent == nullptr) return static_cast<ManagedHeap*>(nullptr);
  // The report is the program's: the first process to load the shim, and
  // the images it execs. Other processes of the program's that exec (a
  // shell's children) are served too, each with memory of its own, and the
  // agent counts them apart.
  std::string me = std::to_string(getpid());
  const char* owner = Env("TESSERA_OWNER_PID");
  const bool program = owner == nullptr || me == owner;
  auto st = std::make_unique<State>();
  if (const char* f = Env("TESSERA_STATS_FILE"); f != nullptr && program) {
    TS_ASSIGN_OR_RETURN(st->report, MapReport(f));
  }
  // Last: a program may bring its own getenv and setenv (bash does), and
  // bash's getenv, once its setenv has run, no longer sees the environment
  // it was started with.
  if (owner == nullptr) setenv("TESSERA_OWNER_PID", me.c_str(), 1);
  TS_ASSIGN_OR_RETURN(st->link, vnode::AgentLink::Join(agent, mark_thread_unmanaged));
  if (st->link == nullptr) return static_cast<ManagedHeap*>(nullptr);  // the agent serves as many as it will
  const vnode::SpaceLayout& l = st->link->layout();
  TS_ASSIGN_OR_RETURN(st->heap, ManagedHeap::Create(l.base, l.bytes(), Discard,
                                                    st->report != nullptr ? &st->report->heap : nullptr));
  g_state = st.release();
  return g_state->heap.get();
}

void OnForkChild() {
  if (g_state != nullptr) g_state->link->OnForkChild();
}

void OnForkParent() {
  if (g_state != nullptr) g_state->link->OnForkParent();
}

}  // namespace tessera::preload
