// The raw TCP baseline: a 16-byte request answered by a 4 KiB reply over one
// loopback connection, with the server in a child process; the client waits
// as Tessera's client does and the server as a memory node does
// (net::WaitPolicy: spin, then block). What a
// page read could cost if the protocol, the memory node and the client
// library were free.
#pragma once

#include <cstdint>

#include "common/histogram.h"
#include "common/result.h"
#include "net/wait_policy.h"

namespace tessera::bench {

struct PingPongResult {
  LatencyHistogram latency;
  double seconds = 0;
};

Result<PingPongResult> RunTcpPingPong(uint64_t iterations, const net::WaitOptions& client_wait,
                                      const net::WaitOptions& server_wait);

}  // namespace tessera::bench
