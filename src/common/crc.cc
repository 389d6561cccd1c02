#include "common/crc.h"

#include <isa-l/crc.h>

namespace tessera {

uint32_t Crc32c(const void* data, size_t len) {
  // ISA-L takes an int length; callers pass pages and fragments, far below 2 GiB.
  return crc32_iscsi(static_cast<unsigned char*>(const_cast<void*>(data)),
                     static_cast<int>(len), 0xFFFFFFFFu) ^ 0xFFFFFFFFu;
}

}  // namespace tessera
