// Call(): one synchronous typed request over a Connection, for the control
// plane (registration, allocation, region metadata) where simplicity beats
// pipelining. The data plane uses Connection::Send with its own callbacks.
//
// Thread-safety: as Connection and ClientTransport (thread-safe).
#pragma once

#include <atomic>
#include <memory>
#include <optional>

#include "common/clock.h"
#include "net/transport.h"

namespace tessera::net {

// Sends `req` and waits up to timeout_ms for its reply. A call that times out
// aborts the connection (its stream position is unknown), so later calls see
// it broken and the caller reconnects.
template <typename Req>
Result<typename Req::Reply> Call(ClientTransport& transport, Connection& conn, const Req& req, int timeout_ms) {
  using Reply = typename Req::Reply;
  proto::Bytes body;
  proto::Writer w(&body);
  req.Encode(w);
  struct State {
    std::atomic<bool> done{false};
    std::optional<Result<Reply>> result;
  };
  auto state = std::make_shared<State>();
  TS_RETURN_IF_ERROR(conn.Send(Req::kOp, body,
                               [state](const Status& s, const proto::FrameHeader& h, proto::ByteSpan b) {
                                 state->result = s.ok() ? proto::DecodeReply<Reply>(h, b) : Result<Reply>(s);
                                 state->done.store(true, std::memory_order_release);
                               }));
  Status waited = transport.WaitUntil([&] { return state->done.load(std::memory_order_acquire); },
                                      NowNanos() + static_cast<uint64_t>(timeout_ms) * 1'000'000);
  if (!waited.ok()) {
    conn.Abort(waited.With(std::string(proto::OpName(static_cast<uint8_t>(Req::kOp))) + " to " + conn.peer()));
  }
  return std::move(*state->result);
}

}  // namespace tessera::net
