// HandshakeState: a Noise handshake (noiseprotocol/noise_spec, noise.md revision 34, §5.3)
// for the suite 25519_ChaChaPoly_BLAKE2b, sans-I/O: bytes in, bytes out; randomness is
// injected. Patterns: the one-way N, K, X (§7.4), the 12 fundamental interactive patterns
// (§7.5), the 23 deferred patterns (§7.6, §18.1) and XXfallback (§10.2). PSK modifiers
// are not implemented. Noise Pipes on top of this: noise/pipes.h; byte formats, limits
// and policies: docs/noise.md.
//
// Thread-safety: externally synchronized.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "base/bytes.h"
#include "base/result.h"
#include "crypto/random.h"
#include "crypto/x25519.h"
#include "noise/cipher_state.h"
#include "noise/error.h"
#include "noise/symmetric_state.h"

namespace sotto::noise {

namespace internal {
struct PatternSpec;
enum class Token : uint8_t;
}  // namespace internal

// The DH, cipher and hash sections of every protocol name here.
inline constexpr std::string_view kSuiteName = "25519_ChaChaPoly_BLAKE2b";
inline constexpr size_t kDhSize = crypto::kX25519KeySize;  // DHLEN

// clang-format off
enum class HandshakePattern : uint8_t {
  // One-way (§7.4).
  kN, kK, kX,
  // Fundamental interactive (§7.5).
  kNN, kNK, kNX, kKN, kKK, kKX, kXN, kXK, kXX, kIN, kIK, kIX,
  // Deferred (§18.1).
  kNK1, kNX1, kX1N, kX1K, kXK1, kX1K1, kX1X, kXX1, kX1X1, kK1N, kK1K, kKK1, kK1K1,
  kK1X, kKX1, kK1X1, kI1N, kI1K, kIK1, kI1K1, kI1X, kIX1, kI1X1,
  // XX with the fallback modifier (§10.2): Alice's `e` is a pre-message and Bob, who
  // sends the first message, is the initiator.
  kXXfallback,
};
// clang-format on

// The pattern name section, e.g. "XX" or "XXfallback".
std::string_view PatternName(HandshakePattern pattern);
// The inverse of PatternName; nullopt for names not implemented here (e.g. psk ones).
std::optional<HandshakePattern> PatternFromName(std::string_view name);
// "Noise_<pattern>_25519_ChaChaPoly_BLAKE2b", the name hashed into h (§8).
std::string ProtocolName(HandshakePattern pattern);
// True for N, K and X: only the initiator sends, and only with the first CipherState.
bool IsOneWay(HandshakePattern pattern);

enum class Role : uint8_t { kInitiator, kResponder };

// An X25519 key pair. The private half wipes itself.
struct KeyPair {
  crypto::X25519Private private_key;
  crypto::X25519Public public_key{};

  static KeyPair Generate(crypto::Random& random);
  static KeyPair FromPrivate(const crypto::X25519Private& private_key);
};

// Initialize()'s s, e, rs, re (§5.3); each may be absent.
struct HandshakeKeys {
  std::optional<KeyPair> s;                // local static
  std::optional<KeyPair> e;                // local ephemeral: see Initialize()
  std::optional<crypto::X25519Public> rs;  // remote static: pre-messages only
  std::optional<crypto::X25519Public> re;  // remote ephemeral: pre-messages only
};

// What the handshake expects next.
enum class HandshakeAction : uint8_t {
  kWriteMessage,  // call WriteMessage()
  kReadMessage,   // call ReadMessage()
  kSplit,         // finished: call Split()
  kDone,          // finished and split
  kFailed,        // an error ended the handshake; start over
};

// Both transport CipherStates of one party, from Split(): `send` encrypts what this party
// sends, `receive` decrypts what it receives (with an empty ad, §5).
struct TransportCiphers {
  CipherState send;
  CipherState receive;
};

// One party's handshake. Every error from WriteMessage/ReadMessage is final: the state
// moves to kFailed and every later call fails with kFailedPrecondition
// (kHandshakeFailed), so a half-processed message can never be continued. Externally
// synchronized.
class HandshakeState {
 public:
  // Initialize(handshake_pattern, initiator, prologue, s, e, rs, re) of §5.3.
  // `keys` must hold exactly what this role needs: `s` if the pattern sends it, uses it
  // in a DH or lists it in a pre-message (an unused `s` is ignored); `rs`/`re` if and
  // only if the remote party's pre-message lists them; `e` if this party's pre-message
  // lists it (XXfallback's Alice). `e` may also be given when this party sends an `e`
  // token: it is then used instead of a fresh key. Only compound protocols (Noise Pipes
  // reuse the IK ephemeral) may do that; an ephemeral must never serve two handshakes.
  // `random` supplies the ephemeral keys and must outlive the HandshakeState.
  // Errors: kInvalidArgument (kMissingKey, kUnexpectedKey).
  static Result<HandshakeState> Initialize(HandshakePattern pattern, Role role, ByteSpan prologue,
                                           HandshakeKeys keys, crypto::Random& random);

  HandshakeState(HandshakeState&&) noexcept = default;
  HandshakeState& operator=(HandshakeState&&) noexcept = default;
  HandshakeState(const HandshakeState&) = delete;
  HandshakeState& operator=(const HandshakeState&) = delete;
  ~HandshakeState() = default;

  // Writes the next handshake message, carrying `payload` (encrypted once a DH has
  // happened, cleartext before: the first message of XX carries it in the clear).
  // Requires NextAction() == kWriteMessage. Errors: kFailedPrecondition (kWrongState,
  // kHandshakeFailed); kResourceExhausted (kMessageTooLarge) if the message would exceed
  // kMaxNoiseMessage; kInvalidArgument (kDhFailed).
  Result<Bytes> WriteMessage(ByteSpan payload);

  // Reads the next handshake message and returns its payload. Requires NextAction() ==
  // kReadMessage. Errors: kUnauthenticated (kDecryptFailed); kInvalidArgument
  // (kMessageTooShort, kDhFailed); kResourceExhausted (kMessageTooLarge);
  // kFailedPrecondition (kWrongState, kHandshakeFailed).
  Result<Bytes> ReadMessage(ByteSpan message);

  HandshakeAction NextAction() const;
  // True once the last handshake message has been written or read.
  bool IsFinished() const {
    return NextAction() == HandshakeAction::kSplit || NextAction() == HandshakeAction::kDone;
  }

  // Split() (§5.2) once the handshake is finished, as this party's send/receive pair:
  // the initiator sends with c1, the responder with c2. May be called once. For one-way
  // patterns only the initiator's `send` and the responder's `receive` may be used.
  // Errors: kFailedPrecondition (kWrongState) before the end or on a second call.
  Result<TransportCiphers> Split();

  // h: the handshake hash (channel binding, §11.2); final once IsFinished().
  const HandshakeHash& GetHandshakeHash() const { return symmetric_.GetHandshakeHash(); }
  // The peer's static key, from a pre-message or once received. Noise proves the peer
  // holds its private key; whether that key is the expected one is the caller's call.
  const std::optional<crypto::X25519Public>& RemoteStatic() const { return rs_; }
  // The peer's ephemeral key once received (or from a pre-message).
  const std::optional<crypto::X25519Public>& RemoteEphemeral() const { return re_; }
  HandshakePattern pattern() const;
  Role role() const { return role_; }

 private:
  enum class Phase : uint8_t { kRunning, kFinished, kSplit, kFailed };

  HandshakeState(const internal::PatternSpec& spec, Role role, SymmetricState symmetric,
                 crypto::Random& random);

  bool IsAlice() const;
  bool LocalWritesNext() const;
  size_t MessageSize(size_t payload_size) const;  // with the current HasKey()
  Status MixDh(internal::Token token);
  Result<Bytes> Fail(Error error);
  Result<Bytes> Fail(Code code, NoiseErr detail, const char* message);
  void FinishMessage();

  const internal::PatternSpec* spec_;
  Role role_;
  SymmetricState symmetric_;
  crypto::Random* random_;  // not owned
  std::optional<KeyPair> s_;
  std::optional<KeyPair> e_;
  std::optional<crypto::X25519Public> rs_;
  std::optional<crypto::X25519Public> re_;
  size_t next_message_ = 0;
  Phase phase_ = Phase::kRunning;
};

}  // namespace sotto::noise
