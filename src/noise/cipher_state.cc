#include "noise/cipher_state.h"

#include <algorithm>
#include <array>
#include <cstring>
#include <utility>

#include "crypto/aead.h"
#include "noise/error.h"

namespace sotto::noise {
namespace {

static_assert(kKeySize == crypto::kAeadKeySize && kTagSize == crypto::kAeadTagSize);

// ChaChaPoly's nonce (spec §12.3): 32 zero bits, then n little-endian.
std::array<uint8_t, crypto::kAeadNonceSize> NonceBytes(uint64_t n) {
  std::array<uint8_t, crypto::kAeadNonceSize> nonce{};
  for (size_t i = 0; i < 8; ++i) nonce[4 + i] = static_cast<uint8_t>(n >> (8 * i));
  return nonce;
}

tl::unexpected<Error> MovedFrom() {
  return NoiseError(Code::kFailedPrecondition, NoiseErr::kWrongState,
                    "CipherState used after being moved from");
}

// Copies for an empty key; memmove because `out` may be `in` itself.
size_t PassThrough(ByteSpan in, MutableByteSpan out) {
  if (!in.empty()) std::memmove(out.data(), in.data(), in.size());
  return in.size();
}

}  // namespace

CipherState::CipherState(CipherState&& other) noexcept
    : k_(other.k_), n_(other.n_), state_(other.state_), auto_rekey_(other.auto_rekey_) {
  other.k_ = CipherKey();
  other.state_ = KeyState::kMovedFrom;
}

CipherState& CipherState::operator=(CipherState&& other) noexcept {
  if (this != &other) {
    k_ = other.k_;
    n_ = other.n_;
    state_ = other.state_;
    auto_rekey_ = other.auto_rekey_;
    other.k_ = CipherKey();
    other.state_ = KeyState::kMovedFrom;
  }
  return *this;
}

void CipherState::InitializeKey(const CipherKey& key) {
  k_ = key;
  n_ = 0;
  state_ = KeyState::kKeyed;
}

void CipherState::InitializeEmpty() {
  k_ = CipherKey();
  n_ = 0;
  state_ = KeyState::kEmpty;
}

Result<size_t> CipherState::EncryptWithAd(ByteSpan ad, ByteSpan plaintext, MutableByteSpan out) {
  if (state_ == KeyState::kMovedFrom) return MovedFrom();
  const size_t overhead = state_ == KeyState::kKeyed ? kTagSize : 0;
  if (plaintext.size() > kMaxNoiseMessage - overhead) {
    return NoiseError(Code::kResourceExhausted, NoiseErr::kMessageTooLarge,
                      "Noise message would exceed 65535 bytes");
  }
  if (out.size() < plaintext.size() + overhead) {
    return NoiseError(Code::kInvalidArgument, NoiseErr::kBufferTooSmall,
                      "EncryptWithAd: output buffer too small");
  }
  if (state_ == KeyState::kEmpty) return PassThrough(plaintext, out);
  if (n_ == kMaxNonce) {
    return NoiseError(Code::kResourceExhausted, NoiseErr::kNonceExhausted,
                      "CipherState nonce exhausted: a new handshake is needed");
  }
  const auto nonce = NonceBytes(n_);
  auto written = crypto::ChaChaPolyEncrypt(k_.span(), nonce, ad, plaintext, out);
  if (!written) {
    return NoiseError(Code::kInternal, NoiseErr::kBufferTooSmall,
                      "EncryptWithAd: cipher refused the buffers");
  }
  ++n_;
  if (auto_rekey_ && n_ % kRekeyInterval == 0) SOTTO_RETURN_IF_ERROR(Rekey());
  return *written;
}

Result<size_t> CipherState::DecryptWithAd(ByteSpan ad, ByteSpan ciphertext, MutableByteSpan out) {
  if (state_ == KeyState::kMovedFrom) return MovedFrom();
  if (ciphertext.size() > kMaxNoiseMessage) {
    return NoiseError(Code::kResourceExhausted, NoiseErr::kMessageTooLarge,
                      "Noise message longer than 65535 bytes");
  }
  if (state_ == KeyState::kEmpty) {
    if (out.size() < ciphertext.size()) {
      return NoiseError(Code::kInvalidArgument, NoiseErr::kBufferTooSmall,
                        "DecryptWithAd: output buffer too small");
    }
    return PassThrough(ciphertext, out);
  }
  if (ciphertext.size() < kTagSize) {
    return NoiseError(Code::kInvalidArgument, NoiseErr::kMessageTooShort,
                      "DecryptWithAd: ciphertext shorter than the tag");
  }
  if (out.size() < ciphertext.size() - kTagSize) {
    return NoiseError(Code::kInvalidArgument, NoiseErr::kBufferTooSmall,
                      "DecryptWithAd: output buffer too small");
  }
  if (n_ == kMaxNonce) {
    return NoiseError(Code::kResourceExhausted, NoiseErr::kNonceExhausted,
                      "CipherState nonce exhausted: a new handshake is needed");
  }
  const auto nonce = NonceBytes(n_);
  auto written = crypto::ChaChaPolyDecrypt(k_.span(), nonce, ad, ciphertext, out);
  if (!written) {
    return NoiseError(Code::kUnauthenticated, NoiseErr::kDecryptFailed,
                      "DecryptWithAd: authentication failed");
  }
  ++n_;
  if (auto_rekey_ && n_ % kRekeyInterval == 0) SOTTO_RETURN_IF_ERROR(Rekey());
  return *written;
}

Status CipherState::Rekey() {
  if (state_ != KeyState::kKeyed) {
    return NoiseError(Code::kFailedPrecondition, NoiseErr::kWrongState,
                      "Rekey needs a CipherState with a key");
  }
  static constexpr std::array<uint8_t, kKeySize> kZeros{};
  crypto::SecretArray<kKeySize + kTagSize> block;
  const auto nonce = NonceBytes(kMaxNonce);
  auto written = crypto::ChaChaPolyEncrypt(k_.span(), nonce, {}, kZeros, block.mutable_span());
  if (!written) {
    return NoiseError(Code::kInternal, NoiseErr::kBufferTooSmall, "Rekey: cipher failed");
  }
  k_ = CipherKey(block.span().first(kKeySize));
  return Ok();
}

}  // namespace sotto::noise
