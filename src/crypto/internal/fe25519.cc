#include "crypto/internal/fe25519.h"

#include <cstring>

namespace sotto::crypto::internal {
namespace {

__extension__ typedef unsigned __int128 u128;
constexpr uint64_t kMask51 = (uint64_t{1} << 51) - 1;

uint64_t Load64(const uint8_t* p) {
  uint64_t r = 0;
  for (int i = 7; i >= 0; --i) r = (r << 8) | p[i];
  return r;
}

void Store64(uint8_t* p, uint64_t v) {
  for (int i = 0; i < 8; ++i) {
    p[i] = static_cast<uint8_t>(v);
    v >>= 8;
  }
}

Fe Carry(Fe f) {
  for (int pass = 0; pass < 2; ++pass) {
    for (int i = 0; i < 4; ++i) {
      f.v[i + 1] += f.v[i] >> 51;
      f.v[i] &= kMask51;
    }
    f.v[0] += 19 * (f.v[4] >> 51);
    f.v[4] &= kMask51;
  }
  return f;
}

Fe ReduceWide(const u128 r[5]) {
  Fe f;
  u128 c = 0;
  u128 t[5];
  for (int i = 0; i < 5; ++i) {
    t[i] = r[i] + c;
    c = t[i] >> 51;
    f.v[i] = static_cast<uint64_t>(t[i]) & kMask51;
  }
  // c < 2^77: fold it back with 19 and carry once more.
  u128 low = static_cast<u128>(f.v[0]) + c * 19;
  f.v[0] = static_cast<uint64_t>(low) & kMask51;
  u128 carry = low >> 51;
  u128 v1 = static_cast<u128>(f.v[1]) + carry;
  f.v[1] = static_cast<uint64_t>(v1) & kMask51;
  f.v[2] += static_cast<uint64_t>(v1 >> 51);
  return f;
}

Fe SquareTimes(Fe a, int n) {
  for (int i = 0; i < n; ++i) a = FeSquare(a);
  return a;
}

}  // namespace

Fe FeOne() { return Fe{{1, 0, 0, 0, 0}}; }

Fe FeFromBytes(const uint8_t in[32]) {
  Fe f;
  f.v[0] = Load64(in) & kMask51;
  f.v[1] = (Load64(in + 6) >> 3) & kMask51;
  f.v[2] = (Load64(in + 12) >> 6) & kMask51;
  f.v[3] = (Load64(in + 19) >> 1) & kMask51;
  f.v[4] = (Load64(in + 24) >> 12) & kMask51;
  return f;
}

void FeToBytes(uint8_t out[32], const Fe& in) {
  Fe h = Carry(in);
  // h < 2^255 now; subtract p once if h >= p.
  uint64_t q = (h.v[0] + 19) >> 51;
  for (int i = 1; i < 5; ++i) q = (h.v[i] + q) >> 51;
  h.v[0] += 19 * q;
  for (int i = 0; i < 4; ++i) {
    h.v[i + 1] += h.v[i] >> 51;
    h.v[i] &= kMask51;
  }
  h.v[4] &= kMask51;
  Store64(out, h.v[0] | (h.v[1] << 51));
  Store64(out + 8, (h.v[1] >> 13) | (h.v[2] << 38));
  Store64(out + 16, (h.v[2] >> 26) | (h.v[3] << 25));
  Store64(out + 24, (h.v[3] >> 39) | (h.v[4] << 12));
}

Fe FeAdd(const Fe& a, const Fe& b) {
  Fe r;
  for (int i = 0; i < 5; ++i) r.v[i] = a.v[i] + b.v[i];
  return Carry(r);
}

Fe FeSub(const Fe& a, const Fe& b) {
  // Add 2p so limbs never go negative (inputs are carried, limbs < 2^52).
  static constexpr uint64_t kTwoP0 = 0xfffffffffffdaULL;
  static constexpr uint64_t kTwoPi = 0xffffffffffffeULL;
  Fe r;
  r.v[0] = a.v[0] + kTwoP0 - b.v[0];
  for (int i = 1; i < 5; ++i) r.v[i] = a.v[i] + kTwoPi - b.v[i];
  return Carry(r);
}

Fe FeMul(const Fe& a, const Fe& b) {
  const uint64_t* x = a.v;
  const uint64_t* y = b.v;
  const uint64_t y1_19 = 19 * y[1], y2_19 = 19 * y[2], y3_19 = 19 * y[3], y4_19 = 19 * y[4];
  u128 r[5];
  r[0] = static_cast<u128>(x[0]) * y[0] + static_cast<u128>(x[1]) * y4_19 +
         static_cast<u128>(x[2]) * y3_19 + static_cast<u128>(x[3]) * y2_19 +
         static_cast<u128>(x[4]) * y1_19;
  r[1] = static_cast<u128>(x[0]) * y[1] + static_cast<u128>(x[1]) * y[0] +
         static_cast<u128>(x[2]) * y4_19 + static_cast<u128>(x[3]) * y3_19 +
         static_cast<u128>(x[4]) * y2_19;
  r[2] = static_cast<u128>(x[0]) * y[2] + static_cast<u128>(x[1]) * y[1] +
         static_cast<u128>(x[2]) * y[0] + static_cast<u128>(x[3]) * y4_19 +
         static_cast<u128>(x[4]) * y3_19;
  r[3] = static_cast<u128>(x[0]) * y[3] + static_cast<u128>(x[1]) * y[2] +
         static_cast<u128>(x[2]) * y[1] + static_cast<u128>(x[3]) * y[0] +
         static_cast<u128>(x[4]) * y4_19;
  r[4] = static_cast<u128>(x[0]) * y[4] + static_cast<u128>(x[1]) * y[3] +
         static_cast<u128>(x[2]) * y[2] + static_cast<u128>(x[3]) * y[1] +
         static_cast<u128>(x[4]) * y[0];
  return ReduceWide(r);
}

Fe FeSquare(const Fe& a) { return FeMul(a, a); }

Fe FeInvert(const Fe& z) {
  // z^(p-2) with the usual chain of 254 squarings and 11 multiplications.
  Fe z2 = FeSquare(z);
  Fe z9 = FeMul(SquareTimes(z2, 2), z);
  Fe z11 = FeMul(z9, z2);
  Fe z_5_0 = FeMul(FeSquare(z11), z9);
  Fe z_10_0 = FeMul(SquareTimes(z_5_0, 5), z_5_0);
  Fe z_20_0 = FeMul(SquareTimes(z_10_0, 10), z_10_0);
  Fe z_40_0 = FeMul(SquareTimes(z_20_0, 20), z_20_0);
  Fe z_50_0 = FeMul(SquareTimes(z_40_0, 10), z_10_0);
  Fe z_100_0 = FeMul(SquareTimes(z_50_0, 50), z_50_0);
  Fe z_200_0 = FeMul(SquareTimes(z_100_0, 100), z_100_0);
  Fe z_250_0 = FeMul(SquareTimes(z_200_0, 50), z_50_0);
  return FeMul(SquareTimes(z_250_0, 5), z11);
}

namespace {
// numerator / denominator, canonically encoded (0 / 0 gives 0).
std::array<uint8_t, 32> Quotient(const Fe& numerator, const Fe& denominator) {
  std::array<uint8_t, 32> out;
  FeToBytes(out.data(), FeMul(numerator, FeInvert(denominator)));
  return out;
}
}  // namespace

std::array<uint8_t, 32> MontgomeryToEdwardsY(const uint8_t u[32]) {
  const Fe fu = FeFromBytes(u);
  return Quotient(FeSub(fu, FeOne()), FeAdd(fu, FeOne()));  // y = (u - 1) / (u + 1)
}

std::array<uint8_t, 32> EdwardsYToMontgomery(const uint8_t y[32]) {
  const Fe fy = FeFromBytes(y);
  return Quotient(FeAdd(FeOne(), fy), FeSub(FeOne(), fy));  // u = (1 + y) / (1 - y)
}

}  // namespace sotto::crypto::internal
