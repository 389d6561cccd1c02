// LazyArray<T>: a fixed-size array of T in anonymous memory, all bytes zero
// at first, that costs resident memory only where it has been written. For
// per-page tables sized by a program's whole --heap (8 GiB by default: two
// million pages) of which a run touches a fraction: T's all-zero bytes must
// be its empty value, and T must be trivially copyable.
//
// Ownership: owns its mapping; movable, and copied only by Copy(). Thread-
// safety: none beyond that of the memory itself.
#pragma once

#include <sys/mman.h>

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <type_traits>
#include <utility>
#include <vector>

#include "common/check.h"

namespace tessera {

template <typename T>
class LazyArray {
  static_assert(std::is_trivially_copyable_v<T>);

 public:
  LazyArray() = default;
  explicit LazyArray(size_t n) : n_(n) {
    if (n == 0) return;
    void* p = mmap(nullptr, bytes(), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    CHECK(p != MAP_FAILED) << "mmap of " << bytes() << " bytes for a table";
    data_ = static_cast<T*>(p);
  }
  LazyArray(LazyArray&& o) noexcept : data_(std::exchange(o.data_, nullptr)), n_(std::exchange(o.n_, 0)) {}
  LazyArray& operator=(LazyArray&& o) noexcept {
    std::swap(data_, o.data_);
    std::swap(n_, o.n_);
    return *this;
  }
  LazyArray(const LazyArray&) = delete;
  LazyArray& operator=(const LazyArray&) = delete;
  ~LazyArray() {
    if (data_ != nullptr) munmap(data_, bytes());
  }

  // A copy that skips the source's pages never touched (not resident:
  // mincore) and all-zero ones, so it stays as sparse as the source.
  LazyArray Copy() const {
    LazyArray c(n_);
    if (n_ == 0) return c;
    const auto* from = reinterpret_cast<const unsigned char*>(data_);
    auto* to = reinterpret_cast<unsigned char*>(c.data_);
    constexpr size_t kChunk = 4096;
    static const unsigned char kZeros[kChunk] = {};
    std::vector<unsigned char> resident((bytes() + kChunk - 1) / kChunk);
    CHECK(mincore(data_, bytes(), resident.data()) == 0) << "mincore of a table";
    for (size_t i = 0; i < resident.size(); ++i) {
      if ((resident[i] & 1) == 0) continue;
      const size_t at = i * kChunk, len = std::min(kChunk, bytes() - at);
      if (std::memcmp(from + at, kZeros, len) != 0) std::memcpy(to + at, from + at, len);
    }
    return c;
  }

  size_t size() const { return n_; }
  T& operator[](size_t i) { return data_[i]; }
  const T& operator[](size_t i) const { return data_[i]; }

 private:
  size_t bytes() const { return n_ * sizeof(T); }

  T* data_ = nullptr;
  size_t n_ = 0;
};

}  // namespace tessera
