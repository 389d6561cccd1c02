// Agent: serves the memory of a program from outside it — the process side
// of the vNode, run by `tessera run` (LegoOS's process monitor keeps paging
// out of the application's way the same way). The preload shim in the
// program connects to the agent's unix socket, maps and registers its areas
// and hands over its userfaultfd (agent_protocol.h); the agent runs a Pager
// for it over a RemoteSpace. Nothing of Tessera's runs on the program's
// threads but its allocator and a helper thread that makes raw madvise calls:
// no network code, no locks or libc state shared with the program.
//
// One program image at a time: an exec'd image reconnects once its
// predecessor's pager has finished (its writes are in), and starts from
// fresh pages. A connection while another image is served is refused.
//
// Ownership: owns the listening socket (removed on destruction), the
// sessions and their pagers. Thread-safety: Start/destruction from one
// thread; sessions() from any.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "common/result.h"
#include "common/unique_fd.h"
#include "vnode/pager.h"

namespace tessera::vnode {

struct AgentOptions {
  std::string socket_path;
  PagerOptions pager;
  uint64_t pages = 0;  // the region's: the managed range's size
  // A queue over the region's pages, one per session.
  std::function<std::unique_ptr<IoQueue>()> new_queue;
  // How long a connecting shim may take over its part of the handshake.
  int handshake_ms = 10'000;
};

class Agent {
 public:
  static Result<std::unique_ptr<Agent>> Start(AgentOptions options);
  // Stops accepting, waits for the current pager to finish its I/O.
  ~Agent();

  // Program images served so far.
  uint64_t sessions() const { return sessions_.load(); }

 private:
  Agent(AgentOptions options, UniqueFd listener);
  void Loop();
  void Accept();
  // Runs the handshake on `conn`; an error refuses the connection.
  Status Serve(UniqueFd conn);
  // Waits (bounded) for the previous image's pager to finish.
  bool PreviousFinished();

  const AgentOptions options_;
  UniqueFd listener_;
  std::unique_ptr<Pager> pager_;  // the current image's; the agent thread's
  std::atomic<uint64_t> sessions_{0};
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace tessera::vnode
