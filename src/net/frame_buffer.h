// FrameBuffer: the receive side of a framed byte stream. Reads whatever a
// non-blocking socket has and cuts it into frames (proto/frame.h) without
// copying: a Frame's body points into the buffer until Consume().
//
// Owned by one connection; not thread-safe.
#pragma once

#include <cstddef>

#include "common/result.h"
#include "proto/frame.h"

namespace tessera::net {

class FrameBuffer {
 public:
  struct ReadResult {
    size_t bytes = 0;
    bool eof = false;   // the peer closed its side
  };
  // Reads until the socket would block (or a few MiB arrived). Errors other
  // than EAGAIN/EINTR are returned as Status.
  Result<ReadResult> ReadFrom(int fd);

  struct Frame {
    bool complete = false;  // false: wait for more bytes
    proto::FrameHeader header;
    proto::ByteSpan body;
  };
  // The next frame, if all of it has arrived. An invalid header is an error:
  // the stream cannot be re-synchronised and must be closed.
  Result<Frame> Next();
  // Drops the frame Next() just returned.
  void Consume();

  size_t buffered() const { return end_ - start_; }

 private:
  void MakeRoom(size_t at_least);

  proto::Bytes buf_;
  size_t start_ = 0;
  size_t end_ = 0;
  size_t frame_len_ = 0;  // of the frame Next() returned, for Consume()
  size_t need_ = 0;       // bytes the incomplete frame at start_ needs in total
};

}  // namespace tessera::net
