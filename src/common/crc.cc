#include "common/crc.h"

#include <isa-l/crc.h>

namespace tessera {

uint32_t Crc32c(const void* data, size_t len) {
  // ISA-L takes an int length; callers pass pages and fragments, far below 2 GiB.
  return crc32_iscsi(static_cast<unsigned char*>(const_cast<void*>(data)),
                     static_cast<int>(len), 0xFFFFFFFFu) ^ 0xFFFFFFFFu;
}

uint32_t Crc32cOfZeros(size_t len) {
  // CRC-32C from ISA-L's own update, fed a static block of zeros: no
  // allocation, any length.
  static const unsigned char kZeros[4096] = {};
  uint32_t crc = 0xFFFFFFFFu;
  while (len > 0) {
    const size_t n = len < sizeof kZeros ? len : sizeof kZeros;
    crc = crc32_iscsi(const_cast<unsigned char*>(kZeros), static_cast<int>(n), crc);
    len -= n;
  }
  return crc ^ 0xFFFFFFFFu;
}

}  // namespace tessera
