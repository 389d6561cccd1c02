// Agent: serves the memory of a program from outside it — the process side
// of the vNode, run by `tessera run` (LegoOS's process monitor keeps paging
// out of the application's way the same way). The preload shim in the
// program connects to the agent's unix socket, maps and registers its areas
// and hands over its userfaultfd (agent_protocol.h); the agent runs a Pager
// for it over a RemoteSpace. Nothing of Tessera's runs on the program's
// threads but its allocator and a helper thread that makes raw madvise calls:
// no network code, no locks or libc state shared with the program.
//
// The program's process is served one image at a time: an image it exec'd
// reconnects once its predecessor's pager has finished (its writes are in),
// and starts from fresh pages. Its children fork with the pages they had
// (below) and keep them through every image; those writes of a new image
// that would change what a lending child reads make the child's copy first.
//
// Another process of the program's that exec'd (a shell forks one per
// command) is an image of its own: served by a pager of its own, from pages
// of its own — a store AgentOptions::fresh_store makes when its first page
// is evicted (lazy_fresh.h), so that short-lived commands cost no region.
// Past kMaxOtherImages at once, or without fresh_store, such a process is
// told to keep its memory local (kLocal).
//
// A child the image forks without exec is served too, by a pager of its
// own, from a copy of the image's pages made at the memory nodes
// (ImageStore::Clone) when first needed (lazy_clone.h): each side then sees
// only its own writes, and a child that execs at once costs no copy (its
// parent's pager writes nothing back ahead of need meanwhile).
// A child made by fork() joins with a session of its own (kForkHello, with
// the nonce its pager put in its doorbell) and is then served like its
// parent, eviction included; one made by _Fork or clone, which run no atfork
// handler, has no helper thread and keeps its pages local. A child's pager
// ends when its memory does (exit or exec).
//
// Ownership: owns the listening socket (removed on destruction), the
// sessions, their pagers and the stores of forked children. Thread-safety:
// Start/destruction from one thread; sessions(), forks() and live_forks()
// from any.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "common/result.h"
#include "common/unique_fd.h"
#include "vnode/image_store.h"
#include "vnode/lazy_clone.h"
#include "vnode/pager.h"
#include "vnode/remote_space.h"

namespace tessera::vnode {

struct AgentOptions {
  std::string socket_path;
  PagerOptions pager;
  uint64_t pages = 0;  // the region's: the managed range's size
  // The program's pages (every image it execs starts afresh on them).
  std::shared_ptr<ImageStore> store;
  // An empty store of the same size, for another process's image.
  std::function<Result<std::unique_ptr<ImageStore>>()> fresh_store;
  // Where the pagers of forked children count, all together (null: the
  // agent's own). Their peak is the largest any one child's cache reached.
  PagerCounters* fork_counters = nullptr;
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
  // Forked children served so far, and those still served.
  uint64_t forks() const { return forks_served_.load(); }
  size_t live_forks();
  // Images of other processes of the program's served so far, those still
  // served, and those told to keep their memory local.
  uint64_t other_images() const { return others_served_.load(); }
  size_t live_other_images();
  uint64_t declined() const { return declined_.load(); }

  static constexpr size_t kMaxOtherImages = 64;

 private:
  Agent(AgentOptions options, UniqueFd listener);
  void Loop();
  void Accept();
  // Runs the handshake on `conn`; an error refuses the connection.
  Status Serve(UniqueFd conn);
  // Waits (bounded) for the previous image's pager to finish.
  bool PreviousFinished();
  // An image's pages and the clones pending from them (lazy_clone.h).
  struct Image {
    std::shared_ptr<ImageStore> store;
    std::shared_ptr<ForkGuard> guard = std::make_shared<ForkGuard>();
  };
  // Options for a pager of `image`, and the queue it pages through.
  PagerOptions PagerFor(const Image& image, bool main);
  static std::unique_ptr<IoQueue> QueueFor(const Image& image);
  // A pager's fork handler: serves the child from a clone of `parent`'s
  // pages, made when first needed.
  Status OnFork(const Image& parent, ForkedChild child);
  // A forked child's own session (kForkHello with `nonce`), from `pid`.
  Status JoinFork(UniqueFd conn, uint64_t nonce, pid_t pid);
  // Serves the image of `pid`, another process than the program's, whose
  // hello was checked.
  Status ServeOther(UniqueFd conn, UniqueFd uffd, const SpaceLayout& l, pid_t pid);
  // Forgets the forked children and other images whose pagers finished (or all).
  void ReapForks(bool all);

  struct Fork {
    uint64_t nonce;  // the child's doorbell
    Image image;
    std::unique_ptr<Pager> pager;  // after the image: destroyed first
  };

  const AgentOptions options_;
  UniqueFd listener_;
  const Image main_;              // the program's pages, through all its images
  pid_t main_pid_ = 0;            // the program's process; the agent thread's
  std::unique_ptr<Pager> pager_;  // the current image's; the agent thread's
  std::atomic<uint64_t> sessions_{0};
  std::atomic<uint64_t> forks_served_{0};
  std::atomic<uint64_t> others_served_{0};
  std::atomic<uint64_t> declined_{0};
  PagerCounters own_fork_counters_;
  std::mutex forks_mu_;
  std::vector<Fork> forks_;                      // guarded by forks_mu_
  std::vector<Fork> others_;                     // other images (nonce 0); guarded by forks_mu_
  // Children not joined yet, by nonce: their spaces live as long as their
  // entries in forks_. Guarded by forks_mu_.
  std::unordered_map<uint64_t, RemoteSpace*> joinable_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace tessera::vnode
