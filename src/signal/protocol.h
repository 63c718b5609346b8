// Signal wire messages, byte-compatible with libsignal-protocol-c 2.3.3:
// SignalMessage, PreKeySignalMessage, SenderKeyMessage, SenderKeyDistributionMessage.
// Layouts and field numbers: docs/signal-wire.md. Parsers return views into the input
// (no allocation); the input must outlive the view.
//
// Thread-safety: value types; externally synchronized.
#pragma once

#include <cstdint>
#include <optional>

#include "base/bytes.h"
#include "base/result.h"
#include "crypto/secret.h"
#include "signal/keys.h"

namespace sotto::signal {

inline constexpr uint8_t kCiphertextVersion = 3;
inline constexpr uint8_t kVersionByte = (kCiphertextVersion << 4) | kCiphertextVersion;  // 0x33
inline constexpr size_t kMacSize = 8;
// Largest message any parser here accepts (a bound on untrusted input, far above what
// a Noise frame can carry).
inline constexpr size_t kMaxMessageSize = 1 << 20;

// API-level message types (not on the wire), numbered as libsignal numbers them.
enum class MessageType : uint8_t {
  kSignal = 2,
  kPreKey = 3,
  kSenderKey = 4,
  kSenderKeyDistribution = 5,
};

// An encrypted message ready to send.
struct CiphertextMessage {
  MessageType type = MessageType::kSignal;
  Bytes bytes;
};

// version byte || SignalMessage protobuf || 8-byte MAC
struct SignalMessageView {
  uint8_t version = 0;
  PublicKey ratchet_key;
  uint32_t counter = 0;
  uint32_t previous_counter = 0;
  ByteSpan ciphertext;
  ByteSpan mac_input;  // version byte and protobuf: what the MAC covers
  ByteSpan mac;        // the last 8 bytes
};
Result<SignalMessageView> ParseSignalMessage(ByteSpan bytes);

// version byte || PreKeySignalMessage protobuf (the inner message carries the MAC)
struct PreKeySignalMessageView {
  uint8_t version = 0;
  uint32_t registration_id = 0;
  std::optional<uint32_t> prekey_id;
  uint32_t signed_prekey_id = 0;
  PublicKey base_key;
  IdentityKey identity_key;
  ByteSpan message_bytes;
  SignalMessageView message;
};
Result<PreKeySignalMessageView> ParsePreKeySignalMessage(ByteSpan bytes);

// version byte || SenderKeyMessage protobuf || 64-byte signature over the rest
struct SenderKeyMessageView {
  uint8_t version = 0;
  uint32_t key_id = 0;
  uint32_t iteration = 0;
  ByteSpan ciphertext;
  ByteSpan signed_part;
  ByteSpan signature;
};
Result<SenderKeyMessageView> ParseSenderKeyMessage(ByteSpan bytes);

// version byte || SenderKeyDistributionMessage protobuf (unsigned; sent inside a
// pairwise session).
struct SenderKeyDistributionMessage {
  uint32_t key_id = 0;
  uint32_t iteration = 0;
  crypto::SecretArray<32> chain_key;
  PublicKey signing_key;

  Bytes Serialize() const;
  static Result<SenderKeyDistributionMessage> Parse(ByteSpan bytes);
};

}  // namespace sotto::signal
