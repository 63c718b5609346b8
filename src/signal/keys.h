// Signal key types: serialized public keys (0x05 || 32 bytes), key pairs, identity
// keys, one-time and signed prekeys, prekey bundles and protocol addresses.
// Byte formats: docs/signal-wire.md ("Keys").
//
// Thread-safety: value types; externally synchronized.
#pragma once

#include <array>
#include <compare>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "base/bytes.h"
#include "base/result.h"
#include "crypto/random.h"
#include "crypto/x25519.h"

namespace sotto::signal {

inline constexpr uint8_t kDjbKeyType = 0x05;
inline constexpr size_t kSerializedPublicKeySize = 33;
// One-time prekey ids run 1..0xFFFFFE; 0xFFFFFF is a "last resort" key kept after use.
inline constexpr uint32_t kLastResortPreKeyId = 0xFFFFFF;

using SerializedPublicKey = std::array<uint8_t, kSerializedPublicKeySize>;

class PublicKey {
 public:
  PublicKey() : key_{} {}
  explicit PublicKey(const crypto::X25519Public& key) : key_(key) {}
  // Parses 0x05 || 32 bytes; kInvalidKey otherwise.
  static Result<PublicKey> Deserialize(ByteSpan bytes);

  SerializedPublicKey Serialize() const;
  const crypto::X25519Public& raw() const { return key_; }

  friend bool operator==(const PublicKey&, const PublicKey&) = default;
  friend auto operator<=>(const PublicKey&, const PublicKey&) = default;

 private:
  crypto::X25519Public key_;
};

struct KeyPair {
  PublicKey public_key;
  crypto::X25519Private private_key;

  static KeyPair Generate(crypto::Random& random);
  // From a raw 32-byte private key; kInvalidKey if the length is wrong.
  static Result<KeyPair> FromPrivate(ByteSpan private_key);
};

using IdentityKey = PublicKey;

// The long-term identity of one device.
struct IdentityKeyPair {
  IdentityKey public_key;
  crypto::X25519Private private_key;

  static IdentityKeyPair Generate(crypto::Random& random);
  // IdentityKeyPairStructure {publicKey = 1, privateKey = 2}, as libsignal stores it.
  Bytes Serialize() const;
  static Result<IdentityKeyPair> Deserialize(ByteSpan bytes);
};

// A one-time prekey and its id.
struct PreKeyRecord {
  uint32_t id = 0;
  KeyPair key_pair;
};

// A medium-term signed prekey: its public key (serialized) signed by the identity key.
struct SignedPreKeyRecord {
  uint32_t id = 0;
  KeyPair key_pair;
  crypto::Signature signature{};
  uint64_t timestamp_ms = 0;
};

// Generates `count` one-time prekeys with ids start, start+1, ... wrapping inside
// 1..0xFFFFFE as libsignal does.
std::vector<PreKeyRecord> GeneratePreKeys(uint32_t start, uint32_t count, crypto::Random& random);
SignedPreKeyRecord GenerateSignedPreKey(const IdentityKeyPair& identity, uint32_t id,
                                        uint64_t timestamp_ms, crypto::Random& random);
// A registration id in 1..16380 (libsignal's default range).
uint32_t GenerateRegistrationId(crypto::Random& random);

// What a device publishes so others can start a session with it without it online.
struct PreKeyBundle {
  uint32_t registration_id = 0;
  uint32_t device_id = 0;
  std::optional<uint32_t> prekey_id;
  std::optional<PublicKey> prekey;
  uint32_t signed_prekey_id = 0;
  PublicKey signed_prekey;
  crypto::Signature signed_prekey_signature{};
  IdentityKey identity_key;
};

// A device address: the peer's name (opaque account id or handle) and device id.
struct ProtocolAddress {
  std::string name;
  uint32_t device_id = 0;

  friend bool operator==(const ProtocolAddress&, const ProtocolAddress&) = default;
  friend auto operator<=>(const ProtocolAddress&, const ProtocolAddress&) = default;
};

struct ProtocolAddressHash {
  size_t operator()(const ProtocolAddress& a) const {
    return std::hash<std::string>()(a.name) ^ (std::hash<uint32_t>()(a.device_id) << 1);
  }
};

}  // namespace sotto::signal
