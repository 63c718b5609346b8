// Column sealing for the local store: ChaCha20-Poly1305 under the storage key, a random
// nonce per write, and the table and row key as associated data so that a sealed value
// copied to another row (or table) does not open. Format: docs/client-store.md.
//
// Thread-safety: externally synchronized (the Random is).
#pragma once

#include <initializer_list>
#include <string>
#include <string_view>

#include "base/bytes.h"
#include "base/result.h"
#include "crypto/random.h"
#include "crypto/secret.h"

namespace sotto::client::internal {

// "table|<len>:<field>|<len>:<field>...": fields are length-prefixed so that no two rows
// (e.g. group "a|b" + name "c" against group "a" + name "b|c") share associated data.
std::string AssociatedData(std::string_view table, std::initializer_list<std::string_view> fields);

class Sealer {
 public:
  // `key` must be kAeadKeySize bytes; `random` must outlive the Sealer.
  Sealer(crypto::SecretBytes key, crypto::Random& random);

  // nonce(12) || ciphertext || tag(16).
  Result<Bytes> Seal(ByteSpan plaintext, std::string_view associated_data) const;
  // kCorrupt (kDataLoss) if the blob is too short or does not authenticate under `ad`.
  Result<crypto::SecretBytes> Open(ByteSpan sealed, std::string_view associated_data) const;

 private:
  crypto::SecretBytes key_;
  crypto::Random& random_;
};

}  // namespace sotto::client::internal
