// Noise's HKDF (spec rev 34 §4.3) over HMAC-BLAKE2b: RFC 5869 with the chaining key as
// salt, empty info and 64-byte outputs. Private to noise/.
#pragma once

#include "base/bytes.h"
#include "crypto/secret.h"

namespace sotto::noise::internal {

using HashOutput = crypto::SecretArray<64>;

// Two outputs.
void Hkdf2(const HashOutput& chaining_key, ByteSpan input_key_material, HashOutput& output1,
           HashOutput& output2);
// Three outputs.
void Hkdf3(const HashOutput& chaining_key, ByteSpan input_key_material, HashOutput& output1,
           HashOutput& output2, HashOutput& output3);

}  // namespace sotto::noise::internal
