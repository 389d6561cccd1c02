// Feeds arbitrary bytes through a socket into FrameBuffer, the code that
// delimits frames on every Tessera connection: it must reject or accept, never
// crash, read out of bounds or loop.
#include <sys/socket.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>

#include "net/frame_buffer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv) != 0) return 0;
  size_t sent = 0;
  tessera::net::FrameBuffer fb;
  bool open = true;
  while (open) {
    if (sent < size) {
      ssize_t n = ::send(sv[0], data + sent, size - sent, MSG_NOSIGNAL);
      if (n > 0) sent += static_cast<size_t>(n);
    } else {
      ::shutdown(sv[0], SHUT_WR);
    }
    auto got = fb.ReadFrom(sv[1]);
    if (!got.ok()) break;
    for (;;) {
      auto f = fb.Next();
      if (!f.ok()) {
        open = false;
        break;
      }
      if (!f->complete) break;
      volatile uint8_t sink = f->body.empty() ? 0 : f->body.back();
      (void)sink;
      fb.Consume();
    }
    if (got->eof) break;
  }
  close(sv[0]);
  close(sv[1]);
  return 0;
}
