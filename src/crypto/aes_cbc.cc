#include "crypto/aes_cbc.h"

#include <openssl/evp.h>

#include <climits>
#include <cstdlib>

#include "crypto/x25519.h"

namespace sotto::crypto {
namespace {

// Fetched once: OpenSSL 3's implicit fetch on every init is slow.
const EVP_CIPHER* Aes256Cbc() {
  static EVP_CIPHER* cipher = EVP_CIPHER_fetch(nullptr, "AES-256-CBC", nullptr);
  return cipher;
}

// One encrypt and one decrypt context per thread, bound to the cipher once and then only
// re-keyed: OpenSSL 3 rebuilds the provider context (a malloc) whenever a cipher is
// passed to Init, but not when only the key and IV change.
struct CtxHolder {
  explicit CtxHolder(int encrypt) {
    const EVP_CIPHER* cipher = Aes256Cbc();
    if (ctx != nullptr && cipher != nullptr &&
        EVP_CipherInit_ex2(ctx, cipher, nullptr, nullptr, encrypt, nullptr) == 1) {
      ready = true;
    }
  }
  ~CtxHolder() { EVP_CIPHER_CTX_free(ctx); }
  CtxHolder(const CtxHolder&) = delete;
  CtxHolder& operator=(const CtxHolder&) = delete;
  EVP_CIPHER_CTX* ctx = EVP_CIPHER_CTX_new();
  bool ready = false;
};

EVP_CIPHER_CTX* EncryptCtx() {
  thread_local CtxHolder holder(1);
  return holder.ready ? holder.ctx : nullptr;
}

EVP_CIPHER_CTX* DecryptCtx() {
  thread_local CtxHolder holder(0);
  return holder.ready ? holder.ctx : nullptr;
}

tl::unexpected<Error> CipherError(CryptoErr detail, const char* message) {
  return MakeError(detail == CryptoErr::kBadPadding ? Code::kUnauthenticated
                                                    : Code::kInvalidArgument,
                   Module::kCrypto, static_cast<uint16_t>(detail), message);
}

}  // namespace

Result<size_t> AesCbcEncrypt(ByteSpan key, ByteSpan iv, ByteSpan plaintext, MutableByteSpan out) {
  if (key.size() != kAesKeySize || iv.size() != kAesBlockSize ||
      out.size() < CbcCiphertextSize(plaintext.size()) || plaintext.size() > INT_MAX - 32) {
    return CipherError(CryptoErr::kBadLength, "AES-CBC encrypt: bad key, IV or buffer size");
  }
  EVP_CIPHER_CTX* ctx = EncryptCtx();
  if (ctx == nullptr || EVP_EncryptInit_ex2(ctx, nullptr, key.data(), iv.data(), nullptr) != 1) {
    return CipherError(CryptoErr::kCipherFailure, "AES-CBC encrypt: cipher init failed");
  }
  int n1 = 0;
  int n2 = 0;
  if (EVP_EncryptUpdate(ctx, out.data(), &n1, plaintext.data(),
                        static_cast<int>(plaintext.size())) != 1 ||
      EVP_EncryptFinal_ex(ctx, out.data() + n1, &n2) != 1) {
    return CipherError(CryptoErr::kCipherFailure, "AES-CBC encrypt failed");
  }
  return static_cast<size_t>(n1 + n2);
}

Result<size_t> AesCbcDecrypt(ByteSpan key, ByteSpan iv, ByteSpan ciphertext, MutableByteSpan out) {
  if (key.size() != kAesKeySize || iv.size() != kAesBlockSize) {
    return CipherError(CryptoErr::kBadLength, "AES-CBC decrypt: bad key or IV size");
  }
  if (ciphertext.empty() || ciphertext.size() % kAesBlockSize != 0 ||
      ciphertext.size() > INT_MAX - 32 || out.size() < ciphertext.size()) {
    return CipherError(CryptoErr::kBadLength, "AES-CBC decrypt: ciphertext not whole blocks");
  }
  EVP_CIPHER_CTX* ctx = DecryptCtx();
  if (ctx == nullptr || EVP_DecryptInit_ex2(ctx, nullptr, key.data(), iv.data(), nullptr) != 1) {
    return CipherError(CryptoErr::kCipherFailure, "AES-CBC decrypt: cipher init failed");
  }
  int n1 = 0;
  int n2 = 0;
  if (EVP_DecryptUpdate(ctx, out.data(), &n1, ciphertext.data(),
                        static_cast<int>(ciphertext.size())) != 1) {
    return CipherError(CryptoErr::kCipherFailure, "AES-CBC decrypt failed");
  }
  if (EVP_DecryptFinal_ex(ctx, out.data() + n1, &n2) != 1) {
    return CipherError(CryptoErr::kBadPadding, "AES-CBC decrypt: bad padding");
  }
  return static_cast<size_t>(n1 + n2);
}

}  // namespace sotto::crypto
