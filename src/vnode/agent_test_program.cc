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
#include <pthread.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

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
  g_link = *link;
  pthread_atfork(nullptr, nullptr, [] { g_link->OnForkChild(); });
  uint8_t* base = g_link->layout().base;
  const uint64_t pages = g_link->layout().pages;
  if (std::strcmp(argv[2], "stress") == 0 && argc > 3) {
    stress::Options o{.pages = pages, .seed = static_cast<uint32_t>(std::atoi(argv[3]))};
    std::string failure = stress::Run(base, o);
    if (!failure.empty()) std::fprintf(stderr, "%s\n", failure.c_str());
    return failure.empty() ? 0 : 1;
  }
  if (std::strcmp(argv[2], "fork") == 0) return ForkAndCheck(base, pages);
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
