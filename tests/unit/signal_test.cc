// Tests of the pairwise Signal session: X3DH, the Double Ratchet, limits at and past
// their edges, error reporting, archived states and record serialization.
#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <vector>

#include "signal/error.h"
#include "signal/fingerprint.h"
#include "signal/protocol.h"
#include "tests/unit/signal_test_util.h"

namespace sotto::signal {
namespace {

using testing::Device;

class SessionTest : public ::testing::Test {
 protected:
  SessionTest() : random_(1234), alice_("alice", random_), bob_("bob", random_) {}

  void Establish(bool with_prekey = true) {
    PreKeyBundle bundle = bob_.MakeBundle(7, 31337, with_prekey);
    ASSERT_TRUE(ProcessPreKeyBundle(alice_.store.stores(), bob_.address(), bundle, random_));
  }

  CiphertextMessage Send(Device& from, Device& to, std::string_view text) {
    auto ct = from.CipherFor(to).Encrypt(AsBytes(text));
    EXPECT_TRUE(ct) << ct.error().ToString();
    return ct ? *ct : CiphertextMessage{};
  }

  Result<Bytes> Receive(Device& at, Device& from, const CiphertextMessage& m) {
    return at.CipherFor(from).Decrypt(m.bytes, m.type);
  }

  crypto::DeterministicRandom random_;
  Device alice_;
  Device bob_;
};

TEST_F(SessionTest, FirstMessageIsPreKeyThenSignalAfterReply) {
  ASSERT_NO_FATAL_FAILURE(Establish());
  auto m1 = Send(alice_, bob_, "hello");
  EXPECT_EQ(m1.type, MessageType::kPreKey);
  EXPECT_EQ(m1.bytes[0], 0x33);
  auto m2 = Send(alice_, bob_, "again");
  EXPECT_EQ(m2.type, MessageType::kPreKey);  // still no reply
  auto p1 = Receive(bob_, alice_, m1);
  ASSERT_TRUE(p1) << p1.error().ToString();
  EXPECT_EQ(AsString(*p1), "hello");
  EXPECT_EQ(bob_.store.prekeys.size(), 0u);  // one-time prekey consumed after success
  auto p2 = Receive(bob_, alice_, m2);       // same base key: no new session
  ASSERT_TRUE(p2) << p2.error().ToString();
  auto r = Send(bob_, alice_, "reply");
  EXPECT_EQ(r.type, MessageType::kSignal);
  ASSERT_TRUE(Receive(alice_, bob_, r));
  EXPECT_EQ(Send(alice_, bob_, "now plain").type, MessageType::kSignal);
}

TEST_F(SessionTest, WithoutOneTimePreKey) {
  ASSERT_NO_FATAL_FAILURE(Establish(/*with_prekey=*/false));
  auto m = Send(alice_, bob_, "x");
  auto view = ParsePreKeySignalMessage(m.bytes);
  ASSERT_TRUE(view);
  EXPECT_FALSE(view->prekey_id.has_value());
  ASSERT_TRUE(Receive(bob_, alice_, m));
}

TEST_F(SessionTest, LongAlternatingConversation) {
  ASSERT_NO_FATAL_FAILURE(Establish());
  for (int i = 0; i < 200; ++i) {
    Device& from = i % 2 ? bob_ : alice_;
    Device& to = i % 2 ? alice_ : bob_;
    const std::string text = "message " + std::to_string(i);
    auto p = Receive(to, from, Send(from, to, text));
    ASSERT_TRUE(p) << i << ": " << p.error().ToString();
    EXPECT_EQ(AsString(*p), text);
  }
}

TEST_F(SessionTest, OutOfOrderWithinLimitAndDuplicatesRejected) {
  ASSERT_NO_FATAL_FAILURE(Establish());
  ASSERT_TRUE(Receive(bob_, alice_, Send(alice_, bob_, "first")));
  ASSERT_TRUE(Receive(alice_, bob_, Send(bob_, alice_, "ack")));
  std::vector<CiphertextMessage> burst;
  for (int i = 0; i < 50; ++i) burst.push_back(Send(alice_, bob_, std::to_string(i)));
  std::vector<size_t> order(burst.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::shuffle(order.begin(), order.end(), std::mt19937(5));
  for (size_t i : order) {
    auto p = Receive(bob_, alice_, burst[i]);
    ASSERT_TRUE(p) << p.error().ToString();
    EXPECT_EQ(AsString(*p), std::to_string(i));
  }
  for (size_t i : {size_t{0}, size_t{25}, size_t{49}}) {
    auto dup = Receive(bob_, alice_, burst[i]);
    ASSERT_FALSE(dup);
    EXPECT_TRUE(Is(dup.error(), Err::kDuplicateMessage));
    EXPECT_EQ(dup.error().code, Code::kAlreadyExists);
  }
}

TEST_F(SessionTest, ForwardJumpAtAndPastLimit) {
  ASSERT_NO_FATAL_FAILURE(Establish());
  ASSERT_TRUE(Receive(bob_, alice_, Send(alice_, bob_, "first")));
  ASSERT_TRUE(Receive(alice_, bob_, Send(bob_, alice_, "ack")));
  // Alice's new chain: message 0 arrives after kMaxForwardJump others are lost.
  std::vector<CiphertextMessage> sent;
  for (uint32_t i = 0; i <= kMaxForwardJump + 1; ++i) sent.push_back(Send(alice_, bob_, "m"));
  // counter 2001 - index 0 > 2000: rejected, and nothing changes.
  auto past = Receive(bob_, alice_, sent[kMaxForwardJump + 1]);
  ASSERT_FALSE(past);
  EXPECT_TRUE(Is(past.error(), Err::kTooFarInFuture));
  // counter 2000 - index 0 == 2000: accepted; the 2000 skipped keys are kept.
  ASSERT_TRUE(Receive(bob_, alice_, sent[kMaxForwardJump]));
  ASSERT_TRUE(Receive(bob_, alice_, sent[0]));
  ASSERT_TRUE(Receive(bob_, alice_, sent[kMaxForwardJump - 1]));
  ASSERT_TRUE(Receive(bob_, alice_, sent[kMaxForwardJump + 1]));
}

TEST_F(SessionTest, SkippedKeysBoundedOldestDropped) {
  ASSERT_NO_FATAL_FAILURE(Establish());
  ASSERT_TRUE(Receive(bob_, alice_, Send(alice_, bob_, "first")));
  ASSERT_TRUE(Receive(alice_, bob_, Send(bob_, alice_, "ack")));
  std::vector<CiphertextMessage> sent;
  for (int i = 0; i < 2010; ++i) sent.push_back(Send(alice_, bob_, "m"));
  ASSERT_TRUE(Receive(bob_, alice_, sent[1500]));  // 1500 skipped
  ASSERT_TRUE(Receive(bob_, alice_, sent[2009]));  // 508 more: 2008 > limit, oldest 8 go
  auto record = *bob_.store.sessions.LoadSession(alice_.address());
  ASSERT_TRUE(record);
  const auto& chains = record->current()->receiver_chains;
  EXPECT_EQ(chains.back().skipped.size(), kMaxSkippedMessageKeys);
  auto dropped = Receive(bob_, alice_, sent[0]);
  ASSERT_FALSE(dropped);
  EXPECT_TRUE(Is(dropped.error(), Err::kDuplicateMessage));
  EXPECT_TRUE(Receive(bob_, alice_, sent[8]));
}

TEST_F(SessionTest, BadMacRejectedAndStateUnchanged) {
  ASSERT_NO_FATAL_FAILURE(Establish());
  ASSERT_TRUE(Receive(bob_, alice_, Send(alice_, bob_, "first")));
  auto m = Send(bob_, alice_, "reply");
  CiphertextMessage tampered = m;
  tampered.bytes.back() ^= 0x01;
  auto bad = Receive(alice_, bob_, tampered);
  ASSERT_FALSE(bad);
  EXPECT_TRUE(Is(bad.error(), Err::kBadMac));
  CiphertextMessage body = m;
  body.bytes[body.bytes.size() - kMacSize - 3] ^= 0x80;  // inside the ciphertext
  ASSERT_FALSE(Receive(alice_, bob_, body));
  auto good = Receive(alice_, bob_, m);  // the genuine one still decrypts
  ASSERT_TRUE(good) << good.error().ToString();
  EXPECT_EQ(AsString(*good), "reply");
}

TEST_F(SessionTest, ReceiverChainsBoundedToFive) {
  ASSERT_NO_FATAL_FAILURE(Establish());
  for (int i = 0; i < 12; ++i) {
    Device& from = i % 2 ? bob_ : alice_;
    Device& to = i % 2 ? alice_ : bob_;
    ASSERT_TRUE(Receive(to, from, Send(from, to, "x")));
  }
  auto record = *bob_.store.sessions.LoadSession(alice_.address());
  EXPECT_EQ(record->current()->receiver_chains.size(), kMaxReceiverChains);
}

TEST_F(SessionTest, NoSessionAndMalformedInput) {
  auto e = alice_.CipherFor(bob_).Encrypt(AsBytes("x"));
  ASSERT_FALSE(e);
  EXPECT_TRUE(Is(e.error(), Err::kNoSession));
  ASSERT_NO_FATAL_FAILURE(Establish());
  auto m = Send(alice_, bob_, "x");
  auto no_session = bob_.CipherFor(alice_).Decrypt(ParsePreKeySignalMessage(m.bytes)->message_bytes,
                                                   MessageType::kSignal);
  ASSERT_FALSE(no_session);
  EXPECT_TRUE(Is(no_session.error(), Err::kNoSession));
  for (size_t len = 0; len < m.bytes.size(); len += 7) {
    auto r = bob_.CipherFor(alice_).Decrypt(ByteSpan(m.bytes).first(len), MessageType::kPreKey);
    EXPECT_FALSE(r);
  }
  Bytes v4 = m.bytes;
  v4[0] = 0x44;
  auto unsupported = Receive(bob_, alice_, CiphertextMessage{MessageType::kPreKey, v4});
  ASSERT_FALSE(unsupported);
  EXPECT_TRUE(Is(unsupported.error(), Err::kUnsupportedVersion));
  Bytes v1 = m.bytes;
  v1[0] = 0x11;
  auto legacy = Receive(bob_, alice_, CiphertextMessage{MessageType::kPreKey, v1});
  ASSERT_FALSE(legacy);
  EXPECT_TRUE(Is(legacy.error(), Err::kLegacyMessage));
}

TEST_F(SessionTest, MissingPreKeyReported) {
  ASSERT_NO_FATAL_FAILURE(Establish());
  auto m = Send(alice_, bob_, "x");
  ASSERT_TRUE(bob_.store.prekeys.RemovePreKey(31337));
  auto r = Receive(bob_, alice_, m);
  ASSERT_FALSE(r);
  EXPECT_TRUE(Is(r.error(), Err::kNoPreKey));
  EXPECT_FALSE(*bob_.store.sessions.LoadSession(alice_.address()));  // nothing stored
}

TEST_F(SessionTest, LastResortPreKeyIsKept) {
  SignedPreKeyRecord spk = GenerateSignedPreKey(bob_.identity(), 1, 0, random_);
  ASSERT_TRUE(bob_.store.signed_prekeys.StoreSignedPreKey(spk));
  PreKeyRecord last{kLastResortPreKeyId, KeyPair::Generate(random_)};
  ASSERT_TRUE(bob_.store.prekeys.StorePreKey(last));
  PreKeyBundle b{*bob_.store.identity.GetLocalRegistrationId(), 1, last.id,
                 last.key_pair.public_key, spk.id, spk.key_pair.public_key, spk.signature,
                 bob_.identity().public_key};
  ASSERT_TRUE(ProcessPreKeyBundle(alice_.store.stores(), bob_.address(), b, random_));
  ASSERT_TRUE(Receive(bob_, alice_, Send(alice_, bob_, "x")));
  EXPECT_EQ(bob_.store.prekeys.size(), 1u);
}

TEST_F(SessionTest, BadSignedPreKeySignatureRejected) {
  PreKeyBundle bundle = bob_.MakeBundle(7, 1, true);
  bundle.signed_prekey_signature[5] ^= 1;
  auto s = ProcessPreKeyBundle(alice_.store.stores(), bob_.address(), bundle, random_);
  ASSERT_FALSE(s);
  EXPECT_TRUE(Is(s.error(), Err::kInvalidSignature));
}

TEST_F(SessionTest, IdentityChangeIsReportedNotAccepted) {
  ASSERT_NO_FATAL_FAILURE(Establish());
  ASSERT_TRUE(Receive(bob_, alice_, Send(alice_, bob_, "x")));
  // Bob reinstalls: new identity, new bundle.
  Device bob2("bob", random_);
  PreKeyBundle fresh = bob2.MakeBundle(9, 99, true);
  auto s = ProcessPreKeyBundle(alice_.store.stores(), bob_.address(), fresh, random_);
  ASSERT_FALSE(s);
  EXPECT_TRUE(Is(s.error(), Err::kUntrustedIdentity));
  EXPECT_EQ(s.error().code, Code::kPermissionDenied);
  // The application shows "safety number changed" and the user accepts.
  auto change = alice_.store.identity.SaveIdentity(bob_.address(), fresh.identity_key);
  ASSERT_TRUE(change);
  EXPECT_EQ(*change, IdentityChange::kReplacedExisting);
  ASSERT_TRUE(ProcessPreKeyBundle(alice_.store.stores(), bob_.address(), fresh, random_));
  // And a new PreKeySignalMessage from a changed identity is refused on receive too.
  Device alice2("alice", random_);
  PreKeyBundle b = bob_.MakeBundle(11, 111, true);
  ASSERT_TRUE(ProcessPreKeyBundle(alice2.store.stores(), bob_.address(), b, random_));
  auto m = alice2.CipherFor(bob_).Encrypt(AsBytes("i am alice, honest"));
  ASSERT_TRUE(m);
  auto r = bob_.CipherFor(alice_).Decrypt(m->bytes, m->type);
  ASSERT_FALSE(r);
  EXPECT_TRUE(Is(r.error(), Err::kUntrustedIdentity));
}

TEST_F(SessionTest, ArchivedStateStillDecryptsAndIsPromoted) {
  ASSERT_NO_FATAL_FAILURE(Establish());
  auto first = Send(alice_, bob_, "x");
  const PublicKey first_base = ParsePreKeySignalMessage(first.bytes)->base_key;
  ASSERT_TRUE(Receive(bob_, alice_, first));
  auto from_old = Send(bob_, alice_, "sent on the old session");
  // Alice starts a second session (e.g. she refetched Bob's bundle); Bob's old message
  // arrives afterwards and must still decrypt from the archived state.
  PreKeyBundle again = bob_.MakeBundle(8, 2, true);
  ASSERT_TRUE(ProcessPreKeyBundle(alice_.store.stores(), bob_.address(), again, random_));
  auto record = *alice_.store.sessions.LoadSession(bob_.address());
  ASSERT_EQ(record->previous().size(), 1u);
  EXPECT_NE(record->current()->alice_base_key, first_base);
  auto p = Receive(alice_, bob_, from_old);
  ASSERT_TRUE(p) << p.error().ToString();
  EXPECT_EQ(AsString(*p), "sent on the old session");
  record = *alice_.store.sessions.LoadSession(bob_.address());
  EXPECT_EQ(record->current()->alice_base_key, first_base);  // promoted
  EXPECT_EQ(record->previous().size(), 1u);
}

TEST_F(SessionTest, ArchivedStatesBoundedToForty) {
  for (uint32_t i = 0; i < kMaxArchivedStates + 3; ++i) {
    PreKeyBundle b = bob_.MakeBundle(100 + i, 1000 + i, true);
    ASSERT_TRUE(ProcessPreKeyBundle(alice_.store.stores(), bob_.address(), b, random_));
  }
  auto record = *alice_.store.sessions.LoadSession(bob_.address());
  EXPECT_EQ(record->previous().size(), kMaxArchivedStates);
}

TEST_F(SessionTest, RecordSerializationRoundTrip) {
  ASSERT_NO_FATAL_FAILURE(Establish());
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(Receive(bob_, alice_, Send(alice_, bob_, "x")));
  std::vector<CiphertextMessage> held;
  for (int i = 0; i < 3; ++i) held.push_back(Send(bob_, alice_, "y"));
  ASSERT_TRUE(Receive(alice_, bob_, held[2]));  // two skipped keys in the record
  auto record = *alice_.store.sessions.LoadSession(bob_.address());
  Bytes once = record->Serialize();
  auto parsed = SessionRecord::Deserialize(once);
  ASSERT_TRUE(parsed);
  EXPECT_EQ(parsed->Serialize(), once);
  EXPECT_EQ(parsed->current()->receiver_chains.back().skipped.size(), 2u);
  for (size_t cut = 0; cut < once.size(); cut += 17) {
    auto r = SessionRecord::Deserialize(ByteSpan(once).first(cut));
    if (!r) {
      EXPECT_TRUE(Is(r.error(), Err::kCorruptRecord));
    }
  }
}

TEST(Fingerprint, SymmetricAndSensitive) {
  crypto::DeterministicRandom random(3);
  IdentityKey a = IdentityKeyPair::Generate(random).public_key;
  IdentityKey b = IdentityKeyPair::Generate(random).public_key;
  IdentityKey c = IdentityKeyPair::Generate(random).public_key;
  auto ab = ComputeFingerprint(kFingerprintIterations, "+14152222222", a, "+14153333333", b);
  auto ba = ComputeFingerprint(kFingerprintIterations, "+14153333333", b, "+14152222222", a);
  auto ac = ComputeFingerprint(kFingerprintIterations, "+14152222222", a, "+14153333333", c);
  ASSERT_TRUE(ab && ba && ac);
  EXPECT_EQ(ab->displayable.size(), 60u);
  EXPECT_TRUE(std::all_of(ab->displayable.begin(), ab->displayable.end(), ::isdigit));
  EXPECT_EQ(ab->displayable, ba->displayable);
  EXPECT_NE(ab->displayable, ac->displayable);
  EXPECT_TRUE(*CompareScannable(ab->scannable, ba->scannable));
  EXPECT_FALSE(*CompareScannable(ab->scannable, ac->scannable));
  EXPECT_FALSE(ComputeFingerprint(kMaxFingerprintIterations + 1, "a", a, "b", b));
  EXPECT_TRUE(ComputeFingerprint(1, "a", a, "b", b));
  auto bad = CompareScannable(ab->scannable, FromHex("0801"));
  ASSERT_FALSE(bad);
  EXPECT_TRUE(Is(bad.error(), Err::kInvalidMessage));
}

}  // namespace
}  // namespace sotto::signal
