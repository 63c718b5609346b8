// Tests of crypto/: published vectors (RFC 5869, RFC 4231, RFC 7748, NIST SP 800-38A)
// and cross-checks against libsodium's own Ed25519/X25519 conversions.
#include <sodium.h>

#include <gtest/gtest.h>

#include "crypto/aes_cbc.h"
#include "crypto/hash.h"
#include "crypto/internal/fe25519.h"
#include "crypto/random.h"
#include "crypto/secret.h"
#include "crypto/x25519.h"

namespace sotto::crypto {
namespace {

TEST(Hkdf, Rfc5869Case1) {
  const Bytes ikm(22, 0x0b);
  const Bytes salt = FromHex("000102030405060708090a0b0c");
  const Bytes info = FromHex("f0f1f2f3f4f5f6f7f8f9");
  Bytes okm(42);
  Hkdf(ikm, salt, info, okm);
  EXPECT_EQ(ToHex(okm),
            "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865");
}

TEST(Hkdf, Rfc5869Case3NoSaltNoInfo) {
  const Bytes ikm(22, 0x0b);
  Bytes okm(42);
  Hkdf(ikm, {}, {}, okm);
  EXPECT_EQ(ToHex(okm),
            "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8");
}

TEST(Hmac, Rfc4231Case2) {
  auto mac = Hmac256(AsBytes("Jefe"), AsBytes("what do ya want for nothing?"));
  EXPECT_EQ(ToHex(mac.span()), "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

TEST(Sha512, StreamingEqualsOneShot) {
  Sha512Stream s;
  s.Update(AsBytes("ab"));
  s.Update(AsBytes("c"));
  EXPECT_EQ(s.Final(), Sha512(AsBytes("abc")));
  EXPECT_EQ(ToHex(Sha512(AsBytes("abc"))).substr(0, 16), "ddaf35a193617aba");
}

TEST(AesCbc, NistSp80038aF25) {
  const Bytes key = FromHex("603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4");
  const Bytes iv = FromHex("000102030405060708090a0b0c0d0e0f");
  const Bytes pt = FromHex("6bc1bee22e409f96e93d7e117393172a");
  Bytes ct(CbcCiphertextSize(pt.size()));
  auto n = AesCbcEncrypt(key, iv, pt, ct);
  ASSERT_TRUE(n);
  ASSERT_EQ(*n, 32u);  // one block of data + one block of padding
  EXPECT_EQ(ToHex(ByteSpan(ct).first(16)), "f58c4c04d6e5f1ba779eabfb5f7bfbd6");
  Bytes back(ct.size());
  auto m = AesCbcDecrypt(key, iv, ct, back);
  ASSERT_TRUE(m);
  back.resize(*m);
  EXPECT_EQ(back, pt);
}

TEST(AesCbc, RejectsBadLengthsAndPadding) {
  const Bytes key(32, 1), iv(16, 2);
  Bytes out(64);
  EXPECT_FALSE(AesCbcDecrypt(key, iv, Bytes(15, 0), out));
  EXPECT_FALSE(AesCbcDecrypt(key, iv, Bytes{}, out));
  EXPECT_FALSE(AesCbcDecrypt(Bytes(31, 0), iv, Bytes(16, 0), out));
  EXPECT_FALSE(AesCbcEncrypt(key, iv, Bytes(16, 0), MutableByteSpan(out.data(), 31)));
  // Random blocks almost never carry valid padding; find one that fails.
  int bad = 0;
  for (uint8_t i = 0; i < 16; ++i) {
    if (!AesCbcDecrypt(key, iv, Bytes(16, i), out)) ++bad;
  }
  EXPECT_GT(bad, 10);
}

TEST(X25519, Rfc7748Section61) {
  const Bytes alice_priv = FromHex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a");
  X25519Private priv(alice_priv);
  EXPECT_EQ(ToHex(PublicKeyOf(priv)),
            "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a");
  const Bytes bob_pub = FromHex("de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f");
  X25519Public pub;
  std::copy(bob_pub.begin(), bob_pub.end(), pub.begin());
  auto shared = Agree(priv, pub);
  ASSERT_TRUE(shared);
  EXPECT_EQ(ToHex(shared->span()), "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742");
}

TEST(X25519, RejectsLowOrderPoint) {
  X25519Private priv = GeneratePrivateKey(SystemRandom());
  X25519Public zero{};
  auto shared = Agree(priv, zero);
  ASSERT_FALSE(shared);
  EXPECT_EQ(shared.error().detail, static_cast<uint16_t>(CryptoErr::kWeakKey));
}

TEST(Fe25519, MontgomeryToEdwardsMatchesLibsodium) {
  for (int i = 0; i < 200; ++i) {
    unsigned char ed_pk[32], ed_sk[64], x_pk[32];
    crypto_sign_keypair(ed_pk, ed_sk);
    ASSERT_EQ(crypto_sign_ed25519_pk_to_curve25519(x_pk, ed_pk), 0);
    auto y = internal::MontgomeryToEdwardsY(x_pk);
    ed_pk[31] &= 0x7f;
    EXPECT_EQ(ToHex(y), ToHex(ByteSpan(ed_pk, 32)));
  }
}

TEST(X25519, PublicKeyOfMatchesTheBasePointLadder) {
  DeterministicRandom random(11);
  for (int i = 0; i < 500; ++i) {
    X25519Private priv;
    random.Fill(priv.mutable_span());  // unclamped on purpose: PublicKeyOf clamps
    unsigned char expected[32];
    crypto_scalarmult_base(expected, priv.data());
    EXPECT_EQ(ToHex(PublicKeyOf(priv)), ToHex(ByteSpan(expected, 32)));
  }
}

TEST(Fe25519, InvertTimesSelfIsOne) {
  uint8_t bytes[32];
  for (int i = 0; i < 50; ++i) {
    randombytes_buf(bytes, sizeof bytes);
    internal::Fe x = internal::FeFromBytes(bytes);
    internal::Fe one = internal::FeMul(x, internal::FeInvert(x));
    uint8_t out[32];
    internal::FeToBytes(out, one);
    EXPECT_EQ(out[0], 1);
    for (int j = 1; j < 32; ++j) EXPECT_EQ(out[j], 0);
  }
}

TEST(XEdDsa, SignVerifyRoundTripAndTamper) {
  DeterministicRandom random(7);
  for (int i = 0; i < 64; ++i) {
    X25519Private priv = GeneratePrivateKey(random);
    X25519Public pub = PublicKeyOf(priv);
    const Bytes msg = FromHex("00112233445566778899");
    Signature sig = Sign(priv, msg, random);
    EXPECT_TRUE(VerifySignature(pub, msg, sig));
    EXPECT_EQ(sig[63] & 0x80, 0);  // spec XEdDSA: sign bit 0
    Bytes other = msg;
    other[0] ^= 1;
    EXPECT_FALSE(VerifySignature(pub, other, sig));
    Signature bad = sig;
    bad[10] ^= 0x40;
    EXPECT_FALSE(VerifySignature(pub, msg, bad));
    // Setting the sign bit names the other Edwards point: must fail.
    Signature flipped = sig;
    flipped[63] |= 0x80;
    EXPECT_FALSE(VerifySignature(pub, msg, flipped));
    EXPECT_FALSE(VerifySignature(pub, msg, ByteSpan(sig).first(63)));
  }
}

TEST(XEdDsa, ReusableSignerAndVerifier) {
  DeterministicRandom random(9);
  X25519Private priv = GeneratePrivateKey(random);
  Signer signer(priv);
  Verifier verifier(PublicKeyOf(priv));
  for (int i = 0; i < 10; ++i) {
    Bytes msg(static_cast<size_t>(i * 13), static_cast<uint8_t>(i));
    EXPECT_TRUE(verifier.Verify(msg, signer.Sign(msg, random)));
  }
}

TEST(Secret, WipeAndConstantTimeCompare) {
  SecretBytes a(ByteSpan(FromHex("0102")));
  SecretBytes b = a.Clone();
  EXPECT_TRUE(a == b);
  SecretBytes c(std::move(a));
  EXPECT_TRUE(a.empty());  // NOLINT(bugprone-use-after-move): moved-from is empty by contract
  EXPECT_TRUE(c == b);
  SecretArray<4> s(ByteSpan(FromHex("deadbeef")));
  SecureWipe(s.mutable_span());
  EXPECT_EQ(ToHex(s.span()), "00000000");
  EXPECT_FALSE(ConstantTimeEqual(FromHex("01"), FromHex("0102")));
}

TEST(Random, DeterministicIsReproducibleAndUniformInRange) {
  DeterministicRandom a(42), b(42), c(43);
  uint8_t x[32], y[32], z[32];
  a.Fill(x);
  b.Fill(y);
  c.Fill(z);
  EXPECT_EQ(ToHex(x), ToHex(y));
  EXPECT_NE(ToHex(x), ToHex(z));
  for (int i = 0; i < 1000; ++i) EXPECT_LT(a.Uniform(7), 7u);
}

}  // namespace
}  // namespace sotto::crypto
