// Tests of Sender Keys: distribution, encryption once for many receivers, rotation,
// limits at and past their edges, and error reporting.
#include <gtest/gtest.h>

#include "signal/error.h"
#include "signal/group.h"
#include "signal/in_memory_store.h"

namespace sotto::signal {
namespace {

class GroupTest : public ::testing::Test {
 protected:
  GroupTest() : random_(99), name_{"group-1", {"alice", 1}} {}

  void Distribute() {
    auto skdm = CreateSenderKeyDistribution(sender_, name_, random_);
    ASSERT_TRUE(skdm);
    auto parsed = SenderKeyDistributionMessage::Parse(skdm->Serialize());
    ASSERT_TRUE(parsed);
    ASSERT_TRUE(ProcessSenderKeyDistribution(receiver_, name_, *parsed));
  }

  crypto::DeterministicRandom random_;
  SenderKeyName name_;
  InMemorySenderKeyStore sender_;
  InMemorySenderKeyStore receiver_;
};

TEST_F(GroupTest, EncryptOnceDecryptInOrderAndOutOfOrder) {
  ASSERT_NO_FATAL_FAILURE(Distribute());
  GroupCipher out(sender_, name_, random_);
  GroupCipher in(receiver_, name_, random_);
  std::vector<Bytes> sent;
  for (int i = 0; i < 20; ++i) {
    auto ct = out.Encrypt(AsBytes("m" + std::to_string(i)));
    ASSERT_TRUE(ct);
    EXPECT_EQ((*ct)[0], 0x33);
    sent.push_back(*ct);
  }
  for (int i : {3, 0, 19, 1, 2, 10}) {
    auto pt = in.Decrypt(sent[static_cast<size_t>(i)]);
    ASSERT_TRUE(pt) << pt.error().ToString();
    EXPECT_EQ(AsString(*pt), "m" + std::to_string(i));
  }
  auto dup = in.Decrypt(sent[3]);
  ASSERT_FALSE(dup);
  EXPECT_TRUE(Is(dup.error(), Err::kDuplicateMessage));
}

TEST_F(GroupTest, TamperedSignatureOrBodyRejected) {
  ASSERT_NO_FATAL_FAILURE(Distribute());
  GroupCipher out(sender_, name_, random_);
  GroupCipher in(receiver_, name_, random_);
  auto ct = out.Encrypt(AsBytes("hello"));
  ASSERT_TRUE(ct);
  for (size_t pos : {size_t{5}, ct->size() - 1, ct->size() - 40}) {
    Bytes bad = *ct;
    bad[pos] ^= 0x04;
    auto r = in.Decrypt(bad);
    ASSERT_FALSE(r);
  }
  ASSERT_TRUE(in.Decrypt(*ct));
}

TEST_F(GroupTest, ForwardJumpAtAndPastLimit) {
  ASSERT_NO_FATAL_FAILURE(Distribute());
  GroupCipher out(sender_, name_, random_);
  GroupCipher in(receiver_, name_, random_);
  std::vector<Bytes> sent;
  for (uint32_t i = 0; i <= kMaxSenderKeyForwardJump + 1; ++i) sent.push_back(*out.Encrypt(AsBytes("m")));
  auto past = in.Decrypt(sent[kMaxSenderKeyForwardJump + 1]);
  ASSERT_FALSE(past);
  EXPECT_TRUE(Is(past.error(), Err::kTooFarInFuture));
  ASSERT_TRUE(in.Decrypt(sent[kMaxSenderKeyForwardJump]));
  ASSERT_TRUE(in.Decrypt(sent[0]));
  ASSERT_TRUE(in.Decrypt(sent[kMaxSenderKeyForwardJump + 1]));
}

TEST_F(GroupTest, RotationLocksOutOldKeyHolders) {
  ASSERT_NO_FATAL_FAILURE(Distribute());
  GroupCipher out(sender_, name_, random_);
  ASSERT_TRUE(GroupCipher(receiver_, name_, random_).Decrypt(*out.Encrypt(AsBytes("before"))));
  // A member leaves: the sender rotates and distributes only to those who remain.
  auto rotated = RotateSenderKey(sender_, name_, random_);
  ASSERT_TRUE(rotated);
  auto after = out.Encrypt(AsBytes("after"));
  ASSERT_TRUE(after);
  auto removed = GroupCipher(receiver_, name_, random_).Decrypt(*after);
  ASSERT_FALSE(removed);
  EXPECT_TRUE(Is(removed.error(), Err::kNoSession));
  InMemorySenderKeyStore remaining;
  ASSERT_TRUE(ProcessSenderKeyDistribution(remaining, name_, *rotated));
  auto ok = GroupCipher(remaining, name_, random_).Decrypt(*after);
  ASSERT_TRUE(ok);
  EXPECT_EQ(AsString(*ok), "after");
}

TEST_F(GroupTest, StatesBoundedToFive) {
  for (uint32_t i = 0; i < kMaxSenderKeyStates + 2; ++i) {
    auto skdm = RotateSenderKey(sender_, name_, random_);
    ASSERT_TRUE(skdm);
    ASSERT_TRUE(ProcessSenderKeyDistribution(receiver_, name_, *skdm));
  }
  auto record = *receiver_.LoadSenderKey(name_);
  ASSERT_TRUE(record);
  EXPECT_EQ(record->states().size(), kMaxSenderKeyStates);
  auto bytes = record->Serialize();
  auto parsed = SenderKeyRecord::Deserialize(bytes);
  ASSERT_TRUE(parsed);
  EXPECT_EQ(parsed->Serialize(), bytes);
}

TEST_F(GroupTest, NoKeyAndMalformed) {
  auto none = GroupCipher(sender_, name_, random_).Encrypt(AsBytes("x"));
  ASSERT_FALSE(none);
  EXPECT_TRUE(Is(none.error(), Err::kNoSession));
  ASSERT_NO_FATAL_FAILURE(Distribute());
  GroupCipher in(receiver_, name_, random_);
  EXPECT_FALSE(in.Decrypt(Bytes{}));
  EXPECT_FALSE(in.Decrypt(Bytes(64, 0x33)));
  EXPECT_FALSE(SenderKeyDistributionMessage::Parse(FromHex("33")));
  EXPECT_FALSE(SenderKeyDistributionMessage::Parse(FromHex("330801")));
}

}  // namespace
}  // namespace sotto::signal
