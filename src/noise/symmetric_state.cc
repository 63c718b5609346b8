#include "noise/symmetric_state.h"

#include <algorithm>

#include "crypto/blake2b.h"
#include "noise/internal/hkdf.h"

namespace sotto::noise {
namespace {

static_assert(kHashSize == crypto::kBlake2bSize);

CipherKey Truncate(const internal::HashOutput& output) {
  return CipherKey(output.span().first(kKeySize));
}

HandshakeHash HashOf(const HandshakeHash& h, ByteSpan data) {
  crypto::Blake2bStream hash;
  hash.Update(h);
  hash.Update(data);
  return hash.Final();
}

}  // namespace

SymmetricState::SymmetricState(std::string_view protocol_name) {
  const ByteSpan name = AsBytes(protocol_name);
  if (name.size() <= kHashSize) {
    std::copy(name.begin(), name.end(), h_.begin());
  } else {
    h_ = crypto::Blake2b(name);
  }
  ck_ = ChainingKey(h_);
}

void SymmetricState::MixKey(ByteSpan input_key_material) {
  internal::HashOutput temp_k;
  internal::Hkdf2(ck_, input_key_material, ck_, temp_k);
  cipher_.InitializeKey(Truncate(temp_k));
}

void SymmetricState::MixHash(ByteSpan data) { h_ = HashOf(h_, data); }

void SymmetricState::MixKeyAndHash(ByteSpan input_key_material) {
  internal::HashOutput temp_h;
  internal::HashOutput temp_k;
  internal::Hkdf3(ck_, input_key_material, ck_, temp_h, temp_k);
  MixHash(temp_h.span());
  cipher_.InitializeKey(Truncate(temp_k));
}

Result<size_t> SymmetricState::EncryptAndHash(ByteSpan plaintext, MutableByteSpan out) {
  auto written = cipher_.EncryptWithAd(h_, plaintext, out);
  if (written) MixHash(out.first(*written));
  return written;
}

Result<size_t> SymmetricState::DecryptAndHash(ByteSpan ciphertext, MutableByteSpan out) {
  // The next h covers the ciphertext, which in-place decryption overwrites: hash first,
  // commit only on success.
  const HandshakeHash next_h = HashOf(h_, ciphertext);
  auto written = cipher_.DecryptWithAd(h_, ciphertext, out);
  if (written) h_ = next_h;
  return written;
}

std::pair<CipherState, CipherState> SymmetricState::Split() const {
  internal::HashOutput temp_k1;
  internal::HashOutput temp_k2;
  internal::Hkdf2(ck_, {}, temp_k1, temp_k2);
  std::pair<CipherState, CipherState> out;
  out.first.InitializeKey(Truncate(temp_k1));
  out.second.InitializeKey(Truncate(temp_k2));
  return out;
}

}  // namespace sotto::noise
