// Wire compatibility with libsignal-protocol-c 2.3.3, used as an independent peer
// (tests/oracle/, GPL-3.0, test-only). Every exchange runs in both directions: sessions
// set up from either side's bundle, long conversations with many DH ratchet steps,
// out-of-order and dropped messages, duplicates and bad MACs, sender keys both ways,
// signatures both ways and identical safety numbers.
#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <string>
#include <vector>

#include "signal/error.h"
#include "signal/fingerprint.h"
#include "signal/group.h"
#include "signal/protocol.h"
#include "signal_oracle.h"
#include "tests/unit/signal_test_util.h"

namespace sotto::signal {
namespace {

using oracle::OracleParty;
using testing::Device;

constexpr char kOracleName[] = "oracle";
constexpr char kSottoName[] = "sotto";

Bytes Ser(const PublicKey& k) {
  auto s = k.Serialize();
  return Bytes(s.begin(), s.end());
}

PreKeyBundle BundleFromOracle(const oracle::OracleBundle& b) {
  PreKeyBundle out;
  out.registration_id = b.registration_id;
  out.device_id = b.device_id;
  if (b.has_prekey) {
    out.prekey_id = b.prekey_id;
    out.prekey = *PublicKey::Deserialize(b.prekey_public);
  }
  out.signed_prekey_id = b.signed_prekey_id;
  out.signed_prekey = *PublicKey::Deserialize(b.signed_prekey_public);
  std::copy(b.signed_prekey_signature.begin(), b.signed_prekey_signature.end(),
            out.signed_prekey_signature.begin());
  out.identity_key = *PublicKey::Deserialize(b.identity_key);
  return out;
}

oracle::OracleBundle BundleToOracle(const PreKeyBundle& b) {
  oracle::OracleBundle out;
  out.registration_id = b.registration_id;
  out.device_id = b.device_id;
  out.has_prekey = b.prekey.has_value();
  if (b.prekey) {
    out.prekey_id = *b.prekey_id;
    out.prekey_public = Ser(*b.prekey);
  }
  out.signed_prekey_id = b.signed_prekey_id;
  out.signed_prekey_public = Ser(b.signed_prekey);
  out.signed_prekey_signature.assign(b.signed_prekey_signature.begin(),
                                     b.signed_prekey_signature.end());
  out.identity_key = Ser(b.identity_key);
  return out;
}

class OracleCompatTest : public ::testing::Test {
 protected:
  OracleCompatTest()
      : random_(77), sotto_(kSottoName, random_), oracle_(OracleParty::Create(4242, 0)) {}

  const ProtocolAddress oracle_addr_{kOracleName, 1};

  // Sotto -> oracle; returns the oracle's plaintext result.
  oracle::OraclePlaintext ToOracle(std::string_view text, CiphertextMessage* sent = nullptr) {
    auto m = SessionCipher(sotto_.store.stores(), oracle_addr_, random_).Encrypt(AsBytes(text));
    if (!m) {
      ADD_FAILURE() << m.error().ToString();
      return oracle::OraclePlaintext{.rc = -1, .plaintext = {}};  // not kOk: checks fail
    }
    if (sent) *sent = *m;
    return oracle_->Decrypt(kSottoName, 1, m->bytes, static_cast<int>(m->type));
  }
  oracle::OracleCiphertext FromOracle(std::string_view text) {
    auto c = oracle_->Encrypt(kSottoName, 1, AsBytes(text));
    EXPECT_EQ(c.rc, oracle::kOk);
    return c;
  }
  Result<Bytes> SottoDecrypt(const oracle::OracleCiphertext& c) {
    return SessionCipher(sotto_.store.stores(), oracle_addr_, random_)
        .Decrypt(c.bytes, static_cast<MessageType>(c.type));
  }

  void SottoStartsFromOracleBundle(bool with_prekey) {
    oracle::OracleBundle b = oracle_->GenerateBundle(1, 3, 17, with_prekey);
    ASSERT_FALSE(b.identity_key.empty());
    ASSERT_TRUE(ProcessPreKeyBundle(sotto_.store.stores(), oracle_addr_, BundleFromOracle(b), random_));
  }
  void OracleStartsFromSottoBundle(bool with_prekey) {
    PreKeyBundle b = sotto_.MakeBundle(5, 55, with_prekey);
    ASSERT_EQ(oracle_->ProcessBundle(kSottoName, 1, BundleToOracle(b)), oracle::kOk);
  }

  void Converse(int rounds) {
    for (int i = 0; i < rounds; ++i) {
      const std::string text = "round " + std::to_string(i) + std::string(static_cast<size_t>(i % 40), '.');
      if (i % 2 == 0) {
        auto p = ToOracle(text);
        ASSERT_EQ(p.rc, oracle::kOk) << "round " << i;
        EXPECT_EQ(AsString(p.plaintext), text);
      } else {
        auto p = SottoDecrypt(FromOracle(text));
        ASSERT_TRUE(p) << "round " << i << ": " << p.error().ToString();
        EXPECT_EQ(AsString(*p), text);
      }
    }
  }

  crypto::DeterministicRandom random_;
  Device sotto_;
  std::unique_ptr<OracleParty> oracle_;
};

TEST_F(OracleCompatTest, SottoInitiatesFromOracleBundleWithPreKey) {
  ASSERT_NO_FATAL_FAILURE(SottoStartsFromOracleBundle(true));
  CiphertextMessage first;
  auto p = ToOracle("hello", &first);
  ASSERT_EQ(p.rc, oracle::kOk);
  EXPECT_EQ(AsString(p.plaintext), "hello");
  EXPECT_EQ(first.type, MessageType::kPreKey);
  EXPECT_FALSE(oracle_->HasPreKey(17));  // the oracle consumed its one-time prekey
  // 120 turns: ~120 DH ratchet steps
  ASSERT_NO_FATAL_FAILURE(Converse(120));
}

TEST_F(OracleCompatTest, SottoInitiatesFromOracleBundleWithoutPreKey) {
  ASSERT_NO_FATAL_FAILURE(SottoStartsFromOracleBundle(false));
  ASSERT_NO_FATAL_FAILURE(Converse(20));
}

TEST_F(OracleCompatTest, OracleInitiatesFromSottoBundle) {
  ASSERT_NO_FATAL_FAILURE(OracleStartsFromSottoBundle(true));
  auto first = FromOracle("hi from libsignal");
  EXPECT_EQ(first.type, oracle::kTypePreKey);
  auto p = SottoDecrypt(first);
  ASSERT_TRUE(p) << p.error().ToString();
  EXPECT_EQ(AsString(*p), "hi from libsignal");
  EXPECT_EQ(sotto_.store.prekeys.size(), 0u);
  // Oracle keeps sending PreKeySignalMessages until it hears back: all must decrypt.
  auto second = FromOracle("still prekey");
  EXPECT_EQ(second.type, oracle::kTypePreKey);
  ASSERT_TRUE(SottoDecrypt(second));
  auto reply = ToOracle("reply");
  ASSERT_EQ(reply.rc, oracle::kOk);
  EXPECT_EQ(FromOracle("now plain").type, oracle::kTypeSignal);
  ASSERT_NO_FATAL_FAILURE(Converse(120));
}

TEST_F(OracleCompatTest, OracleInitiatesWithoutPreKey) {
  ASSERT_NO_FATAL_FAILURE(OracleStartsFromSottoBundle(false));
  ASSERT_TRUE(SottoDecrypt(FromOracle("x")));
  ASSERT_NO_FATAL_FAILURE(Converse(10));
}

TEST_F(OracleCompatTest, MessageSizesMatchLibsignal) {
  ASSERT_NO_FATAL_FAILURE(SottoStartsFromOracleBundle(true));
  ASSERT_EQ(ToOracle("x").rc, oracle::kOk);
  ASSERT_TRUE(SottoDecrypt(FromOracle("y")));
  SessionCipher cipher(sotto_.store.stores(), oracle_addr_, random_);
  for (size_t len : {size_t{0}, size_t{15}, size_t{16}, size_t{159}, size_t{160}}) {
    const Bytes body(len, 0x41);
    auto ours = cipher.Encrypt(body);
    auto theirs = oracle_->Encrypt(kSottoName, 1, body);
    ASSERT_TRUE(ours);
    EXPECT_EQ(ours->bytes.size(), theirs.bytes.size()) << len;
    ASSERT_EQ(oracle_->Decrypt(kSottoName, 1, ours->bytes, 2).rc, oracle::kOk);
    ASSERT_TRUE(SottoDecrypt(theirs));
  }
}

TEST_F(OracleCompatTest, OutOfOrderDroppedAndDuplicatesBothWays) {
  ASSERT_NO_FATAL_FAILURE(SottoStartsFromOracleBundle(true));
  ASSERT_EQ(ToOracle("x").rc, oracle::kOk);
  ASSERT_TRUE(SottoDecrypt(FromOracle("y")));
  std::mt19937 shuffle(11);
  for (int round = 0; round < 3; ++round) {
    // Oracle -> Sotto: 60 messages, every 7th dropped, the rest shuffled.
    std::vector<oracle::OracleCiphertext> from;
    for (int i = 0; i < 60; ++i) from.push_back(FromOracle("o" + std::to_string(i)));
    std::vector<int> idx;
    for (int i = 0; i < 60; ++i) if (i % 7 != 3) idx.push_back(i);
    std::shuffle(idx.begin(), idx.end(), shuffle);
    for (int i : idx) {
      auto p = SottoDecrypt(from[static_cast<size_t>(i)]);
      ASSERT_TRUE(p) << i << ": " << p.error().ToString();
      EXPECT_EQ(AsString(*p), "o" + std::to_string(i));
    }
    auto dup = SottoDecrypt(from[static_cast<size_t>(idx[0])]);
    ASSERT_FALSE(dup);
    EXPECT_TRUE(Is(dup.error(), Err::kDuplicateMessage));
    // Sotto -> oracle, the same treatment.
    SessionCipher cipher(sotto_.store.stores(), oracle_addr_, random_);
    std::vector<CiphertextMessage> to;
    for (int i = 0; i < 60; ++i) to.push_back(*cipher.Encrypt(AsBytes("s" + std::to_string(i))));
    std::shuffle(idx.begin(), idx.end(), shuffle);
    for (int i : idx) {
      auto& m = to[static_cast<size_t>(i)];
      auto p = oracle_->Decrypt(kSottoName, 1, m.bytes, static_cast<int>(m.type));
      ASSERT_EQ(p.rc, oracle::kOk) << i;
      EXPECT_EQ(AsString(p.plaintext), "s" + std::to_string(i));
    }
    auto& again = to[static_cast<size_t>(idx[0])];
    EXPECT_EQ(oracle_->Decrypt(kSottoName, 1, again.bytes, static_cast<int>(again.type)).rc,
              oracle::kErrDuplicateMessage);
  }
}

TEST_F(OracleCompatTest, BadMacRejectedBothWays) {
  ASSERT_NO_FATAL_FAILURE(SottoStartsFromOracleBundle(true));
  ASSERT_EQ(ToOracle("x").rc, oracle::kOk);
  auto from = FromOracle("y");
  auto tampered = from;
  tampered.bytes.back() ^= 1;
  auto bad = SottoDecrypt(tampered);
  ASSERT_FALSE(bad);
  EXPECT_TRUE(Is(bad.error(), Err::kBadMac));
  ASSERT_TRUE(SottoDecrypt(from));
  auto m = SessionCipher(sotto_.store.stores(), oracle_addr_, random_).Encrypt(AsBytes("z"));
  Bytes t = m->bytes;
  t[t.size() - 2] ^= 0x10;
  EXPECT_EQ(oracle_->Decrypt(kSottoName, 1, t, 2).rc, oracle::kErrInvalidMessage);
  EXPECT_EQ(oracle_->Decrypt(kSottoName, 1, m->bytes, 2).rc, oracle::kOk);
}

TEST_F(OracleCompatTest, ForwardJumpLimitMatches) {
  ASSERT_NO_FATAL_FAILURE(SottoStartsFromOracleBundle(true));
  ASSERT_EQ(ToOracle("x").rc, oracle::kOk);
  ASSERT_TRUE(SottoDecrypt(FromOracle("y")));
  SessionCipher cipher(sotto_.store.stores(), oracle_addr_, random_);
  CiphertextMessage last;
  for (uint32_t i = 0; i <= kMaxForwardJump + 1; ++i) last = *cipher.Encrypt(AsBytes("m"));
  // Both libraries refuse a jump of 2001 (libsignal says "invalid message").
  EXPECT_EQ(oracle_->Decrypt(kSottoName, 1, last.bytes, 2).rc, oracle::kErrInvalidMessage);
}

TEST_F(OracleCompatTest, UntrustedIdentityBothWays) {
  ASSERT_NO_FATAL_FAILURE(OracleStartsFromSottoBundle(true));
  ASSERT_TRUE(SottoDecrypt(FromOracle("x")));
  // A new libsignal install claims the same address with another identity.
  auto impostor = OracleParty::Create(999, 0);
  ASSERT_EQ(impostor->ProcessBundle(kSottoName, 1, BundleToOracle(sotto_.MakeBundle(6, 66, true))),
            oracle::kOk);
  auto m = impostor->Encrypt(kSottoName, 1, AsBytes("trust me"));
  auto r = SessionCipher(sotto_.store.stores(), oracle_addr_, random_)
               .Decrypt(m.bytes, static_cast<MessageType>(m.type));
  ASSERT_FALSE(r);
  EXPECT_TRUE(Is(r.error(), Err::kUntrustedIdentity));
  // And the oracle refuses a Sotto device whose identity changed.
  Device sotto2(kSottoName, random_);
  oracle::OracleBundle ob = oracle_->GenerateBundle(1, 8, 88, true);
  ASSERT_TRUE(ProcessPreKeyBundle(sotto2.store.stores(), oracle_addr_, BundleFromOracle(ob), random_));
  auto m2 = SessionCipher(sotto2.store.stores(), oracle_addr_, random_).Encrypt(AsBytes("me"));
  EXPECT_EQ(oracle_->Decrypt(kSottoName, 1, m2->bytes, 3).rc, oracle::kErrUntrustedIdentity);
}

TEST(OracleCompat, SignaturesAndAgreementBothWays) {
  crypto::DeterministicRandom random(5);
  int oracle_sign_bit_set = 0;
  for (int i = 0; i < 64; ++i) {
    KeyPair k = KeyPair::Generate(random);
    const Bytes msg(static_cast<size_t>(i + 1), static_cast<uint8_t>(i));
    const crypto::Signature ours = crypto::Sign(k.private_key, msg, random);
    EXPECT_TRUE(oracle::Verify(Ser(k.public_key), msg, ours));
    const Bytes theirs = oracle::Sign(k.private_key.span(), msg);
    ASSERT_EQ(theirs.size(), 64u);
    if (theirs[63] & 0x80) ++oracle_sign_bit_set;
    EXPECT_TRUE(crypto::VerifySignature(k.public_key.raw(), msg, theirs));
    Bytes bad = theirs;
    bad[0] ^= 1;
    EXPECT_FALSE(crypto::VerifySignature(k.public_key.raw(), msg, bad));
    EXPECT_EQ(oracle::PublicFromPrivate(k.private_key.span()), Ser(k.public_key));
    KeyPair other = KeyPair::Generate(random);
    auto shared = crypto::Agree(k.private_key, other.public_key.raw());
    ASSERT_TRUE(shared);
    EXPECT_EQ(oracle::Agree(Ser(other.public_key), k.private_key.span()),
              Bytes(shared->span().begin(), shared->span().end()));
  }
  // libsignal's signatures carry the Edwards sign bit: about half have it set, and we
  // accepted all of them above.
  EXPECT_GT(oracle_sign_bit_set, 10);
  EXPECT_LT(oracle_sign_bit_set, 54);
}

TEST(OracleCompat, GroupSenderKeysBothWays) {
  crypto::DeterministicRandom random(6);
  auto oracle_party = OracleParty::Create(1, 0);
  InMemorySenderKeyStore sotto_keys;
  // libsignal sends to the group; Sotto receives, out of order, with duplicates refused.
  const SenderKeyName from_oracle{"grp", {"oracle", 1}};
  Bytes skdm = oracle_party->CreateSenderKeyDistribution("grp", "oracle", 1);
  ASSERT_FALSE(skdm.empty());
  auto parsed = SenderKeyDistributionMessage::Parse(skdm);
  ASSERT_TRUE(parsed);
  EXPECT_EQ(parsed->Serialize(), skdm);  // byte-identical re-encoding
  ASSERT_TRUE(ProcessSenderKeyDistribution(sotto_keys, from_oracle, *parsed));
  std::vector<Bytes> sent;
  for (int i = 0; i < 40; ++i) {
    auto c = oracle_party->GroupEncrypt("grp", "oracle", 1, AsBytes("g" + std::to_string(i)));
    ASSERT_EQ(c.rc, oracle::kOk);
    sent.push_back(c.bytes);
  }
  GroupCipher in(sotto_keys, from_oracle, random);
  for (int i : {5, 0, 39, 1, 2, 3, 4, 20}) {
    auto p = in.Decrypt(sent[static_cast<size_t>(i)]);
    ASSERT_TRUE(p) << i << ": " << p.error().ToString();
    EXPECT_EQ(AsString(*p), "g" + std::to_string(i));
  }
  auto dup = in.Decrypt(sent[5]);
  ASSERT_FALSE(dup);
  EXPECT_TRUE(Is(dup.error(), Err::kDuplicateMessage));
  Bytes forged = sent[6];
  forged[forged.size() - 70] ^= 1;
  auto bad = in.Decrypt(forged);
  ASSERT_FALSE(bad);
  EXPECT_TRUE(Is(bad.error(), Err::kInvalidSignature));

  // Sotto sends to the group; libsignal receives.
  const SenderKeyName own{"grp2", {"sotto", 1}};
  auto mine = CreateSenderKeyDistribution(sotto_keys, own, random);
  ASSERT_TRUE(mine);
  ASSERT_EQ(oracle_party->ProcessSenderKeyDistribution("grp2", "sotto", 1, mine->Serialize()),
            oracle::kOk);
  GroupCipher out(sotto_keys, own, random);
  std::vector<Bytes> ours;
  for (int i = 0; i < 40; ++i) ours.push_back(*out.Encrypt(AsBytes("s" + std::to_string(i))));
  for (int i : {7, 0, 39, 1, 8}) {
    auto p = oracle_party->GroupDecrypt("grp2", "sotto", 1, ours[static_cast<size_t>(i)]);
    ASSERT_EQ(p.rc, oracle::kOk) << i;
    EXPECT_EQ(AsString(p.plaintext), "s" + std::to_string(i));
  }
  EXPECT_EQ(oracle_party->GroupDecrypt("grp2", "sotto", 1, ours[7]).rc,
            oracle::kErrDuplicateMessage);
}

TEST(OracleCompat, IdenticalSafetyNumbers) {
  crypto::DeterministicRandom random(8);
  for (uint32_t iterations : {uint32_t{1024}, kFingerprintIterations}) {
    IdentityKey a = IdentityKeyPair::Generate(random).public_key;
    IdentityKey b = IdentityKeyPair::Generate(random).public_key;
    auto ours = ComputeFingerprint(iterations, "+14152222222", a, "+14153333333", b);
    ASSERT_TRUE(ours);
    EXPECT_EQ(ours->displayable,
              oracle::DisplayableFingerprint(iterations, "+14152222222", Ser(a), "+14153333333", Ser(b)));
    const Bytes theirs_scannable =
        oracle::ScannableFingerprint(iterations, "+14153333333", Ser(b), "+14152222222", Ser(a), 1);
    EXPECT_TRUE(*CompareScannable(ours->scannable, theirs_scannable));
    EXPECT_EQ(oracle::CompareScannable(theirs_scannable, ours->scannable), 1);
    EXPECT_EQ(ours->scannable, oracle::ScannableFingerprint(iterations, "+14152222222", Ser(a),
                                                            "+14153333333", Ser(b), 1));
  }
}

}  // namespace
}  // namespace sotto::signal
