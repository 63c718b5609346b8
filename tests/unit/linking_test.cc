// The server's in-memory linking state (server/internal/linking.h) at its limits: the TTL
// of provisioning ids and link tokens, their counts, single use. Clock passed in.
#include "server/internal/linking.h"

#include <gtest/gtest.h>

#include "server/internal/session_link.h"

namespace sotto::server::internal {
namespace {

constexpr LinkingLimits kLimits{/*provision_ttl_ms=*/1'000, /*max_provision_ids=*/2,
                                /*link_token_ttl_ms=*/500, /*max_link_tokens=*/2};

net::IpKey Source(uint8_t last) {
  net::IpKey key;
  key.bytes[10] = 0xff;  // IPv4-mapped 10.0.0.last
  key.bytes[11] = 0xff;
  key.bytes[12] = 10;
  key.bytes[15] = last;
  return key;
}
const net::IpKey kSource = Source(1);

class NoLink final : public SessionLink {
 public:
  void Post(std::function<void(SessionContext&)> /*fn*/) override {}
};

TEST(Linking, ProvisionIdsExpireAtTheirTtlAndAreBoundedInNumber) {
  Linking linking(kLimits);
  crypto::DeterministicRandom random(1);
  auto link = std::make_shared<NoLink>();
  auto a = linking.OpenProvision(link, kSource, 0, random);
  auto b = linking.OpenProvision(link, kSource, 10, random);
  ASSERT_TRUE(a && b);
  EXPECT_EQ(a->size(), kProvisionIdBytes);
  EXPECT_NE(*a, *b);
  EXPECT_FALSE(linking.OpenProvision(link, kSource, 20, random));  // max_provision_ids open
  EXPECT_EQ(linking.FindProvision(*a, 999), link);          // just before the TTL
  EXPECT_EQ(linking.FindProvision(*a, 1'000), nullptr);     // at it: gone
  EXPECT_TRUE(linking.OpenProvision(link, kSource, 1'000, random));  // room again
  EXPECT_FALSE(linking.OpenProvision(link, kSource, 1'001, random));
  linking.CloseProvision(*b);
  EXPECT_EQ(linking.FindProvision(*b, 11), nullptr);
  EXPECT_TRUE(linking.OpenProvision(link, kSource, 1'002, random));
  // Past every TTL the next open purges the expired ones.
  EXPECT_TRUE(linking.OpenProvision(link, kSource, 10'000, random));
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

uint16_t Detail(const Error& e) { return e.detail; }
constexpr uint16_t kSourceFull = static_cast<uint16_t>(LinkingErr::kSourceFull);
constexpr uint16_t kAccountFull = static_cast<uint16_t>(LinkingErr::kAccountFull);
constexpr uint16_t kServerFull = static_cast<uint16_t>(LinkingErr::kServerFull);

// One source at its share cannot take another source's room; its own ids free their
// slots when they expire or close; the server-wide bound still holds.
TEST(Linking, ProvisionIdsAreBoundedPerSourceBeforeTheServer) {
  LinkingLimits limits;
  limits.provision_ttl_ms = 1'000;
  limits.max_provision_ids = 5;
  limits.max_provision_ids_per_source = 2;
  Linking linking(limits);
  crypto::DeterministicRandom random(3);
  auto link = std::make_shared<NoLink>();
  const net::IpKey abuser = Source(1);
  const net::IpKey other = Source(2);
  auto a1 = linking.OpenProvision(link, abuser, 0, random);
  auto a2 = linking.OpenProvision(link, abuser, 0, random);
  ASSERT_TRUE(a1 && a2);
  for (int i = 0; i < 100; ++i) {  // at full rate: every further one refused by name
    auto refused = linking.OpenProvision(link, abuser, 1, random);
    ASSERT_FALSE(refused);
    EXPECT_EQ(Detail(refused.error()), kSourceFull);
    EXPECT_NE(std::string(refused.error().message).find("devices.max_provision_ids_per_ip"),
              std::string::npos);
  }
  EXPECT_TRUE(linking.OpenProvision(link, other, 1, random));  // another source: served
  linking.CloseProvision(*a1);
  EXPECT_TRUE(linking.OpenProvision(link, abuser, 2, random));  // a closed one frees its slot
  EXPECT_FALSE(linking.OpenProvision(link, abuser, 999, random));
  EXPECT_TRUE(linking.OpenProvision(link, abuser, 1'000, random));  // a2 expired at its TTL
  // The whole server's bound is the last resort: 5 open (abuser 2, other 1, + 2 more).
  EXPECT_TRUE(linking.OpenProvision(link, Source(3), 1'000, random));
  EXPECT_TRUE(linking.OpenProvision(link, Source(4), 1'000, random));
  auto full = linking.OpenProvision(link, Source(5), 1'000, random);
  ASSERT_FALSE(full);
  EXPECT_EQ(Detail(full.error()), kServerFull);
  EXPECT_EQ(linking.provision_count(), 5u);
}

TEST(Linking, LinkTokensAreBoundedPerAccountBeforeTheServer) {
  LinkingLimits limits;
  limits.link_token_ttl_ms = 500;
  limits.max_link_tokens = 4;
  limits.max_link_tokens_per_account = 2;
  Linking linking(limits);
  crypto::DeterministicRandom random(4);
  const store::AccountId abuser{1};
  const store::AccountId other{2};
  auto t1 = linking.IssueToken(abuser, 0, random);
  ASSERT_TRUE(t1);
  ASSERT_TRUE(linking.IssueToken(abuser, 0, random));
  for (int i = 0; i < 100; ++i) {
    auto refused = linking.IssueToken(abuser, 1, random);
    ASSERT_FALSE(refused);
    EXPECT_EQ(Detail(refused.error()), kAccountFull);
    EXPECT_NE(std::string(refused.error().message).find("devices.max_link_tokens_per_account"),
              std::string::npos);
  }
  EXPECT_TRUE(linking.IssueToken(other, 1, random));  // another account: served
  EXPECT_EQ(linking.RedeemToken(*t1, 2), abuser);     // a used token frees its slot
  EXPECT_TRUE(linking.IssueToken(abuser, 2, random));
  EXPECT_FALSE(linking.IssueToken(abuser, 499, random));
  EXPECT_TRUE(linking.IssueToken(abuser, 500, random));  // the one from 0 expired at the TTL
  EXPECT_FALSE(linking.IssueToken(abuser, 501, random));
  EXPECT_TRUE(linking.IssueToken(abuser, 502, random));  // and the one from 2
  EXPECT_TRUE(linking.IssueToken(other, 502, random));
  EXPECT_TRUE(linking.IssueToken(store::AccountId{3}, 502, random));
  auto full = linking.IssueToken(store::AccountId{4}, 502, random);  // 4 unexpired
  ASSERT_FALSE(full);
  EXPECT_EQ(Detail(full.error()), kServerFull);
}

}  // namespace
}  // namespace sotto::server::internal
