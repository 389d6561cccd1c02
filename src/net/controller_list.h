// ControllerList: the controllers a client or memory node may ask, given as
// "host:port[,host:port...]". One leads; the others are standbys that answer
// NotLeader, and any may be down. Callers ask current() and, when it is down
// or a standby, move to the next — so the one that answered last is asked
// first, and a new leader is found without being told.
//
// Thread-safety: thread-safe; threads moving on at once may skip an entry,
// which only costs a try.
#pragma once

#include <atomic>
#include <string>
#include <vector>

#include "common/result.h"

namespace tessera::net {

class ControllerList {
 public:
  // InvalidArgument for an empty list or entry, or one that is not host:port.
  static Result<ControllerList> Parse(const std::string& list);

  ControllerList(const ControllerList& o) : addrs_(o.addrs_), text_(o.text_), at_(o.at_.load()) {}

  const std::string& current() const { return addrs_[at_.load() % addrs_.size()]; }
  // Moves on from `tried` (what current() was); a no-op if another thread
  // has moved on already.
  void Next(const std::string& tried);
  size_t size() const { return addrs_.size(); }
  // As given, for messages.
  const std::string& text() const { return text_; }

 private:
  ControllerList(std::vector<std::string> addrs, std::string text) : addrs_(std::move(addrs)), text_(std::move(text)) {}

  std::vector<std::string> addrs_;
  std::string text_;
  std::atomic<size_t> at_{0};
};

}  // namespace tessera::net
