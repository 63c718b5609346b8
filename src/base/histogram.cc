#include "base/histogram.h"

#include <algorithm>
#include <bit>

namespace sotto {

size_t Histogram::IndexOf(uint64_t value) {
  if (value < kSubBuckets) return static_cast<size_t>(value);
  const int top = 63 - std::countl_zero(value);          // >= kSubBucketBits
  const int shift = top - kSubBucketBits + 1;            // keep kSubBucketBits bits
  const uint64_t sub = value >> shift;                   // in [kSubBuckets/2, kSubBuckets)
  return static_cast<size_t>(static_cast<uint64_t>(shift) * (kSubBuckets / 2) + sub);
}

uint64_t Histogram::UpperEdgeOf(size_t index) {
  if (index < kSubBuckets) return index;
  const uint64_t half = kSubBuckets / 2;
  const uint64_t shift = (index - half) / half;
  const uint64_t sub = index - shift * half;
  return ((sub + 1) << shift) - 1;
}

void Histogram::Record(uint64_t value) {
  ++counts_[std::min(IndexOf(value), counts_.size() - 1)];
  ++count_;
  sum_ += value;
  min_ = std::min(min_, value);
  max_ = std::max(max_, value);
}

void Histogram::Merge(const Histogram& other) {
  for (size_t i = 0; i < counts_.size(); ++i) counts_[i] += other.counts_[i];
  count_ += other.count_;
  sum_ += other.sum_;
  min_ = std::min(min_, other.min_);
  max_ = std::max(max_, other.max_);
}

uint64_t Histogram::Quantile(double q) const {
  if (count_ == 0) return 0;
  const auto rank = static_cast<uint64_t>(std::max(1.0, q * static_cast<double>(count_) + 0.5));
  uint64_t seen = 0;
  for (size_t i = 0; i < counts_.size(); ++i) {
    seen += counts_[i];
    if (seen >= std::min(rank, count_)) return std::min(UpperEdgeOf(i), max_);
  }
  return max_;
}

}  // namespace sotto
