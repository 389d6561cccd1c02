// The agent protocol: messages between the preload shim inside a program and
// the agent that serves the program's memory from outside (agent.h, run by
// `tessera run`). One unix socket of type SOCK_SEQPACKET per program image:
// one message per packet, every message the same size. The grammar is in
// doc/protocol.md ("Agent protocol") and at the top of agent_protocol.cc.
//
// A session: the agent sends kConfig; the shim maps and registers the areas
// it describes and answers kHello with its userfaultfd attached; the agent
// starts serving and sends kReady. From then on the agent asks for what only
// the program itself can do — move pages into staging (kMove, answered by
// kMoved: the kernel allows UFFDIO_MOVE only inside the process) and drop a
// staging block (kDrop, answered by kDropped) — and the shim's helper thread
// does it.
//
// Another process of the program's that exec'd (a shell's child) says kHello
// too, and is served from pages of its own — or told kLocal when the agent
// serves as many as it will, and then keeps its memory local.
//
// A child forked without exec joins on a session of its own: it reads its
// doorbell page (SpaceLayout::doorbell), which its pager fills with a nonce,
// answers kConfig with kForkHello carrying that nonce, and gets kForkReady
// with a copy of its own userfaultfd; its helper then serves moves and drops
// as its parent's does.
//
// The parent of such a fork says kForked from its own atfork handler and
// waits for kSettled: until then the agent may still need the parent's
// memory (pages staged there) to give the child its copy, and a parent that
// exits at once — a daemon's — would take them along.
//
// Thread-safety: functions only; a socket is the caller's to serialise.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "common/result.h"
#include "common/unique_fd.h"

namespace tessera::vnode {

enum class AgentOp : uint16_t {
  kConfig = 1,   // agent -> shim: a = pages, b = page size, c = staging blocks
  kHello = 2,    // shim -> agent, + userfaultfd: a = range, b = its bytes, c = staging, d = its bytes
  kReady = 3,    // agent -> shim: faults are served from now on
  kDrop = 4,     // agent -> shim: MADV_DONTNEED [a, a+b) of the staging area; token = block
  kDropped = 5,  // shim -> agent: token of a kDrop done
  kMove = 6,     // agent -> shim: move c pages from the range at b to staging at a
  kMoved = 7,    // shim -> agent: token of a kMove; a = moved, b = missing (bit per page), c = errno or 0
  kForkHello = 8,  // forked child -> agent, instead of kHello: a = the nonce its doorbell page read
  kForkReady = 9,  // agent -> forked child, + the child's userfaultfd: its helper is served from now on
  kLocal = 10,     // agent -> shim, instead of kReady: not served; run on the process's own memory
  kForked = 11,    // shim -> agent: this process forked; answer once the child's memory is saved
  kSettled = 12,   // agent -> shim: answers a kForked
};

inline constexpr uint16_t kAgentOpLast = 12;

struct AgentMessage {
  AgentOp op = AgentOp::kConfig;
  uint32_t token = 0;
  uint64_t a = 0, b = 0, c = 0, d = 0;
};

inline constexpr size_t kAgentMessageBytes = 48;

void EncodeAgentMessage(const AgentMessage& m, uint8_t (&out)[kAgentMessageBytes]);
// Protocol error unless `in` is exactly one well-formed message.
Result<AgentMessage> DecodeAgentMessage(std::span<const uint8_t> in);

// Sends one message, with `fd` attached unless it is -1. Unavailable
// (EAGAIN) when a non-blocking socket is full.
Status SendAgentMessage(int sock, const AgentMessage& m, int fd = -1);
// Receives one message; a descriptor attached to it goes to *fd (closed if
// fd is null). Unavailable "closed" at end of stream, "would block" when a
// non-blocking socket has nothing, TimedOut past SO_RCVTIMEO.
Result<AgentMessage> RecvAgentMessage(int sock, UniqueFd* fd = nullptr);

// True for RecvAgentMessage's "nothing yet" on a non-blocking socket.
inline bool WouldBlock(const Status& s) { return s.code() == Code::kUnavailable && s.message() == "would block"; }

}  // namespace tessera::vnode
