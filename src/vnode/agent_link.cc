#include "vnode/agent_link.h"

#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <linux/futex.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

namespace tessera::vnode {
namespace {

void Say(const char* msg) { (void)!write(2, msg, std::strlen(msg)); }

bool Within(uint64_t a, uint64_t len, const uint8_t* base, size_t bytes) {
  const auto b = reinterpret_cast<uint64_t>(base);
  return a >= b && len <= bytes && a - b <= bytes - len;
}

Result<int> Connect(const char* path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (std::strlen(path) >= sizeof addr.sun_path) return InvalidArgument(std::string("agent path too long: ") + path);
  std::strcpy(addr.sun_path, path);
  int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  if (fd < 0) return Status::FromErrno(errno, "agent socket");
  timeval tv{.tv_sec = 60, .tv_usec = 0};  // the agent may first wait for the previous image's writes
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    int err = errno;
    close(fd);
    return Status::FromErrno(err, std::string("connect to the agent at ") + path);
  }
  return fd;
}

}  // namespace

Result<AgentLink*> AgentLink::Join(const char* socket_path, void (*on_helper_start)()) {
  // Not freed on failure either: a half-made link may hold the range's
  // registration, and the caller gives up on the process anyway.
  auto* link = new AgentLink;
  link->on_helper_start_ = on_helper_start;
  if (std::strlen(socket_path) >= sizeof link->path_) return InvalidArgument(std::string("agent path too long: ") + socket_path);
  std::strcpy(link->path_, socket_path);
  TS_ASSIGN_OR_RETURN(link->socket_, Connect(socket_path));
  TS_ASSIGN_OR_RETURN(bool served, link->Handshake());
  if (!served) {
    delete link;  // it holds nothing now
    return static_cast<AgentLink*>(nullptr);
  }
  TS_RETURN_IF_ERROR(link->StartThreads(/*helper=*/true));
  return link;
}

Result<bool> AgentLink::Handshake() {
  TS_ASSIGN_OR_RETURN(AgentMessage config, RecvAgentMessage(socket_));
  if (config.op != AgentOp::kConfig || config.a == 0 || config.b != 4096 || config.c == 0 || config.c > (1u << 24)) {
    return ProtocolError("the agent's first message is not a usable config");
  }
  layout_.pages = config.a;
  layout_.page_size = config.b;
  layout_.staging_blocks = static_cast<uint32_t>(config.c);
  TS_ASSIGN_OR_RETURN(Uffd uffd, Uffd::Open(kRemoteSpaceFeatures, kRemoteSpaceFeatures));
  TS_RETURN_IF_ERROR(MapRegistered(uffd, layout_.bytes(), &layout_.base, "managed range"));
  TS_RETURN_IF_ERROR(MapRegistered(uffd, layout_.staging_area_bytes(), &layout_.staging, "staging area"));
  TS_RETURN_IF_ERROR(SendAgentMessage(socket_,
                                      {.op = AgentOp::kHello, .a = reinterpret_cast<uint64_t>(layout_.base),
                                       .b = layout_.bytes(), .c = reinterpret_cast<uint64_t>(layout_.staging),
                                       .d = layout_.staging_area_bytes()},
                                      uffd.fd()));
  Result<AgentMessage> ready = RecvAgentMessage(socket_);
  if (!ready.ok() && ready.status().message() == "closed") {
    return Unavailable("the agent refused this process (it says why)");
  }
  TS_RETURN_IF_ERROR(ready.status());
  if (ready->op == AgentOp::kLocal) {
    // Unregistered first: an unmap of a registered range would wait for a
    // reader of its event.
    for (auto [p, len] : {std::pair{layout_.base, layout_.bytes()}, {layout_.staging, layout_.staging_area_bytes()}}) {
      TS_RETURN_IF_ERROR(uffd.Unregister(p, len));
      munmap(p, len);
    }
    close(socket_);
    socket_ = -1;
    return false;
  }
  if (ready->op != AgentOp::kReady) return ProtocolError("the agent did not answer the hello with ready");
  uffd_.emplace(std::move(uffd));
  timeval none{};
  setsockopt(socket_, SOL_SOCKET, SO_RCVTIMEO, &none, sizeof none);  // the helper waits as long as it takes
  return true;
}

Status AgentLink::StartThreads(bool helper) {
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);  // signals go to the program's threads
  int err = 0;
  using Body = void* (*)(void*);
  for (auto [fn, name] : {std::pair<Body, const char*>{Watchdog, "tessera-watch"}, {Helper, "tessera-helper"}}) {
    if (fn == Helper && !helper) continue;
    pthread_t t;
    err = pthread_create(&t, nullptr, fn, this);
    if (err != 0) break;
    pthread_setname_np(t, name);
    pthread_detach(t);
  }
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  if (err != 0) return Status::FromErrno(err, "start the helper threads");
  helper_ = helper;
  return Status::Ok();
}

void AgentLink::Stop() {
  Say("tessera: the agent serving this program's memory went away; stopping the program\n");
  syscall(SYS_kill, getpid(), SIGKILL);
}

void* AgentLink::Helper(void* self) {
  auto* link = static_cast<AgentLink*>(self);
  if (link->on_helper_start_ != nullptr) link->on_helper_start_();
  for (;;) {
    Result<AgentMessage> m = RecvAgentMessage(link->socket_);
    if (!m.ok() || !link->Serve(*m)) break;
  }
  Stop();
  return nullptr;
}

void* AgentLink::Watchdog(void* self) {
  auto* link = static_cast<AgentLink*>(self);
  if (link->on_helper_start_ != nullptr) link->on_helper_start_();
  for (;;) {
    pollfd p{link->socket_, POLLRDHUP, 0};
    int n = poll(&p, 1, -1);
    if (n > 0 && (p.revents & (POLLHUP | POLLRDHUP | POLLERR | POLLNVAL))) break;
  }
  Stop();
  return nullptr;
}

bool AgentLink::Serve(const AgentMessage& m) {
  const SpaceLayout& l = layout_;
  AgentMessage reply;
  if (m.op == AgentOp::kSettled) {
    fork_answers_.fetch_add(1);
    syscall(SYS_futex, &fork_answers_, FUTEX_WAKE_PRIVATE, INT32_MAX, nullptr, nullptr, 0);
    return true;
  }
  if (m.op == AgentOp::kDrop && Within(m.a, m.b, l.staging, l.staging_bytes())) {
    syscall(SYS_madvise, m.a, m.b, MADV_DONTNEED);
    reply = {.op = AgentOp::kDropped, .token = m.token};
  } else if (m.op == AgentOp::kMove && m.c > 0 && m.c <= kMaxMovePages &&
             Within(m.a, m.c * l.page_size, l.staging, l.staging_bytes()) &&
             Within(m.b, m.c * l.page_size, l.base, l.bytes())) {
    Result<MoveResult> r = MoveRun(*uffd_, reinterpret_cast<uint8_t*>(m.a), reinterpret_cast<uint8_t*>(m.b),
                                   static_cast<uint32_t>(m.c), l.page_size);
    if (!r.ok()) {
      Say("tessera: moving pages out of the cache failed: ");
      Say(r.status().ToString().c_str());
      Say("\n");
    }
    reply = r.ok() ? AgentMessage{.op = AgentOp::kMoved, .token = m.token, .a = r->moved, .b = r->missing}
                   : AgentMessage{.op = AgentOp::kMoved, .token = m.token, .c = 1};
  } else {
    Say("tessera: the agent sent this program a request it does not take\n");
    return false;
  }
  return SendAgentMessage(socket_, reply).ok();
}

void AgentLink::OnForkChild() {
  // The parent's userfaultfd copy guards the parent's registration, not
  // ours (until we join, the agent holds the only descriptor of ours).
  uffd_.reset();
  Status joined = JoinAsChild();
  if (joined.code() == Code::kDataLoss) {
    Say("tessera: stopping a forked child whose memory cannot be served: ");
    Say(joined.ToString().c_str());
    Say("\n");
    syscall(SYS_kill, getpid(), SIGKILL);
  }
  if (!joined.ok()) {
    Say("tessera: a forked child is served without eviction (it could not join: ");
    Say(joined.ToString().c_str());
    Say(")\n");
  }
  if (!StartThreads(/*helper=*/joined.ok()).ok()) {
    Say("tessera: a forked child cannot watch its agent; stopping it\n");
    syscall(SYS_kill, getpid(), SIGKILL);
  }
}

void AgentLink::OnForkParent() {
  // Without a helper nothing of ours is staged: the child's pages are in the
  // pool or in its own copy of our memory already.
  if (!helper_) return;
  const uint32_t ticket = fork_asks_.fetch_add(1) + 1;
  if (!SendAgentMessage(socket_, {.op = AgentOp::kForked}).ok()) return;  // the watchdog acts on a lost agent
  // Answers come in order, one per ask: the ticket-th answer covers our
  // fork, whichever thread's ask it answers (agent_protocol.h).
  for (int waited_s = 0; waited_s < 120; ++waited_s) {
    const uint32_t seen = fork_answers_.load();
    if (static_cast<int32_t>(seen - ticket) >= 0) return;
    timespec second{.tv_sec = 1, .tv_nsec = 0};
    syscall(SYS_futex, &fork_answers_, FUTEX_WAIT_PRIVATE, seen, &second, nullptr, 0);
  }
  Say("tessera: the agent did not confirm a fork within 120 s; going on\n");
}

Status AgentLink::JoinAsChild() {
  const SpaceLayout& l = layout_;
  // The parent's staged pages came along: this process's staging starts empty.
  if (syscall(SYS_madvise, l.staging, l.staging_bytes(), MADV_DONTNEED) != 0) {
    return Status::FromErrno(errno, "drop the inherited staging area");
  }
  // A read the agent serves with this child's nonce; dropped again, so that
  // a child of ours rings its own.
  uint64_t nonce;
  std::memcpy(&nonce, l.doorbell(), sizeof nonce);
  syscall(SYS_madvise, l.doorbell(), l.page_size, MADV_DONTNEED);
  // Zero: no pager ever rang it, and with the agent's descriptor closed our
  // range is plain memory now — zeros, not our parent's pages.
  if (nonce == 0) return DataLoss("no pager serves this child (its parent's memory went before the fork was settled)");
  TS_ASSIGN_OR_RETURN(int fd, Connect(path_));
  UniqueFd conn(fd);
  TS_ASSIGN_OR_RETURN(AgentMessage config, RecvAgentMessage(fd));
  if (config.op != AgentOp::kConfig) return ProtocolError("the agent's first message is not a config");
  TS_RETURN_IF_ERROR(SendAgentMessage(fd, {.op = AgentOp::kForkHello, .a = nonce}));
  UniqueFd uffd;
  Result<AgentMessage> ready = RecvAgentMessage(fd, &uffd);
  if (!ready.ok() && ready.status().message() == "closed") return Unavailable("the agent refused the join");
  TS_RETURN_IF_ERROR(ready.status());
  if (ready->op != AgentOp::kForkReady || !uffd.valid()) return ProtocolError("the agent did not answer with its ready");
  close(socket_);  // the parent's session
  socket_ = conn.Release();
  uffd_.emplace(Uffd::Adopt(std::move(uffd), kRemoteSpaceFeatures));
  timeval none{};
  setsockopt(socket_, SOL_SOCKET, SO_RCVTIMEO, &none, sizeof none);
  return Status::Ok();
}

}  // namespace tessera::vnode
