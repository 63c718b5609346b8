// The server's in-memory linking state (server/internal/linking.h) at its limits: the TTL
// of provisioning ids and link tokens, their counts, single use. Clock passed in.
#include "server/internal/linking.h"

#include <gtest/gtest.h>

#include "server/internal/session_link.h"

namespace sotto::server::internal {
namespace {

constexpr LinkingLimits kLimits{/*provision_ttl_ms=*/1'000, /*max_provision_ids=*/2,
                                /*link_token_ttl_ms=*/500, /*max_link_tokens=*/2};

class NoLink final : public SessionLink {
 public:
  void Post(std::function<void(SessionContext&)> /*fn*/) override {}
};

TEST(Linking, ProvisionIdsExpireAtTheirTtlAndAreBoundedInNumber) {
  Linking linking(kLimits);
  crypto::DeterministicRandom random(1);
  auto link = std::make_shared<NoLink>();
  auto a = linking.OpenProvision(link, 0, random);
  auto b = linking.OpenProvision(link, 10, random);
  ASSERT_TRUE(a && b);
  EXPECT_EQ(a->size(), kProvisionIdBytes);
  EXPECT_NE(*a, *b);
  EXPECT_FALSE(linking.OpenProvision(link, 20, random));    // max_provision_ids open
  EXPECT_EQ(linking.FindProvision(*a, 999), link);          // just before the TTL
  EXPECT_EQ(linking.FindProvision(*a, 1'000), nullptr);     // at it: gone
  EXPECT_TRUE(linking.OpenProvision(link, 1'000, random));  // room again
  EXPECT_FALSE(linking.OpenProvision(link, 1'001, random));
  linking.CloseProvision(*b);
  EXPECT_EQ(linking.FindProvision(*b, 11), nullptr);
  EXPECT_TRUE(linking.OpenProvision(link, 1'002, random));
  // Past every TTL the next open purges the expired ones.
  EXPECT_TRUE(linking.OpenProvision(link, 10'000, random));
  EXPECT_EQ(linking.provision_count(), 1u);
}

TEST(Linking, LinkTokensAreSingleUseExpireAndAreBounded) {
  Linking linking(kLimits);
  crypto::DeterministicRandom random(2);
  const store::AccountId account{1, 2, 3};
  auto t1 = linking.IssueToken(account, 0, random);
  auto t2 = linking.IssueToken(account, 0, random);
  ASSERT_TRUE(t1 && t2);
  EXPECT_EQ(t1->size(), kLinkTokenBytes);
  EXPECT_FALSE(linking.IssueToken(account, 1, random));  // max_link_tokens
  EXPECT_EQ(linking.RedeemToken(*t1, 499), account);     // just before the TTL
  EXPECT_FALSE(linking.RedeemToken(*t1, 499));           // used
  EXPECT_FALSE(linking.RedeemToken(*t2, 500));           // at the TTL: expired (and gone)
  EXPECT_FALSE(linking.RedeemToken("not a token", 0));
  EXPECT_EQ(linking.token_count(), 0u);
}

}  // namespace
}  // namespace sotto::server::internal
