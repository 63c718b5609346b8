// Tests of the incremental primitives media uses: AES-256-CBC streams (NIST SP 800-38A
// F.2.5/F.2.6), SHA-256 and HMAC-SHA256 streams (RFC 4231), and streaming == one-shot
// for every split around the block boundaries.
#include <gtest/gtest.h>

#include "crypto/aes_cbc.h"
#include "crypto/aes_cbc_stream.h"
#include "crypto/hash.h"
#include "crypto/random.h"

namespace sotto::crypto {
namespace {

const char* kNistKey = "603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4";
const char* kNistIv = "000102030405060708090a0b0c0d0e0f";
const char* kNistPt =
    "6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e51"
    "30c81c46a35ce411e5fbc1191a0a52eff69f2445df4f9b17ad2b417be66c3710";
const char* kNistCt =
    "f58c4c04d6e5f1ba779eabfb5f7bfbd69cfc4e967edb808d679f777bc6702c7d"
    "39f23369a9d9bacfa530e26304231461b2eb05e2c39be9fcda6c19078c6a9d1b";

// Runs `in` through a stream in pieces of `chunk` bytes.
Result<Bytes> RunStream(CbcDirection dir, ByteSpan key, ByteSpan iv, ByteSpan in, size_t chunk) {
  auto s = AesCbcStream::Create(dir, key, iv);
  if (!s) return tl::unexpected(s.error());
  Bytes out;
  Bytes buf(chunk + kAesBlockSize);
  for (size_t at = 0; at < in.size(); at += chunk) {
    const size_t n = std::min(chunk, in.size() - at);
    auto w = s->Update(in.subspan(at, n), buf);
    if (!w) return tl::unexpected(w.error());
    out.insert(out.end(), buf.begin(), buf.begin() + static_cast<ptrdiff_t>(*w));
  }
  auto f = s->Final(buf);
  if (!f) return tl::unexpected(f.error());
  out.insert(out.end(), buf.begin(), buf.begin() + static_cast<ptrdiff_t>(*f));
  return out;
}

TEST(AesCbcStream, NistSp80038aF25F26) {
  const Bytes key = FromHex(kNistKey), iv = FromHex(kNistIv), pt = FromHex(kNistPt);
  for (size_t chunk : {1u, 7u, 16u, 17u, 64u}) {
    auto ct = RunStream(CbcDirection::kEncrypt, key, iv, pt, chunk);
    ASSERT_TRUE(ct);
    ASSERT_EQ(ct->size(), 80u);  // four blocks + a block of PKCS#7 padding
    EXPECT_EQ(ToHex(ByteSpan(*ct).first(64)), kNistCt) << chunk;
    auto back = RunStream(CbcDirection::kDecrypt, key, iv, *ct, chunk);
    ASSERT_TRUE(back);
    EXPECT_EQ(*back, pt);
  }
}

TEST(AesCbcStream, StreamingEqualsOneShotAtBlockBoundaries) {
  DeterministicRandom rng(7);
  Bytes key(32), iv(16);
  rng.Fill(key);
  rng.Fill(iv);
  for (size_t size : {0u, 1u, 15u, 16u, 17u, 31u, 32u, 33u, 1000u}) {
    Bytes pt(size);
    rng.Fill(pt);
    Bytes one(CbcCiphertextSize(size));
    ASSERT_TRUE(AesCbcEncrypt(key, iv, pt, one));
    for (size_t chunk : {1u, 15u, 16u, 17u, 4096u}) {
      auto ct = RunStream(CbcDirection::kEncrypt, key, iv, pt, chunk);
      ASSERT_TRUE(ct);
      EXPECT_EQ(*ct, one) << size << "/" << chunk;
      auto back = RunStream(CbcDirection::kDecrypt, key, iv, one, chunk);
      ASSERT_TRUE(back);
      EXPECT_EQ(*back, pt) << size << "/" << chunk;
    }
  }
}

TEST(AesCbcStream, RejectsBadSizesPaddingAndTruncation) {
  const Bytes key(32, 1), iv(16, 2);
  EXPECT_FALSE(AesCbcStream::Create(CbcDirection::kEncrypt, Bytes(31, 0), iv));
  EXPECT_FALSE(AesCbcStream::Create(CbcDirection::kDecrypt, key, Bytes(15, 0)));
  auto s = AesCbcStream::Create(CbcDirection::kEncrypt, key, iv);
  ASSERT_TRUE(s);
  Bytes small(16);
  EXPECT_FALSE(s->Update(Bytes(16, 0), small));  // needs in + 16
  Bytes pt(40, 9);
  Bytes ct(CbcCiphertextSize(pt.size()));
  ASSERT_TRUE(AesCbcEncrypt(key, iv, pt, ct));
  // Truncated to a non-block length, and to whole blocks that lose the padding block.
  EXPECT_FALSE(RunStream(CbcDirection::kDecrypt, key, iv, ByteSpan(ct).first(ct.size() - 1), 16));
  auto cut = RunStream(CbcDirection::kDecrypt, key, iv, ByteSpan(ct).first(ct.size() - 16), 16);
  EXPECT_TRUE(!cut || *cut != pt);
  // A flipped last byte breaks the padding (almost surely: check it is not silently accepted).
  Bytes bad = ct;
  bad.back() ^= 0x01;
  auto flipped = RunStream(CbcDirection::kDecrypt, key, iv, bad, 16);
  EXPECT_TRUE(!flipped || *flipped != pt);
}

TEST(Sha256Stream, KnownAnswerAndSplits) {
  Sha256Stream s;
  s.Update(AsBytes("ab"));
  s.Update(AsBytes("c"));
  EXPECT_EQ(ToHex(s.Final()), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  DeterministicRandom rng(3);
  Bytes data(300);
  rng.Fill(data);
  for (size_t chunk : {1u, 63u, 64u, 65u, 300u}) {
    Sha256Stream t;
    for (size_t at = 0; at < data.size(); at += chunk) {
      t.Update(ByteSpan(data).subspan(at, std::min(chunk, data.size() - at)));
    }
    EXPECT_EQ(t.Final(), Sha256(data)) << chunk;
  }
}

TEST(HmacSha256Stream, Rfc4231Cases1And2Split) {
  HmacSha256 one(Bytes(20, 0x0b));
  one.Update(AsBytes("Hi "));
  one.Update(AsBytes("There"));
  EXPECT_EQ(ToHex(one.Final().span()),
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
  const std::string text = "what do ya want for nothing?";
  for (size_t split = 0; split <= text.size(); ++split) {
    HmacSha256 two(AsBytes("Jefe"));
    two.Update(AsBytes(std::string_view(text).substr(0, split)));
    two.Update(AsBytes(std::string_view(text).substr(split)));
    EXPECT_EQ(ToHex(two.Final().span()),
              "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
  }
}

}  // namespace
}  // namespace sotto::crypto
