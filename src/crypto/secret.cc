#include "crypto/secret.h"

#include <sodium/utils.h>

namespace sotto::crypto {

void SecureWipe(MutableByteSpan bytes) {
  if (!bytes.empty()) sodium_memzero(bytes.data(), bytes.size());
}

bool ConstantTimeEqual(ByteSpan a, ByteSpan b) {
  if (a.size() != b.size()) return false;
  if (a.empty()) return true;
  return sodium_memcmp(a.data(), b.data(), a.size()) == 0;
}

SecretBytes& SecretBytes::operator=(SecretBytes&& other) noexcept {
  if (this != &other) {
    SecureWipe(bytes_);
    bytes_ = std::move(other.bytes_);
    other.bytes_.clear();
  }
  return *this;
}

}  // namespace sotto::crypto
