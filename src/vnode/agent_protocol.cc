// Agent protocol wire format (little-endian), one message per
// SOCK_SEQPACKET packet:
//
//   message := magic:u32 = 0x31415354 ("TSA1")
//              op:u16 (1..12, AgentOp) reserved:u16 = 0
//              token:u32 reserved:u32 = 0
//              a:u64 b:u64 c:u64 d:u64            -- 48 bytes exactly
//
// kHello carries the shim's userfaultfd as SCM_RIGHTS ancillary data, and
// kForkReady a forked child's; any other message carrying a descriptor is an
// error (the descriptor is closed).
// A packet of another size, a wrong magic, an unknown op or a non-zero
// reserved field is a protocol error.
#include "vnode/agent_protocol.h"

#include <sys/socket.h>

#include <cerrno>
#include <cstring>

namespace tessera::vnode {
namespace {

constexpr uint32_t kMagic = 0x31415354;

void Put(uint8_t* p, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}

uint64_t Get(const uint8_t* p, int bytes) {
  uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) v |= uint64_t{p[i]} << (8 * i);
  return v;
}

}  // namespace

void EncodeAgentMessage(const AgentMessage& m, uint8_t (&out)[kAgentMessageBytes]) {
  std::memset(out, 0, sizeof out);
  Put(out, kMagic, 4);
  Put(out + 4, static_cast<uint16_t>(m.op), 2);
  Put(out + 8, m.token, 4);
  Put(out + 16, m.a, 8);
  Put(out + 24, m.b, 8);
  Put(out + 32, m.c, 8);
  Put(out + 40, m.d, 8);
}

Result<AgentMessage> DecodeAgentMessage(std::span<const uint8_t> in) {
  if (in.size() != kAgentMessageBytes) {
    return ProtocolError("agent message of " + std::to_string(in.size()) + " bytes, expected " +
                         std::to_string(kAgentMessageBytes));
  }
  const uint8_t* p = in.data();
  if (Get(p, 4) != kMagic) return ProtocolError("agent message with a wrong magic (another build of Tessera?)");
  const uint64_t op = Get(p + 4, 2);
  if (op < 1 || op > kAgentOpLast) return ProtocolError("agent message with unknown op " + std::to_string(op));
  if (Get(p + 6, 2) != 0 || Get(p + 12, 4) != 0) return ProtocolError("agent message with reserved bits set");
  return AgentMessage{.op = static_cast<AgentOp>(op), .token = static_cast<uint32_t>(Get(p + 8, 4)),
                      .a = Get(p + 16, 8), .b = Get(p + 24, 8), .c = Get(p + 32, 8), .d = Get(p + 40, 8)};
}

Status SendAgentMessage(int sock, const AgentMessage& m, int fd) {
  uint8_t buf[kAgentMessageBytes];
  EncodeAgentMessage(m, buf);
  iovec iov{buf, sizeof buf};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  if (fd >= 0) {
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    std::memcpy(CMSG_DATA(c), &fd, sizeof fd);
  }
  for (;;) {
    ssize_t n = sendmsg(sock, &msg, MSG_NOSIGNAL);
    if (n == static_cast<ssize_t>(sizeof buf)) return Status::Ok();
    if (n >= 0) return Internal("short send on a packet socket");
    if (errno == EINTR) continue;
    if (errno == EAGAIN) return Unavailable("would block");
    if (errno == EPIPE || errno == ECONNRESET) return Unavailable("closed");
    return Status::FromErrno(errno, "send to the agent socket");
  }
}

Result<AgentMessage> RecvAgentMessage(int sock, UniqueFd* fd) {
  uint8_t buf[kAgentMessageBytes + 1];  // one more: a longer packet shows as truncated
  iovec iov{buf, sizeof buf};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * 4)] = {};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  ssize_t n;
  do {
    n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
  } while (n < 0 && errno == EINTR);
  if (n < 0 && errno == EAGAIN) return Unavailable("would block");
  if (n < 0 && errno == ECONNRESET) return Unavailable("closed");
  if (n < 0) return Status::FromErrno(errno, "receive from the agent socket");
  if (n == 0) return Unavailable("closed");
  // Take ownership of whatever descriptors came, first: none may leak.
  UniqueFd got;
  int extra = 0;
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (size_t i = 0; i < count; ++i) {
      int f;
      std::memcpy(&f, CMSG_DATA(c) + i * sizeof(int), sizeof f);
      if (!got.valid()) {
        got.Reset(f);
      } else {
        UniqueFd drop(f);
        ++extra;
      }
    }
  }
  if ((msg.msg_flags & MSG_CTRUNC) || extra > 0) return ProtocolError("agent message with too many descriptors");
  if (msg.msg_flags & MSG_TRUNC) return ProtocolError("agent message longer than " + std::to_string(kAgentMessageBytes) + " bytes");
  TS_ASSIGN_OR_RETURN(AgentMessage m, DecodeAgentMessage({buf, static_cast<size_t>(n)}));
  if (got.valid() && (fd == nullptr || (m.op != AgentOp::kHello && m.op != AgentOp::kForkReady))) {
    return ProtocolError("a descriptor attached to an agent message that takes none");
  }
  if (fd != nullptr) *fd = std::move(got);
  return m;
}

}  // namespace tessera::vnode
