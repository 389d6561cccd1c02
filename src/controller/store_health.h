// StoreHealth: whether the control-plane store takes the controller's writes,
// and the one place that says so. A store can stop taking writes for hours
// (a full disk, etcd over its space quota); a controller that logged every
// failed write would fill the rest of the disk with its log. So the first
// failure is logged at once, then at most one line per report_every (with how
// many writes failed meanwhile) — across bouts too, since a nearly full disk
// lets a small write through now and then — and one line when a write
// succeeds again after a failure that was logged. Meanwhile the controller keeps serving what needs no write
// (reads, known nodes' heartbeats and registrations) and refuses the rest
// with the store's own error; it probes the store itself (ProbeDue) so that
// it recovers when space returns even if nobody asks it to write.
//
// Thread-safety: not thread-safe; the controller's server thread owns it.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "common/status.h"

namespace tessera::controller {

class StoreHealth {
 public:
  struct Options {
    uint64_t report_every_ns = 60'000'000'000;
    uint64_t probe_every_ns = 1'000'000'000;
    std::function<uint64_t()> now_ns;  // empty: the monotonic clock
  };
  explicit StoreHealth(Options options);

  // A write failed with `why`; true if this call logged it.
  bool Failed(const Status& why);
  // A write succeeded; true if this call logged the recovery.
  bool Succeeded();
  bool failing() const { return failing_; }
  // Failing, and no write has been tried for probe_every_ns: time to try one.
  bool ProbeDue() const;

 private:
  uint64_t Now() const;

  const Options options_;
  bool failing_ = false;
  uint64_t failing_since_ns_ = 0;
  uint64_t last_report_ns_ = 0;
  uint64_t last_attempt_ns_ = 0;
  uint64_t failed_since_report_ = 0;
  bool reported_once_ = false;  // any failure was ever logged
  bool bout_reported_ = false;  // this bout's failure was logged
};

}  // namespace tessera::controller
