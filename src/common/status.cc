#include "common/status.h"

#include <cstring>

namespace tessera {

std::string_view CodeName(Code code) {
  switch (code) {
    case Code::kOk: return "ok";
    case Code::kInvalidArgument: return "invalid argument";
    case Code::kNotFound: return "not found";
    case Code::kAlreadyExists: return "already exists";
    case Code::kOutOfCapacity: return "out of capacity";
    case Code::kUnavailable: return "unavailable";
    case Code::kCorruption: return "corruption";
    case Code::kProtocol: return "protocol error";
    case Code::kTimedOut: return "timed out";
    case Code::kIoError: return "I/O error";
    case Code::kInternal: return "internal error";
    case Code::kCancelled: return "cancelled";
    case Code::kStaleMap: return "stale map";
    case Code::kDataLoss: return "data lost";
    case Code::kNotLeader: return "not the leader";
    case Code::kClockSkew: return "clock skew";
    case Code::kWrongCluster: return "wrong cluster";
  }
  return "unknown error";
}

Status Status::FromErrno(int err, std::string_view what) {
  // The untranslated description: it reads no locale, so it is safe on the
  // vNode pager's thread, which must not touch data the program allocated
  // (a program's setlocale puts the locale's tables in its heap).
  const char* desc = strerrordesc_np(err);
  std::string m = std::string(what) + ": " + (desc != nullptr ? desc : "error " + std::to_string(err));
  switch (err) {
    case ECONNREFUSED:
    case ECONNRESET:
    case EPIPE:
    case EHOSTUNREACH:
    case ENETUNREACH:
    case ENOTCONN:
      return Status(Code::kUnavailable, std::move(m));
    case ETIMEDOUT:
    case EAGAIN:
      return Status(Code::kTimedOut, std::move(m));
    case ENOMEM:
      return Status(Code::kOutOfCapacity, std::move(m));
    case EINVAL:
      return Status(Code::kInvalidArgument, std::move(m));
    case ENOENT:
      return Status(Code::kNotFound, std::move(m));
    default:
      return Status(Code::kIoError, std::move(m));
  }
}

std::string Status::ToString() const {
  if (ok()) return "ok";
  std::string s(CodeName(code_));
  if (!message_.empty()) s += ": " + message_;
  return s;
}

Status Status::With(std::string_view context) const {
  if (ok()) return *this;
  return Status(code_, std::string(context) + ": " + message_);
}

}  // namespace tessera
