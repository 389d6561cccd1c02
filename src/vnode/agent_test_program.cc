// A program for agent_test: joins the agent at argv[1] (agent_link.h), so that
// its range is served from the test's process, then does argv[2]:
//   stress SEED   many threads fault, write, read and discard, every byte
//                 checked (stress.h); exit 0 if all held
//   hold          writes every page, says "ready" on stdout, then reads the
//                 pages forever (the test kills it, or its agent)
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "vnode/agent_link.h"
#include "vnode/stress.h"

using namespace tessera::vnode;

AgentLink* g_link = nullptr;  // lives until the process ends

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
  uint8_t* base = g_link->layout().base;
  const uint64_t pages = g_link->layout().pages;
  if (std::strcmp(argv[2], "stress") == 0 && argc > 3) {
    stress::Options o{.pages = pages, .seed = static_cast<uint32_t>(std::atoi(argv[3]))};
    std::string failure = stress::Run(base, o);
    if (!failure.empty()) std::fprintf(stderr, "%s\n", failure.c_str());
    return failure.empty() ? 0 : 1;
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
