#include "proto/wire.h"

#include "common/check.h"

namespace tessera::proto {

void Writer::String(std::string_view s) {
  CHECK(s.size() <= kMaxString) << "string of " << s.size() << " bytes";
  U16(static_cast<uint16_t>(s.size()));
  Raw(s.data(), s.size());
}

bool Reader::Need(size_t n) {
  if (!error_.empty()) return false;
  if (remaining() < n) {
    error_ = "truncated: needed " + std::to_string(n) + " bytes at offset " + std::to_string(pos_) +
             ", " + std::to_string(remaining()) + " left";
    return false;
  }
  return true;
}

std::string Reader::String() {
  uint16_t n = U16();
  if (n > kMaxString) {
    Fail("string of " + std::to_string(n) + " bytes exceeds " + std::to_string(kMaxString));
    return {};
  }
  ByteSpan b = Raw(n);
  return std::string(b.begin(), b.end());
}

ByteSpan Reader::Blob() { return Raw(U32()); }

ByteSpan Reader::Raw(size_t n) {
  if (!Need(n)) return {};
  ByteSpan b = in_.subspan(pos_, n);
  pos_ += n;
  return b;
}

uint32_t Reader::Count(size_t min_item_bytes, uint32_t max_count, std::string_view what) {
  uint32_t n = U32();
  if (!ok()) return 0;
  if (n > max_count) {
    Fail(std::string(what) + " count " + std::to_string(n) + " exceeds " + std::to_string(max_count));
    return 0;
  }
  if (min_item_bytes != 0 && remaining() / min_item_bytes < n) {
    Fail(std::string(what) + " count " + std::to_string(n) + " does not fit in " +
         std::to_string(remaining()) + " remaining bytes");
    return 0;
  }
  return n;
}

void Reader::Fail(std::string message) {
  if (error_.empty()) error_ = std::move(message);
}

Status Reader::Finish(std::string_view name) const {
  if (!error_.empty()) return ProtocolError(std::string(name) + ": " + error_);
  if (remaining() != 0) {
    return ProtocolError(std::string(name) + ": " + std::to_string(remaining()) +
                         " unexpected trailing bytes");
  }
  return Status::Ok();
}

}  // namespace tessera::proto
