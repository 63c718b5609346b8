// The media format (docs/media.md): encrypt/decrypt round trips at block edges, every
// tamper refused with nothing left at the final path, key derivation pinned, file names
// and MIME types; and the Range header parser.
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include "client/media.h"
#include "crypto/aes_cbc.h"
#include "crypto/hash.h"
#include "crypto/random.h"
#include "net/http_range.h"

namespace sotto::client {
namespace {

namespace fs = std::filesystem;

class MediaFormatTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/sotto-media-format-XXXXXX";
    dir_ = mkdtemp(tmpl);
  }
  void TearDown() override { fs::remove_all(dir_); }

  fs::path Write(const std::string& name, ByteSpan data) {
    const fs::path p = dir_ / name;
    std::ofstream(p, std::ios::binary)
        .write(reinterpret_cast<const char*>(data.data()), static_cast<std::streamsize>(data.size()));
    return p;
  }
  static Bytes Read(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    return Bytes(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  // Encrypts `plain` into DIR/blob; its pointer into `*pointer_out`.
  void Encrypt(const Bytes& plain, uint64_t seed, content::AttachmentPointer* pointer_out) {
    const fs::path in = Write("plain", plain);
    std::ofstream blob(dir_ / "blob", std::ios::binary | std::ios::trunc);
    crypto::DeterministicRandom random(seed);
    auto pointer = EncryptFile(in, plain.size(), random, [&](ByteSpan b) -> Status {
      blob.write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
      return Ok();
    });
    ASSERT_TRUE(pointer) << pointer.error().ToString();
    pointer->set_blob_id("AAAAAAAAAAAAAAAAAAAAAA");
    *pointer_out = *pointer;
  }
  // Decrypts DIR/blob to DIR/out; on failure checks nothing is left there.
  Status Decrypt(const content::AttachmentPointer& pointer) {
    auto done = DecryptBlobFile(dir_ / "blob", pointer, dir_ / "out");
    if (!done) {
      EXPECT_FALSE(fs::exists(dir_ / "out"));
      EXPECT_FALSE(fs::exists(dir_ / "out.tmp"));
      EXPECT_EQ(done.error().detail, static_cast<uint16_t>(MediaErr::kRejected));
    }
    return done;
  }
  std::string RejectionOf(const content::AttachmentPointer& pointer) {
    auto done = Decrypt(pointer);
    return done ? "" : std::string(done.error().message);
  }

  fs::path dir_;
};

TEST_F(MediaFormatTest, RoundTripsAtBlockEdges) {
  for (size_t size : {size_t{0}, size_t{1}, size_t{15}, size_t{16}, size_t{17}, kMediaChunkBytes - 1,
                      kMediaChunkBytes, kMediaChunkBytes + 1, 3 * kMediaChunkBytes + 5}) {
    Bytes plain(size);
    crypto::DeterministicRandom(size).Fill(plain);
    content::AttachmentPointer pointer;
    ASSERT_NO_FATAL_FAILURE(Encrypt(plain, 1, &pointer));
    EXPECT_EQ(fs::file_size(dir_ / "blob"), EncryptedBlobSize(size)) << size;
    EXPECT_EQ(pointer.size(), size);
    EXPECT_EQ(pointer.media_key().size(), kMediaKeySize);
    const auto digest = crypto::Sha256(Read(dir_ / "blob"));
    EXPECT_EQ(pointer.ciphertext_sha256(), std::string(AsString(digest)));
    ASSERT_TRUE(Decrypt(pointer)) << size;
    EXPECT_EQ(Read(dir_ / "out"), plain) << size;
    fs::remove(dir_ / "out");
  }
}

TEST_F(MediaFormatTest, LayoutIsCbcUnderHkdfKeysThenFullHmac) {
  // Independently of EncryptFile: HKDF(media key, no salt, info) -> AES key, MAC key, IV;
  // blob = AES-256-CBC(PKCS#7) || HMAC-SHA256(MAC key, IV || ciphertext).
  Bytes plain(100);
  crypto::DeterministicRandom(9).Fill(plain);
  content::AttachmentPointer pointer;
  ASSERT_NO_FATAL_FAILURE(Encrypt(plain, 1, &pointer));
  uint8_t keys[80];
  crypto::Hkdf(AsBytes(pointer.media_key()), {}, AsBytes("Sotto Media Keys v1"), keys);
  Bytes ct(crypto::CbcCiphertextSize(plain.size()));
  ASSERT_TRUE(crypto::AesCbcEncrypt(ByteSpan(keys, 32), ByteSpan(keys + 64, 16), plain, ct));
  Bytes mac_input(keys + 64, keys + 80);
  Append(mac_input, ct);
  const auto tag = crypto::Hmac256(ByteSpan(keys + 32, 32), mac_input);
  Bytes expected = ct;
  Append(expected, tag.span());
  EXPECT_EQ(Read(dir_ / "blob"), expected);
  EXPECT_EQ(pointer.plaintext_sha256(), std::string(AsString(crypto::Sha256(plain))));
}

TEST_F(MediaFormatTest, FreshKeyPerFile) {
  const Bytes plain(64, 7);
  content::AttachmentPointer a;
  ASSERT_NO_FATAL_FAILURE(Encrypt(plain, 1, &a));
  const Bytes blob_a = Read(dir_ / "blob");
  content::AttachmentPointer b;
  ASSERT_NO_FATAL_FAILURE(Encrypt(plain, 2, &b));
  EXPECT_NE(a.media_key(), b.media_key());
  EXPECT_NE(blob_a, Read(dir_ / "blob"));
}

TEST_F(MediaFormatTest, EveryTamperIsRejectedAndNothingIsSaved) {
  Bytes plain(5000);
  crypto::DeterministicRandom(4).Fill(plain);
  content::AttachmentPointer pointer;
  ASSERT_NO_FATAL_FAILURE(Encrypt(plain, 1, &pointer));
  const Bytes blob = Read(dir_ / "blob");
  auto with_blob = [&](const Bytes& b) { Write("blob", b); };

  Bytes flipped = blob;  // a ciphertext byte
  flipped[100] ^= 1;
  with_blob(flipped);
  EXPECT_NE(RejectionOf(pointer).find("MAC"), std::string::npos);
  flipped = blob;  // a MAC byte
  flipped.back() ^= 0x80;
  with_blob(flipped);
  EXPECT_NE(RejectionOf(pointer).find("MAC"), std::string::npos);
  with_blob(Bytes(blob.begin(), blob.end() - 16));  // truncated by a block
  EXPECT_NE(RejectionOf(pointer).find("size"), std::string::npos);
  with_blob(Bytes(blob.begin(), blob.end() - 1));  // truncated by a byte
  EXPECT_NE(RejectionOf(pointer).find("size"), std::string::npos);
  Bytes longer = blob;
  longer.push_back(0);
  with_blob(longer);
  EXPECT_NE(RejectionOf(pointer).find("size"), std::string::npos);

  with_blob(blob);
  auto p = pointer;  // the ciphertext digest
  p.mutable_ciphertext_sha256()->at(0) ^= 1;
  EXPECT_NE(RejectionOf(p).find("ciphertext digest"), std::string::npos);
  p = pointer;  // the plaintext digest
  p.mutable_plaintext_sha256()->at(31) ^= 1;
  EXPECT_NE(RejectionOf(p).find("plaintext digest"), std::string::npos);
  p = pointer;  // a size in the same padding block: the blob size still fits
  p.set_size(pointer.size() - 1);
  EXPECT_NE(RejectionOf(p).find("plaintext size"), std::string::npos);
  p = pointer;  // a size a block away
  p.set_size(pointer.size() + 16);
  EXPECT_NE(RejectionOf(p).find("size"), std::string::npos);
  p = pointer;  // another key
  p.mutable_media_key()->at(0) ^= 1;
  EXPECT_NE(RejectionOf(p).find("MAC"), std::string::npos);
  // And the untouched blob still decrypts.
  ASSERT_TRUE(Decrypt(pointer));
  EXPECT_EQ(Read(dir_ / "out"), plain);
}

TEST_F(MediaFormatTest, FileThatChangesSizeIsRefused) {
  const fs::path in = Write("plain", Bytes(100, 1));
  crypto::DeterministicRandom random(1);
  auto sink = [](ByteSpan) -> Status { return Ok(); };
  EXPECT_FALSE(EncryptFile(in, 99, random, sink));
  EXPECT_FALSE(EncryptFile(in, 101, random, sink));
  EXPECT_FALSE(EncryptFile(dir_ / "missing", 1, random, sink));
}

TEST(MediaPointer, ValidationLimits) {
  content::AttachmentPointer p;
  p.set_blob_id("AAAAAAAAAAAAAAAAAAAAAA");
  p.set_media_key(std::string(32, 'k'));
  p.set_plaintext_sha256(std::string(32, 'p'));
  p.set_ciphertext_sha256(std::string(32, 'c'));
  p.set_size(kMaxAttachmentBytes);  // at the edge
  p.set_content_type(std::string(kMaxContentTypeBytes, 'a'));
  p.set_file_name(std::string(kMaxAttachmentNameBytes, 'n'));
  EXPECT_TRUE(ValidatePointer(p));
  auto bad = p;
  bad.set_size(kMaxAttachmentBytes + 1);
  EXPECT_FALSE(ValidatePointer(bad));
  bad = p;
  bad.set_content_type(std::string(kMaxContentTypeBytes + 1, 'a'));
  EXPECT_FALSE(ValidatePointer(bad));
  bad = p;
  bad.set_file_name(std::string(kMaxAttachmentNameBytes + 1, 'n'));
  EXPECT_FALSE(ValidatePointer(bad));
  bad = p;
  bad.set_blob_id("../AAAAAAAAAAAAAAAAAAA");
  EXPECT_FALSE(ValidatePointer(bad));
  bad = p;
  bad.set_media_key(std::string(31, 'k'));
  EXPECT_FALSE(ValidatePointer(bad));
}

TEST(MediaNames, SanitizeAndMime) {
  EXPECT_EQ(SanitizeFileName("../../etc/passwd"), "passwd");
  EXPECT_EQ(SanitizeFileName("C:\\evil\\x.exe"), "x.exe");
  EXPECT_EQ(SanitizeFileName("..."), "attachment");
  EXPECT_EQ(SanitizeFileName(".hidden"), "hidden");
  EXPECT_EQ(SanitizeFileName("holiday photo.png"), "holiday_photo.png");
  EXPECT_EQ(SanitizeFileName(""), "attachment");
  EXPECT_EQ(SanitizeFileName(std::string(300, 'a')).size(), 100u);
  EXPECT_EQ(MimeTypeFor("a.PNG"), "image/png");
  EXPECT_EQ(MimeTypeFor("clip.mp4"), "video/mp4");
  EXPECT_EQ(MimeTypeFor("noext"), "application/octet-stream");
  EXPECT_EQ(MimeTypeFor("x."), "application/octet-stream");
}

TEST(HttpRange, Forms) {
  using net::ParseRangeHeader;
  using net::RangeKind;
  auto r = ParseRangeHeader("bytes=10-", 100);
  EXPECT_EQ(r.kind, RangeKind::kSatisfiable);
  EXPECT_EQ(r.first, 10u);
  EXPECT_EQ(r.last, 99u);
  r = ParseRangeHeader("bytes=10-200", 100);  // clamped
  EXPECT_EQ(r.last, 99u);
  r = ParseRangeHeader("bytes=-500", 100);  // suffix longer than the resource
  EXPECT_EQ(r.kind, RangeKind::kSatisfiable);
  EXPECT_EQ(r.first, 0u);
  EXPECT_EQ(ParseRangeHeader("bytes=99-99", 100).kind, RangeKind::kSatisfiable);
  EXPECT_EQ(ParseRangeHeader("bytes=100-", 100).kind, RangeKind::kUnsatisfiable);
  EXPECT_EQ(ParseRangeHeader("bytes=-0", 100).kind, RangeKind::kUnsatisfiable);
  EXPECT_EQ(ParseRangeHeader("bytes=0-", 0).kind, RangeKind::kUnsatisfiable);
  EXPECT_EQ(ParseRangeHeader("", 100).kind, RangeKind::kNone);
  EXPECT_EQ(ParseRangeHeader("bytes=5-2", 100).kind, RangeKind::kNone);
  EXPECT_EQ(ParseRangeHeader("bytes=1-2,4-5", 100).kind, RangeKind::kNone);
  EXPECT_EQ(ParseRangeHeader("items=1-2", 100).kind, RangeKind::kNone);
  EXPECT_EQ(ParseRangeHeader("bytes=x-", 100).kind, RangeKind::kNone);
  EXPECT_EQ(ParseRangeHeader("bytes=99999999999999999999-", 100).kind, RangeKind::kNone);
}

}  // namespace
}  // namespace sotto::client
