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

// One context per thread, re-keyed per call: no allocation per message.
struct CtxHolder {
  EVP_CIPHER_CTX* ctx = EVP_CIPHER_CTX_new();
  ~CtxHolder() { EVP_CIPHER_CTX_free(ctx); }
};

EVP_CIPHER_CTX* ThreadCtx() {
  thread_local CtxHolder holder;
  return holder.ctx;
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
  EVP_CIPHER_CTX* ctx = ThreadCtx();
  const EVP_CIPHER* cipher = Aes256Cbc();
  if (ctx == nullptr || cipher == nullptr ||
      EVP_EncryptInit_ex2(ctx, cipher, key.data(), iv.data(), nullptr) != 1) {
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
  EVP_CIPHER_CTX* ctx = ThreadCtx();
  const EVP_CIPHER* cipher = Aes256Cbc();
  if (ctx == nullptr || cipher == nullptr ||
      EVP_DecryptInit_ex2(ctx, cipher, key.data(), iv.data(), nullptr) != 1) {
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
