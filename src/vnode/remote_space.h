// RemoteSpace: a program's address space served from another process — the
// agent (agent.h) serving a program under `tessera run`. The userfaultfd
// came from the program over the session socket (agent_protocol.h); with it
// the agent installs, zero-fills and moves pages in the program's memory.
// Staged pages are read with process_vm_readv and brought back by copy. What
// only the program can do (move pages into staging, drop a staging block's
// memory) is asked of the shim's helper thread over the socket.
//
// If the agent goes away, the program still holds its own copy of the
// userfaultfd, so its faults wait rather than read zeros, and the helper
// thread, seeing the socket close, stops the program.
//
// A child the program forks without exec gets a space of its own (Fork) from
// the userfaultfd its fork event carried. Until it joins, it has no helper
// thread and is served without eviction; it shares the session socket, which
// the agent keeps open while any process of the family lives: the child's
// watchdog (agent_link.h) stops it if the agent goes away. To join, the child
// reads its doorbell page, which this space fills with its nonce
// (ServeOutside), and sends the nonce over a connection of its own; the agent
// hands that connection over (OfferHelper) and the space uses it from then on.
//
// Whether the program still exists is asked of its memory, not of the
// socket (which its children may hold): installing the beacon page
// (SpaceLayout::beacon), which is always present, fails with "exists" while
// the address space lives and ESRCH once it is gone (exit or exec).
//
// Ownership: owns the userfaultfd and an epoll descriptor over it and the
// socket; shares the socket with the family. Thread-safety: the pager's
// thread only, except join_nonce() and OfferHelper(), from any.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <deque>
#include <memory>
#include <mutex>

#include "common/unique_fd.h"
#include "vnode/agent_protocol.h"
#include "vnode/space.h"

namespace tessera::vnode {

class RemoteSpace final : public Space {
 public:
  // `layout` was checked against what the agent offered; `pid` is the
  // program's (the socket's peer).
  static Result<std::unique_ptr<Space>> Adopt(const SpaceLayout& layout, UniqueFd uffd, UniqueFd socket, pid_t pid);

  Uffd& staging_uffd() override { return uffd_; }
  bool can_evict() const override { return helper_; }
  Result<std::unique_ptr<Space>> Fork(UniqueFd child_uffd) override;
  Result<bool> ServeOutside(uint64_t address) override;

  // A forked child's: what its doorbell says (0 for the program that joined).
  uint64_t join_nonce() const { return nonce_; }
  // The forked child `pid` joined on `socket`: its helper serves this space
  // from the pager's next step on. The caller checked the nonce.
  Status OfferHelper(UniqueFd socket, pid_t pid);
  int wait_fd() const override { return epoll_.get(); }
  Status ReadPages(std::span<uint8_t* const> from, std::span<uint8_t* const> to) override;
  Result<bool> Evict(uint8_t* dst, uint8_t* src, uint32_t pages, uint32_t token, MoveResult* result) override;
  Result<bool> BringBack(uint8_t* dst, uint8_t* slot, uint8_t* scratch) override;
  bool bring_back_copies() const override { return true; }
  Result<bool> Drop(uint8_t* addr, size_t len, uint32_t token) override;
  Status TakeCompletions(std::vector<SpaceCompletion>* out) override;
  Status OnQuietWake() override;
  Status ConfirmForks() override;
  bool Gone() override;
  void Fail(const Status& why) override;

 private:
  RemoteSpace(const SpaceLayout& layout, Uffd uffd, std::shared_ptr<UniqueFd> socket, UniqueFd epoll, pid_t pid,
              uint64_t nonce)
      : Space(layout, std::move(uffd)), socket_(std::move(socket)), epoll_(std::move(epoll)), pid_(pid),
        helper_(nonce == 0), nonce_(nonce) {}
  static Result<UniqueFd> Epoll(std::initializer_list<int> fds);
  // `answered`: a request the helper answers (counted in awaited_).
  Status Send(const AgentMessage& m, bool answered = true);
  Status Flush();
  // Unavailable once the program's address space is gone.
  Status Probe();
  // Takes over a helper offered by the agent's thread, if any.
  Status TakeOffer();
  // Fills the doorbell with the nonce (and wakes its readers).
  Status Ring();

  std::shared_ptr<UniqueFd> socket_;
  UniqueFd epoll_;
  pid_t pid_;     // 0 for a forked child until it joins
  bool helper_;   // the socket leads to this process's helper thread
  bool hung_up_ = false;  // the program closed the socket: it is out of the epoll
  const uint64_t nonce_;
  bool ring_pending_ = false;  // the doorbell could not be filled yet
  std::deque<AgentMessage> unsent_;  // the socket was full
  uint64_t awaited_ = 0;             // kMove and kDrop sent or unsent, not yet answered
  bool listen_ = false;              // read the socket even with nothing awaited: a kForked may wait there
  uint64_t forks_asked_ = 0;         // kForked received, not yet answered
  uint64_t next_probe_ns_ = 0;
  std::mutex offer_mu_;
  UniqueFd offered_socket_;  // guarded by offer_mu_
  pid_t offered_pid_ = 0;    // guarded by offer_mu_
  std::atomic<bool> offered_{false};
};

}  // namespace tessera::vnode
