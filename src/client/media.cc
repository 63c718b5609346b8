#include "client/media.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <algorithm>
#include <cerrno>
#include <vector>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "crypto/aes_cbc.h"
#include "crypto/aes_cbc_stream.h"
#include "crypto/hash.h"
#include "crypto/secret.h"
#include "net/blocking_stream.h"
#include "net/http_client.h"
#include "net/socket.h"

namespace sotto::client {

namespace beast = boost::beast;
namespace http = beast::http;

namespace {

constexpr size_t kDerivedBytes = 80;  // AES key 32 || MAC key 32 || IV 16
constexpr size_t kBlobIdChars = 22;
constexpr size_t kMaxFileNameChars = 100;
constexpr size_t kMaxResponseBytes = 4096;  // error texts from the blob service

tl::unexpected<Error> MediaError(Code code, MediaErr detail, const char* message) {
  return MakeError(code, Module::kClient, static_cast<uint16_t>(detail), message);
}
tl::unexpected<Error> Rejected(const char* message) {
  return MediaError(Code::kUnauthenticated, MediaErr::kRejected, message);
}
tl::unexpected<Error> FileError(const char* message) {
  return MediaError(Code::kInternal, MediaErr::kFile, message);
}
tl::unexpected<Error> TransferError(const char* message, Code code = Code::kUnavailable) {
  return MediaError(code, MediaErr::kTransfer, message);
}

struct MediaKeys {
  crypto::SecretArray<kDerivedBytes> bytes;
  ByteSpan aes() const { return bytes.span().subspan(0, 32); }
  ByteSpan mac() const { return bytes.span().subspan(32, 32); }
  ByteSpan iv() const { return bytes.span().subspan(64, 16); }
};

MediaKeys DeriveKeys(ByteSpan media_key) {
  MediaKeys keys;
  crypto::Hkdf(media_key, {}, AsBytes(kMediaKdfInfo), keys.bytes.mutable_span());
  return keys;
}

// Closes a file descriptor on scope exit.
struct Fd {
  int fd = -1;
  explicit Fd(int f) : fd(f) {}
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
};

// Reads up to out.size() bytes; 0 at the end; -1 on error.
ssize_t ReadSome(int fd, MutableByteSpan out) {
  for (;;) {
    const ssize_t n = ::read(fd, out.data(), out.size());
    if (n < 0 && errno == EINTR) continue;
    return n;
  }
}

bool WriteFull(int fd, ByteSpan data) {
  while (!data.empty()) {
    const ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data = data.subspan(static_cast<size_t>(n));
  }
  return true;
}

std::string HostHeader(const MediaEndpoint& e) {
  return e.host.find(':') != std::string::npos ? fmt::format("[{}]:{}", e.host, e.port)
                                               : fmt::format("{}:{}", e.host, e.port);
}

Result<net::BlockingStream> Open(const MediaEndpoint& e) {
  auto address = net::ResolveHostPort(HostHeader(e));
  if (!address) return TransferError("the media host does not resolve");
  auto stream = net::BlockingStream::Connect(*address, kMediaIdleTimeoutMs);
  if (!stream) return TransferError("cannot connect to the media service");
  return std::move(*stream);
}

bool IsPrintableAscii(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return c > 0x20 && c < 0x7f; });
}

}  // namespace

uint64_t EncryptedBlobSize(uint64_t plaintext_size) {
  return (plaintext_size / crypto::kAesBlockSize + 1) * crypto::kAesBlockSize + kMediaMacSize;
}

Status ValidatePointer(const content::AttachmentPointer& p) {
  const std::string& id = p.blob_id();
  const bool id_ok = id.size() == kBlobIdChars &&
                     std::all_of(id.begin(), id.end(), [](char c) {
                       return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                              (c >= '0' && c <= '9') || c == '-' || c == '_';
                     });
  if (!id_ok) return MediaError(Code::kInvalidArgument, MediaErr::kBadPointer, "bad blob id");
  if (p.media_key().size() != kMediaKeySize || p.plaintext_sha256().size() != 32 ||
      p.ciphertext_sha256().size() != 32) {
    return MediaError(Code::kInvalidArgument, MediaErr::kBadPointer,
                      "media key or digests of the wrong size");
  }
  if (p.size() > kMaxAttachmentBytes) {
    return MediaError(Code::kInvalidArgument, MediaErr::kBadPointer,
                      "attachment larger than kMaxAttachmentBytes");
  }
  if (p.content_type().size() > kMaxContentTypeBytes || !IsPrintableAscii(p.content_type())) {
    return MediaError(Code::kInvalidArgument, MediaErr::kBadPointer,
                      "content type too long (kMaxContentTypeBytes) or not printable ASCII");
  }
  if (p.file_name().size() > kMaxAttachmentNameBytes || !IsUtf8(p.file_name())) {
    return MediaError(Code::kInvalidArgument, MediaErr::kBadPointer,
                      "file name too long (kMaxAttachmentNameBytes) or not UTF-8");
  }
  return Ok();
}

std::string MimeTypeFor(std::string_view file_name) {
  static constexpr std::pair<std::string_view, std::string_view> kTable[] = {
      {"png", "image/png"},        {"jpg", "image/jpeg"},       {"jpeg", "image/jpeg"},
      {"gif", "image/gif"},        {"webp", "image/webp"},      {"heic", "image/heic"},
      {"svg", "image/svg+xml"},    {"mp4", "video/mp4"},        {"mov", "video/quicktime"},
      {"webm", "video/webm"},      {"mp3", "audio/mpeg"},       {"m4a", "audio/mp4"},
      {"ogg", "audio/ogg"},        {"opus", "audio/opus"},      {"wav", "audio/wav"},
      {"pdf", "application/pdf"},  {"txt", "text/plain"},       {"md", "text/markdown"},
      {"csv", "text/csv"},         {"json", "application/json"}, {"zip", "application/zip"},
      {"gz", "application/gzip"},  {"tar", "application/x-tar"}, {"html", "text/html"},
  };
  const size_t dot = file_name.rfind('.');
  if (dot != std::string_view::npos && dot + 1 < file_name.size()) {
    std::string ext(file_name.substr(dot + 1));
    std::transform(ext.begin(), ext.end(), ext.begin(),
                   [](char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c; });
    for (const auto& [e, type] : kTable) {
      if (e == ext) return std::string(type);
    }
  }
  return "application/octet-stream";
}

std::string SanitizeFileName(std::string_view hint) {
  const size_t slash = hint.find_last_of("/\\");
  if (slash != std::string_view::npos) hint = hint.substr(slash + 1);
  std::string out;
  for (char c : hint) {
    const bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '_' || c == '-';
    out.push_back(ok ? c : '_');
    if (out.size() == kMaxFileNameChars) break;
  }
  const size_t first = out.find_first_not_of('.');
  out = first == std::string::npos ? "" : out.substr(first);
  return out.empty() ? "attachment" : out;
}

Result<content::AttachmentPointer> EncryptFile(const std::filesystem::path& path, uint64_t size,
                                               crypto::Random& random, const BlobSink& sink) {
  Fd in(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (in.fd < 0) return FileError("cannot open the file to send");
  crypto::SecretArray<kMediaKeySize> media_key;
  random.Fill(media_key.mutable_span());
  const MediaKeys keys = DeriveKeys(media_key.span());
  SOTTO_ASSIGN_OR_RETURN(crypto::AesCbcStream cbc,
                         crypto::AesCbcStream::Create(crypto::CbcDirection::kEncrypt, keys.aes(),
                                                      keys.iv()));
  crypto::HmacSha256 mac(keys.mac());
  mac.Update(keys.iv());
  crypto::Sha256Stream plain_sha;
  crypto::Sha256Stream blob_sha;
  std::vector<uint8_t> buf(kMediaChunkBytes);
  std::vector<uint8_t> out(kMediaChunkBytes + crypto::kAesBlockSize);
  auto emit = [&](size_t n) -> Status {
    const ByteSpan piece(out.data(), n);
    mac.Update(piece);
    blob_sha.Update(piece);
    return sink(piece);
  };
  uint64_t total = 0;
  for (;;) {
    const ssize_t n = ReadSome(in.fd, buf);
    if (n < 0) return FileError("cannot read the file to send");
    if (n == 0) break;
    total += static_cast<uint64_t>(n);
    if (total > size) return FileError("the file grew while it was being sent");
    const ByteSpan piece(buf.data(), static_cast<size_t>(n));
    plain_sha.Update(piece);
    SOTTO_ASSIGN_OR_RETURN(const size_t w, cbc.Update(piece, out));
    SOTTO_RETURN_IF_ERROR(emit(w));
  }
  if (total != size) return FileError("the file shrank while it was being sent");
  SOTTO_ASSIGN_OR_RETURN(const size_t w, cbc.Final(out));
  SOTTO_RETURN_IF_ERROR(emit(w));
  const crypto::SecretArray<32> tag = mac.Final();
  blob_sha.Update(tag.span());
  SOTTO_RETURN_IF_ERROR(sink(tag.span()));
  std::fill(buf.begin(), buf.end(), uint8_t{0});
  content::AttachmentPointer pointer;
  pointer.set_media_key(std::string(AsString(media_key.span())));
  const crypto::Sha256Digest plain_digest = plain_sha.Final();
  const crypto::Sha256Digest blob_digest = blob_sha.Final();
  pointer.set_plaintext_sha256(std::string(AsString(plain_digest)));
  pointer.set_ciphertext_sha256(std::string(AsString(blob_digest)));
  pointer.set_size(size);
  return pointer;
}

Status DecryptBlobFile(const std::filesystem::path& blob_path,
                       const content::AttachmentPointer& pointer,
                       const std::filesystem::path& out_path) {
  SOTTO_RETURN_IF_ERROR(ValidatePointer(pointer));
  Fd in(::open(blob_path.c_str(), O_RDONLY | O_CLOEXEC));
  struct stat st {};
  if (in.fd < 0 || ::fstat(in.fd, &st) != 0) return FileError("cannot open the downloaded blob");
  const uint64_t blob_size = static_cast<uint64_t>(st.st_size);
  if (blob_size != EncryptedBlobSize(pointer.size())) {
    return Rejected("attachment rejected: the blob's size does not match the attachment's size");
  }
  const MediaKeys keys = DeriveKeys(AsBytes(pointer.media_key()));
  SOTTO_ASSIGN_OR_RETURN(crypto::AesCbcStream cbc,
                         crypto::AesCbcStream::Create(crypto::CbcDirection::kDecrypt, keys.aes(),
                                                      keys.iv()));
  crypto::HmacSha256 mac(keys.mac());
  mac.Update(keys.iv());
  crypto::Sha256Stream blob_sha;
  crypto::Sha256Stream plain_sha;
  const std::filesystem::path tmp_path = out_path.string() + ".tmp";
  Fd out(::open(tmp_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
  if (out.fd < 0) return FileError("cannot create the attachment's temporary file");
  auto fail = [&](tl::unexpected<Error> error) -> Status {
    ::unlink(tmp_path.c_str());
    return error;
  };
  std::vector<uint8_t> buf(kMediaChunkBytes);
  std::vector<uint8_t> plain(kMediaChunkBytes + crypto::kAesBlockSize);
  uint64_t remaining = blob_size - kMediaMacSize;
  uint64_t plain_total = 0;
  bool write_ok = true;
  while (remaining > 0) {
    const size_t want = static_cast<size_t>(std::min<uint64_t>(buf.size(), remaining));
    const ssize_t n = ReadSome(in.fd, MutableByteSpan(buf.data(), want));
    if (n <= 0) return fail(FileError("cannot read the downloaded blob"));
    remaining -= static_cast<uint64_t>(n);
    const ByteSpan piece(buf.data(), static_cast<size_t>(n));
    mac.Update(piece);
    blob_sha.Update(piece);
    auto w = cbc.Update(piece, plain);
    if (!w) return fail(tl::unexpected(w.error()));
    plain_sha.Update(ByteSpan(plain.data(), *w));
    plain_total += *w;
    write_ok = write_ok && WriteFull(out.fd, ByteSpan(plain.data(), *w));
  }
  uint8_t tag[kMediaMacSize];
  size_t got = 0;
  while (got < sizeof(tag)) {
    const ssize_t n = ReadSome(in.fd, MutableByteSpan(tag + got, sizeof(tag) - got));
    if (n <= 0) return fail(FileError("cannot read the downloaded blob"));
    got += static_cast<size_t>(n);
  }
  blob_sha.Update(tag);
  if (!crypto::ConstantTimeEqual(mac.Final().span(), tag)) {
    return fail(Rejected("attachment rejected: the MAC does not verify"));
  }
  const crypto::Sha256Digest blob_digest = blob_sha.Final();
  if (!crypto::ConstantTimeEqual(blob_digest, AsBytes(pointer.ciphertext_sha256()))) {
    return fail(Rejected("attachment rejected: the ciphertext digest does not match"));
  }
  auto w = cbc.Final(plain);
  if (!w) return fail(Rejected("attachment rejected: bad padding"));
  plain_sha.Update(ByteSpan(plain.data(), *w));
  plain_total += *w;
  write_ok = write_ok && WriteFull(out.fd, ByteSpan(plain.data(), *w));
  std::fill(plain.begin(), plain.end(), uint8_t{0});
  if (plain_total != pointer.size()) {
    return fail(Rejected("attachment rejected: the plaintext size does not match"));
  }
  const crypto::Sha256Digest plain_digest = plain_sha.Final();
  if (!crypto::ConstantTimeEqual(plain_digest, AsBytes(pointer.plaintext_sha256()))) {
    return fail(Rejected("attachment rejected: the plaintext digest does not match"));
  }
  if (!write_ok || ::fsync(out.fd) != 0) {
    return fail(FileError("cannot write the attachment"));
  }
  if (::rename(tmp_path.c_str(), out_path.c_str()) != 0) {
    return fail(FileError("cannot move the attachment into place"));
  }
  return Ok();
}

Result<MediaEndpoint> ResolveMediaEndpoint(std::string_view server_host, uint32_t port,
                                           std::string_view base_url) {
  MediaEndpoint e;
  if (base_url.empty()) {
    if (port == 0 || port > 65'535) return TransferError("the server gave no media port");
    e.host = std::string(server_host);
    e.port = static_cast<uint16_t>(port);
    return e;
  }
  auto url = net::ParseUrl(base_url);
  if (!url) return TransferError("the server's media URL does not parse", Code::kInvalidArgument);
  if (url->scheme == net::Scheme::kHttps) {
    return MediaError(Code::kUnimplemented, MediaErr::kUnsupported,
                      "https media URLs are not supported yet");
  }
  e.host = url->host;
  e.port = url->port;
  e.path_prefix = url->target;
  if (const size_t q = e.path_prefix.find('?'); q != std::string::npos) e.path_prefix.resize(q);
  while (!e.path_prefix.empty() && e.path_prefix.back() == '/') e.path_prefix.pop_back();
  return e;
}

Status UploadBlob(const MediaEndpoint& endpoint, std::string_view blob_id, std::string_view token,
                  uint64_t size, const std::function<Status(const BlobSink&)>& produce) {
  SOTTO_ASSIGN_OR_RETURN(net::BlockingStream stream, Open(endpoint));
  const std::string head = fmt::format(
      "PUT {}/v1/media/{} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\n"
      "Content-Type: application/octet-stream\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
      endpoint.path_prefix, blob_id, HostHeader(endpoint), token, size);
  boost::system::error_code ec;
  stream.WriteAll(head, ec);
  Status produced = Ok();
  if (!ec) {
    produced = produce([&stream](ByteSpan piece) -> Status {
      boost::system::error_code wec;
      stream.WriteAll(std::span<const char>(reinterpret_cast<const char*>(piece.data()), piece.size()),
                      wec);
      if (wec) return TransferError("the upload connection broke");
      return Ok();
    });
  }
  // Read the answer even after a failed write: the service may have refused early.
  beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
  parser.body_limit(kMaxResponseBytes);
  http::read(stream, buffer, parser, ec);
  if (ec) {
    if (!produced) return produced;
    return TransferError("no answer from the media service");
  }
  const unsigned status = parser.get().result_int();
  if (status != 201) {
    spdlog::warn("media upload refused: HTTP {}", status);
    if (status == 413) {
      return MediaError(Code::kResourceExhausted, MediaErr::kTooLarge,
                        "the media service refused the upload as too large (media.max_blob_bytes)");
    }
    return TransferError("the media service refused the upload", Code::kPermissionDenied);
  }
  if (!produced) return produced;
  return Ok();
}

Result<uint64_t> DownloadBlob(const MediaEndpoint& endpoint, std::string_view blob_id,
                              uint64_t size, const std::filesystem::path& part_path) {
  std::error_code fec;
  uint64_t have = std::filesystem::exists(part_path, fec) ? std::filesystem::file_size(part_path, fec) : 0;
  if (fec) have = 0;
  if (have > size) {
    std::filesystem::remove(part_path, fec);
    have = 0;
  }
  if (have == size && std::filesystem::exists(part_path, fec)) return uint64_t{0};
  SOTTO_ASSIGN_OR_RETURN(net::BlockingStream stream, Open(endpoint));
  const std::string range = have > 0 ? fmt::format("Range: bytes={}-\r\n", have) : "";
  const std::string head = fmt::format(
      "GET {}/v1/media/{} HTTP/1.1\r\nHost: {}\r\n{}Connection: close\r\n\r\n",
      endpoint.path_prefix, blob_id, HostHeader(endpoint), range);
  boost::system::error_code ec;
  stream.WriteAll(head, ec);
  if (ec) return TransferError("the download connection broke");
  beast::flat_buffer buffer;
  http::response_parser<http::buffer_body> parser;
  parser.body_limit(size);
  http::read_header(stream, buffer, parser, ec);
  if (ec == http::error::body_limit) return Rejected("attachment rejected: the blob is too long");
  if (ec) return TransferError("no answer from the media service");
  const unsigned status = parser.get().result_int();
  if (status == 404) return TransferError("the blob is gone (expired or never stored)", Code::kNotFound);
  const auto content_length = parser.content_length();
  int flags = O_WRONLY | O_CREAT | O_CLOEXEC | O_APPEND;
  if (status == 206) {
    const auto cr = parser.get()[http::field::content_range];
    const std::string expect = fmt::format("bytes {}-{}/{}", have, size - 1, size);
    if (std::string_view(cr.data(), cr.size()) != expect) {
      return Rejected("attachment rejected: the blob's length differs from the attachment's");
    }
  } else if (status == 200) {
    if (!content_length || *content_length != size) {
      return Rejected("attachment rejected: the blob's length differs from the attachment's");
    }
    have = 0;
    flags |= O_TRUNC;
  } else {
    spdlog::warn("media download refused: HTTP {}", status);
    if (status == 416) std::filesystem::remove(part_path, fec);
    return TransferError("the media service refused the download");
  }
  Fd out(::open(part_path.c_str(), flags, 0600));
  if (out.fd < 0) return FileError("cannot write the partial download");
  std::vector<char> chunk(kMediaChunkBytes);
  uint64_t fetched = 0;
  while (!parser.is_done()) {
    parser.get().body().data = chunk.data();
    parser.get().body().size = chunk.size();
    http::read(stream, buffer, parser, ec);
    if (ec == http::error::need_buffer) ec = {};
    const size_t n = chunk.size() - parser.get().body().size;
    if (n > 0 && !WriteFull(out.fd, ByteSpan(reinterpret_cast<const uint8_t*>(chunk.data()), n))) {
      return FileError("cannot write the partial download");
    }
    fetched += n;
    if (ec) return TransferError("the download broke off (it resumes from here)");
  }
  if (have + fetched != size) return TransferError("the download is incomplete");
  return fetched;
}

}  // namespace sotto::client
