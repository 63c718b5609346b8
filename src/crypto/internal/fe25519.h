// Arithmetic modulo p = 2^255 - 19 in five 51-bit limbs, only as much as the
// Montgomery-to-Edwards conversion of XEdDSA needs (libsodium does not export its
// field arithmetic). Private to crypto/.
//
// Thread-safety: pure functions.
#pragma once

#include <array>
#include <cstdint>

namespace sotto::crypto::internal {

struct Fe {
  uint64_t v[5];
};

Fe FeFromBytes(const uint8_t in[32]);  // ignores the top bit, as RFC 7748 says
void FeToBytes(uint8_t out[32], const Fe& f);  // canonical (fully reduced)
Fe FeAdd(const Fe& a, const Fe& b);
Fe FeSub(const Fe& a, const Fe& b);
Fe FeMul(const Fe& a, const Fe& b);
Fe FeSquare(const Fe& a);
Fe FeInvert(const Fe& z);  // z^(p-2); 0 maps to 0
Fe FeOne();

// Edwards y = (u - 1) / (u + 1) of a Montgomery u-coordinate, canonical encoding with
// the sign bit clear.
std::array<uint8_t, 32> MontgomeryToEdwardsY(const uint8_t u[32]);

// Montgomery u = (1 + y) / (1 - y) of an encoded Edwards point (sign bit ignored).
std::array<uint8_t, 32> EdwardsYToMontgomery(const uint8_t y[32]);

}  // namespace sotto::crypto::internal
