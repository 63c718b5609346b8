// A log-linear latency histogram in the spirit of HdrHistogram: values (e.g.
// nanoseconds) are counted in buckets whose width is 1/kSubBuckets of their power of
// two, so every recorded value is within ~1.6% (1/64) of its bucket's value. Fixed
// memory (64 x 64 counters), O(1) recording, mergeable.
//
// Thread-safety: externally synchronized.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

namespace sotto {

class Histogram {
 public:
  static constexpr int kSubBucketBits = 6;
  static constexpr uint64_t kSubBuckets = uint64_t{1} << kSubBucketBits;

  void Record(uint64_t value);
  void Merge(const Histogram& other);
  uint64_t count() const { return count_; }
  uint64_t max() const { return max_; }
  uint64_t min() const { return count_ == 0 ? 0 : min_; }
  double mean() const { return count_ == 0 ? 0 : static_cast<double>(sum_) / static_cast<double>(count_); }
  // The value at quantile q in [0, 1] (upper edge of its bucket, capped at max()).
  uint64_t Quantile(double q) const;

 private:
  static size_t IndexOf(uint64_t value);
  static uint64_t UpperEdgeOf(size_t index);

  std::array<uint64_t, 64 * kSubBuckets> counts_{};
  uint64_t count_ = 0;
  uint64_t sum_ = 0;
  uint64_t min_ = UINT64_MAX;
  uint64_t max_ = 0;
};

}  // namespace sotto
