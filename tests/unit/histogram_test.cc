// Tests of the log-linear histogram: exact small values, bounded relative error,
// quantiles and merging.
#include <gtest/gtest.h>

#include <random>

#include "base/histogram.h"

namespace sotto {
namespace {

TEST(Histogram, SmallValuesExactAndQuantiles) {
  Histogram h;
  for (uint64_t v = 1; v <= 50; ++v) h.Record(v);
  EXPECT_EQ(h.count(), 50u);
  EXPECT_EQ(h.min(), 1u);
  EXPECT_EQ(h.max(), 50u);
  EXPECT_EQ(h.Quantile(0.5), 25u);
  EXPECT_EQ(h.Quantile(1.0), 50u);
  EXPECT_DOUBLE_EQ(h.mean(), 25.5);
}

TEST(Histogram, RelativeErrorBounded) {
  std::mt19937_64 rng(1);
  for (int i = 0; i < 2000; ++i) {
    const uint64_t v = rng() >> (rng() % 60);
    Histogram h;
    h.Record(v);
    h.Record(v);
    const uint64_t q = h.Quantile(0.5);
    EXPECT_GE(q, v);
    EXPECT_LE(static_cast<double>(q - v), static_cast<double>(v) / 32.0 + 1) << v;
  }
}

TEST(Histogram, MergeAndTail) {
  Histogram a, b;
  for (int i = 0; i < 990; ++i) a.Record(1000);
  for (int i = 0; i < 10; ++i) b.Record(1'000'000);
  a.Merge(b);
  EXPECT_EQ(a.count(), 1000u);
  EXPECT_LE(a.Quantile(0.5), 1016u);
  EXPECT_GE(a.Quantile(0.995), 1'000'000u * 63 / 64);
  EXPECT_EQ(a.max(), 1'000'000u);
}

}  // namespace
}  // namespace sotto
