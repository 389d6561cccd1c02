// Byte-level encoding shared by every Tessera message: little-endian fixed-width
// integers, length-prefixed strings and byte runs, counted arrays.
//
//   u8 u16 u32 u64   little-endian
//   string = len:u16 bytes[len]          (at most kMaxString bytes)
//   blob   = len:u32 bytes[len]
//
// Writer appends to a caller-owned byte vector. Reader walks a span and keeps a
// sticky error: after the first overrun every getter returns zero and
// status() says what failed, so decoders read straight through and check once.
// Counts read from the wire are validated against the bytes that remain before
// anyone allocates for them (Count()), so a hostile length cannot make us
// reserve gigabytes.
//
// Thread-safety: none; one Writer/Reader per thread.
#pragma once

#include <bit>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace tessera::proto {

inline constexpr size_t kMaxString = 1024;

using Bytes = std::vector<uint8_t>;
using ByteSpan = std::span<const uint8_t>;

class Writer {
 public:
  explicit Writer(Bytes* out) : out_(out) {}

  void U8(uint8_t v) { out_->push_back(v); }
  void U16(uint16_t v) { Raw(&v, sizeof v); }
  void U32(uint32_t v) { Raw(&v, sizeof v); }
  void U64(uint64_t v) { Raw(&v, sizeof v); }
  // Strings longer than kMaxString are a caller bug: validate user input first.
  void String(std::string_view s);
  void Blob(ByteSpan b) {
    U32(static_cast<uint32_t>(b.size()));
    Raw(b.data(), b.size());
  }
  void Raw(const void* p, size_t n) {
    const auto* b = static_cast<const uint8_t*>(p);
    out_->insert(out_->end(), b, b + n);
  }

 private:
  static_assert(std::endian::native == std::endian::little, "Tessera's wire is little-endian");
  Bytes* out_;
};

class Reader {
 public:
  explicit Reader(ByteSpan in) : in_(in) {}

  uint8_t U8() { return Fixed<uint8_t>(); }
  uint16_t U16() { return Fixed<uint16_t>(); }
  uint32_t U32() { return Fixed<uint32_t>(); }
  uint64_t U64() { return Fixed<uint64_t>(); }
  std::string String();
  // A view into the input; valid while the input is.
  ByteSpan Blob();
  ByteSpan Raw(size_t n);

  // Reads a u32 element count and checks that `count * min_item_bytes` bytes
  // remain and that count <= max_count. Returns 0 after an error.
  uint32_t Count(size_t min_item_bytes, uint32_t max_count, std::string_view what);

  // Records a semantic error found by the decoder (first one wins).
  void Fail(std::string message);

  bool ok() const { return error_.empty(); }
  size_t remaining() const { return in_.size() - pos_; }
  // Ok only if nothing failed and every byte was consumed.
  Status Finish(std::string_view message_name) const;

 private:
  template <typename T>
  T Fixed() {
    T v{};
    if (!Need(sizeof v)) return T{};
    std::memcpy(&v, in_.data() + pos_, sizeof v);
    pos_ += sizeof v;
    return v;
  }
  bool Need(size_t n);

  ByteSpan in_;
  size_t pos_ = 0;
  std::string error_;
};


// The body of messages that carry nothing.
struct Empty {
  void Encode(Writer&) const {}
  static Result<Empty> Decode(ByteSpan body) {
    Reader r(body);
    TS_RETURN_IF_ERROR(r.Finish("empty message"));
    return Empty{};
  }
};

}  // namespace tessera::proto
