#include "net/frame_buffer.h"

#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "common/check.h"

namespace tessera::net {
namespace {

constexpr size_t kMinRead = 256 * 1024;
constexpr size_t kMaxReadPerCall = 8u << 20;
constexpr size_t kKeepAtMost = 4u << 20;

}  // namespace

void FrameBuffer::MakeRoom(size_t at_least) {
  if (start_ == end_) {
    start_ = end_ = 0;
    // One large frame must not pin its buffer for the connection's life.
    if (buf_.size() > kKeepAtMost && at_least <= kKeepAtMost) proto::Bytes().swap(buf_);
  }
  if (buf_.size() - end_ >= at_least) return;
  if (start_ > 0) {
    std::memmove(buf_.data(), buf_.data() + start_, end_ - start_);
    end_ -= start_;
    start_ = 0;
  }
  if (buf_.size() - end_ < at_least) buf_.resize(end_ + at_least);
}

Result<FrameBuffer::ReadResult> FrameBuffer::ReadFrom(int fd) {
  ReadResult r;
  while (r.bytes < kMaxReadPerCall) {
    size_t want = std::max(kMinRead, need_ > buffered() ? need_ - buffered() : 0);
    MakeRoom(want);
    size_t room = buf_.size() - end_;
    ssize_t n = ::recv(fd, buf_.data() + end_, room, MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN) break;
      return Status::FromErrno(errno, "recv");
    }
    if (n == 0) {
      r.eof = true;
      break;
    }
    end_ += static_cast<size_t>(n);
    r.bytes += static_cast<size_t>(n);
    if (static_cast<size_t>(n) < room) break;  // the socket is drained
  }
  return r;
}

Result<FrameBuffer::Frame> FrameBuffer::Next() {
  Frame f;
  if (buffered() < proto::kHeaderSize) return f;
  TS_ASSIGN_OR_RETURN(f.header, proto::DecodeHeader(proto::ByteSpan(buf_.data() + start_, proto::kHeaderSize)));
  size_t total = proto::kHeaderSize + f.header.body_len;
  if (buffered() < total) {
    need_ = total;
    return f;
  }
  need_ = 0;
  f.complete = true;
  f.body = proto::ByteSpan(buf_.data() + start_ + proto::kHeaderSize, f.header.body_len);
  frame_len_ = total;
  return f;
}

void FrameBuffer::Consume() {
  CHECK(frame_len_ != 0 && frame_len_ <= buffered());
  start_ += frame_len_;
  frame_len_ = 0;
}

}  // namespace tessera::net
