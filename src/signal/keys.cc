#include "signal/keys.h"

#include <algorithm>

#include "signal/error.h"
#include "signal/internal/proto.h"

namespace sotto::signal {

Result<PublicKey> PublicKey::Deserialize(ByteSpan bytes) {
  if (bytes.size() != kSerializedPublicKeySize || bytes[0] != kDjbKeyType) {
    return SignalError(Code::kInvalidArgument, Err::kInvalidKey,
                       "public key must be 0x05 followed by 32 bytes");
  }
  crypto::X25519Public raw;
  std::copy(bytes.begin() + 1, bytes.end(), raw.begin());
  return PublicKey(raw);
}

SerializedPublicKey PublicKey::Serialize() const {
  SerializedPublicKey out;
  out[0] = kDjbKeyType;
  std::copy(key_.begin(), key_.end(), out.begin() + 1);
  return out;
}

KeyPair KeyPair::Generate(crypto::Random& random) {
  KeyPair pair;
  pair.private_key = crypto::GeneratePrivateKey(random);
  pair.public_key = PublicKey(crypto::PublicKeyOf(pair.private_key));
  return pair;
}

Result<KeyPair> KeyPair::FromPrivate(ByteSpan private_key) {
  if (private_key.size() != crypto::kX25519KeySize) {
    return SignalError(Code::kInvalidArgument, Err::kInvalidKey, "private key must be 32 bytes");
  }
  KeyPair pair;
  pair.private_key = crypto::X25519Private(private_key);
  pair.public_key = PublicKey(crypto::PublicKeyOf(pair.private_key));
  return pair;
}

IdentityKeyPair IdentityKeyPair::Generate(crypto::Random& random) {
  KeyPair pair = KeyPair::Generate(random);
  return IdentityKeyPair{pair.public_key, pair.private_key};
}

Bytes IdentityKeyPair::Serialize() const {
  const SerializedPublicKey pub = public_key.Serialize();
  Bytes out;
  out.reserve(internal::BytesFieldSize(1, pub.size()) + internal::BytesFieldSize(2, 32));
  internal::AppendBytesField(out, 1, pub);
  internal::AppendBytesField(out, 2, private_key.span());
  return out;
}

Result<IdentityKeyPair> IdentityKeyPair::Deserialize(ByteSpan bytes) {
  internal::ProtoReader reader(bytes);
  internal::ProtoField f;
  std::optional<PublicKey> pub;
  std::optional<KeyPair> priv;
  while (reader.Next(f)) {
    if (f.type != internal::WireType::kLengthDelimited) continue;
    if (f.number == 1) {
      SOTTO_ASSIGN_OR_RETURN(pub, PublicKey::Deserialize(f.bytes));
    } else if (f.number == 2) {
      SOTTO_ASSIGN_OR_RETURN(priv, KeyPair::FromPrivate(f.bytes));
    }
  }
  if (reader.error() || !pub || !priv) {
    return SignalError(Code::kDataLoss, Err::kCorruptRecord, "identity key pair record corrupt");
  }
  if (priv->public_key != *pub) {
    return SignalError(Code::kDataLoss, Err::kCorruptRecord,
                       "identity public key does not match its private key");
  }
  return IdentityKeyPair{*pub, priv->private_key};
}

std::vector<PreKeyRecord> GeneratePreKeys(uint32_t start, uint32_t count, crypto::Random& random) {
  std::vector<PreKeyRecord> keys;
  keys.reserve(count);
  for (uint32_t i = 0; i < count; ++i) {
    const uint32_t id = ((start + i) % (kLastResortPreKeyId - 1)) + 1;
    keys.push_back(PreKeyRecord{id, KeyPair::Generate(random)});
  }
  return keys;
}

SignedPreKeyRecord GenerateSignedPreKey(const IdentityKeyPair& identity, uint32_t id,
                                        uint64_t timestamp_ms, crypto::Random& random) {
  SignedPreKeyRecord record;
  record.id = id;
  record.key_pair = KeyPair::Generate(random);
  record.timestamp_ms = timestamp_ms;
  const SerializedPublicKey pub = record.key_pair.public_key.Serialize();
  record.signature = crypto::Sign(identity.private_key, pub, random);
  return record;
}

uint32_t GenerateRegistrationId(crypto::Random& random) { return random.Uniform(16380) + 1; }

}  // namespace sotto::signal
