#include "ec/reed_solomon.h"

#include <isa-l/erasure_code.h>

#include <algorithm>
#include <bit>

#include "common/check.h"

namespace tessera::ec {

ReedSolomon::ReedSolomon(int k, int m)
    : k_(k), m_(m), matrix_(static_cast<size_t>((k + m) * k)), encode_tables_(static_cast<size_t>(32 * k * std::max(m, 1))) {
  gf_gen_cauchy1_matrix(matrix_.data(), k + m, k);
  if (m > 0) ec_init_tables(k, m, matrix_.data() + k * k, encode_tables_.data());
}

Result<std::unique_ptr<ReedSolomon>> ReedSolomon::Create(int k, int m) {
  if (k < 1 || m < 0 || k + m > kMaxFragments) {
    return InvalidArgument("erasure code " + std::to_string(k) + "+" + std::to_string(m) +
                           ": need k >= 1, m >= 0 and k + m <= " + std::to_string(kMaxFragments));
  }
  return std::unique_ptr<ReedSolomon>(new ReedSolomon(k, m));
}

void ReedSolomon::Encode(size_t len, std::span<const uint8_t* const> data, std::span<uint8_t* const> parity) const {
  CHECK(static_cast<int>(data.size()) == k_ && static_cast<int>(parity.size()) == m_);
  if (m_ == 0 || len == 0) return;
  // ISA-L's signature is not const-correct; it only reads the sources.
  ec_encode_data(static_cast<int>(len), k_, m_, const_cast<uint8_t*>(encode_tables_.data()),
                 const_cast<uint8_t**>(data.data()), const_cast<uint8_t**>(parity.data()));
}

void ReedSolomon::ApplyDelta(size_t len, int index, const uint8_t* delta, std::span<uint8_t* const> parity) const {
  CHECK(index >= 0 && index < k_ && static_cast<int>(parity.size()) == m_);
  if (m_ == 0 || len == 0) return;
  ec_encode_data_update(static_cast<int>(len), k_, m_, index, const_cast<uint8_t*>(encode_tables_.data()),
                        const_cast<uint8_t*>(delta), const_cast<uint8_t**>(parity.data()));
}

Result<std::shared_ptr<const ReedSolomon::DecodePlan>> ReedSolomon::PlanFor(uint32_t missing) const {
  {
    std::lock_guard lk(mu_);
    auto it = plans_.find(missing);
    if (it != plans_.end()) return it->second;
  }
  auto plan = std::make_shared<DecodePlan>();
  for (int i = 0; i < k_ + m_ && static_cast<int>(plan->sources.size()) < k_; ++i) {
    if (!(missing >> i & 1)) plan->sources.push_back(i);
  }
  for (int i = 0; i < k_ + m_; ++i) {
    if (missing >> i & 1) plan->targets.push_back(i);
  }
  // Rows of the surviving fragments, inverted, map survivors back to data.
  std::vector<uint8_t> survivors(static_cast<size_t>(k_ * k_)), inverse(static_cast<size_t>(k_ * k_));
  for (int r = 0; r < k_; ++r) {
    std::copy_n(&matrix_[static_cast<size_t>(plan->sources[r] * k_)], k_, &survivors[static_cast<size_t>(r * k_)]);
  }
  if (gf_invert_matrix(survivors.data(), inverse.data(), k_) != 0) {
    return Internal("erasure code matrix not invertible for loss pattern " + std::to_string(missing));
  }
  // A missing data fragment d is row d of the inverse; a missing parity
  // fragment p is its matrix row times the inverse.
  std::vector<uint8_t> rows(plan->targets.size() * static_cast<size_t>(k_));
  for (size_t t = 0; t < plan->targets.size(); ++t) {
    int target = plan->targets[t];
    for (int c = 0; c < k_; ++c) {
      uint8_t v = 0;
      if (target < k_) {
        v = inverse[static_cast<size_t>(target * k_ + c)];
      } else {
        for (int j = 0; j < k_; ++j) {
          v ^= gf_mul(matrix_[static_cast<size_t>(target * k_ + j)], inverse[static_cast<size_t>(j * k_ + c)]);
        }
      }
      rows[t * static_cast<size_t>(k_) + static_cast<size_t>(c)] = v;
    }
  }
  plan->tables.resize(32 * static_cast<size_t>(k_) * plan->targets.size());
  ec_init_tables(k_, static_cast<int>(plan->targets.size()), rows.data(), plan->tables.data());
  std::lock_guard lk(mu_);
  return plans_.emplace(missing, std::move(plan)).first->second;
}

Status ReedSolomon::Reconstruct(size_t len, std::span<uint8_t* const> fragments, std::span<const bool> present) const {
  CHECK(static_cast<int>(fragments.size()) == k_ + m_ && present.size() == fragments.size());
  uint32_t missing = 0;
  for (int i = 0; i < k_ + m_; ++i) {
    if (!present[static_cast<size_t>(i)]) missing |= 1u << i;
  }
  if (missing == 0) return Status::Ok();
  int lost = std::popcount(missing);
  if (lost > m_) {
    return Status(Code::kCorruption, std::to_string(lost) + " of " + std::to_string(k_ + m_) +
                                         " fragments lost; " + std::to_string(k_) + "+" + std::to_string(m_) +
                                         " survives at most " + std::to_string(m_));
  }
  TS_ASSIGN_OR_RETURN(auto plan, PlanFor(missing));
  std::vector<uint8_t*> sources, targets;
  for (int s : plan->sources) sources.push_back(fragments[static_cast<size_t>(s)]);
  for (int t : plan->targets) targets.push_back(fragments[static_cast<size_t>(t)]);
  ec_encode_data(static_cast<int>(len), k_, static_cast<int>(targets.size()), const_cast<uint8_t*>(plan->tables.data()),
                 sources.data(), targets.data());
  return Status::Ok();
}

}  // namespace tessera::ec
