#include "client/internal/sealing.h"

#include <array>
#include <utility>

#include "client/internal/sqlite.h"
#include "crypto/aead.h"

namespace sotto::client::internal {

std::string AssociatedData(std::string_view table, std::initializer_list<std::string_view> fields) {
  std::string ad(table);
  for (std::string_view field : fields) {
    ad += '|';
    ad += std::to_string(field.size());
    ad += ':';
    ad += field;
  }
  return ad;
}

Sealer::Sealer(crypto::SecretBytes key, crypto::Random& random)
    : key_(std::move(key)), random_(random) {}

Result<Bytes> Sealer::Seal(ByteSpan plaintext, std::string_view associated_data) const {
  Bytes sealed(crypto::kAeadNonceSize + plaintext.size() + crypto::kAeadTagSize);
  const MutableByteSpan nonce(sealed.data(), crypto::kAeadNonceSize);
  random_.Fill(nonce);
  SOTTO_ASSIGN_OR_RETURN(
      const size_t written,
      crypto::ChaChaPolyEncrypt(key_.span(), nonce, AsBytes(associated_data), plaintext,
                                MutableByteSpan(sealed).subspan(crypto::kAeadNonceSize)));
  sealed.resize(crypto::kAeadNonceSize + written);
  return sealed;
}

Result<crypto::SecretBytes> Sealer::Open(ByteSpan sealed, std::string_view associated_data) const {
  if (sealed.size() < crypto::kAeadNonceSize + crypto::kAeadTagSize) {
    return StoreError(Code::kDataLoss, StoreErr::kCorrupt, "a sealed column is too short");
  }
  const ByteSpan nonce = sealed.first(crypto::kAeadNonceSize);
  const ByteSpan ciphertext = sealed.subspan(crypto::kAeadNonceSize);
  crypto::SecretBytes plaintext(ciphertext.size() - crypto::kAeadTagSize);
  auto opened = crypto::ChaChaPolyDecrypt(key_.span(), nonce, AsBytes(associated_data), ciphertext,
                                          plaintext.mutable_span());
  if (!opened || *opened != plaintext.size()) {
    return StoreError(Code::kDataLoss, StoreErr::kCorrupt, "a sealed column does not open");
  }
  return plaintext;
}

}  // namespace sotto::client::internal
