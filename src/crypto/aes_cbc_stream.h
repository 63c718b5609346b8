// Incremental AES-256-CBC with PKCS#7 padding (OpenSSL EVP), for data that does not fit
// in memory (media files, docs/media.md). Output equals AesCbcEncrypt/AesCbcDecrypt of the
// whole input, however the input is split.
//
// Thread-safety: externally synchronized (one object per stream).
#pragma once

#include <cstddef>
#include <memory>

#include "base/bytes.h"
#include "base/result.h"
#include "crypto/aes_cbc.h"

namespace sotto::crypto {

enum class CbcDirection : uint8_t { kEncrypt, kDecrypt };

class AesCbcStream {
 public:
  // `key` is 32 bytes, `iv` 16. Errors: kInvalidArgument (CryptoErr::kBadLength) on wrong
  // sizes, kInternal (kCipherFailure) if OpenSSL refuses.
  static Result<AesCbcStream> Create(CbcDirection direction, ByteSpan key, ByteSpan iv);
  ~AesCbcStream();
  AesCbcStream(AesCbcStream&&) noexcept;
  AesCbcStream& operator=(AesCbcStream&&) noexcept;

  // Processes `in` into `out`, which must hold in.size() + kAesBlockSize bytes. Returns
  // the bytes written (whole blocks; a decryptor holds the last block back for Final).
  Result<size_t> Update(ByteSpan in, MutableByteSpan out);
  // Ends the stream into `out` (at least kAesBlockSize bytes): the padded last block when
  // encrypting, the unpadded tail when decrypting. Errors: kUnauthenticated (kBadPadding)
  // on wrong padding, kInvalidArgument (kBadLength) if the ciphertext was not whole blocks.
  Result<size_t> Final(MutableByteSpan out);

 private:
  struct Ctx;
  explicit AesCbcStream(std::unique_ptr<Ctx> ctx);
  std::unique_ptr<Ctx> ctx_;
};

}  // namespace sotto::crypto
