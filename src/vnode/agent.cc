#include "vnode/agent.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstring>

#include "common/clock.h"
#include "vnode/lazy_fresh.h"
#include "vnode/remote_space.h"
#include "vnode/staging.h"

namespace tessera::vnode {
namespace {

bool IsUserfaultfd(int fd) {
  char path[64], target[64] = {};
  std::snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
  ssize_t n = readlink(path, target, sizeof target - 1);
  return n > 0 && std::strcmp(target, "anon_inode:[userfaultfd]") == 0;
}

bool PageAligned(uint64_t x, size_t page) { return x != 0 && x % page == 0; }

}  // namespace

Result<std::unique_ptr<Agent>> Agent::Start(AgentOptions options) {
  if (!options.store || options.pages == 0) return InvalidArgument("an agent needs a region to serve");
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (options.socket_path.size() >= sizeof addr.sun_path) {
    return InvalidArgument("agent socket path too long: " + options.socket_path);
  }
  std::memcpy(addr.sun_path, options.socket_path.c_str(), options.socket_path.size());
  UniqueFd fd(socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!fd.valid()) return Status::FromErrno(errno, "agent socket");
  unlink(options.socket_path.c_str());
  if (bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    return Status::FromErrno(errno, "bind " + options.socket_path);
  }
  if (listen(fd.get(), 4) != 0) return Status::FromErrno(errno, "listen " + options.socket_path);
  std::unique_ptr<Agent> a(new Agent(std::move(options), std::move(fd)));
  a->thread_ = std::thread([p = a.get()] { p->Loop(); });
  return a;
}

Agent::Agent(AgentOptions options, UniqueFd listener)
    : options_(std::move(options)), listener_(std::move(listener)), main_{.store = options_.store} {}

Agent::~Agent() {
  stop_.store(true);
  if (thread_.joinable()) thread_.join();
  pager_.reset();
  ReapForks(/*all=*/true);
  unlink(options_.socket_path.c_str());
}

void Agent::Loop() {
  while (!stop_.load()) {
    pollfd p{listener_.get(), POLLIN, 0};
    if (poll(&p, 1, 100) > 0) Accept();
    if (pager_ && pager_->finished()) pager_.reset();
    ReapForks(/*all=*/false);
  }
}

void Agent::ReapForks(bool all) {
  for (;;) {
    std::vector<Fork> done;  // destroyed outside the lock: a child's pager may be in OnFork until it stops
    {
      std::lock_guard lk(forks_mu_);
      for (std::vector<Fork>* list : {&forks_, &others_}) {
        for (auto it = list->begin(); it != list->end();) {
          if (all || it->pager->finished()) {
            joinable_.erase(it->nonce);
            done.push_back(std::move(*it));
            it = list->erase(it);
          } else {
            ++it;
          }
        }
      }
    }
    if (done.empty() || !all) return;
  }
}

size_t Agent::live_forks() {
  std::lock_guard lk(forks_mu_);
  return forks_.size();
}

size_t Agent::live_other_images() {
  std::lock_guard lk(forks_mu_);
  return others_.size();
}

PagerOptions Agent::PagerFor(const Image& image, bool main) {
  PagerOptions po = options_.pager;
  if (!main) po.counters = options_.fork_counters != nullptr ? options_.fork_counters : &own_fork_counters_;
  po.on_fork = [this, image](ForkedChild child) { return OnFork(image, std::move(child)); };
  // A parent that waits for its fork+exec child writes nothing back meanwhile.
  po.defer_writes = [guard = image.guard] { return guard->Lending(); };
  return po;
}

std::unique_ptr<IoQueue> Agent::QueueFor(const Image& image) {
  return GuardedQueue(image.store->NewQueue(), image.guard);
}

Status Agent::OnFork(const Image& parent, ForkedChild child) {
  TS_RETURN_IF_ERROR(parent.store->BeforeFork());
  UniqueFd child_uffd(fcntl(child.space->uffd().fd(), F_DUPFD_CLOEXEC, 0));
  if (!child_uffd.valid()) return Status::FromErrno(errno, "copy a forked child's userfaultfd");
  const SpaceLayout& l = child.space->layout();
  // The child keeps up to one cache of the pages it writes before it needs a copy.
  auto clone = std::make_shared<LazyClone>(parent.store, std::move(child_uffd), l.beacon(), l.page_size,
                                           options_.pager.cache_bytes / l.page_size);
  parent.guard->Add(clone);
  Image image{.store = clone};
  auto* space = dynamic_cast<RemoteSpace*>(child.space.get());
  const uint64_t nonce = space != nullptr ? space->join_nonce() : 0;
  if (nonce != 0) {
    std::lock_guard lk(forks_mu_);
    joinable_[nonce] = space;  // the child may ask to join as soon as its pager runs
  }
  Result<std::unique_ptr<Pager>> pager = Pager::ServeFork(PagerFor(image, false), QueueFor(image), std::move(child));
  std::lock_guard lk(forks_mu_);
  if (!pager.ok()) {
    joinable_.erase(nonce);
    return pager.status();
  }
  forks_.push_back({nonce, std::move(image), std::move(*pager)});
  forks_served_.fetch_add(1);
  return Status::Ok();
}

Status Agent::JoinFork(UniqueFd conn, uint64_t nonce, pid_t pid) {
  std::lock_guard lk(forks_mu_);
  auto it = joinable_.find(nonce);
  if (nonce == 0 || it == joinable_.end()) return NotFound("a forked child asked to join as no child served here");
  RemoteSpace* space = it->second;
  UniqueFd copy(fcntl(space->uffd().fd(), F_DUPFD_CLOEXEC, 0));
  if (!copy.valid()) return Status::FromErrno(errno, "copy a forked child's userfaultfd");
  TS_RETURN_IF_ERROR(SendAgentMessage(conn.get(), {.op = AgentOp::kForkReady}, copy.get()));
  if (fcntl(conn.get(), F_SETFL, fcntl(conn.get(), F_GETFL) | O_NONBLOCK) != 0) {
    return Status::FromErrno(errno, "make a forked child's socket non-blocking");
  }
  TS_RETURN_IF_ERROR(space->OfferHelper(std::move(conn), pid));
  joinable_.erase(it);
  return Status::Ok();
}

void Agent::Accept() {
  UniqueFd conn(accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC));
  if (!conn.valid()) return;
  if (Status s = Serve(std::move(conn)); !s.ok()) {
    std::fprintf(stderr, "tessera: refused a program's connection: %s\n", s.ToString().c_str());
  }
}

bool Agent::PreviousFinished() {
  // An image that exec'd closed its socket on the way: its pager notices
  // within a poll and drains its writes.
  const uint64_t deadline = NowNanos() + 35'000'000'000ull;
  while (pager_ && !pager_->finished() && NowNanos() < deadline && !stop_.load()) usleep(1000);
  if (pager_ && !pager_->finished()) return false;
  pager_.reset();
  return true;
}

Status Agent::Serve(UniqueFd conn) {
  ucred peer{};
  socklen_t len = sizeof peer;
  if (getsockopt(conn.get(), SOL_SOCKET, SO_PEERCRED, &peer, &len) != 0) return Status::FromErrno(errno, "SO_PEERCRED");
  timeval tv{.tv_sec = options_.handshake_ms / 1000, .tv_usec = (options_.handshake_ms % 1000) * 1000};
  setsockopt(conn.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(conn.get(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  const PagerOptions& po = options_.pager;  // the layout's shape
  const uint32_t blocks = StagingBlocksFor(po);
  TS_RETURN_IF_ERROR(SendAgentMessage(conn.get(), {.op = AgentOp::kConfig, .a = options_.pages, .b = po.page_size, .c = blocks}));
  UniqueFd uffd;
  TS_ASSIGN_OR_RETURN(AgentMessage hello, RecvAgentMessage(conn.get(), &uffd));
  SpaceLayout l{.base = reinterpret_cast<uint8_t*>(hello.a), .pages = options_.pages,
                .staging = reinterpret_cast<uint8_t*>(hello.c), .staging_blocks = blocks, .page_size = po.page_size};
  if (hello.op == AgentOp::kForkHello && !uffd.valid()) return JoinFork(std::move(conn), hello.a, peer.pid);
  if (hello.op != AgentOp::kHello) return ProtocolError("the shim's first message is not a hello");
  if (!uffd.valid() || !IsUserfaultfd(uffd.get())) return ProtocolError("the shim's hello carries no userfaultfd");
  if (!PageAligned(hello.a, l.page_size) || !PageAligned(hello.c, l.page_size) || hello.b != l.bytes() ||
      hello.d != l.staging_area_bytes() || hello.a > UINTPTR_MAX - hello.b || hello.c > UINTPTR_MAX - hello.d) {
    return ProtocolError("the shim's hello describes areas other than those offered");
  }
  // From here the socket is the pager's, which never waits on it.
  if (fcntl(conn.get(), F_SETFL, fcntl(conn.get(), F_GETFL) | O_NONBLOCK) != 0) {
    return Status::FromErrno(errno, "make the session socket non-blocking");
  }
  if (pager_ && !pager_->finished() && peer.pid != main_pid_) {
    return ServeOther(std::move(conn), std::move(uffd), l, peer.pid);
  }
  if (!PreviousFinished()) return Unavailable("another image of the program is still being served");
  const int sock = conn.get();  // the space owns it from now on
  TS_ASSIGN_OR_RETURN(std::unique_ptr<Space> space, RemoteSpace::Adopt(l, std::move(uffd), std::move(conn), peer.pid));
  TS_ASSIGN_OR_RETURN(pager_, Pager::Serve(PagerFor(main_, true), QueueFor(main_), std::move(space)));
  main_pid_ = peer.pid;
  sessions_.fetch_add(1);
  // One packet; the pager's thread may send on the socket too.
  return SendAgentMessage(sock, {.op = AgentOp::kReady});
}

Status Agent::ServeOther(UniqueFd conn, UniqueFd uffd, const SpaceLayout& l, pid_t pid) {
  if (!options_.fresh_store || live_other_images() >= kMaxOtherImages) {
    declined_.fetch_add(1);
    return SendAgentMessage(conn.get(), {.op = AgentOp::kLocal});
  }
  const int sock = conn.get();
  TS_ASSIGN_OR_RETURN(std::unique_ptr<Space> space, RemoteSpace::Adopt(l, std::move(uffd), std::move(conn), pid));
  Image image{.store = std::make_shared<LazyFresh>(options_.fresh_store)};
  TS_ASSIGN_OR_RETURN(std::unique_ptr<Pager> pager, Pager::Serve(PagerFor(image, false), QueueFor(image), std::move(space)));
  {
    std::lock_guard lk(forks_mu_);
    others_.push_back({0, std::move(image), std::move(pager)});
  }
  others_served_.fetch_add(1);
  return SendAgentMessage(sock, {.op = AgentOp::kReady});
}

}  // namespace tessera::vnode
