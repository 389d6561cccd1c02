#include "controller/store_health.h"

#include "common/clock.h"
#include "common/log.h"

namespace tessera::controller {

StoreHealth::StoreHealth(Options options) : options_(std::move(options)) {}

uint64_t StoreHealth::Now() const { return options_.now_ns ? options_.now_ns() : NowNanos(); }

bool StoreHealth::Failed(const Status& why) {
  const uint64_t now = Now();
  last_attempt_ns_ = now;
  ++failed_since_report_;
  if (!failing_) {
    failing_ = true;
    failing_since_ns_ = now;
    bout_reported_ = false;
  }
  // At most a line a minute, across bouts too: a nearly full disk lets a
  // small write through now and then, and each must not earn a line.
  if (reported_once_ && now - last_report_ns_ < options_.report_every_ns) return false;
  log::Warn("controller: the control-plane store cannot be written ({} write(s) failed over {} s): {}; "
            "regions cannot be created, deleted or repaired and new memory nodes cannot join until it can; "
            "known memory nodes and reads are still served",
            failed_since_report_, (now - failing_since_ns_) / 1'000'000'000, why.ToString());
  reported_once_ = bout_reported_ = true;
  last_report_ns_ = now;
  failed_since_report_ = 0;
  return true;
}

bool StoreHealth::Succeeded() {
  const uint64_t now = Now();
  last_attempt_ns_ = now;
  if (!failing_) return false;
  failing_ = false;
  if (!bout_reported_) return false;  // its failure was not said either
  log::Info("controller: the control-plane store takes writes again, after {} s", (now - failing_since_ns_) / 1'000'000'000);
  return true;
}

bool StoreHealth::ProbeDue() const { return failing_ && Now() - last_attempt_ns_ >= options_.probe_every_ns; }

}  // namespace tessera::controller
