#include "crypto/blake2b.h"

#include <sodium/crypto_generichash_blake2b.h>

#include <algorithm>

#include "crypto/internal/sodium.h"

namespace sotto::crypto {
namespace {

using State = crypto_generichash_blake2b_state;

static_assert(crypto_generichash_blake2b_BYTES_MAX == kBlake2bSize);

State* AsState(std::array<uint8_t, 384>& storage) {
  static_assert(sizeof(State) == 384 && alignof(State) <= 64,
                "Blake2bStream::state_ no longer fits libsodium's state");
  return reinterpret_cast<State*>(storage.data());
}

void Init(State* state) {
  internal::EnsureSodium();
  crypto_generichash_blake2b_init(state, nullptr, 0, kBlake2bSize);
}

}  // namespace

Blake2bDigest Blake2b(ByteSpan data) {
  internal::EnsureSodium();
  Blake2bDigest out;
  crypto_generichash_blake2b(out.data(), out.size(), data.data(), data.size(), nullptr, 0);
  return out;
}

Blake2bStream::Blake2bStream() { Init(AsState(state_)); }

// The state holds key-derived data when used by HmacBlake2b.
Blake2bStream::~Blake2bStream() { SecureWipe(state_); }

void Blake2bStream::Update(ByteSpan data) {
  crypto_generichash_blake2b_update(AsState(state_), data.data(), data.size());
}

Blake2bDigest Blake2bStream::Final() {
  Blake2bDigest out;
  crypto_generichash_blake2b_final(AsState(state_), out.data(), out.size());
  return out;
}

void Blake2bStream::Reset() { Init(AsState(state_)); }

HmacBlake2b::HmacBlake2b(ByteSpan key) {
  SecretArray<kBlake2bBlockSize> block;  // the key, zero-padded to B bytes
  if (key.size() > kBlake2bBlockSize) {
    Blake2bDigest hashed = Blake2b(key);
    std::copy(hashed.begin(), hashed.end(), block.data());
    SecureWipe(hashed);
  } else {
    std::copy(key.begin(), key.end(), block.data());
  }
  SecretArray<kBlake2bBlockSize> inner_pad;
  for (size_t i = 0; i < kBlake2bBlockSize; ++i) {
    inner_pad.data()[i] = static_cast<uint8_t>(block.data()[i] ^ 0x36);
    outer_pad_.data()[i] = static_cast<uint8_t>(block.data()[i] ^ 0x5c);
  }
  inner_.Update(inner_pad.span());
}

void HmacBlake2b::Update(ByteSpan data) { inner_.Update(data); }

SecretArray<kBlake2bSize> HmacBlake2b::Final() {
  Blake2bDigest inner = inner_.Final();
  Blake2bStream outer;
  outer.Update(outer_pad_.span());
  outer.Update(inner);
  SecureWipe(inner);
  Blake2bDigest mac = outer.Final();
  SecretArray<kBlake2bSize> out(mac);
  SecureWipe(mac);
  return out;
}

SecretArray<kBlake2bSize> HmacBlake2b512(ByteSpan key, ByteSpan data) {
  HmacBlake2b mac(key);
  mac.Update(data);
  return mac.Final();
}

}  // namespace sotto::crypto
