// Self-tests of the libsignal-protocol-c oracle harness alone (oracle talking to oracle).
//
// These prove the harness itself (crypto provider, stores, reference counting) is sound before it
// is used to judge Sotto's own implementation.

#include "signal_oracle.h"

#include <gtest/gtest.h>
#include <openssl/evp.h>

#include <algorithm>
#include <cstddef>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace sotto::oracle {
namespace {

constexpr uint32_t kFingerprintIterations = 5200;

Bytes Msg(const std::string& s) { return Bytes(s.begin(), s.end()); }

std::unique_ptr<OracleParty> MustCreate(uint32_t registration_id, uint64_t seed = 0) {
  auto party = OracleParty::Create(registration_id, seed);
  EXPECT_NE(party, nullptr);
  return party;
}

void ExpectWellFormedBundle(const OracleBundle& bundle, bool with_prekey) {
  ASSERT_EQ(bundle.identity_key.size(), 33u);
  EXPECT_EQ(bundle.identity_key[0], 0x05);
  ASSERT_EQ(bundle.signed_prekey_public.size(), 33u);
  EXPECT_EQ(bundle.signed_prekey_public[0], 0x05);
  ASSERT_EQ(bundle.signed_prekey_signature.size(), 64u);
  EXPECT_EQ(bundle.has_prekey, with_prekey);
  if (with_prekey) {
    ASSERT_EQ(bundle.prekey_public.size(), 33u);
    EXPECT_EQ(bundle.prekey_public[0], 0x05);
  } else {
    EXPECT_TRUE(bundle.prekey_public.empty());
  }
  // The signature is by the identity key over the 33-byte serialized signed prekey.
  EXPECT_TRUE(
      Verify(bundle.identity_key, bundle.signed_prekey_public, bundle.signed_prekey_signature));
}

// Alice ("alice", 1) builds a session from Bob's ("bob", 1) bundle, sends one PreKeySignalMessage
// and Bob answers with a SignalMessage, after which both sides use plain SignalMessages.
void Establish(OracleParty& alice, OracleParty& bob, bool with_prekey) {
  const OracleBundle bundle = bob.GenerateBundle(1, 7, 31, with_prekey);
  ASSERT_NO_FATAL_FAILURE(ExpectWellFormedBundle(bundle, with_prekey));
  EXPECT_EQ(bundle.registration_id, bob.RegistrationId());
  EXPECT_EQ(bundle.identity_key, bob.IdentityPublic());
  if (with_prekey) {
    EXPECT_TRUE(bob.HasPreKey(31));
  }

  ASSERT_EQ(alice.ProcessBundle("bob", 1, bundle), kOk);
  ASSERT_TRUE(alice.HasSession("bob", 1));
  EXPECT_EQ(alice.StoredIdentity("bob"), bob.IdentityPublic());

  const OracleCiphertext first = alice.Encrypt("bob", 1, Msg("hello bob"));
  ASSERT_EQ(first.rc, kOk);
  ASSERT_EQ(first.type, kTypePreKey);
  ASSERT_FALSE(first.bytes.empty());
  EXPECT_EQ(first.bytes[0], 0x33);

  const OraclePlaintext got = bob.Decrypt("alice", 1, first.bytes, first.type);
  ASSERT_EQ(got.rc, kOk);
  EXPECT_EQ(got.plaintext, Msg("hello bob"));
  EXPECT_TRUE(bob.HasSession("alice", 1));
  EXPECT_EQ(bob.StoredIdentity("alice"), alice.IdentityPublic());
  if (with_prekey) {
    EXPECT_FALSE(bob.HasPreKey(31)) << "one-time prekey must be consumed";
  }
  EXPECT_TRUE(bob.HasSignedPreKey(7));

  const OracleCiphertext reply = bob.Encrypt("alice", 1, Msg("hello alice"));
  ASSERT_EQ(reply.rc, kOk);
  ASSERT_EQ(reply.type, kTypeSignal);
  EXPECT_EQ(reply.bytes[0], 0x33);
  const OraclePlaintext got_reply = alice.Decrypt("bob", 1, reply.bytes, reply.type);
  ASSERT_EQ(got_reply.rc, kOk);
  EXPECT_EQ(got_reply.plaintext, Msg("hello alice"));
}

// Sends `count` messages alternating Alice -> Bob, Bob -> Alice (one DH ratchet step each).
void ExchangeAlternating(OracleParty& alice, OracleParty& bob, int count) {
  for (int i = 0; i < count; ++i) {
    const bool from_alice = i % 2 == 0;
    OracleParty& sender = from_alice ? alice : bob;
    OracleParty& receiver = from_alice ? bob : alice;
    const std::string sender_name = from_alice ? "alice" : "bob";
    const std::string receiver_name = from_alice ? "bob" : "alice";
    const Bytes plaintext = Msg("alternating message #" + std::to_string(i));
    const OracleCiphertext ct = sender.Encrypt(receiver_name, 1, plaintext);
    ASSERT_EQ(ct.rc, kOk) << i;
    ASSERT_EQ(ct.type, kTypeSignal) << i;
    const OraclePlaintext pt = receiver.Decrypt(sender_name, 1, ct.bytes, ct.type);
    ASSERT_EQ(pt.rc, kOk) << i;
    EXPECT_EQ(pt.plaintext, plaintext) << i;
  }
}

TEST(SignalOracleTest, SessionWithOneTimePreKeyAlternating) {
  auto alice = MustCreate(1111);
  auto bob = MustCreate(2222);
  ASSERT_TRUE(alice && bob);
  ASSERT_NO_FATAL_FAILURE(Establish(*alice, *bob, /*with_prekey=*/true));
  ASSERT_NO_FATAL_FAILURE(ExchangeAlternating(*alice, *bob, 50));
}

TEST(SignalOracleTest, SessionWithoutOneTimePreKeyAlternating) {
  auto alice = MustCreate(1111);
  auto bob = MustCreate(2222);
  ASSERT_TRUE(alice && bob);
  ASSERT_NO_FATAL_FAILURE(Establish(*alice, *bob, /*with_prekey=*/false));
  ASSERT_NO_FATAL_FAILURE(ExchangeAlternating(*alice, *bob, 50));
}

TEST(SignalOracleTest, PreKeyMessagesRepeatUntilFirstReply) {
  auto alice = MustCreate(1);
  auto bob = MustCreate(2);
  ASSERT_TRUE(alice && bob);
  ASSERT_EQ(alice->ProcessBundle("bob", 1, bob->GenerateBundle(1, 5, 9, true)), kOk);
  std::vector<OracleCiphertext> sent;
  for (int i = 0; i < 3; ++i) {
    sent.push_back(alice->Encrypt("bob", 1, Msg("early " + std::to_string(i))));
    ASSERT_EQ(sent.back().rc, kOk);
    EXPECT_EQ(sent.back().type, kTypePreKey) << "unacknowledged session keeps prekey framing";
  }
  for (int i = 0; i < 3; ++i) {
    const OraclePlaintext pt =
        bob->Decrypt("alice", 1, sent[static_cast<size_t>(i)].bytes, kTypePreKey);
    ASSERT_EQ(pt.rc, kOk) << i;
    EXPECT_EQ(pt.plaintext, Msg("early " + std::to_string(i)));
  }
  const OracleCiphertext reply = bob->Encrypt("alice", 1, Msg("ack"));
  ASSERT_EQ(reply.rc, kOk);
  ASSERT_EQ(alice->Decrypt("bob", 1, reply.bytes, reply.type).rc, kOk);
  const OracleCiphertext after = alice->Encrypt("bob", 1, Msg("after ack"));
  ASSERT_EQ(after.rc, kOk);
  EXPECT_EQ(after.type, kTypeSignal);
}

TEST(SignalOracleTest, OneDirectionBurst) {
  auto alice = MustCreate(10);
  auto bob = MustCreate(20);
  ASSERT_TRUE(alice && bob);
  ASSERT_NO_FATAL_FAILURE(Establish(*alice, *bob, true));
  constexpr int kBurst = 200;
  std::vector<OracleCiphertext> sent;
  for (int i = 0; i < kBurst; ++i) {
    sent.push_back(alice->Encrypt("bob", 1, Msg("burst " + std::to_string(i))));
    ASSERT_EQ(sent.back().rc, kOk);
    ASSERT_EQ(sent.back().type, kTypeSignal);
  }
  for (int i = 0; i < kBurst; ++i) {
    const OraclePlaintext pt =
        bob->Decrypt("alice", 1, sent[static_cast<size_t>(i)].bytes, kTypeSignal);
    ASSERT_EQ(pt.rc, kOk) << i;
    EXPECT_EQ(pt.plaintext, Msg("burst " + std::to_string(i)));
  }
  // And the other way round afterwards.
  for (int i = 0; i < 20; ++i) {
    const OracleCiphertext ct = bob->Encrypt("alice", 1, Msg("back " + std::to_string(i)));
    ASSERT_EQ(ct.rc, kOk);
    const OraclePlaintext pt = alice->Decrypt("bob", 1, ct.bytes, ct.type);
    ASSERT_EQ(pt.rc, kOk);
    EXPECT_EQ(pt.plaintext, Msg("back " + std::to_string(i)));
  }
}

TEST(SignalOracleTest, OutOfOrderDeliveryAndDuplicate) {
  auto alice = MustCreate(10);
  auto bob = MustCreate(20);
  ASSERT_TRUE(alice && bob);
  ASSERT_NO_FATAL_FAILURE(Establish(*alice, *bob, true));

  std::vector<OracleCiphertext> sent;
  for (int i = 0; i < 10; ++i) {
    sent.push_back(alice->Encrypt("bob", 1, Msg("ooo " + std::to_string(i))));
    ASSERT_EQ(sent.back().rc, kOk);
  }
  const std::vector<size_t> order = {9, 2, 5, 0, 1, 8, 3, 7, 4};  // 6 is held back.
  for (size_t idx : order) {
    const OraclePlaintext pt = bob->Decrypt("alice", 1, sent[idx].bytes, kTypeSignal);
    ASSERT_EQ(pt.rc, kOk) << idx;
    EXPECT_EQ(pt.plaintext, Msg("ooo " + std::to_string(idx)));
  }
  // Replays are rejected, whether the key was skipped-and-stored or consumed in order.
  EXPECT_EQ(bob->Decrypt("alice", 1, sent[5].bytes, kTypeSignal).rc, kErrDuplicateMessage);
  EXPECT_EQ(bob->Decrypt("alice", 1, sent[9].bytes, kTypeSignal).rc, kErrDuplicateMessage);

  // A DH ratchet step happens (Bob replies, Alice sends on a new chain) before the held-back
  // message from the old chain arrives; it must still decrypt from the stored skipped key.
  const OracleCiphertext reply = bob->Encrypt("alice", 1, Msg("reply"));
  ASSERT_EQ(reply.rc, kOk);
  ASSERT_EQ(alice->Decrypt("bob", 1, reply.bytes, reply.type).rc, kOk);
  const OracleCiphertext new_chain = alice->Encrypt("bob", 1, Msg("new chain"));
  ASSERT_EQ(new_chain.rc, kOk);
  const OraclePlaintext nc = bob->Decrypt("alice", 1, new_chain.bytes, new_chain.type);
  ASSERT_EQ(nc.rc, kOk);
  EXPECT_EQ(nc.plaintext, Msg("new chain"));
  const OraclePlaintext late = bob->Decrypt("alice", 1, sent[6].bytes, kTypeSignal);
  ASSERT_EQ(late.rc, kOk);
  EXPECT_EQ(late.plaintext, Msg("ooo 6"));
  EXPECT_EQ(bob->Decrypt("alice", 1, sent[6].bytes, kTypeSignal).rc, kErrDuplicateMessage);
  EXPECT_EQ(bob->Decrypt("alice", 1, new_chain.bytes, kTypeSignal).rc, kErrDuplicateMessage);
}

TEST(SignalOracleTest, TamperedMessagesAreRejectedWithoutCorruptingState) {
  auto alice = MustCreate(10);
  auto bob = MustCreate(20);
  ASSERT_TRUE(alice && bob);
  ASSERT_NO_FATAL_FAILURE(Establish(*alice, *bob, true));

  const OracleCiphertext ct = alice->Encrypt("bob", 1, Msg("integrity"));
  ASSERT_EQ(ct.rc, kOk);
  ASSERT_EQ(ct.type, kTypeSignal);
  ASSERT_GT(ct.bytes.size(), 9u);
  const Bytes record_before = bob->SessionRecord("alice", 1);

  Bytes bad_mac = ct.bytes;
  bad_mac.back() ^= 0x01;  // Last byte belongs to the 8-byte truncated MAC.
  EXPECT_EQ(bob->Decrypt("alice", 1, bad_mac, kTypeSignal).rc, kErrInvalidMessage);

  Bytes bad_body = ct.bytes;
  bad_body[bad_body.size() - 9] ^= 0x80;  // Last ciphertext byte, just before the MAC.
  EXPECT_EQ(bob->Decrypt("alice", 1, bad_body, kTypeSignal).rc, kErrInvalidMessage);

  Bytes bad_version = ct.bytes;
  bad_version[0] = 0x13;  // Version 1: legacy.
  EXPECT_EQ(bob->Decrypt("alice", 1, bad_version, kTypeSignal).rc, kErrLegacyMessage);

  EXPECT_NE(bob->Decrypt("alice", 1, Bytes{0x33, 0x01}, kTypeSignal).rc, kOk);
  EXPECT_EQ(bob->Decrypt("alice", 1, ct.bytes, 99).rc, kErrInval);

  // Failures must not have been committed to the store.
  EXPECT_EQ(bob->SessionRecord("alice", 1), record_before);
  const OraclePlaintext pt = bob->Decrypt("alice", 1, ct.bytes, kTypeSignal);
  ASSERT_EQ(pt.rc, kOk);
  EXPECT_EQ(pt.plaintext, Msg("integrity"));
}

TEST(SignalOracleTest, EmptyAndLargePlaintexts) {
  auto alice = MustCreate(10);
  auto bob = MustCreate(20);
  ASSERT_TRUE(alice && bob);
  ASSERT_NO_FATAL_FAILURE(Establish(*alice, *bob, true));
  for (size_t size : {size_t{0}, size_t{1}, size_t{15}, size_t{16}, size_t{4096}}) {
    Bytes plaintext(size);
    for (size_t i = 0; i < size; ++i) plaintext[i] = static_cast<uint8_t>(i * 7);
    const OracleCiphertext ct = alice->Encrypt("bob", 1, plaintext);
    ASSERT_EQ(ct.rc, kOk) << size;
    const OraclePlaintext pt = bob->Decrypt("alice", 1, ct.bytes, ct.type);
    ASSERT_EQ(pt.rc, kOk) << size;
    EXPECT_EQ(pt.plaintext, plaintext) << size;
  }
}

TEST(SignalOracleTest, SessionStoreRoundTripPerMessage) {
  auto alice = MustCreate(10);
  auto bob = MustCreate(20);
  ASSERT_TRUE(alice && bob);
  ASSERT_NO_FATAL_FAILURE(Establish(*alice, *bob, true));
  const uint64_t alice_loads = alice->SessionLoads();
  const uint64_t alice_stores = alice->SessionStores();
  const uint64_t bob_loads = bob->SessionLoads();
  const uint64_t bob_stores = bob->SessionStores();
  constexpr int kMessages = 5;
  for (int i = 0; i < kMessages; ++i) {
    const OracleCiphertext ct = alice->Encrypt("bob", 1, Msg("x"));
    ASSERT_EQ(ct.rc, kOk);
    ASSERT_EQ(bob->Decrypt("alice", 1, ct.bytes, ct.type).rc, kOk);
  }
  EXPECT_EQ(alice->SessionLoads() - alice_loads, static_cast<uint64_t>(kMessages));
  EXPECT_EQ(alice->SessionStores() - alice_stores, static_cast<uint64_t>(kMessages));
  EXPECT_EQ(bob->SessionLoads() - bob_loads, static_cast<uint64_t>(kMessages));
  EXPECT_EQ(bob->SessionStores() - bob_stores, static_cast<uint64_t>(kMessages));
}

TEST(SignalOracleTest, EncryptWithoutSessionFails) {
  auto alice = MustCreate(10);
  ASSERT_TRUE(alice);
  EXPECT_EQ(alice->Encrypt("nobody", 1, Msg("x")).rc, kErrNoSession);
}

TEST(SignalOracleTest, IdentityTrustOnFirstUse) {
  auto alice = MustCreate(10);
  auto bob = MustCreate(20);
  auto mallory = MustCreate(30);
  ASSERT_TRUE(alice && bob && mallory);
  ASSERT_NO_FATAL_FAILURE(Establish(*alice, *bob, true));

  // A different identity key claiming to be "bob" is rejected...
  const OracleBundle fake = mallory->GenerateBundle(1, 1, 1, true);
  EXPECT_EQ(alice->ProcessBundle("bob", 1, fake), kErrUntrustedIdentity);
  EXPECT_EQ(alice->StoredIdentity("bob"), bob->IdentityPublic());
  // ...unless trust is forced, after which the new key replaces the stored one.
  alice->SetTrustAll(true);
  EXPECT_EQ(alice->ProcessBundle("bob", 1, fake), kOk);
  EXPECT_EQ(alice->StoredIdentity("bob"), mallory->IdentityPublic());
}

TEST(SignalOracleTest, BadBundleSignatureIsRejected) {
  auto alice = MustCreate(10);
  auto bob = MustCreate(20);
  ASSERT_TRUE(alice && bob);
  OracleBundle bundle = bob->GenerateBundle(1, 3, 4, true);
  bundle.signed_prekey_signature[10] ^= 0x04;
  EXPECT_EQ(alice->ProcessBundle("bob", 1, bundle), kErrInvalidKey);
  EXPECT_FALSE(alice->HasSession("bob", 1));
}

TEST(SignalOracleTest, CallerProvidedPreKeys) {
  auto alice = MustCreate(10);
  auto bob = MustCreate(20);
  ASSERT_TRUE(alice && bob);
  const OracleKeyPair signed_pair = GenerateKeyPair();
  const OracleKeyPair one_time_pair = GenerateKeyPair();
  ASSERT_EQ(signed_pair.public_key.size(), 33u);
  ASSERT_EQ(signed_pair.private_key.size(), 32u);
  const Bytes signature = Sign(bob->IdentityPrivate(), signed_pair.public_key);
  ASSERT_EQ(signature.size(), 64u);

  ASSERT_EQ(bob->AddSignedPreKey(77, signed_pair.public_key, signed_pair.private_key, signature),
            kOk);
  ASSERT_EQ(bob->AddPreKey(88, one_time_pair.public_key, one_time_pair.private_key), kOk);
  EXPECT_TRUE(bob->HasSignedPreKey(77));
  EXPECT_TRUE(bob->HasPreKey(88));
  // Mismatched public/private parts are refused.
  EXPECT_EQ(bob->AddPreKey(89, signed_pair.public_key, one_time_pair.private_key), kErrInvalidKey);
  EXPECT_FALSE(bob->HasPreKey(89));

  OracleBundle bundle;
  bundle.registration_id = bob->RegistrationId();
  bundle.device_id = 1;
  bundle.has_prekey = true;
  bundle.prekey_id = 88;
  bundle.prekey_public = one_time_pair.public_key;
  bundle.signed_prekey_id = 77;
  bundle.signed_prekey_public = signed_pair.public_key;
  bundle.signed_prekey_signature = signature;
  bundle.identity_key = bob->IdentityPublic();
  ASSERT_EQ(alice->ProcessBundle("bob", 1, bundle), kOk);
  const OracleCiphertext ct = alice->Encrypt("bob", 1, Msg("with my own keys"));
  ASSERT_EQ(ct.rc, kOk);
  ASSERT_EQ(ct.type, kTypePreKey);
  const OraclePlaintext pt = bob->Decrypt("alice", 1, ct.bytes, ct.type);
  ASSERT_EQ(pt.rc, kOk);
  EXPECT_EQ(pt.plaintext, Msg("with my own keys"));
  EXPECT_FALSE(bob->HasPreKey(88));
}

TEST(SignalOracleTest, MissingOneTimePreKeyIsReported) {
  auto alice = MustCreate(10);
  auto bob = MustCreate(20);
  ASSERT_TRUE(alice && bob);
  ASSERT_EQ(alice->ProcessBundle("bob", 1, bob->GenerateBundle(1, 3, 4, true)), kOk);
  bob->RemovePreKey(4);
  const OracleCiphertext ct = alice->Encrypt("bob", 1, Msg("x"));
  ASSERT_EQ(ct.rc, kOk);
  EXPECT_EQ(bob->Decrypt("alice", 1, ct.bytes, ct.type).rc, kErrInvalidKeyId);
  EXPECT_FALSE(bob->HasSession("alice", 1));
}

TEST(SignalOracleTest, GroupOneSenderTwoReceivers) {
  auto alice = MustCreate(10);
  auto bob = MustCreate(20);
  auto carol = MustCreate(30);
  ASSERT_TRUE(alice && bob && carol);
  const std::string group = "group-1234";

  const Bytes skdm = alice->CreateSenderKeyDistribution(group, "alice", 1);
  ASSERT_FALSE(skdm.empty());
  EXPECT_EQ(skdm[0], 0x33);
  ASSERT_EQ(bob->ProcessSenderKeyDistribution(group, "alice", 1, skdm), kOk);
  ASSERT_EQ(carol->ProcessSenderKeyDistribution(group, "alice", 1, skdm), kOk);

  std::vector<OracleCiphertext> sent;
  for (int i = 0; i < 20; ++i) {
    sent.push_back(alice->GroupEncrypt(group, "alice", 1, Msg("group " + std::to_string(i))));
    ASSERT_EQ(sent.back().rc, kOk);
    ASSERT_EQ(sent.back().type, kTypeSenderKey);
    EXPECT_EQ(sent.back().bytes[0], 0x33);
  }
  // Bob in order, Carol in reverse order.
  for (size_t i = 0; i < sent.size(); ++i) {
    const OraclePlaintext pt = bob->GroupDecrypt(group, "alice", 1, sent[i].bytes);
    ASSERT_EQ(pt.rc, kOk) << i;
    EXPECT_EQ(pt.plaintext, Msg("group " + std::to_string(i)));
  }
  for (size_t i = sent.size(); i-- > 0;) {
    const OraclePlaintext pt = carol->GroupDecrypt(group, "alice", 1, sent[i].bytes);
    ASSERT_EQ(pt.rc, kOk) << i;
    EXPECT_EQ(pt.plaintext, Msg("group " + std::to_string(i)));
  }
  EXPECT_EQ(bob->GroupDecrypt(group, "alice", 1, sent[3].bytes).rc, kErrDuplicateMessage);
  EXPECT_EQ(carol->GroupDecrypt(group, "alice", 1, sent[19].bytes).rc, kErrDuplicateMessage);

  // A tampered signature is rejected.
  Bytes tampered = sent[0].bytes;
  tampered.back() ^= 0x01;
  auto dave = MustCreate(40);
  ASSERT_TRUE(dave);
  ASSERT_EQ(dave->ProcessSenderKeyDistribution(group, "alice", 1, skdm), kOk);
  EXPECT_EQ(dave->GroupDecrypt(group, "alice", 1, tampered).rc, kErrInvalidMessage);
  EXPECT_EQ(dave->GroupDecrypt(group, "alice", 1, sent[0].bytes).rc, kOk);

  // Unknown sender / group: no session.
  EXPECT_EQ(bob->GroupDecrypt("other-group", "alice", 1, sent[0].bytes).rc, kErrNoSession);

  // The own sender key is reused: a second distribution message carries the same key id (Bob,
  // who only has the first one, can read new messages) at a later iteration (Erin, who only has
  // the second one, cannot read old messages).
  const Bytes skdm2 = alice->CreateSenderKeyDistribution(group, "alice", 1);
  ASSERT_FALSE(skdm2.empty());
  EXPECT_NE(skdm2, skdm);
  auto erin = MustCreate(50);
  ASSERT_TRUE(erin);
  ASSERT_EQ(erin->ProcessSenderKeyDistribution(group, "alice", 1, skdm2), kOk);
  const OracleCiphertext later = alice->GroupEncrypt(group, "alice", 1, Msg("later"));
  ASSERT_EQ(later.rc, kOk);
  const OraclePlaintext bob_later = bob->GroupDecrypt(group, "alice", 1, later.bytes);
  ASSERT_EQ(bob_later.rc, kOk);
  EXPECT_EQ(bob_later.plaintext, Msg("later"));
  const OraclePlaintext erin_later = erin->GroupDecrypt(group, "alice", 1, later.bytes);
  ASSERT_EQ(erin_later.rc, kOk);
  EXPECT_EQ(erin_later.plaintext, Msg("later"));
  EXPECT_NE(erin->GroupDecrypt(group, "alice", 1, sent[0].bytes).rc, kOk);
}

bool AllDigits(const std::string& s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// --- Independent re-computations (plain OpenSSL, from the documented algorithms) used to check
// that the oracle's crypto provider is standard and not merely self-consistent.

Bytes Sha512(ByteSpan data) {
  Bytes out(64);
  unsigned int len = 0;
  EXPECT_EQ(EVP_Digest(data.data(), data.size(), out.data(), &len, EVP_sha512(), nullptr), 1);
  return out;
}

Bytes HmacSha256(ByteSpan key, ByteSpan data) {
  Bytes out(32);
  size_t len = 0;
  EXPECT_NE(EVP_Q_mac(nullptr, "HMAC", nullptr, "SHA256", nullptr, key.data(), key.size(),
                      data.data(), data.size(), out.data(), out.size(), &len),
            nullptr);
  EXPECT_EQ(len, 32u);
  return out;
}

// RFC 5869 HKDF-SHA256.
Bytes Hkdf(ByteSpan ikm, ByteSpan salt, ByteSpan info, size_t length) {
  const Bytes prk = HmacSha256(salt, ikm);
  Bytes out;
  Bytes block;
  for (uint8_t counter = 1; out.size() < length; ++counter) {
    Bytes input = block;
    input.insert(input.end(), info.begin(), info.end());
    input.push_back(counter);
    block = HmacSha256(prk, input);
    out.insert(out.end(), block.begin(), block.end());
  }
  out.resize(length);
  return out;
}

Bytes AesCbcDecrypt(ByteSpan key, ByteSpan iv, ByteSpan ciphertext) {
  EVP_CIPHER_CTX* ctx = EVP_CIPHER_CTX_new();
  Bytes out(ciphertext.size() + 16);
  int len1 = 0;
  int len2 = 0;
  const bool ok = EVP_DecryptInit_ex(ctx, EVP_aes_256_cbc(), nullptr, key.data(), iv.data()) == 1 &&
                  EVP_DecryptUpdate(ctx, out.data(), &len1, ciphertext.data(),
                                    static_cast<int>(ciphertext.size())) == 1 &&
                  EVP_DecryptFinal_ex(ctx, out.data() + len1, &len2) == 1;
  EVP_CIPHER_CTX_free(ctx);
  EXPECT_TRUE(ok);
  out.resize(ok ? static_cast<size_t>(len1 + len2) : 0);
  return out;
}

// Minimal protobuf reader: field number -> varint value or bytes (last occurrence wins).
struct ProtoFields {
  std::map<uint32_t, uint64_t> varints;
  std::map<uint32_t, Bytes> bytes;
};

bool ReadVarint(ByteSpan data, size_t& pos, uint64_t& value) {
  value = 0;
  for (int shift = 0; shift < 64 && pos < data.size(); shift += 7) {
    const uint8_t b = data[pos++];
    value |= static_cast<uint64_t>(b & 0x7f) << shift;
    if ((b & 0x80) == 0) return true;
  }
  return false;
}

bool ParseProto(ByteSpan data, ProtoFields& fields) {
  size_t pos = 0;
  while (pos < data.size()) {
    uint64_t key = 0;
    if (!ReadVarint(data, pos, key)) return false;
    const auto field = static_cast<uint32_t>(key >> 3);
    if ((key & 7) == 0) {
      uint64_t value = 0;
      if (!ReadVarint(data, pos, value)) return false;
      fields.varints[field] = value;
    } else if ((key & 7) == 2) {
      uint64_t len = 0;
      if (!ReadVarint(data, pos, len) || len > data.size() - pos) return false;
      fields.bytes[field] = Bytes(data.begin() + static_cast<std::ptrdiff_t>(pos),
                                  data.begin() + static_cast<std::ptrdiff_t>(pos + len));
      pos += static_cast<size_t>(len);
    } else {
      return false;
    }
  }
  return true;
}

// 30-digit half of a safety number: version 0, key, identifier, then iterated SHA-512.
std::string FingerprintHalf(uint32_t iterations, const std::string& id, ByteSpan key33) {
  Bytes hash = {0x00, 0x00};
  hash.insert(hash.end(), key33.begin(), key33.end());
  hash.insert(hash.end(), id.begin(), id.end());
  for (uint32_t i = 0; i < iterations; ++i) {
    hash.insert(hash.end(), key33.begin(), key33.end());
    hash = Sha512(hash);
  }
  std::string digits;
  for (size_t chunk = 0; chunk < 6; ++chunk) {
    uint64_t value = 0;
    for (size_t i = 0; i < 5; ++i) value = (value << 8) | hash[chunk * 5 + i];
    const std::string part = std::to_string(value % 100000);
    digits += std::string(5 - part.size(), '0') + part;
  }
  return digits;
}

TEST(SignalOracleTest, ProviderMatchesIndependentFingerprintComputation) {
  const OracleKeyPair a = GenerateKeyPair();
  const OracleKeyPair b = GenerateKeyPair();
  const std::string a_id = "+15550001111";
  const std::string b_id = "+15550002222";
  const std::string a_half = FingerprintHalf(kFingerprintIterations, a_id, a.public_key);
  const std::string b_half = FingerprintHalf(kFingerprintIterations, b_id, b.public_key);
  const std::string expected = a_half < b_half ? a_half + b_half : b_half + a_half;
  EXPECT_EQ(DisplayableFingerprint(kFingerprintIterations, a_id, a.public_key, b_id, b.public_key),
            expected);
}

TEST(SignalOracleTest, ProviderMatchesIndependentGroupDecryption) {
  auto alice = MustCreate(10);
  ASSERT_TRUE(alice);
  const std::string group = "kat-group";
  const Bytes skdm = alice->CreateSenderKeyDistribution(group, "alice", 1);
  ASSERT_GT(skdm.size(), 1u);
  ProtoFields dist;
  ASSERT_TRUE(ParseProto(ByteSpan(skdm).subspan(1), dist));
  ASSERT_EQ(dist.bytes[3].size(), 32u);  // chainKey
  ASSERT_EQ(dist.bytes[4].size(), 33u);  // signingKey
  EXPECT_EQ(dist.varints[2], 0u);        // iteration

  const Bytes plaintext = Msg("decrypted without libsignal, 33 bytes+");
  const OracleCiphertext ct = alice->GroupEncrypt(group, "alice", 1, plaintext);
  ASSERT_EQ(ct.rc, kOk);
  ASSERT_GT(ct.bytes.size(), 65u);
  const ByteSpan signed_part = ByteSpan(ct.bytes).first(ct.bytes.size() - 64);
  const ByteSpan signature = ByteSpan(ct.bytes).last(64);
  EXPECT_TRUE(Verify(dist.bytes[4], signed_part, signature));
  ProtoFields msg;
  ASSERT_TRUE(ParseProto(signed_part.subspan(1), msg));
  EXPECT_EQ(msg.varints[1], dist.varints[1]);  // Same key id.
  EXPECT_EQ(msg.varints[2], 0u);               // First iteration.

  // Message key seed = HMAC(chain key, 0x01); HKDF(seed, 32 zero bytes, "WhisperGroup", 48)
  // -> IV = 0..15, key = 16..47; AES-256-CBC/PKCS#7.
  const Bytes seed = HmacSha256(dist.bytes[3], Bytes{0x01});
  const Bytes derived = Hkdf(seed, Bytes(32, 0), Msg("WhisperGroup"), 48);
  const ByteSpan iv = ByteSpan(derived).first(16);
  const ByteSpan key = ByteSpan(derived).subspan(16, 32);
  EXPECT_EQ(AesCbcDecrypt(key, iv, msg.bytes[3]), plaintext);
}

TEST(SignalOracleTest, Fingerprints) {
  auto alice = MustCreate(10);
  auto bob = MustCreate(20);
  auto mallory = MustCreate(30);
  ASSERT_TRUE(alice && bob && mallory);
  const std::string alice_id = "+14152222222";
  const std::string bob_id = "+14153333333";

  const std::string alice_view = DisplayableFingerprint(
      kFingerprintIterations, alice_id, alice->IdentityPublic(), bob_id, bob->IdentityPublic());
  const std::string bob_view = DisplayableFingerprint(
      kFingerprintIterations, bob_id, bob->IdentityPublic(), alice_id, alice->IdentityPublic());
  ASSERT_EQ(alice_view.size(), 60u);
  EXPECT_TRUE(AllDigits(alice_view)) << alice_view;
  EXPECT_EQ(alice_view, bob_view);
  const std::string mallory_view = DisplayableFingerprint(
      kFingerprintIterations, alice_id, alice->IdentityPublic(), bob_id, mallory->IdentityPublic());
  ASSERT_EQ(mallory_view.size(), 60u);
  EXPECT_NE(mallory_view, alice_view);

  for (int version : {0, 1}) {
    SCOPED_TRACE(version);
    const Bytes alice_scan =
        ScannableFingerprint(kFingerprintIterations, alice_id, alice->IdentityPublic(), bob_id,
                             bob->IdentityPublic(), version);
    const Bytes bob_scan =
        ScannableFingerprint(kFingerprintIterations, bob_id, bob->IdentityPublic(), alice_id,
                             alice->IdentityPublic(), version);
    const Bytes mallory_scan =
        ScannableFingerprint(kFingerprintIterations, bob_id, mallory->IdentityPublic(), alice_id,
                             alice->IdentityPublic(), version);
    ASSERT_FALSE(alice_scan.empty());
    ASSERT_FALSE(bob_scan.empty());
    if (version == 1) {
      EXPECT_EQ(alice_scan.size(), 74u);
    }
    EXPECT_EQ(CompareScannable(alice_scan, bob_scan), 1);
    EXPECT_EQ(CompareScannable(bob_scan, alice_scan), 1);
    EXPECT_EQ(CompareScannable(alice_scan, mallory_scan), 0);
    // Scanning one's own code is not a match; version 0 notices via the swapped identifiers.
    EXPECT_EQ(CompareScannable(alice_scan, alice_scan), version == 0 ? kErrFpIdentMismatch : 0);
  }
  const Bytes v0 = ScannableFingerprint(kFingerprintIterations, alice_id, alice->IdentityPublic(),
                                        bob_id, bob->IdentityPublic(), 0);
  const Bytes v1 = ScannableFingerprint(kFingerprintIterations, bob_id, bob->IdentityPublic(),
                                        alice_id, alice->IdentityPublic(), 1);
  EXPECT_EQ(CompareScannable(v0, v1), kErrFpVersionMismatch);
  EXPECT_LT(CompareScannable(v0, Bytes{0xff, 0xff, 0xff}), 0);
}

TEST(SignalOracleTest, SignVerifyAgree) {
  const OracleKeyPair a = GenerateKeyPair();
  const OracleKeyPair b = GenerateKeyPair();
  ASSERT_EQ(a.public_key.size(), 33u);
  ASSERT_EQ(a.private_key.size(), 32u);
  EXPECT_EQ(PublicFromPrivate(a.private_key), a.public_key);
  EXPECT_EQ(PublicFromPrivate(b.private_key), b.public_key);

  const Bytes message = Msg("signed payload");
  const Bytes sig1 = Sign(a.private_key, message);
  const Bytes sig2 = Sign(a.private_key, message);
  ASSERT_EQ(sig1.size(), 64u);
  ASSERT_EQ(sig2.size(), 64u);
  EXPECT_NE(sig1, sig2) << "signatures are randomized";
  EXPECT_TRUE(Verify(a.public_key, message, sig1));
  EXPECT_TRUE(Verify(a.public_key, message, sig2));
  EXPECT_FALSE(Verify(b.public_key, message, sig1));
  EXPECT_FALSE(Verify(a.public_key, Msg("signed payloaD"), sig1));
  Bytes bad = sig1;
  bad[5] ^= 0x20;
  EXPECT_FALSE(Verify(a.public_key, message, bad));
  EXPECT_FALSE(Verify(a.public_key, message, Bytes(sig1.begin(), sig1.begin() + 63)));
  EXPECT_TRUE(Verify(a.public_key, Bytes{}, Sign(a.private_key, Bytes{})));

  const Bytes ab = Agree(b.public_key, a.private_key);
  const Bytes ba = Agree(a.public_key, b.private_key);
  ASSERT_EQ(ab.size(), 32u);
  EXPECT_EQ(ab, ba);
  EXPECT_TRUE(Agree(Bytes(32, 9), a.private_key).empty()) << "32-byte key without 0x05 prefix";
  EXPECT_TRUE(PublicFromPrivate(Bytes(31, 1)).empty());
}

TEST(SignalOracleTest, DeterministicSeedReproducesBundles) {
  auto p1 = MustCreate(4242, /*seed=*/42);
  auto p2 = MustCreate(4242, /*seed=*/42);
  auto p3 = MustCreate(4242, /*seed=*/43);
  auto r1 = MustCreate(4242);
  auto r2 = MustCreate(4242);
  ASSERT_TRUE(p1 && p2 && p3 && r1 && r2);
  EXPECT_EQ(p1->IdentityPublic(), p2->IdentityPublic());
  EXPECT_EQ(p1->IdentityPrivate(), p2->IdentityPrivate());
  EXPECT_NE(p1->IdentityPublic(), p3->IdentityPublic());
  EXPECT_NE(r1->IdentityPublic(), r2->IdentityPublic());

  const OracleBundle b1 = p1->GenerateBundle(3, 11, 12, true);
  const OracleBundle b2 = p2->GenerateBundle(3, 11, 12, true);
  ASSERT_NO_FATAL_FAILURE(ExpectWellFormedBundle(b1, true));
  EXPECT_EQ(b1.registration_id, b2.registration_id);
  EXPECT_EQ(b1.device_id, 3u);
  EXPECT_EQ(b1.device_id, b2.device_id);
  EXPECT_EQ(b1.prekey_id, b2.prekey_id);
  EXPECT_EQ(b1.prekey_public, b2.prekey_public);
  EXPECT_EQ(b1.signed_prekey_id, b2.signed_prekey_id);
  EXPECT_EQ(b1.signed_prekey_public, b2.signed_prekey_public);
  EXPECT_EQ(b1.signed_prekey_signature, b2.signed_prekey_signature);
  EXPECT_EQ(b1.identity_key, b2.identity_key);
  EXPECT_NE(b1.signed_prekey_public, b1.prekey_public);

  // Whole deterministic conversations are reproducible byte for byte.
  auto peer1 = MustCreate(7, /*seed=*/1000);
  auto peer2 = MustCreate(7, /*seed=*/1000);
  ASSERT_TRUE(peer1 && peer2);
  ASSERT_EQ(peer1->ProcessBundle("p", 3, b1), kOk);
  ASSERT_EQ(peer2->ProcessBundle("p", 3, b2), kOk);
  const OracleCiphertext c1 = peer1->Encrypt("p", 3, Msg("same"));
  const OracleCiphertext c2 = peer2->Encrypt("p", 3, Msg("same"));
  ASSERT_EQ(c1.rc, kOk);
  ASSERT_EQ(c2.rc, kOk);
  EXPECT_EQ(c1.bytes, c2.bytes);
  const OraclePlaintext d1 = p1->Decrypt("peer", 1, c1.bytes, c1.type);
  ASSERT_EQ(d1.rc, kOk);
  EXPECT_EQ(d1.plaintext, Msg("same"));
}

TEST(SignalOracleTest, CreateWithIdentity) {
  const OracleKeyPair id = GenerateKeyPair();
  auto party = OracleParty::CreateWithIdentity(99, id.public_key, id.private_key);
  ASSERT_NE(party, nullptr);
  EXPECT_EQ(party->IdentityPublic(), id.public_key);
  EXPECT_EQ(party->IdentityPrivate(), id.private_key);
  EXPECT_EQ(party->RegistrationId(), 99u);
  const OracleBundle bundle = party->GenerateBundle(1, 1, 1, false);
  ASSERT_NO_FATAL_FAILURE(ExpectWellFormedBundle(bundle, false));
  EXPECT_EQ(bundle.identity_key, id.public_key);

  const OracleKeyPair other = GenerateKeyPair();
  EXPECT_EQ(OracleParty::CreateWithIdentity(99, id.public_key, other.private_key), nullptr);
  EXPECT_EQ(OracleParty::CreateWithIdentity(99, Bytes(33, 0), id.private_key), nullptr);

  // A party restored with the same identity is interchangeable for the peer.
  auto alice = MustCreate(5);
  ASSERT_TRUE(alice);
  ASSERT_NO_FATAL_FAILURE(Establish(*alice, *party, false));
}

}  // namespace
}  // namespace sotto::oracle
