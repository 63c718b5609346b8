// Runs every 25519_ChaChaPoly_BLAKE2b vector of the four community Noise vector files in
// ../shared/vectors/noise/ (origin in SOURCE.md there) whose pattern noise/ implements:
// each handshake message's ciphertext and payload, the handshake hash where given, and
// the transport messages after Split(). PSK vectors (modern psk modifiers and noise-c's
// old NoisePSK_ prefix) are skipped and counted.
//
// Suite names start with "noise_" so that `ctest -R noise` selects them.
#include <gtest/gtest.h>

#include <cstdio>
#include <deque>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "base/bytes.h"
#include "noise/handshake_state.h"

#ifndef SOTTO_NOISE_VECTORS_DIR
#error "SOTTO_NOISE_VECTORS_DIR must name ../shared/vectors/noise"
#endif

namespace sotto::noise {
namespace {

using nlohmann::json;

constexpr std::string_view kSuffix = "_25519_ChaChaPoly_BLAKE2b";

// Hands out the vector's ephemeral private keys as the "random" bytes of key generation.
class FixedRandom final : public crypto::Random {
 public:
  void Push(const Bytes& key) { keys_.push_back(key); }
  void Fill(MutableByteSpan out) override {
    if (keys_.empty() || keys_.front().size() != out.size()) {
      ADD_FAILURE() << "unexpected request for " << out.size() << " random bytes";
      std::fill(out.begin(), out.end(), uint8_t{0x55});
      return;
    }
    std::copy(keys_.front().begin(), keys_.front().end(), out.begin());
    keys_.pop_front();
  }

 private:
  std::deque<Bytes> keys_;
};

std::optional<Bytes> HexField(const json& v, const char* key) {
  if (!v.contains(key) || !v[key].is_string()) return std::nullopt;
  return FromHex(v[key].get<std::string>());
}

crypto::X25519Public PublicFrom(const Bytes& bytes) {
  crypto::X25519Public key{};
  EXPECT_EQ(bytes.size(), key.size());
  std::copy_n(bytes.begin(), std::min(bytes.size(), key.size()), key.begin());
  return key;
}

std::optional<KeyPair> PairFrom(const std::optional<Bytes>& private_key) {
  if (!private_key) return std::nullopt;
  return KeyPair::FromPrivate(crypto::X25519Private(*private_key));
}

struct Party {
  FixedRandom random;
  std::optional<HandshakeState> handshake;
  std::optional<TransportCiphers> transport;
};

// Sends message `index` of the vector from `from` to `to` and checks it.
void Exchange(const json& message, Party& from, Party& to, size_t index) {
  const Bytes payload = FromHex(message["payload"].get<std::string>());
  const Bytes expected = FromHex(message["ciphertext"].get<std::string>());
  if (from.handshake->NextAction() == HandshakeAction::kWriteMessage) {
    ASSERT_EQ(to.handshake->NextAction(), HandshakeAction::kReadMessage) << "message " << index;
    auto written = from.handshake->WriteMessage(payload);
    ASSERT_TRUE(written) << "message " << index << ": " << written.error().ToString();
    EXPECT_EQ(ToHex(*written), ToHex(expected)) << "handshake message " << index;
    auto read = to.handshake->ReadMessage(*written);
    ASSERT_TRUE(read) << "message " << index << ": " << read.error().ToString();
    EXPECT_EQ(ToHex(*read), ToHex(payload)) << "handshake payload " << index;
    return;
  }
  ASSERT_TRUE(from.transport && to.transport) << "message " << index;
  Bytes ciphertext(payload.size() + kTagSize);
  auto written = from.transport->send.EncryptWithAd({}, payload, ciphertext);
  ASSERT_TRUE(written) << written.error().ToString();
  EXPECT_EQ(ToHex(ciphertext), ToHex(expected)) << "transport message " << index;
  Bytes plaintext(ciphertext.size());
  auto read = to.transport->receive.DecryptWithAd({}, ciphertext, plaintext);
  ASSERT_TRUE(read) << read.error().ToString();
  plaintext.resize(*read);
  EXPECT_EQ(ToHex(plaintext), ToHex(payload)) << "transport payload " << index;
}

HandshakeKeys KeysFor(const json& v, const char* s, const char* rs) {
  HandshakeKeys keys;
  keys.s = PairFrom(HexField(v, s));
  if (auto remote = HexField(v, rs)) keys.rs = PublicFrom(*remote);
  return keys;
}

// Runs one vector; `pattern` is the pattern to finish with (XXfallback for fallback ones).
void RunVector(const json& v, HandshakePattern pattern, bool fallback) {
  const Bytes init_prologue = HexField(v, "init_prologue").value_or(Bytes());
  const Bytes resp_prologue = HexField(v, "resp_prologue").value_or(Bytes());
  Party alice;  // sends message 0
  Party bob;
  if (auto e = HexField(v, "init_ephemeral")) alice.random.Push(*e);
  if (auto e = HexField(v, "resp_ephemeral")) bob.random.Push(*e);
  const auto& messages = v["messages"];
  size_t index = 0;
  if (fallback) {
    // Alice tries IK with a stale key for Bob; Bob fails to decrypt, and both switch to
    // XXfallback, where Bob is the initiator and Alice's IK ephemeral a pre-message.
    auto alice_ik =
        HandshakeState::Initialize(HandshakePattern::kIK, Role::kInitiator, init_prologue,
                                   KeysFor(v, "init_static", "init_remote_static"), alice.random);
    auto bob_ik = HandshakeState::Initialize(HandshakePattern::kIK, Role::kResponder, resp_prologue,
                                             KeysFor(v, "resp_static", "-"), bob.random);
    ASSERT_TRUE(alice_ik && bob_ik);
    const Bytes payload = FromHex(messages[0]["payload"].get<std::string>());
    auto first = alice_ik->WriteMessage(payload);
    ASSERT_TRUE(first);
    EXPECT_EQ(ToHex(*first), messages[0]["ciphertext"].get<std::string>());
    auto read = bob_ik->ReadMessage(*first);
    ASSERT_FALSE(read);
    EXPECT_EQ(read.error().code, Code::kUnauthenticated);
    HandshakeKeys alice_keys;
    alice_keys.s = PairFrom(HexField(v, "init_static"));
    alice_keys.e = PairFrom(HexField(v, "init_ephemeral"));
    HandshakeKeys bob_keys;
    bob_keys.s = PairFrom(HexField(v, "resp_static"));
    bob_keys.re = bob_ik->RemoteEphemeral();
    auto a = HandshakeState::Initialize(pattern, Role::kResponder, init_prologue,
                                        std::move(alice_keys), alice.random);
    auto b = HandshakeState::Initialize(pattern, Role::kInitiator, resp_prologue,
                                        std::move(bob_keys), bob.random);
    ASSERT_TRUE(a) << a.error().ToString();
    ASSERT_TRUE(b) << b.error().ToString();
    alice.handshake = std::move(*a);
    bob.handshake = std::move(*b);
    index = 1;
  } else {
    auto a =
        HandshakeState::Initialize(pattern, Role::kInitiator, init_prologue,
                                   KeysFor(v, "init_static", "init_remote_static"), alice.random);
    auto b =
        HandshakeState::Initialize(pattern, Role::kResponder, resp_prologue,
                                   KeysFor(v, "resp_static", "resp_remote_static"), bob.random);
    ASSERT_TRUE(a) << a.error().ToString();
    ASSERT_TRUE(b) << b.error().ToString();
    alice.handshake = std::move(*a);
    bob.handshake = std::move(*b);
  }
  const bool one_way = IsOneWay(pattern);
  for (; index < messages.size(); ++index) {
    if (!alice.transport && alice.handshake->IsFinished() && bob.handshake->IsFinished()) {
      if (auto hash = HexField(v, "handshake_hash")) {
        EXPECT_EQ(ToHex(alice.handshake->GetHandshakeHash()), ToHex(*hash));
        EXPECT_EQ(ToHex(bob.handshake->GetHandshakeHash()), ToHex(*hash));
      }
      auto a = alice.handshake->Split();
      auto b = bob.handshake->Split();
      ASSERT_TRUE(a && b);
      alice.transport = std::move(*a);
      bob.transport = std::move(*b);
    }
    bool alice_sends = index % 2 == 0;
    if (alice.handshake->IsFinished() && one_way) alice_sends = true;
    if (alice.handshake->NextAction() == HandshakeAction::kWriteMessage) alice_sends = true;
    if (bob.handshake->NextAction() == HandshakeAction::kWriteMessage) alice_sends = false;
    if (alice_sends) {
      ASSERT_NO_FATAL_FAILURE(Exchange(messages[index], alice, bob, index));
    } else {
      ASSERT_NO_FATAL_FAILURE(Exchange(messages[index], bob, alice, index));
    }
    if (testing::Test::HasFatalFailure()) return;
  }
  EXPECT_TRUE(alice.transport) << "the vector ended before the handshake did";
}

struct Counts {
  int run = 0;
  int skipped_psk = 0;
  int other_suites = 0;
};

Counts RunFile(const std::string& file) {
  Counts counts;
  const std::filesystem::path path = std::filesystem::path(SOTTO_NOISE_VECTORS_DIR) / file;
  std::ifstream in(path);
  if (!in) {
    ADD_FAILURE() << "cannot open " << path;
    return counts;
  }
  const json doc = json::parse(in, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded() || !doc.contains("vectors")) {
    ADD_FAILURE() << "not a vector file: " << path;
    return counts;
  }
  for (const json& v : doc["vectors"]) {
    const std::string name = v.contains("protocol_name") ? v["protocol_name"].get<std::string>()
                                                         : v["name"].get<std::string>();
    if (name.size() < kSuffix.size() ||
        name.compare(name.size() - kSuffix.size(), kSuffix.size(), kSuffix) != 0) {
      ++counts.other_suites;
      continue;
    }
    if (name.rfind("NoisePSK_", 0) == 0 || name.find("psk") != std::string::npos) {
      ++counts.skipped_psk;
      continue;
    }
    const std::string section = name.substr(6, name.size() - 6 - kSuffix.size());
    const auto pattern = PatternFromName(section);
    if (!pattern || name.rfind("Noise_", 0) != 0) {
      ADD_FAILURE() << "pattern not implemented: " << name;
      continue;
    }
    const bool fallback = v.value("fallback", false);
    if (fallback) {
      EXPECT_EQ(*pattern, HandshakePattern::kXXfallback) << name;
      EXPECT_EQ(v.value("pattern", ""), "IK") << name;
    }
    std::string trace = file;
    trace += ": ";
    trace += name;
    SCOPED_TRACE(trace);
    RunVector(v, *pattern, fallback);  // a failing vector does not stop the others
    ++counts.run;
  }
  std::printf("%s: ran %d vectors, skipped %d psk, %d of other suites\n", file.c_str(), counts.run,
              counts.skipped_psk, counts.other_suites);
  return counts;
}

// Exact counts, as found by grepping the files (see SOURCE.md there): a vector that stops
// being run (a parse change, a skipped pattern) fails the test.
TEST(noise_Vectors, Cacophony) {
  const Counts c = RunFile("cacophony.json");
  EXPECT_EQ(c.run, 38);
  EXPECT_EQ(c.skipped_psk, 21);
}

TEST(noise_Vectors, Snow) {
  const Counts c = RunFile("snow.json");
  EXPECT_EQ(c.run, 38);
  EXPECT_EQ(c.skipped_psk, 13);
}

TEST(noise_Vectors, NoiseCBasic) {
  const Counts c = RunFile("noise-c-basic.json");
  EXPECT_EQ(c.run, 15);
  EXPECT_EQ(c.skipped_psk, 15);
}

TEST(noise_Vectors, NoiseCFallback) {
  const Counts c = RunFile("noise-c-fallback.json");
  EXPECT_EQ(c.run, 1);
  EXPECT_EQ(c.skipped_psk, 1);
}

}  // namespace
}  // namespace sotto::noise
