#include "signal/internal/ratchet.h"

#include "crypto/hash.h"
#include "signal/error.h"

namespace sotto::signal::internal {
namespace {
constexpr uint8_t kMessageKeySeedByte = 0x01;
constexpr uint8_t kChainKeySeedByte = 0x02;

RootAndChain Split64(const uint8_t* derived) {
  RootAndChain out;
  out.root = crypto::SecretArray<32>(ByteSpan(derived, 32));
  out.chain.key = crypto::SecretArray<32>(ByteSpan(derived + 32, 32));
  out.chain.index = 0;
  return out;
}
}  // namespace

RootAndChain DeriveInitial(ByteSpan secret) {
  crypto::SecretArray<64> derived;
  crypto::Hkdf(secret, {}, AsBytes("WhisperText"), derived.mutable_span());
  return Split64(derived.data());
}

Result<RootAndChain> RootStep(const crypto::SecretArray<32>& root,
                              const crypto::X25519Private& ours, const PublicKey& theirs) {
  auto shared = crypto::Agree(ours, theirs.raw());
  if (!shared) {
    return SignalError(Code::kInvalidArgument, Err::kInvalidKey, "weak ratchet key");
  }
  crypto::SecretArray<64> derived;
  crypto::Hkdf(shared->span(), root.span(), AsBytes("WhisperRatchet"), derived.mutable_span());
  return Split64(derived.data());
}

ChainStep StepChain(const ChainKey& chain) {
  const crypto::HmacSha256Key key(chain.key.span());
  return ChainStep{key.Mac(ByteSpan(&kMessageKeySeedByte, 1)),
                   ChainKey{key.Mac(ByteSpan(&kChainKeySeedByte, 1)), chain.index + 1}};
}

MessageKeys DeriveMessageKeys(const crypto::SecretArray<32>& seed, uint32_t counter) {
  crypto::SecretArray<80> derived;
  crypto::Hkdf(seed.span(), {}, AsBytes("WhisperMessageKeys"), derived.mutable_span());
  MessageKeys keys;
  keys.cipher_key = crypto::SecretArray<32>(ByteSpan(derived.data(), 32));
  keys.mac_key = crypto::SecretArray<32>(ByteSpan(derived.data() + 32, 32));
  keys.iv = crypto::SecretArray<16>(ByteSpan(derived.data() + 64, 16));
  keys.counter = counter;
  return keys;
}

}  // namespace sotto::signal::internal
