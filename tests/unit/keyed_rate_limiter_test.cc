// Tests of server/keyed_rate_limiter.h: one bucket per key, keys forgotten once their
// bucket has refilled, the oldest forgotten when max_keys are remembered, refunds.
#include "server/keyed_rate_limiter.h"

#include <gtest/gtest.h>

namespace sotto::server {
namespace {

constexpr RateLimit kTwoPerSecond{2, 4};  // refills from empty in 2 s

TEST(KeyedRateLimiter, EachKeyHasItsOwnBucket) {
  KeyedRateLimiter<int> limiter(100);
  for (int i = 0; i < 4; ++i) EXPECT_TRUE(limiter.Allow(1, 0, kTwoPerSecond));  // at the burst
  EXPECT_FALSE(limiter.Allow(1, 0, kTwoPerSecond));                             // past it
  EXPECT_TRUE(limiter.Allow(2, 0, kTwoPerSecond));  // another key is not affected
  EXPECT_FALSE(limiter.Allow(1, 499, kTwoPerSecond));
  EXPECT_TRUE(limiter.Allow(1, 500, kTwoPerSecond));  // one token per 500 ms
}

TEST(KeyedRateLimiter, ARateOfZeroAllowsAndRemembersNothing) {
  KeyedRateLimiter<int> limiter(1);
  for (int i = 0; i < 100; ++i) EXPECT_TRUE(limiter.Allow(i, 0, RateLimit{}));
  EXPECT_EQ(limiter.size(), 0u);
}

TEST(KeyedRateLimiter, KeysAreForgottenOnceRefilled) {
  KeyedRateLimiter<int> limiter(100);
  for (int k = 0; k < 10; ++k) EXPECT_TRUE(limiter.Allow(k, 0, kTwoPerSecond));
  EXPECT_EQ(limiter.size(), 10u);
  // Key 0 is drained again at 1 s (3 left + 2 refilled = 4 taken): kept until 3 s.
  for (int i = 0; i < 4; ++i) EXPECT_TRUE(limiter.Allow(0, 1'000, kTwoPerSecond));
  EXPECT_TRUE(limiter.Allow(99, 1'999, kTwoPerSecond));
  EXPECT_EQ(limiter.size(), 11u);
  EXPECT_TRUE(limiter.Allow(99, 2'000, kTwoPerSecond));  // keys 1..9 refilled: forgotten
  EXPECT_EQ(limiter.size(), 2u);
  EXPECT_TRUE(limiter.Allow(0, 2'000, kTwoPerSecond));  // key 0 kept its state: 2 tokens
  EXPECT_TRUE(limiter.Allow(0, 2'000, kTwoPerSecond));
  EXPECT_FALSE(limiter.Allow(0, 2'000, kTwoPerSecond));
}

TEST(KeyedRateLimiter, TheOldestKeyGoesWhenFull) {
  KeyedRateLimiter<int> limiter(3);
  for (int k = 0; k < 3; ++k) {
    for (int i = 0; i < 4; ++i) EXPECT_TRUE(limiter.Allow(k, 0, kTwoPerSecond));
  }
  EXPECT_TRUE(limiter.Allow(3, 0, kTwoPerSecond));  // a new key is never refused for room
  EXPECT_EQ(limiter.size(), 3u);
  EXPECT_TRUE(limiter.Allow(0, 0, kTwoPerSecond));   // key 0 was forgotten: full again
  EXPECT_FALSE(limiter.Allow(2, 0, kTwoPerSecond));  // key 2 was not
  for (int k = 100; k < 10'000; ++k) EXPECT_TRUE(limiter.Allow(k, 0, kTwoPerSecond));
  EXPECT_EQ(limiter.size(), 3u);  // bounded however many keys come
}

TEST(KeyedRateLimiter, RefundGivesATokenBackUpToTheBurst) {
  KeyedRateLimiter<int> limiter(10);
  for (int i = 0; i < 4; ++i) EXPECT_TRUE(limiter.Allow(1, 0, kTwoPerSecond));
  limiter.Refund(1, kTwoPerSecond);
  EXPECT_TRUE(limiter.Allow(1, 0, kTwoPerSecond));
  EXPECT_FALSE(limiter.Allow(1, 0, kTwoPerSecond));
  limiter.Refund(7, kTwoPerSecond);  // an unknown key: nothing happens
  EXPECT_EQ(limiter.size(), 1u);
}

TEST(SharedTokenBucket, OneBucketForEveryCaller) {
  SharedTokenBucket bucket;
  EXPECT_TRUE(bucket.Allow(0, RateLimit{1, 2}));
  EXPECT_TRUE(bucket.Allow(0, RateLimit{1, 2}));
  EXPECT_FALSE(bucket.Allow(0, RateLimit{1, 2}));
  bucket.Refund(RateLimit{1, 2});
  EXPECT_TRUE(bucket.Allow(0, RateLimit{1, 2}));
  EXPECT_TRUE(bucket.Allow(0, RateLimit{}));  // rate 0: off
}

}  // namespace
}  // namespace sotto::server
