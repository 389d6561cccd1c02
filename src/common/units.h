// Parsing and printing of sizes ("512M", "1.5GiB") and durations for flags
// and human-readable output.
//
// Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/result.h"

namespace tessera {

// Accepts a plain byte count or a number with K/M/G/T (optionally followed by
// "i", "B" or "iB"); all suffixes are powers of 1024. Rejects negatives,
// overflow and trailing junk with a message that quotes the input.
Result<uint64_t> ParseSize(std::string_view text);

// 1536 -> "1.5 KiB", 4294967296 -> "4.0 GiB".
std::string FormatSize(uint64_t bytes);

// 0.0000123 s -> "12.3 us"; picks ns/us/ms/s.
std::string FormatSeconds(double seconds);

}  // namespace tessera
