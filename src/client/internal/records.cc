#include "client/internal/records.h"

#include <algorithm>

#include "client/internal/sqlite.h"

namespace sotto::client::internal {
namespace {

tl::unexpected<Error> Corrupt(const char* message) {
  return StoreError(Code::kDataLoss, StoreErr::kCorrupt, message);
}

// Big-endian, like every other byte format in Sotto.
void PutBe(uint8_t* out, uint64_t value, size_t size) {
  for (size_t i = 0; i < size; ++i) {
    out[i] = static_cast<uint8_t>(value >> (8 * (size - 1 - i)));
  }
}

uint64_t GetBe(const uint8_t* in, size_t size) {
  uint64_t value = 0;
  for (size_t i = 0; i < size; ++i) value = (value << 8) | in[i];
  return value;
}

}  // namespace

crypto::SecretBytes EncodePreKey(const signal::PreKeyRecord& record) {
  crypto::SecretBytes out(kPreKeyRecordSize);
  uint8_t* p = out.data();
  p[0] = kRecordVersion;
  PutBe(p + 1, record.id, 4);
  std::copy_n(record.key_pair.private_key.data(), 32, p + 5);
  return out;
}

Result<signal::PreKeyRecord> DecodePreKey(ByteSpan bytes) {
  if (bytes.size() != kPreKeyRecordSize) return Corrupt("a prekey record has a bad length");
  if (bytes[0] != kRecordVersion) return Corrupt("a prekey record has an unknown version");
  auto key_pair = signal::KeyPair::FromPrivate(bytes.subspan(5, 32));
  if (!key_pair) return Corrupt("a prekey record holds a bad key");
  signal::PreKeyRecord record;
  record.id = static_cast<uint32_t>(GetBe(bytes.data() + 1, 4));
  record.key_pair = std::move(*key_pair);
  return record;
}

crypto::SecretBytes EncodeSignedPreKey(const signal::SignedPreKeyRecord& record) {
  crypto::SecretBytes out(kSignedPreKeyRecordSize);
  uint8_t* p = out.data();
  p[0] = kRecordVersion;
  PutBe(p + 1, record.id, 4);
  PutBe(p + 5, record.timestamp_ms, 8);
  std::copy_n(record.key_pair.private_key.data(), 32, p + 13);
  std::copy(record.signature.begin(), record.signature.end(), p + 45);
  return out;
}

Result<signal::SignedPreKeyRecord> DecodeSignedPreKey(ByteSpan bytes) {
  if (bytes.size() != kSignedPreKeyRecordSize) {
    return Corrupt("a signed prekey record has a bad length");
  }
  if (bytes[0] != kRecordVersion) return Corrupt("a signed prekey record has an unknown version");
  auto key_pair = signal::KeyPair::FromPrivate(bytes.subspan(13, 32));
  if (!key_pair) return Corrupt("a signed prekey record holds a bad key");
  signal::SignedPreKeyRecord record;
  record.id = static_cast<uint32_t>(GetBe(bytes.data() + 1, 4));
  record.timestamp_ms = GetBe(bytes.data() + 5, 8);
  record.key_pair = std::move(*key_pair);
  std::copy_n(bytes.data() + 45, crypto::kSignatureSize, record.signature.begin());
  return record;
}

crypto::SecretBytes EncodeAccountSecrets(const noise::KeyPair& noise_static,
                                         const signal::IdentityKeyPair& identity) {
  Bytes serialized = identity.Serialize();
  crypto::SecretBytes out(1 + crypto::kX25519KeySize + serialized.size());
  uint8_t* p = out.data();
  p[0] = kRecordVersion;
  std::copy_n(noise_static.private_key.data(), crypto::kX25519KeySize, p + 1);
  std::copy(serialized.begin(), serialized.end(), p + 1 + crypto::kX25519KeySize);
  crypto::SecureWipe(serialized);
  return out;
}

Result<AccountSecrets> DecodeAccountSecrets(ByteSpan bytes) {
  if (bytes.size() <= 1 + crypto::kX25519KeySize) {
    return Corrupt("the account's secrets have a bad length");
  }
  if (bytes[0] != kRecordVersion) return Corrupt("the account's secrets have an unknown version");
  auto identity = signal::IdentityKeyPair::Deserialize(bytes.subspan(1 + crypto::kX25519KeySize));
  if (!identity) return Corrupt("the account's identity key does not parse");
  const crypto::X25519Private noise_private(bytes.subspan(1, crypto::kX25519KeySize));
  return AccountSecrets{noise::KeyPair::FromPrivate(noise_private), std::move(*identity)};
}

}  // namespace sotto::client::internal
