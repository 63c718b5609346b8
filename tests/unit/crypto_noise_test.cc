// The crypto/ primitives Noise needs: ChaCha20-Poly1305 IETF (crypto/aead.h) and
// BLAKE2b-512 / HMAC-BLAKE2b (crypto/blake2b.h). Expected HMAC values were computed with
// an independent implementation (CPython's hmac + hashlib.blake2b, block size 128).
//
// Suite names start with "noise_" so that `ctest -R noise` selects them.
#include <gtest/gtest.h>

#include <string>

#include "base/bytes.h"
#include "crypto/aead.h"
#include "crypto/blake2b.h"

namespace sotto::crypto {
namespace {

constexpr std::string_view kSunscreen =
    "Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the "
    "future, sunscreen would be it.";

Bytes Range(uint8_t first, size_t count) {
  Bytes out(count);
  for (size_t i = 0; i < count; ++i) out[i] = static_cast<uint8_t>(first + i);
  return out;
}

// RFC 8439 §2.8.2.
struct Rfc8439 {
  Bytes key = Range(0x80, 32);
  Bytes nonce = FromHex("070000004041424344454647");
  Bytes ad = FromHex("50515253c0c1c2c3c4c5c6c7");
  std::string ciphertext =
      "d31a8d34648e60db7b86afbc53ef7ec2a4aded51296e08fea9e2b5a736ee62d63dbea45e8ca9671282fafb"
      "69da92728b1a71de0a9e060b2905d6a5b67ecd3b3692ddbd7f2d778b8c9803aee328091b58fab324e4fad6"
      "75945585808b4831d7bc3ff4def08e4b7a9de576d26586cec64b6116";
  std::string tag = "1ae10b594f09e26a7e902ecbd0600691";
};

TEST(noise_Aead, Rfc8439Section282) {
  const Rfc8439 v;
  const ByteSpan plaintext = AsBytes(kSunscreen);
  Bytes out(plaintext.size() + kAeadTagSize);
  auto written = ChaChaPolyEncrypt(v.key, v.nonce, v.ad, plaintext, out);
  ASSERT_TRUE(written);
  EXPECT_EQ(*written, out.size());
  EXPECT_EQ(ToHex(out), v.ciphertext + v.tag);

  Bytes back(plaintext.size());
  auto read = ChaChaPolyDecrypt(v.key, v.nonce, v.ad, out, back);
  ASSERT_TRUE(read);
  EXPECT_EQ(AsString(ByteSpan(back).first(*read)), kSunscreen);
}

TEST(noise_Aead, InPlace) {
  const Rfc8439 v;
  Bytes buffer(kSunscreen.size() + kAeadTagSize);
  std::copy(kSunscreen.begin(), kSunscreen.end(), buffer.begin());
  ASSERT_TRUE(
      ChaChaPolyEncrypt(v.key, v.nonce, v.ad, ByteSpan(buffer).first(kSunscreen.size()), buffer));
  EXPECT_EQ(ToHex(buffer), v.ciphertext + v.tag);
  auto read = ChaChaPolyDecrypt(v.key, v.nonce, v.ad, buffer, buffer);
  ASSERT_TRUE(read);
  EXPECT_EQ(AsString(ByteSpan(buffer).first(*read)), kSunscreen);
}

TEST(noise_Aead, RejectsTamperingWithUnauthenticated) {
  const Rfc8439 v;
  Bytes sealed = FromHex(v.ciphertext + v.tag);
  Bytes out(sealed.size());
  for (size_t i : {size_t{0}, sealed.size() / 2, sealed.size() - 1}) {
    Bytes tampered = sealed;
    tampered[i] ^= 0x01;
    auto read = ChaChaPolyDecrypt(v.key, v.nonce, v.ad, tampered, out);
    ASSERT_FALSE(read);
    EXPECT_EQ(read.error().code, Code::kUnauthenticated);
  }
  Bytes ad = v.ad;
  ad[0] ^= 0x80;
  auto wrong_ad = ChaChaPolyDecrypt(v.key, v.nonce, ad, sealed, out);
  ASSERT_FALSE(wrong_ad);
  EXPECT_EQ(wrong_ad.error().code, Code::kUnauthenticated);
}

TEST(noise_Aead, RejectsBadSizes) {
  const Rfc8439 v;
  Bytes out(64);
  const Bytes short_key(31, 0);
  EXPECT_EQ(ChaChaPolyEncrypt(short_key, v.nonce, {}, {}, out).error().code,
            Code::kInvalidArgument);
  EXPECT_EQ(ChaChaPolyEncrypt(v.key, ByteSpan(v.nonce).first(8), {}, {}, out).error().code,
            Code::kInvalidArgument);
  Bytes small(kAeadTagSize + 3);
  EXPECT_FALSE(ChaChaPolyEncrypt(v.key, v.nonce, {}, Bytes(4, 0), small));
  EXPECT_FALSE(ChaChaPolyDecrypt(v.key, v.nonce, {}, Bytes(kAeadTagSize - 1, 0), out));
  // Partially overlapping buffers are refused; exact aliasing is allowed (test above).
  Bytes buffer(64, 0);
  EXPECT_FALSE(ChaChaPolyEncrypt(v.key, v.nonce, {}, ByteSpan(buffer).first(16),
                                 MutableByteSpan(buffer).subspan(1)));
}

TEST(noise_Aead, EmptyPlaintextIsJustATag) {
  const Rfc8439 v;
  Bytes tag(kAeadTagSize);
  auto written = ChaChaPolyEncrypt(v.key, v.nonce, v.ad, {}, tag);
  ASSERT_TRUE(written);
  EXPECT_EQ(*written, kAeadTagSize);
  auto read = ChaChaPolyDecrypt(v.key, v.nonce, v.ad, tag, MutableByteSpan());
  ASSERT_TRUE(read);
  EXPECT_EQ(*read, 0u);
}

// RFC 7693 Appendix A, and the empty input.
TEST(noise_Blake2b, Vectors) {
  EXPECT_EQ(ToHex(Blake2b(AsBytes("abc"))),
            "ba80a53f981c4d0d6a2797b69f12f6e94c212f14685ac4b74b12bb6fdbffa2d17d87c5392aab792d"
            "c252d5de4533cc9518d38aa8dbf1925ab92386edd4009923");
  EXPECT_EQ(ToHex(Blake2b({})),
            "786a02f742015903c6c6fd852552d272912f4740e15847618a86e217f71f5419d25e1031afee5853"
            "13896444934eb04b903a685b1448b755d56f701afe9be2ce");
}

TEST(noise_Blake2b, StreamMatchesOneShot) {
  const Bytes data = Range(0, 255);
  Blake2bStream stream;
  stream.Update(ByteSpan(data).first(100));
  stream.Update(ByteSpan(data).subspan(100));
  EXPECT_EQ(stream.Final(), Blake2b(data));
  stream.Reset();
  stream.Update(AsBytes("abc"));
  EXPECT_EQ(stream.Final(), Blake2b(AsBytes("abc")));
}

TEST(noise_HmacBlake2b, IndependentValues) {
  EXPECT_EQ(
      ToHex(HmacBlake2b512(AsBytes("key"), AsBytes("The quick brown fox jumps over the lazy dog"))
                .span()),
      "92294f92c0dfb9b00ec9ae8bd94d7e7d8a036b885a499f149dfe2fd2199394aaaf6b8894a1730ccc"
      "b2cd050f9bcf5062a38b51b0dab33207f8ef35ae2c9df51b");
  // A key of exactly BLOCKLEN bytes is used as is.
  EXPECT_EQ(ToHex(HmacBlake2b512(Range(0, 128), {}).span()),
            "e79ec585fc83408cd654da61cc87457edd77cae194e6e4727420fa21a001229ed67f1fb7bb03effa"
            "aaec05d2d7902f98bfad11da65b4c08d197eefa96f314b31");
  // A longer key is hashed first.
  EXPECT_EQ(ToHex(HmacBlake2b512(Range(0, 200), AsBytes("abc")).span()),
            "feb09eb5b1c557085c0a53bdf39ef7bc9af291f21d7c917cd1cf09542aab95362de79b3925fe55d9"
            "2997423b5a68be1bda2f6518df34fa1053bb3ef559b08200");
}

TEST(noise_HmacBlake2b, ConsistentWithDefinition) {
  // RFC 2104 spelled out with the one-shot hash: H((K^opad) || H((K^ipad) || m)).
  const Bytes key = Range(7, 40);
  const ByteSpan message = AsBytes("message to authenticate");
  Bytes inner(kBlake2bBlockSize, 0x36);
  Bytes outer(kBlake2bBlockSize, 0x5c);
  for (size_t i = 0; i < key.size(); ++i) {
    inner[i] ^= key[i];
    outer[i] ^= key[i];
  }
  Append(inner, message);
  const Blake2bDigest inner_hash = Blake2b(inner);
  Append(outer, inner_hash);
  const Blake2bDigest expected = Blake2b(outer);

  HmacBlake2b mac(key);
  mac.Update(message.first(5));
  mac.Update(message.subspan(5));
  EXPECT_EQ(ToHex(mac.Final().span()), ToHex(expected));
  EXPECT_EQ(ToHex(HmacBlake2b512(key, message).span()), ToHex(expected));
  // A long key equals its hash as the key.
  const Bytes long_key = Range(1, 129);
  EXPECT_EQ(HmacBlake2b512(long_key, message), HmacBlake2b512(Blake2b(long_key), message));
}

}  // namespace
}  // namespace sotto::crypto
