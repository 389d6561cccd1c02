// The key-value baseline: memcached (Debian's package) serving 4 KiB values
// to GETs pipelined at a given depth over a given number of connections —
// what an infrastructure team would use for remote memory today. The bench
// starts its own memcached on a free loopback port and stops it.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "common/histogram.h"
#include "common/result.h"

namespace tessera::bench {

struct KvResult {
  LatencyHistogram latency;  // per GET, sent to fully received
  uint64_t ops = 0;
  double seconds = 0;
};

class Memcached {
 public:
  // Starts `memcached -t threads` and loads `keys` values of 4 KiB.
  static Result<std::unique_ptr<Memcached>> Start(int threads, uint64_t keys);
  ~Memcached();
  // GETs random keys for `seconds`, `depth` outstanding in total across
  // `connections` connections.
  Result<KvResult> RunGets(int connections, uint32_t depth, double seconds);

 private:
  Memcached() = default;
  pid_t pid_ = -1;
  std::string address_;
  uint64_t keys_ = 0;
};

}  // namespace tessera::bench
