// Status: the outcome of an operation, as a value. Every fallible call in
// Tessera returns a Status or a Result<T> (result.h) instead of throwing, because
// this code runs inside other people's programs (the vNode shim) where an
// escaping exception would kill them.
//
// A Status is a code plus a human message that says what went wrong and, where
// it helps, what to do about it. The codes travel on the wire (proto/frame.h),
// so their numeric values are frozen.
//
// Thread-safety: a value type; distinct objects may be used concurrently.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace tessera {

enum class Code : uint16_t {
  kOk = 0,
  kInvalidArgument = 1,  // the caller asked for something malformed
  kNotFound = 2,         // unknown region, node, fragment
  kAlreadyExists = 3,    // duplicate region name
  kOutOfCapacity = 4,    // no memory left where it was needed
  kUnavailable = 5,      // a peer could not be reached, or went away
  kCorruption = 6,       // a checksum did not match
  kProtocol = 7,         // a peer sent bytes that do not parse
  kTimedOut = 8,
  kIoError = 9,          // a system call failed
  kInternal = 10,        // a bug: should never reach a user
  kCancelled = 11,
  kStaleMap = 12,        // the caller's region map is older than the node's
  kDataLoss = 13,        // too few fragments of a page survive to rebuild it
  kNotLeader = 14,       // a standby controller: the request was not carried out; ask another
  kClockSkew = 15,       // a version (a clock reading) too far ahead of the receiver's clock
  kWrongCluster = 16,    // a peer belongs to another cluster (another control-plane store)
};
// The highest code a peer may send; a larger one on the wire is a protocol error.
inline constexpr Code kLastCode = Code::kWrongCluster;

// Returns a stable lower-case name such as "not found".
std::string_view CodeName(Code code);

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(Code code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status Ok() { return Status(); }
  // errno becomes a Status here and nowhere else. `what` names the call
  // ("connect 127.0.0.1:7000").
  static Status FromErrno(int err, std::string_view what);

  bool ok() const { return code_ == Code::kOk; }
  Code code() const { return code_; }
  const std::string& message() const { return message_; }
  // "not found: region 'x' does not exist"
  std::string ToString() const;

  // Prefixes context: Status(kNotFound,"x").With("open region") -> "open region: x".
  Status With(std::string_view context) const;

  // Lets a caller drop a Status on purpose, visibly.
  void IgnoreError() const {}

 private:
  Code code_ = Code::kOk;
  std::string message_;
};

inline Status InvalidArgument(std::string m) { return Status(Code::kInvalidArgument, std::move(m)); }
inline Status NotFound(std::string m) { return Status(Code::kNotFound, std::move(m)); }
inline Status AlreadyExists(std::string m) { return Status(Code::kAlreadyExists, std::move(m)); }
inline Status OutOfCapacity(std::string m) { return Status(Code::kOutOfCapacity, std::move(m)); }
inline Status Unavailable(std::string m) { return Status(Code::kUnavailable, std::move(m)); }
inline Status Corruption(std::string m) { return Status(Code::kCorruption, std::move(m)); }
inline Status ProtocolError(std::string m) { return Status(Code::kProtocol, std::move(m)); }
inline Status TimedOut(std::string m) { return Status(Code::kTimedOut, std::move(m)); }
inline Status Internal(std::string m) { return Status(Code::kInternal, std::move(m)); }
inline Status Cancelled(std::string m) { return Status(Code::kCancelled, std::move(m)); }
inline Status StaleMap(std::string m) { return Status(Code::kStaleMap, std::move(m)); }
inline Status DataLoss(std::string m) { return Status(Code::kDataLoss, std::move(m)); }
inline Status NotLeader(std::string m) { return Status(Code::kNotLeader, std::move(m)); }
inline Status ClockSkew(std::string m) { return Status(Code::kClockSkew, std::move(m)); }
inline Status WrongCluster(std::string m) { return Status(Code::kWrongCluster, std::move(m)); }

}  // namespace tessera

// Returns early from the enclosing function if `expr` is not ok.
#define TS_RETURN_IF_ERROR(expr)               \
  do {                                         \
    ::tessera::Status ts_status_ = (expr);     \
    if (!ts_status_.ok()) return ts_status_;   \
  } while (0)
