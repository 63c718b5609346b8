#include "crypto/aes_cbc_stream.h"

#include <openssl/evp.h>

#include <climits>

#include "crypto/x25519.h"

namespace sotto::crypto {
namespace {

tl::unexpected<Error> StreamError(Code code, CryptoErr detail, const char* message) {
  return MakeError(code, Module::kCrypto, static_cast<uint16_t>(detail), message);
}

}  // namespace

struct AesCbcStream::Ctx {
  Ctx() = default;
  ~Ctx() { EVP_CIPHER_CTX_free(ctx); }
  Ctx(const Ctx&) = delete;
  Ctx& operator=(const Ctx&) = delete;
  EVP_CIPHER_CTX* ctx = EVP_CIPHER_CTX_new();
  bool finished = false;
};

AesCbcStream::AesCbcStream(std::unique_ptr<Ctx> ctx) : ctx_(std::move(ctx)) {}
AesCbcStream::~AesCbcStream() = default;
AesCbcStream::AesCbcStream(AesCbcStream&&) noexcept = default;
AesCbcStream& AesCbcStream::operator=(AesCbcStream&&) noexcept = default;

Result<AesCbcStream> AesCbcStream::Create(CbcDirection direction, ByteSpan key, ByteSpan iv) {
  if (key.size() != kAesKeySize || iv.size() != kAesBlockSize) {
    return StreamError(Code::kInvalidArgument, CryptoErr::kBadLength,
                       "AES-CBC stream: bad key or IV size");
  }
  auto ctx = std::make_unique<Ctx>();
  const int encrypt = direction == CbcDirection::kEncrypt ? 1 : 0;
  if (ctx->ctx == nullptr ||
      EVP_CipherInit_ex2(ctx->ctx, EVP_aes_256_cbc(), key.data(), iv.data(), encrypt, nullptr) != 1) {
    return StreamError(Code::kInternal, CryptoErr::kCipherFailure, "AES-CBC stream: init failed");
  }
  return AesCbcStream(std::move(ctx));
}

Result<size_t> AesCbcStream::Update(ByteSpan in, MutableByteSpan out) {
  if (ctx_ == nullptr || ctx_->finished || in.size() > INT_MAX - 32 ||
      out.size() < in.size() + kAesBlockSize) {
    return StreamError(Code::kInvalidArgument, CryptoErr::kBadLength,
                       "AES-CBC stream: output buffer too small or stream finished");
  }
  int n = 0;
  if (!in.empty() &&
      EVP_CipherUpdate(ctx_->ctx, out.data(), &n, in.data(), static_cast<int>(in.size())) != 1) {
    return StreamError(Code::kInternal, CryptoErr::kCipherFailure, "AES-CBC stream: update failed");
  }
  return static_cast<size_t>(n);
}

Result<size_t> AesCbcStream::Final(MutableByteSpan out) {
  if (ctx_ == nullptr || ctx_->finished || out.size() < kAesBlockSize) {
    return StreamError(Code::kInvalidArgument, CryptoErr::kBadLength,
                       "AES-CBC stream: output buffer too small or stream finished");
  }
  ctx_->finished = true;
  int n = 0;
  if (EVP_CipherFinal_ex(ctx_->ctx, out.data(), &n) != 1) {
    if (EVP_CIPHER_CTX_is_encrypting(ctx_->ctx) == 1) {
      return StreamError(Code::kInternal, CryptoErr::kCipherFailure, "AES-CBC stream: final failed");
    }
    return StreamError(Code::kUnauthenticated, CryptoErr::kBadPadding,
                       "AES-CBC stream: bad padding or ciphertext not whole blocks");
  }
  return static_cast<size_t>(n);
}

}  // namespace sotto::crypto
