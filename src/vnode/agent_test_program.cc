// A program for agent_test: joins the agent at argv[1] (agent_link.h), so that
// its range is served from the test's process, then does argv[2]:
//   stress SEED   many threads fault, write, read and discard, every byte
//                 checked (stress.h); exit 0 if all held
//   hold          writes every page, says "ready" on stdout, then reads the
//                 pages forever (the test kills it, or its agent)
//   fork          writes every page, then forks children (fork, _Fork, and
//                 fork+exec) and checks that each process sees the memory it
//                 had at the fork plus its own writes, and nobody else's
//   forkexec      writes every page, then forks five children that exec
//                 /bin/true, three at once and two after reading every page
//                 (as python's exec does); then writes and checks its pages
//   spawn N CODE  writes every page, then forks N children that exec this
//                 program to run `stress` (seeds 10..), all at once, while it
//                 rewrites and checks its own pages; each child must exit
//                 with CODE (4: the agent kept it local)
//   execkeep      writes every page, forks a child, then (once the child has
//                 joined) execs itself as `overwrite`, which writes every
//                 page anew and then lets the child check that it still sees
//                 its own (exit 0 if it does)
//   orphans N     writes every page, then forks a chain of N children in
//                 which each parent exits (or execs /bin/true) the moment
//                 its fork returns, as a daemon does; each child checks every
//                 page and rewrites half of them, and the last prints "ok"
#include <pthread.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "vnode/agent_link.h"
#include "vnode/stress.h"

using namespace tessera::vnode;
using stress::Fill;
using stress::kPage;
using stress::VersionOf;

AgentLink* g_link = nullptr;  // lives until the process ends

namespace {

// Every page p holds version even(p) ? even : odd.
bool Holds(uint8_t* base, uint64_t pages, uint64_t even, uint64_t odd) {
  for (uint64_t p = 0; p < pages; ++p) {
    if (VersionOf(base + p * kPage, p) != (p % 2 == 0 ? even : odd)) {
      std::fprintf(stderr, "pid %d: page %llu holds version %llu\n", getpid(), static_cast<unsigned long long>(p),
                   static_cast<unsigned long long>(VersionOf(base + p * kPage, p)));
      return false;
    }
  }
  return true;
}

void Write(uint8_t* base, uint64_t pages, uint64_t first, uint64_t version) {
  for (uint64_t p = first; p < pages; p += 2) Fill(base + p * kPage, p, version);
}

// Pages of the range mapped in this process now.
uint64_t Resident(uint8_t* base, uint64_t pages) {
  std::vector<unsigned char> v(pages);
  if (mincore(base, pages * kPage, v.data()) != 0) return pages;
  uint64_t n = 0;
  for (unsigned char c : v) n += c & 1;
  return n;
}

bool Exited0(pid_t pid) {
  int status = 0;
  return waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

int ForkAndCheck(uint8_t* base, uint64_t pages) {
  Write(base, pages, 0, 1);
  Write(base, pages, 1, 1);
  pid_t a = fork();
  if (a == 0) {
    bool ok = Holds(base, pages, 1, 1);
    Write(base, pages, 0, 2);
    ok = ok && Holds(base, pages, 2, 1);
    pid_t g = fork();  // a grandchild, from this child's own clone
    if (g == 0) {
      bool fine = Holds(base, pages, 2, 1);
      Write(base, pages, 1, 5);
      _exit(fine && Holds(base, pages, 2, 5) ? 0 : 1);
    }
    ok = Exited0(g) && ok && Holds(base, pages, 2, 1);
    // It joined (fork runs the atfork handler): its cache has a limit.
    const uint64_t resident = Resident(base, pages);
    if (resident > pages / 2) std::fprintf(stderr, "child: %llu pages resident\n", static_cast<unsigned long long>(resident));
    _exit(ok && resident <= pages / 2 ? 0 : 1);
  }
  Write(base, pages, 1, 3);  // while the child writes its own
  if (!Holds(base, pages, 1, 3) || !Exited0(a)) return 1;
  pid_t b = _Fork();  // no atfork handlers: the child has no helper, no watchdog
  if (b == 0) {
    bool ok = Holds(base, pages, 1, 3);
    Write(base, pages, 0, 4);
    Write(base, pages, 1, 4);
    _exit(ok && Holds(base, pages, 4, 4) ? 0 : 1);
  }
  if (!Exited0(b)) return 1;
  pid_t c = fork();
  if (c == 0) {
    execl("/bin/true", "true", static_cast<char*>(nullptr));
    _exit(127);
  }
  if (!Exited0(c)) return 1;
  return Holds(base, pages, 1, 3) ? 0 : 1;
}

// Pages the pool holds with other content, zeroed while resident, then
// forked: the child must read zeros for every one — also for those that
// were staged at the fork, which the settle finds to be zeros.
int ZeroThenFork(uint8_t* base, uint64_t pages) {
  for (uint64_t round = 1; round <= 5; ++round) {
    Write(base, pages, 0, round);
    Write(base, pages, 1, round);  // nearly all in the pool now
    for (uint64_t p = 0; p < pages; ++p) std::memset(base + p * kPage, 0, kPage);
    pid_t a = fork();
    if (a == 0) {
      uint64_t wrong = 0;
      for (uint64_t p = 0; p < pages; ++p) {
        const uint8_t* page = base + p * kPage;
        wrong += std::any_of(page, page + kPage, [](uint8_t b) { return b != 0; });
      }
      if (wrong > 0) std::fprintf(stderr, "child: %llu pages not zeros\n", static_cast<unsigned long long>(wrong));
      _exit(wrong == 0 ? 0 : 1);
    }
    if (!Exited0(a)) return 1;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s SOCKET stress SEED | hold\n", argv[0]);
    return 2;
  }
  auto link = AgentLink::Join(argv[1]);
  if (!link.ok()) {
    std::fprintf(stderr, "join: %s\n", link.status().ToString().c_str());
    return 3;
  }
  if (*link == nullptr) return 4;  // the agent serves this process no memory
  g_link = *link;
  pthread_atfork(nullptr, [] { g_link->OnForkParent(); }, [] { g_link->OnForkChild(); });
  uint8_t* base = g_link->layout().base;
  const uint64_t pages = g_link->layout().pages;
  if (std::strcmp(argv[2], "stress") == 0 && argc > 3) {
    stress::Options o{.pages = pages, .seed = static_cast<uint32_t>(std::atoi(argv[3]))};
    std::string failure = stress::Run(base, o);
    if (!failure.empty()) std::fprintf(stderr, "%s\n", failure.c_str());
    return failure.empty() ? 0 : 1;
  }
  if (std::strcmp(argv[2], "fork") == 0) return ForkAndCheck(base, pages);
  if (std::strcmp(argv[2], "zerofork") == 0) return ZeroThenFork(base, pages);
  if (std::strcmp(argv[2], "forkexec") == 0) {
    Write(base, pages, 0, 1);
    Write(base, pages, 1, 1);
    for (int i = 0; i < 5; ++i) {
      pid_t c = fork();
      if (c == 0) {
        if (i % 2 == 1 && !Holds(base, pages, 1, 1)) _exit(1);
        execl("/bin/true", "true", static_cast<char*>(nullptr));
        _exit(127);
      }
      if (!Exited0(c)) return 1;
    }
    Write(base, pages, 1, 3);
    return Holds(base, pages, 1, 3) ? 0 : 1;
  }
  if (std::strcmp(argv[2], "spawn") == 0 && argc > 4) {
    Write(base, pages, 0, 1);
    Write(base, pages, 1, 1);
    std::vector<pid_t> kids;
    for (int i = 0; i < std::atoi(argv[3]); ++i) {
      pid_t c = fork();
      if (c == 0) {
        std::string seed = std::to_string(10 + i);
        execl("/proc/self/exe", argv[0], argv[1], "stress", seed.c_str(), static_cast<char*>(nullptr));
        _exit(127);
      }
      kids.push_back(c);
    }
    Write(base, pages, 1, 3);
    bool ok = Holds(base, pages, 1, 3);
    for (pid_t c : kids) {
      int status = 0;
      const bool as_told = waitpid(c, &status, 0) == c && WIFEXITED(status) && WEXITSTATUS(status) == std::atoi(argv[4]);
      if (!as_told) std::fprintf(stderr, "child %d: status %d\n", c, status);
      ok = ok && as_told;
    }
    return ok && Holds(base, pages, 1, 3) ? 0 : 1;
  }
  if (std::strcmp(argv[2], "execkeep") == 0) {
    Write(base, pages, 0, 1);
    Write(base, pages, 1, 1);
    int go[2], joined[2];
    if (pipe(go) != 0 || pipe(joined) != 0) return 1;
    pid_t c = fork();
    if (c == 0) {
      char byte;
      close(go[1]);
      // Its atfork handler has joined: the parent's pager settled the fork.
      if (write(joined[1], "j", 1) != 1) _exit(1);
      _exit(read(go[0], &byte, 1) == 1 && Holds(base, pages, 1, 1) ? 0 : 1);
    }
    close(go[0]);
    char byte;
    if (read(joined[0], &byte, 1) != 1) return 1;
    std::string fd = std::to_string(go[1]), kid = std::to_string(c);
    execl("/proc/self/exe", argv[0], argv[1], "overwrite", fd.c_str(), kid.c_str(), static_cast<char*>(nullptr));
    return 1;
  }
  if (std::strcmp(argv[2], "overwrite") == 0 && argc > 4) {
    Write(base, pages, 0, 7);
    Write(base, pages, 1, 7);
    if (write(std::atoi(argv[3]), "x", 1) != 1) return 1;
    return Exited0(std::atoi(argv[4])) && Holds(base, pages, 7, 7) ? 0 : 1;
  }
  if (std::strcmp(argv[2], "orphans") == 0 && argc > 3) {
    Write(base, pages, 0, 1);
    Write(base, pages, 1, 1);
    const int n = std::atoi(argv[3]);
    for (int g = 1; g <= n; ++g) {
      pid_t c = fork();
      if (c < 0) return 1;
      if (c > 0) {
        // Gone at once: the settle of the fork must not need this memory.
        if (g % 2 == 0) execl("/bin/true", "true", static_cast<char*>(nullptr));
        _exit(0);
      }
      if (!Holds(base, pages, 1, g)) {
        std::printf("generation %d: wrong memory\n", g);
        return 1;
      }
      Write(base, pages, 1, g + 1);
    }
    std::printf("ok\n");
    return 0;
  }
  if (std::strcmp(argv[2], "hold") == 0) {
    for (uint64_t p = 0; p < pages; ++p) stress::Fill(base + p * stress::kPage, p, 5);
    std::printf("ready\n");
    std::fflush(stdout);
    for (;;) {
      for (uint64_t p = 0; p < pages; ++p) {
        if (stress::VersionOf(base + p * stress::kPage, p) != 5) return 1;
      }
    }
  }
  return 2;
}
