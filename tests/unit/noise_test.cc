// Unit tests of noise/: CipherState limits and rekey, HandshakeState behaviour beyond the
// published vectors (errors, tampering, size limits), and the Noise Pipes helper.
//
// Suite names start with "noise_" so that `ctest -R noise` selects them.
#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

#include "base/bytes.h"
#include "crypto/aead.h"
#include "crypto/blake2b.h"
#include "crypto/random.h"
#include "noise/cipher_state.h"
#include "noise/error.h"
#include "noise/handshake_state.h"
#include "noise/pipes.h"
#include "noise/symmetric_state.h"

namespace sotto::noise {
namespace {

CipherKey TestKey(uint8_t seed) {
  CipherKey key;
  for (size_t i = 0; i < key.size(); ++i) key.data()[i] = static_cast<uint8_t>(seed + i);
  return key;
}

uint16_t Detail(NoiseErr e) { return static_cast<uint16_t>(e); }

// Encrypts with `from` and decrypts with `to`; returns the plaintext seen.
std::string RoundTrip(CipherState& from, CipherState& to, std::string_view text, ByteSpan ad = {}) {
  Bytes ciphertext(text.size() + kTagSize);
  auto written = from.EncryptWithAd(ad, AsBytes(text), ciphertext);
  EXPECT_TRUE(written);
  if (!written) return {};
  Bytes plaintext(ciphertext.size());
  auto read = to.DecryptWithAd(ad, ByteSpan(ciphertext).first(*written), plaintext);
  EXPECT_TRUE(read);
  if (!read) return {};
  return std::string(AsString(ByteSpan(plaintext).first(*read)));
}

// ---------------------------------------------------------------- CipherState

TEST(noise_CipherState, EmptyKeyPassesThrough) {
  CipherState c;
  EXPECT_FALSE(c.HasKey());
  Bytes out(5);
  auto written = c.EncryptWithAd(AsBytes("ad"), AsBytes("hello"), out);
  ASSERT_TRUE(written);
  EXPECT_EQ(AsString(out), "hello");
  EXPECT_EQ(c.nonce(), 0u);
}

TEST(noise_CipherState, RoundTripAndNonceIsLittleEndianCounter) {
  CipherState a;
  CipherState b;
  a.InitializeKey(TestKey(1));
  b.InitializeKey(TestKey(1));
  EXPECT_EQ(RoundTrip(a, b, "first", AsBytes("ad")), "first");
  EXPECT_EQ(RoundTrip(a, b, ""), "");
  EXPECT_EQ(RoundTrip(a, b, "third"), "third");
  EXPECT_EQ(a.nonce(), 3u);
  EXPECT_EQ(b.nonce(), 3u);

  // n = 0x0102 must be the nonce 00000000 02 01 00 00 00 00 00 00 (spec §12.3).
  CipherState c;
  c.InitializeKey(TestKey(1));
  c.SetNonce(0x0102);
  Bytes ours(kTagSize + 3);
  ASSERT_TRUE(c.EncryptWithAd({}, AsBytes("abc"), ours));
  Bytes theirs(kTagSize + 3);
  ASSERT_TRUE(crypto::ChaChaPolyEncrypt(TestKey(1).span(), FromHex("000000000201000000000000"), {},
                                        AsBytes("abc"), theirs));
  EXPECT_EQ(ToHex(ours), ToHex(theirs));
}

TEST(noise_CipherState, FailedDecryptKeepsNonceAndReportsUnauthenticated) {
  CipherState a;
  CipherState b;
  a.InitializeKey(TestKey(1));
  b.InitializeKey(TestKey(1));
  Bytes ciphertext(4 + kTagSize);
  ASSERT_TRUE(a.EncryptWithAd({}, AsBytes("data"), ciphertext));
  ciphertext[2] ^= 0x10;
  Bytes out(ciphertext.size());
  auto read = b.DecryptWithAd({}, ciphertext, out);
  ASSERT_FALSE(read);
  EXPECT_EQ(read.error().code, Code::kUnauthenticated);
  EXPECT_EQ(read.error().module, Module::kNoise);
  EXPECT_EQ(read.error().detail, Detail(NoiseErr::kDecryptFailed));
  EXPECT_EQ(b.nonce(), 0u);
  ciphertext[2] ^= 0x10;
  EXPECT_TRUE(b.DecryptWithAd({}, ciphertext, out));
  EXPECT_EQ(b.nonce(), 1u);
  // Too short to hold a tag.
  auto short_read = b.DecryptWithAd({}, ByteSpan(ciphertext).first(kTagSize - 1), out);
  ASSERT_FALSE(short_read);
  EXPECT_EQ(short_read.error().detail, Detail(NoiseErr::kMessageTooShort));
}

TEST(noise_CipherState, NonceExhaustionAtTheEdge) {
  CipherState a;
  CipherState b;
  a.InitializeKey(TestKey(2));
  b.InitializeKey(TestKey(2));
  a.SetNonce(kMaxNonce - 1);  // 2^64-2: the last usable nonce
  b.SetNonce(kMaxNonce - 1);
  EXPECT_EQ(RoundTrip(a, b, "last"), "last");
  EXPECT_EQ(a.nonce(), kMaxNonce);
  Bytes out(64);
  auto more = a.EncryptWithAd({}, AsBytes("one more"), out);
  ASSERT_FALSE(more);
  EXPECT_EQ(more.error().code, Code::kResourceExhausted);
  EXPECT_EQ(more.error().detail, Detail(NoiseErr::kNonceExhausted));
  EXPECT_EQ(a.nonce(), kMaxNonce);  // never wraps
  auto again = a.EncryptWithAd({}, {}, out);
  ASSERT_FALSE(again);
  auto read = b.DecryptWithAd({}, Bytes(kTagSize, 0), out);
  ASSERT_FALSE(read);
  EXPECT_EQ(read.error().detail, Detail(NoiseErr::kNonceExhausted));
}

TEST(noise_CipherState, RekeyFollowsSpecAndKeepsNonce) {
  CipherState a;
  CipherState b;
  a.InitializeKey(TestKey(3));
  b.InitializeKey(TestKey(3));
  EXPECT_EQ(RoundTrip(a, b, "before"), "before");
  ASSERT_TRUE(a.Rekey());
  EXPECT_EQ(a.nonce(), 1u);  // §11.3: rekey does not reset n

  // REKEY(k) = ENCRYPT(k, 2^64-1, empty, 32 zeros)[0:32] (§4.2).
  Bytes block(32 + kTagSize);
  ASSERT_TRUE(crypto::ChaChaPolyEncrypt(TestKey(3).span(), FromHex("00000000ffffffffffffffff"), {},
                                        Bytes(32, 0), block));
  CipherState expected;
  expected.InitializeKey(CipherKey(ByteSpan(block).first(32)));
  expected.SetNonce(1);
  Bytes ours(4 + kTagSize);
  Bytes theirs(4 + kTagSize);
  ASSERT_TRUE(a.EncryptWithAd({}, AsBytes("next"), ours));
  ASSERT_TRUE(expected.EncryptWithAd({}, AsBytes("next"), theirs));
  EXPECT_EQ(ToHex(ours), ToHex(theirs));

  // The peer that has not rekeyed cannot read; after rekeying it can.
  Bytes out(ours.size());
  b.SetNonce(1);
  EXPECT_FALSE(b.DecryptWithAd({}, ours, out));
  ASSERT_TRUE(b.Rekey());
  auto read = b.DecryptWithAd({}, ours, out);
  ASSERT_TRUE(read);
  EXPECT_EQ(AsString(ByteSpan(out).first(*read)), "next");

  CipherState empty;
  auto no_key = empty.Rekey();
  ASSERT_FALSE(no_key);
  EXPECT_EQ(no_key.error().code, Code::kFailedPrecondition);
}

TEST(noise_CipherState, MessageSizeLimitAtAndPast65535) {
  CipherState a;
  CipherState b;
  a.InitializeKey(TestKey(4));
  b.InitializeKey(TestKey(4));
  Bytes big(kMaxTransportPlaintext, 0x61);
  Bytes ciphertext(kMaxNoiseMessage + 1);
  auto written = a.EncryptWithAd({}, big, ciphertext);
  ASSERT_TRUE(written);
  EXPECT_EQ(*written, kMaxNoiseMessage);
  Bytes plaintext(kMaxNoiseMessage);
  auto read = b.DecryptWithAd({}, ByteSpan(ciphertext).first(*written), plaintext);
  ASSERT_TRUE(read);
  EXPECT_EQ(*read, kMaxTransportPlaintext);

  big.push_back(0x61);  // one byte more: the ciphertext would be 65536 bytes
  auto too_big = a.EncryptWithAd({}, big, ciphertext);
  ASSERT_FALSE(too_big);
  EXPECT_EQ(too_big.error().code, Code::kResourceExhausted);
  EXPECT_EQ(too_big.error().detail, Detail(NoiseErr::kMessageTooLarge));
  EXPECT_EQ(a.nonce(), 1u);  // nothing consumed

  auto too_long = b.DecryptWithAd({}, ciphertext, plaintext);  // 65536 bytes
  ASSERT_FALSE(too_long);
  EXPECT_EQ(too_long.error().detail, Detail(NoiseErr::kMessageTooLarge));

  // Without a key the limit applies to the copy too.
  CipherState empty;
  Bytes huge(kMaxNoiseMessage + 1);
  EXPECT_TRUE(empty.EncryptWithAd({}, ByteSpan(huge).first(kMaxNoiseMessage), huge));
  EXPECT_FALSE(empty.EncryptWithAd({}, huge, huge));
}

TEST(noise_CipherState, SmallBufferAndMovedFromAreErrors) {
  CipherState a;
  a.InitializeKey(TestKey(5));
  Bytes small(kTagSize + 1);
  auto written = a.EncryptWithAd({}, AsBytes("ab"), small);
  ASSERT_FALSE(written);
  EXPECT_EQ(written.error().detail, Detail(NoiseErr::kBufferTooSmall));
  EXPECT_EQ(a.nonce(), 0u);

  CipherState moved = std::move(a);
  EXPECT_TRUE(moved.HasKey());
  Bytes out(64);
  // A moved-from CipherState must not degrade to the empty-key pass-through.
  // NOLINTNEXTLINE(bugprone-use-after-move,clang-analyzer-cplusplus.Move): on purpose
  auto stale = a.EncryptWithAd({}, AsBytes("secret"), out);
  ASSERT_FALSE(stale);
  EXPECT_EQ(stale.error().code, Code::kFailedPrecondition);
  EXPECT_TRUE(moved.EncryptWithAd({}, AsBytes("secret"), out));
}

// ------------------------------------------------------------- SymmetricState

TEST(noise_SymmetricState, ProtocolNamePaddedOrHashed) {
  const std::string short_name = "Noise_XX_25519_ChaChaPoly_BLAKE2b";
  SymmetricState s(short_name);
  HandshakeHash padded{};
  std::copy(short_name.begin(), short_name.end(), padded.begin());
  EXPECT_EQ(s.GetHandshakeHash(), padded);
  EXPECT_FALSE(s.HasKey());

  const std::string long_name(65, 'N');
  SymmetricState l(long_name);
  EXPECT_EQ(l.GetHandshakeHash(), crypto::Blake2b(AsBytes(long_name)));
}

TEST(noise_SymmetricState, EncryptAndDecryptAndHashAgree) {
  SymmetricState a("Noise_NN_25519_ChaChaPoly_BLAKE2b");
  SymmetricState b("Noise_NN_25519_ChaChaPoly_BLAKE2b");
  a.MixKey(AsBytes("shared secret"));
  b.MixKey(AsBytes("shared secret"));
  Bytes buffer(5 + kTagSize);
  auto written = a.EncryptAndHash(AsBytes("hello"), buffer);
  ASSERT_TRUE(written);
  auto read = b.DecryptAndHash(buffer, buffer);  // in place
  ASSERT_TRUE(read);
  EXPECT_EQ(AsString(ByteSpan(buffer).first(*read)), "hello");
  EXPECT_EQ(a.GetHandshakeHash(), b.GetHandshakeHash());
  auto [a1, a2] = a.Split();
  auto [b1, b2] = b.Split();
  EXPECT_EQ(RoundTrip(a1, b1, "c1"), "c1");
  EXPECT_EQ(RoundTrip(b2, a2, "c2"), "c2");
}

// ------------------------------------------------------------- HandshakeState

struct Peers {
  crypto::DeterministicRandom random{42};
  KeyPair alice_static = KeyPair::Generate(random);
  KeyPair bob_static = KeyPair::Generate(random);
};

HandshakeKeys Keys(std::optional<KeyPair> s, std::optional<crypto::X25519Public> rs = {}) {
  HandshakeKeys keys;
  keys.s = std::move(s);
  keys.rs = rs;
  return keys;
}

// Runs the handshake to the end, checking each payload; returns false on any error.
bool RunHandshake(HandshakeState& initiator, HandshakeState& responder) {
  HandshakeState* writer = &initiator;
  HandshakeState* reader = &responder;
  int i = 0;
  while (!initiator.IsFinished() || !responder.IsFinished()) {
    auto message = writer->WriteMessage(AsBytes("payload " + std::to_string(i)));
    if (!message) return false;
    auto payload = reader->ReadMessage(*message);
    if (!payload || AsString(*payload) != "payload " + std::to_string(i)) return false;
    std::swap(writer, reader);
    ++i;
  }
  return true;
}

TEST(noise_Handshake, XXRoundTripAndTransport) {
  Peers p;
  auto i = HandshakeState::Initialize(HandshakePattern::kXX, Role::kInitiator, AsBytes("pro"),
                                      Keys(p.alice_static), p.random);
  auto r = HandshakeState::Initialize(HandshakePattern::kXX, Role::kResponder, AsBytes("pro"),
                                      Keys(p.bob_static), p.random);
  ASSERT_TRUE(i && r);
  EXPECT_EQ(i->NextAction(), HandshakeAction::kWriteMessage);
  EXPECT_EQ(r->NextAction(), HandshakeAction::kReadMessage);
  ASSERT_TRUE(RunHandshake(*i, *r));
  EXPECT_EQ(i->NextAction(), HandshakeAction::kSplit);
  EXPECT_EQ(i->GetHandshakeHash(), r->GetHandshakeHash());
  EXPECT_EQ(*i->RemoteStatic(), p.bob_static.public_key);
  EXPECT_EQ(*r->RemoteStatic(), p.alice_static.public_key);
  auto ti = i->Split();
  auto tr = r->Split();
  ASSERT_TRUE(ti && tr);
  EXPECT_EQ(i->NextAction(), HandshakeAction::kDone);
  EXPECT_FALSE(i->Split());  // only once
  for (int n = 0; n < 5; ++n) {
    EXPECT_EQ(RoundTrip(ti->send, tr->receive, "to responder"), "to responder");
    EXPECT_EQ(RoundTrip(tr->send, ti->receive, "to initiator"), "to initiator");
  }
}

TEST(noise_Handshake, EveryInteractivePatternCompletes) {
  for (int raw = 0; raw <= static_cast<int>(HandshakePattern::kI1X1); ++raw) {
    const auto pattern = static_cast<HandshakePattern>(raw);
    SCOPED_TRACE(std::string(PatternName(pattern)));
    EXPECT_EQ(PatternFromName(PatternName(pattern)), pattern);
    Peers p;
    // Give each side the peer's static key only where the pattern pre-shares it.
    const std::string name(PatternName(pattern));
    const bool one_way = IsOneWay(pattern);
    const bool bob_known = one_way || name.find('K', 1) != std::string::npos;
    const bool alice_known = name[0] == 'K';
    auto i = HandshakeState::Initialize(
        pattern, Role::kInitiator, {},
        Keys(p.alice_static, bob_known ? std::optional(p.bob_static.public_key) : std::nullopt),
        p.random);
    auto r = HandshakeState::Initialize(
        pattern, Role::kResponder, {},
        Keys(p.bob_static, alice_known ? std::optional(p.alice_static.public_key) : std::nullopt),
        p.random);
    ASSERT_TRUE(i) << i.error().ToString();
    ASSERT_TRUE(r) << r.error().ToString();
    ASSERT_TRUE(RunHandshake(*i, *r));
    EXPECT_EQ(i->GetHandshakeHash(), r->GetHandshakeHash());
    auto ti = i->Split();
    auto tr = r->Split();
    ASSERT_TRUE(ti && tr);
    EXPECT_EQ(RoundTrip(ti->send, tr->receive, "data"), "data");
    if (!one_way) {
      EXPECT_EQ(RoundTrip(tr->send, ti->receive, "back"), "back");
    }
  }
  EXPECT_EQ(ProtocolName(HandshakePattern::kXXfallback),
            "Noise_XXfallback_25519_ChaChaPoly_BLAKE2b");
  EXPECT_FALSE(PatternFromName("XXpsk3"));
}

TEST(noise_Handshake, KeysMustMatchThePattern) {
  Peers p;
  auto missing_s = HandshakeState::Initialize(HandshakePattern::kXX, Role::kInitiator, {},
                                              Keys(std::nullopt), p.random);
  ASSERT_FALSE(missing_s);
  EXPECT_EQ(missing_s.error().detail, Detail(NoiseErr::kMissingKey));
  auto missing_rs = HandshakeState::Initialize(HandshakePattern::kIK, Role::kInitiator, {},
                                               Keys(p.alice_static), p.random);
  ASSERT_FALSE(missing_rs);
  EXPECT_EQ(missing_rs.error().detail, Detail(NoiseErr::kMissingKey));
  auto extra_rs =
      HandshakeState::Initialize(HandshakePattern::kXX, Role::kInitiator, {},
                                 Keys(p.alice_static, p.bob_static.public_key), p.random);
  ASSERT_FALSE(extra_rs);
  EXPECT_EQ(extra_rs.error().detail, Detail(NoiseErr::kUnexpectedKey));
  HandshakeKeys with_e = Keys(p.bob_static);
  with_e.e = KeyPair::Generate(p.random);
  auto responder_n = HandshakeState::Initialize(HandshakePattern::kN, Role::kResponder, {},
                                                std::move(with_e), p.random);
  ASSERT_FALSE(responder_n);  // the N responder never has an ephemeral
  EXPECT_EQ(responder_n.error().detail, Detail(NoiseErr::kUnexpectedKey));
  auto fallback_no_e = HandshakeState::Initialize(HandshakePattern::kXXfallback, Role::kResponder,
                                                  {}, Keys(p.alice_static), p.random);
  ASSERT_FALSE(fallback_no_e);
  EXPECT_EQ(fallback_no_e.error().detail, Detail(NoiseErr::kMissingKey));
}

// Flips one bit at several places of every message; each must be rejected and end the
// handshake for good.
TEST(noise_Handshake, TamperedMessagesAreRejectedAndFinal) {
  for (size_t target = 0; target < 3; ++target) {
    for (size_t where : {size_t{0}, size_t{40}, size_t{1000}}) {
      Peers p;
      auto i = HandshakeState::Initialize(HandshakePattern::kXX, Role::kInitiator, {},
                                          Keys(p.alice_static), p.random);
      auto r = HandshakeState::Initialize(HandshakePattern::kXX, Role::kResponder, {},
                                          Keys(p.bob_static), p.random);
      ASSERT_TRUE(i && r);
      HandshakeState* writer = &*i;
      HandshakeState* reader = &*r;
      for (size_t m = 0; m <= target; ++m) {
        auto message = writer->WriteMessage(AsBytes("p"));
        ASSERT_TRUE(message);
        if (m == target) {
          (*message)[std::min(where, message->size() - 1)] ^= 0x04;
          auto read = reader->ReadMessage(*message);
          // Message 1 is cleartext (e, payload "p"): a flipped bit there only shows up
          // as a different key or payload, and breaks message 2 instead.
          if (m == 0) {
            if (read) {
              auto reply = reader->WriteMessage({});
              ASSERT_TRUE(reply);
              EXPECT_FALSE(writer->ReadMessage(*reply));
              EXPECT_EQ(writer->NextAction(), HandshakeAction::kFailed);
            }
            break;
          }
          ASSERT_FALSE(read);
          EXPECT_EQ(read.error().code, Code::kUnauthenticated);
          EXPECT_EQ(reader->NextAction(), HandshakeAction::kFailed);
          auto after = reader->ReadMessage(*message);
          ASSERT_FALSE(after);
          EXPECT_EQ(after.error().detail, Detail(NoiseErr::kHandshakeFailed));
          EXPECT_FALSE(reader->WriteMessage({}));
          EXPECT_FALSE(reader->Split());
        } else {
          ASSERT_TRUE(reader->ReadMessage(*message));
        }
        std::swap(writer, reader);
      }
    }
  }
}

TEST(noise_Handshake, TruncatedAndWrongTurnAreFinalErrors) {
  Peers p;
  auto i = HandshakeState::Initialize(HandshakePattern::kNN, Role::kInitiator, {}, {}, p.random);
  auto r = HandshakeState::Initialize(HandshakePattern::kNN, Role::kResponder, {}, {}, p.random);
  ASSERT_TRUE(i && r);
  auto first = i->WriteMessage({});
  ASSERT_TRUE(first);
  auto truncated = r->ReadMessage(ByteSpan(*first).first(31));
  ASSERT_FALSE(truncated);
  EXPECT_EQ(truncated.error().detail, Detail(NoiseErr::kMessageTooShort));
  EXPECT_EQ(r->NextAction(), HandshakeAction::kFailed);

  // Writing twice in a row is not the initiator's turn.
  auto again = i->WriteMessage({});
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().detail, Detail(NoiseErr::kWrongState));
  EXPECT_EQ(i->NextAction(), HandshakeAction::kFailed);
  // Nor is reading first.
  auto j = HandshakeState::Initialize(HandshakePattern::kNN, Role::kInitiator, {}, {}, p.random);
  ASSERT_TRUE(j);
  auto read_first = j->ReadMessage(*first);
  ASSERT_FALSE(read_first);
  EXPECT_EQ(read_first.error().detail, Detail(NoiseErr::kWrongState));
  EXPECT_EQ(j->NextAction(), HandshakeAction::kFailed);
}

TEST(noise_Handshake, MessageSizeLimitAtAndPast65535) {
  Peers p;
  auto i = HandshakeState::Initialize(HandshakePattern::kNN, Role::kInitiator, {}, {}, p.random);
  auto r = HandshakeState::Initialize(HandshakePattern::kNN, Role::kResponder, {}, {}, p.random);
  ASSERT_TRUE(i && r);
  // NN message 1 = e (32 bytes) + cleartext payload: 65503 bytes of payload fill it.
  const Bytes fits(kMaxNoiseMessage - kDhSize, 0x42);
  auto first = i->WriteMessage(fits);
  ASSERT_TRUE(first);
  EXPECT_EQ(first->size(), kMaxNoiseMessage);
  auto payload = r->ReadMessage(*first);
  ASSERT_TRUE(payload);
  EXPECT_EQ(payload->size(), fits.size());
  // Message 2 = e + encrypted payload: one byte over the limit is refused.
  const Bytes too_big(kMaxNoiseMessage - kDhSize - kTagSize + 1, 0x43);
  auto second = r->WriteMessage(too_big);
  ASSERT_FALSE(second);
  EXPECT_EQ(second.error().code, Code::kResourceExhausted);
  EXPECT_EQ(second.error().detail, Detail(NoiseErr::kMessageTooLarge));

  // A reader refuses anything longer than 65535 bytes before looking at it.
  auto j = HandshakeState::Initialize(HandshakePattern::kNN, Role::kResponder, {}, {}, p.random);
  ASSERT_TRUE(j);
  Bytes oversized = *first;
  oversized.push_back(0);
  auto read = j->ReadMessage(oversized);
  ASSERT_FALSE(read);
  EXPECT_EQ(read.error().detail, Detail(NoiseErr::kMessageTooLarge));
}

TEST(noise_Handshake, LowOrderEphemeralIsRejected) {
  Peers p;
  auto r = HandshakeState::Initialize(HandshakePattern::kXX, Role::kResponder, {},
                                      Keys(p.bob_static), p.random);
  ASSERT_TRUE(r);
  ASSERT_TRUE(r->ReadMessage(Bytes(32, 0)));  // e = 0, a low-order point
  auto reply = r->WriteMessage({});           // ee fails
  ASSERT_FALSE(reply);
  EXPECT_EQ(reply.error().detail, Detail(NoiseErr::kDhFailed));
  EXPECT_EQ(r->NextAction(), HandshakeAction::kFailed);
}

// ------------------------------------------------------------------ Noise Pipes

struct PipeSetup {
  crypto::DeterministicRandom random{7};
  KeyPair client_static = KeyPair::Generate(random);
  KeyPair server_static = KeyPair::Generate(random);
};

// Runs a pipe handshake; returns the payloads each side received, in order.
struct PipeRun {
  std::vector<std::string> server_got;
  std::vector<std::string> client_got;
};

PipeRun Drive(NoisePipe& client, NoisePipe& server) {
  PipeRun run;
  auto m1 = client.WriteMessage(client.pattern() == HandshakePattern::kIK ? AsBytes("0-rtt")
                                                                          : ByteSpan());
  EXPECT_TRUE(m1);
  if (!m1) return run;
  auto p1 = server.ReadMessage(*m1);
  EXPECT_TRUE(p1);
  if (!p1) return run;
  run.server_got.emplace_back(AsString(*p1));
  auto m2 = server.WriteMessage(AsBytes("server hello"));
  EXPECT_TRUE(m2);
  if (!m2) return run;
  auto p2 = client.ReadMessage(*m2);
  EXPECT_TRUE(p2);
  if (!p2) return run;
  run.client_got.emplace_back(AsString(*p2));
  if (!client.IsFinished()) {
    auto m3 = client.WriteMessage(AsBytes("client finish"));
    EXPECT_TRUE(m3);
    if (!m3) return run;
    auto p3 = server.ReadMessage(*m3);
    EXPECT_TRUE(p3);
    if (!p3) return run;
    run.server_got.emplace_back(AsString(*p3));
  }
  return run;
}

void ExpectTransportWorks(NoisePipe& client, NoisePipe& server) {
  ASSERT_TRUE(client.IsFinished());
  ASSERT_TRUE(server.IsFinished());
  EXPECT_EQ(client.GetHandshakeHash(), server.GetHandshakeHash());
  auto c = client.Split();
  auto s = server.Split();
  ASSERT_TRUE(c && s);
  EXPECT_EQ(RoundTrip(c->send, s->receive, "request"), "request");
  EXPECT_EQ(RoundTrip(s->send, c->receive, "response"), "response");
}

TEST(noise_CipherState, AutoRekeyEveryIntervalKeepsBothEndsInStep) {
  CipherKey key;
  key.mutable_span()[0] = 7;
  CipherState sender, plain_sender, receiver;
  sender.InitializeKey(key);
  plain_sender.InitializeKey(key);
  receiver.InitializeKey(key);
  sender.EnableAutoRekey();
  receiver.EnableAutoRekey();
  for (CipherState* c : {&sender, &plain_sender, &receiver}) c->SetNonce(kRekeyInterval - 1);
  const Bytes msg = FromHex("00112233");
  Bytes a(msg.size() + kTagSize), b(msg.size() + kTagSize), out(msg.size());
  // n = interval - 1: same key, same ciphertext; afterwards the auto-rekeying side rekeys.
  ASSERT_TRUE(sender.EncryptWithAd({}, msg, a));
  ASSERT_TRUE(plain_sender.EncryptWithAd({}, msg, b));
  EXPECT_EQ(a, b);
  ASSERT_TRUE(receiver.DecryptWithAd({}, a, out));
  // n = interval: the keys now differ, and the receiver followed the sender.
  ASSERT_TRUE(sender.EncryptWithAd({}, msg, a));
  ASSERT_TRUE(plain_sender.EncryptWithAd({}, msg, b));
  EXPECT_NE(a, b);
  auto n = receiver.DecryptWithAd({}, a, out);
  ASSERT_TRUE(n);
  EXPECT_EQ(out, msg);
}

TEST(noise_Pipes, SplitCiphersRekeyInStepAcrossTheInterval) {
  PipeSetup t;
  NoisePipe client = NoisePipe::Client(t.client_static, t.server_static.public_key, t.random);
  NoisePipe server = NoisePipe::Server(t.server_static, t.random);
  Drive(client, server);
  auto c = client.Split();
  auto s = server.Split();
  ASSERT_TRUE(c && s);
  c->send.SetNonce(kRekeyInterval - 2);
  s->receive.SetNonce(kRekeyInterval - 2);
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(RoundTrip(c->send, s->receive, "across"), "across") << i;
  }
}

TEST(noise_Pipes, IKWithKnownServerKey) {
  PipeSetup t;
  NoisePipe client = NoisePipe::Client(t.client_static, t.server_static.public_key, t.random);
  NoisePipe server = NoisePipe::Server(t.server_static, t.random);
  EXPECT_EQ(client.pattern(), HandshakePattern::kIK);
  EXPECT_EQ(server.pattern(), std::nullopt);
  const PipeRun run = Drive(client, server);
  EXPECT_EQ(run.server_got, (std::vector<std::string>{"0-rtt"}));
  EXPECT_EQ(run.client_got, (std::vector<std::string>{"server hello"}));
  EXPECT_EQ(client.pattern(), HandshakePattern::kIK);
  EXPECT_EQ(server.pattern(), HandshakePattern::kIK);
  EXPECT_EQ(*server.RemoteStatic(), t.client_static.public_key);
  ExpectTransportWorks(client, server);
}

TEST(noise_Pipes, IKWithStaleServerKeyFallsBack) {
  PipeSetup t;
  const KeyPair old_server = KeyPair::Generate(t.random);
  NoisePipe client = NoisePipe::Client(t.client_static, old_server.public_key, t.random);
  NoisePipe server = NoisePipe::Server(t.server_static, t.random);
  const PipeRun run = Drive(client, server);
  // The 0-RTT payload is lost; the handshake completes as XXfallback.
  EXPECT_EQ(run.server_got, (std::vector<std::string>{"", "client finish"}));
  EXPECT_EQ(run.client_got, (std::vector<std::string>{"server hello"}));
  EXPECT_EQ(client.pattern(), HandshakePattern::kXXfallback);
  EXPECT_EQ(server.pattern(), HandshakePattern::kXXfallback);
  EXPECT_EQ(*client.RemoteStatic(), t.server_static.public_key);  // the new key
  EXPECT_EQ(*server.RemoteStatic(), t.client_static.public_key);
  ExpectTransportWorks(client, server);
}

TEST(noise_Pipes, XXWithoutServerKey) {
  PipeSetup t;
  NoisePipe client = NoisePipe::Client(t.client_static, std::nullopt, t.random);
  NoisePipe server = NoisePipe::Server(t.server_static, t.random);
  const PipeRun run = Drive(client, server);
  EXPECT_EQ(run.server_got, (std::vector<std::string>{"", "client finish"}));
  EXPECT_EQ(client.pattern(), HandshakePattern::kXX);
  EXPECT_EQ(server.pattern(), HandshakePattern::kXX);
  EXPECT_EQ(*client.RemoteStatic(), t.server_static.public_key);
  ExpectTransportWorks(client, server);
}

TEST(noise_Pipes, WireFormatIsTagThenNoiseMessage) {
  PipeSetup t;
  NoisePipe ik = NoisePipe::Client(t.client_static, t.server_static.public_key, t.random);
  auto m = ik.WriteMessage({});
  ASSERT_TRUE(m);
  EXPECT_EQ((*m)[0], static_cast<uint8_t>(PipeTag::kIK));
  EXPECT_EQ(m->size(), 1 + 32 + 48 + 16);  // tag, e, encrypted s, empty encrypted payload
  NoisePipe xx = NoisePipe::Client(t.client_static, std::nullopt, t.random);
  auto x = xx.WriteMessage({});
  ASSERT_TRUE(x);
  EXPECT_EQ((*x)[0], static_cast<uint8_t>(PipeTag::kXX));
  EXPECT_EQ(x->size(), 1 + 32);
  EXPECT_EQ(AsString(PipePrologue(PipeTag::kXXfallback)), std::string("Sotto/1\x03"));
}

TEST(noise_Pipes, FirstXXPayloadWouldBeCleartextSoItIsRefused) {
  PipeSetup t;
  NoisePipe client = NoisePipe::Client(t.client_static, std::nullopt, t.random);
  auto m = client.WriteMessage(AsBytes("secret"));
  ASSERT_FALSE(m);
  EXPECT_EQ(m.error().code, Code::kInvalidArgument);
  EXPECT_EQ(m.error().detail, Detail(NoiseErr::kCleartextPayload));
  EXPECT_EQ(client.NextAction(), HandshakeAction::kFailed);

  // The server refuses an XX message 1 with a payload, e.g. an IK message whose tag an
  // attacker rewrote to XX.
  NoisePipe ik = NoisePipe::Client(t.client_static, t.server_static.public_key, t.random);
  auto m1 = ik.WriteMessage(AsBytes("0-rtt"));
  ASSERT_TRUE(m1);
  (*m1)[0] = static_cast<uint8_t>(PipeTag::kXX);
  NoisePipe server = NoisePipe::Server(t.server_static, t.random);
  auto read = server.ReadMessage(*m1);
  ASSERT_FALSE(read);
  EXPECT_EQ(read.error().detail, Detail(NoiseErr::kCleartextPayload));
}

TEST(noise_Pipes, BadTagsAreRejected) {
  PipeSetup t;
  NoisePipe client = NoisePipe::Client(t.client_static, t.server_static.public_key, t.random);
  auto m1 = client.WriteMessage({});
  ASSERT_TRUE(m1);
  for (uint8_t tag : {uint8_t{0x00}, uint8_t{0x03}, uint8_t{0x04}, uint8_t{0xff}}) {
    NoisePipe server = NoisePipe::Server(t.server_static, t.random);
    Bytes bad = *m1;
    bad[0] = tag;
    auto read = server.ReadMessage(bad);
    ASSERT_FALSE(read);
    EXPECT_EQ(read.error().detail, Detail(NoiseErr::kBadPipeTag));
    EXPECT_EQ(server.NextAction(), HandshakeAction::kFailed);
  }
  NoisePipe server = NoisePipe::Server(t.server_static, t.random);
  EXPECT_FALSE(server.ReadMessage({}));
  // A client that sent IK refuses an XX reply.
  NoisePipe server2 = NoisePipe::Server(t.server_static, t.random);
  ASSERT_TRUE(server2.ReadMessage(*m1));
  auto reply = server2.WriteMessage({});
  ASSERT_TRUE(reply);
  (*reply)[0] = static_cast<uint8_t>(PipeTag::kXX);
  auto read = client.ReadMessage(*reply);
  ASSERT_FALSE(read);
  EXPECT_EQ(read.error().detail, Detail(NoiseErr::kBadPipeTag));
}

TEST(noise_Pipes, TamperedMessagesAreRejected) {
  // Tamper with the second message (IK reply) and the third (XXfallback finish).
  {
    PipeSetup t;
    NoisePipe client = NoisePipe::Client(t.client_static, t.server_static.public_key, t.random);
    NoisePipe server = NoisePipe::Server(t.server_static, t.random);
    auto m1 = client.WriteMessage(AsBytes("x"));
    ASSERT_TRUE(m1 && server.ReadMessage(*m1));
    auto m2 = server.WriteMessage(AsBytes("y"));
    ASSERT_TRUE(m2);
    m2->back() ^= 1;
    auto read = client.ReadMessage(*m2);
    ASSERT_FALSE(read);
    EXPECT_EQ(read.error().code, Code::kUnauthenticated);
    EXPECT_EQ(client.NextAction(), HandshakeAction::kFailed);
  }
  {
    PipeSetup t;
    NoisePipe client = NoisePipe::Client(t.client_static, std::nullopt, t.random);
    NoisePipe server = NoisePipe::Server(t.server_static, t.random);
    auto m1 = client.WriteMessage({});
    ASSERT_TRUE(m1 && server.ReadMessage(*m1));
    auto m2 = server.WriteMessage({});
    ASSERT_TRUE(m2 && client.ReadMessage(*m2));
    auto m3 = client.WriteMessage(AsBytes("finish"));
    ASSERT_TRUE(m3);
    (*m3)[5] ^= 0x80;
    auto read = server.ReadMessage(*m3);
    ASSERT_FALSE(read);
    EXPECT_EQ(read.error().code, Code::kUnauthenticated);
    EXPECT_FALSE(server.Split());
  }
  {
    // A truncated IK message is malformed, not a reason to fall back.
    PipeSetup t;
    NoisePipe client = NoisePipe::Client(t.client_static, t.server_static.public_key, t.random);
    NoisePipe server = NoisePipe::Server(t.server_static, t.random);
    auto m1 = client.WriteMessage({});
    ASSERT_TRUE(m1);
    auto read = server.ReadMessage(ByteSpan(*m1).first(40));
    ASSERT_FALSE(read);
    EXPECT_EQ(read.error().detail, Detail(NoiseErr::kMessageTooShort));
  }
}

}  // namespace
}  // namespace sotto::noise
