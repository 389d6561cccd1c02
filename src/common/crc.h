// CRC32C (Castagnoli) of page data, via ISA-L's crc32_iscsi, which uses the
// SSE4.2/PCLMUL instructions where the CPU has them. Every page stored in
// Tessera carries this checksum: computed by the writer, checked by the memory
// node on write and on every read, and checked again by the reader.
//
// Thread-safety: pure function.
#pragma once

#include <cstddef>
#include <cstdint>

namespace tessera {

uint32_t Crc32c(const void* data, size_t len);
// The CRC32C of `len` zero bytes (a page or share that holds nothing).
uint32_t Crc32cOfZeros(size_t len);

}  // namespace tessera
