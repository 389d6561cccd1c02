// AgentLink: the program's end of an agent session (agent.h). Join() connects
// to the agent's socket, maps the managed range and the staging area the
// agent asks for, registers them with a userfaultfd, hands that over, waits
// until the agent serves it, and starts the helper thread. The helper does
// what the kernel lets only the program itself do — UFFDIO_MOVE pages into
// staging, MADV_DONTNEED drained staging blocks — with system calls on
// ranges it checks, and nothing else: it never touches the managed range's
// bytes. If the agent goes away, a watchdog thread says so and stops the
// process (SIGKILL): the pages it held exist nowhere else.
//
// Used by the preload shim (src/preload) and by tests that play a program.
//
// Ownership: a link lives until the process ends — its threads use it until
// then — so Join hands out a pointer no one deletes. Thread-safety: Join once
// per process; OnForkChild in a forked child only; OnForkParent from any
// thread that forked.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>

#include "common/result.h"
#include "vnode/agent_protocol.h"
#include "vnode/space.h"

namespace tessera::vnode {

class AgentLink {
 public:
  // `on_helper_start` runs first on the helper thread (the shim marks it so
  // that nothing it allocates comes from the range). Null: the agent serves
  // this process no memory (kLocal); it keeps its own, nothing is mapped.
  static Result<AgentLink*> Join(const char* socket_path, void (*on_helper_start)() = nullptr);

  const SpaceLayout& layout() const { return layout_; }

  // In a child forked without exec (from an atfork handler): the agent
  // serves the child's copy of the range (it got the child's userfaultfd
  // with the fork). The child joins on a session of its own (agent.h) and
  // runs a helper and a watchdog, as its parent does; if it cannot, it is
  // served without eviction and watches the session it inherited.
  void OnForkChild();
  // In the parent, after a fork (from an atfork handler): returns once the
  // agent has saved what the child needs of this process's memory, so that
  // the parent may exit or exec at once (kForked, agent_protocol.h).
  void OnForkParent();

 private:
  AgentLink() = default;
  ~AgentLink() = default;  // only Join's, for a link the agent declined
  // False: the agent answered kLocal (the areas are unmapped again).
  Result<bool> Handshake();
  // The watchdog, and the helper (only a process that joined has one).
  Status StartThreads(bool helper);
  Status JoinAsChild();
  static void* Helper(void* self);
  // Waits for the agent's end of the socket to close, alone: the helper may
  // be blocked in an madvise whose userfaultfd event no one will read now.
  static void* Watchdog(void* self);
  static void Stop();
  // One request from the agent, answered; false ends the session.
  bool Serve(const AgentMessage& m);

  int socket_ = -1;
  // Kept open for the process's life: if the agent dies, a fault waits
  // instead of reading zeros where a page had been (the helper stops the
  // process meanwhile). The helper makes its moves with it.
  std::optional<Uffd> uffd_;
  SpaceLayout layout_;
  void (*on_helper_start_)() = nullptr;
  bool helper_ = false;  // this process's helper runs (its moves put pages in its staging)
  // kForked sent and kSettled received (the helper counts them), for
  // OnForkParent's waits; futex words.
  std::atomic<uint32_t> fork_asks_{0};
  std::atomic<uint32_t> fork_answers_{0};
  char path_[108] = {};  // the agent's socket (sockaddr_un's limit); no allocation in a child
};

}  // namespace tessera::vnode
