#include "vnode/remote_space.h"

#include <poll.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <sys/uio.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <utility>
#include <vector>

#include "common/check.h"
#include "common/clock.h"

namespace tessera::vnode {

Result<UniqueFd> RemoteSpace::Epoll(std::initializer_list<int> fds) {
  UniqueFd ep(epoll_create1(EPOLL_CLOEXEC));
  if (!ep.valid()) return Status::FromErrno(errno, "epoll_create1");
  for (int fd : fds) {
    epoll_event ev{.events = EPOLLIN, .data = {.fd = fd}};
    if (epoll_ctl(ep.get(), EPOLL_CTL_ADD, fd, &ev) != 0) return Status::FromErrno(errno, "epoll_ctl");
  }
  return ep;
}

Result<std::unique_ptr<Space>> RemoteSpace::Adopt(const SpaceLayout& layout, UniqueFd uffd, UniqueFd socket,
                                                  pid_t pid) {
  TS_ASSIGN_OR_RETURN(UniqueFd ep, Epoll({uffd.get(), socket.get()}));
  Uffd adopted = Uffd::Adopt(std::move(uffd), kRemoteSpaceFeatures);
  Status beacon = adopted.ZeroPage(layout.beacon(), layout.page_size);
  if (!beacon.ok() && beacon.code() != Code::kAlreadyExists) return beacon.With("map the beacon page");
  return std::unique_ptr<Space>(new RemoteSpace(layout, std::move(adopted),
                                                std::make_shared<UniqueFd>(std::move(socket)), std::move(ep), pid,
                                                /*nonce=*/0));
}

Result<std::unique_ptr<Space>> RemoteSpace::Fork(UniqueFd child_uffd) {
  listen_ = true;  // the parent says kForked once its fork returns
  TS_ASSIGN_OR_RETURN(UniqueFd ep, Epoll({child_uffd.get()}));
  Uffd adopted = Uffd::Adopt(std::move(child_uffd), kRemoteSpaceFeatures);
  uint64_t nonce = 0;
  while (nonce == 0) {
    if (getrandom(&nonce, sizeof nonce, 0) != sizeof nonce) return Status::FromErrno(errno, "getrandom");
  }
  return std::unique_ptr<Space>(new RemoteSpace(layout_, std::move(adopted), socket_, std::move(ep), 0, nonce));
}

Result<bool> RemoteSpace::ServeOutside(uint64_t address) {
  if (nonce_ == 0 || address != reinterpret_cast<uint64_t>(layout_.doorbell())) return false;
  TS_RETURN_IF_ERROR(Ring());
  return true;
}

Status RemoteSpace::Ring() {
  std::vector<uint8_t> page(layout_.page_size, 0);
  std::memcpy(page.data(), &nonce_, sizeof nonce_);
  Status s = uffd_.Copy(layout_.doorbell(), page.data(), page.size());
  ring_pending_ = AddressSpaceChanging(s);
  if (s.code() == Code::kAlreadyExists) s = uffd_.Wake(layout_.doorbell(), layout_.page_size);
  return s.ok() || ring_pending_ ? Status::Ok() : s.With("fill a forked child's doorbell");
}

Status RemoteSpace::OfferHelper(UniqueFd socket, pid_t pid) {
  std::lock_guard lk(offer_mu_);
  if (offered_.load() || nonce_ == 0) return AlreadyExists("this process has joined already");
  offered_socket_ = std::move(socket);
  offered_pid_ = pid;
  offered_.store(true);
  return Status::Ok();
}

Status RemoteSpace::TakeOffer() {
  if (helper_ || !offered_.load()) return Status::Ok();
  std::lock_guard lk(offer_mu_);
  epoll_event ev{.events = EPOLLIN, .data = {.fd = offered_socket_.get()}};
  if (epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, offered_socket_.get(), &ev) != 0) {
    return Status::FromErrno(errno, "epoll_ctl");
  }
  socket_ = std::make_shared<UniqueFd>(std::move(offered_socket_));
  pid_ = offered_pid_;
  helper_ = true;
  return Status::Ok();
}

Status RemoteSpace::ReadPages(std::span<uint8_t* const> from, std::span<uint8_t* const> to) {
  CHECK(from.size() == to.size());
  const size_t ps = layout_.page_size;
  constexpr size_t kMaxIov = 64;  // a staging block at a time
  iovec local[kMaxIov], remote[kMaxIov];
  for (size_t i = 0; i < from.size(); i += kMaxIov) {
    const size_t n = std::min(kMaxIov, from.size() - i);
    for (size_t k = 0; k < n; ++k) {
      local[k] = {to[i + k], ps};
      remote[k] = {from[i + k], ps};
    }
    ssize_t got = process_vm_readv(pid_, local, n, remote, n, 0);
    if (got < 0) return Status::FromErrno(errno, "read the program's staged pages (process_vm_readv)");
    if (static_cast<size_t>(got) != n * ps) {
      return Internal("read " + std::to_string(got) + " of " + std::to_string(n * ps) +
                      " bytes of the program's staged pages");
    }
  }
  return Status::Ok();
}

Status RemoteSpace::Send(const AgentMessage& m, bool answered) {
  if (answered) ++awaited_;
  if (!unsent_.empty()) {
    unsent_.push_back(m);
    return Flush();
  }
  CHECK(helper_) << "a forked child's space has no helper to ask";
  Status s = SendAgentMessage(socket_->get(), m);
  if (WouldBlock(s)) {
    unsent_.push_back(m);
    return Status::Ok();
  }
  return s;
}

Status RemoteSpace::Flush() {
  while (!unsent_.empty()) {
    Status s = SendAgentMessage(socket_->get(), unsent_.front());
    if (WouldBlock(s)) return Status::Ok();
    TS_RETURN_IF_ERROR(s);
    unsent_.pop_front();
  }
  return Status::Ok();
}

Result<bool> RemoteSpace::Drop(uint8_t* addr, size_t len, uint32_t token) {
  TS_RETURN_IF_ERROR(Send({.op = AgentOp::kDrop, .token = token, .a = reinterpret_cast<uint64_t>(addr), .b = len}));
  return false;
}

Result<bool> RemoteSpace::Evict(uint8_t* dst, uint8_t* src, uint32_t pages, uint32_t token, MoveResult*) {
  TS_RETURN_IF_ERROR(Send({.op = AgentOp::kMove, .token = token, .a = reinterpret_cast<uint64_t>(dst),
                           .b = reinterpret_cast<uint64_t>(src), .c = pages}));
  return false;
}

Result<bool> RemoteSpace::BringBack(uint8_t* dst, uint8_t* slot, uint8_t* scratch) {
  uint8_t* from[] = {slot};
  uint8_t* to[] = {scratch};
  TS_RETURN_IF_ERROR(ReadPages(from, to));
  TS_RETURN_IF_ERROR(uffd_.Copy(dst, scratch, layout_.page_size));
  return false;
}

Status RemoteSpace::Probe() {
  Status s = uffd_.ZeroPage(layout_.beacon(), layout_.page_size);
  if (s.ok() || s.code() == Code::kAlreadyExists || AddressSpaceChanging(s)) return Status::Ok();
  return Unavailable("the program's memory is gone (" + s.ToString() + ")");
}

Status RemoteSpace::TakeCompletions(std::vector<SpaceCompletion>* out) {
  if (const uint64_t now = NowNanos(); now >= next_probe_ns_) {
    next_probe_ns_ = now + 100'000'000;
    TS_RETURN_IF_ERROR(Probe());
    listen_ = true;  // a busy pager may never wake quiet
  }
  if (ring_pending_) TS_RETURN_IF_ERROR(Ring());
  TS_RETURN_IF_ERROR(TakeOffer());
  if (!helper_) return Status::Ok();
  TS_RETURN_IF_ERROR(Flush());
  // Answers come when awaited; a kForked whenever the program forks, which
  // wakes the pager quietly (OnQuietWake) or waits for the next probe. A
  // receive that would block costs a system call: not one per step.
  while (awaited_ > 0 || (std::exchange(listen_, false) && !hung_up_)) {
    Result<AgentMessage> m = RecvAgentMessage(socket_->get());
    if (!m.ok() && WouldBlock(m.status())) return Status::Ok();
    if (!m.ok()) return m.status().With("the program's session");
    if (m->op == AgentOp::kForked) {
      ++forks_asked_;
      continue;
    }
    if (awaited_ == 0) return ProtocolError("the shim answered a request never made");
    --awaited_;
    if (m->op == AgentOp::kDropped) {
      out->push_back({.kind = SpaceCompletion::Kind::kDrop, .token = m->token});
    } else if (m->op == AgentOp::kMoved) {
      if (m->c != 0) return Internal("UFFDIO_MOVE failed in the program (its stderr says why)");
      out->push_back({.kind = SpaceCompletion::Kind::kMove, .token = m->token, .move = {.moved = m->a, .missing = m->b}});
    } else {
      return ProtocolError("the shim sent op " + std::to_string(static_cast<int>(m->op)) + " mid-session");
    }
  }
  return Status::Ok();
}

Status RemoteSpace::ConfirmForks() {
  for (; forks_asked_ > 0; --forks_asked_) TS_RETURN_IF_ERROR(Send({.op = AgentOp::kSettled}, /*answered=*/false));
  return Status::Ok();
}

Status RemoteSpace::OnQuietWake() {
  // What woke us may be a kForked: the next step reads the socket.
  listen_ = true;
  // A process that execs or exits loses its memory, then its socket closes,
  // which keeps the epoll ready (level-triggered hang-up): without this its
  // pager would spin until the next probe, 100 ms later.
  TS_RETURN_IF_ERROR(Probe());
  if (!helper_ || hung_up_) return Status::Ok();
  pollfd p{socket_->get(), POLLRDHUP, 0};
  if (poll(&p, 1, 0) > 0 && (p.revents & (POLLHUP | POLLRDHUP | POLLERR)) != 0) {
    // The memory lives on, but the program closed our socket: stop hearing
    // it; the next request fails to send and says so.
    epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, socket_->get(), nullptr);
    hung_up_ = true;
  }
  return Status::Ok();
}

bool RemoteSpace::Gone() {
  if (!Probe().ok()) return true;
  if (!helper_) return false;
  // A program that exits or execs loses its memory first and closes the
  // socket a moment later: give it that moment.
  pollfd p{socket_->get(), POLLRDHUP, 0};
  return poll(&p, 1, 2000) > 0 && (p.revents & (POLLHUP | POLLRDHUP | POLLERR)) != 0;
}

void RemoteSpace::Fail(const Status& why) {
  if (pid_ <= 0) {
    std::fprintf(stderr, "tessera: the pager of a forked child cannot go on; its faults will wait: %s\n",
                 why.ToString().c_str());
    return;
  }
  std::fprintf(stderr, "tessera: the pager cannot go on, stopping the program (pid %d): %s\n", static_cast<int>(pid_),
               why.ToString().c_str());
  kill(pid_, SIGKILL);
}

}  // namespace tessera::vnode
