// Encrypted attachments, the client side (docs/media.md): the media format (HKDF-SHA256
// of a random 32-byte media key into an AES-256-CBC key, an HMAC-SHA256 key and an IV;
// blob = CBC(PKCS#7) ciphertext || HMAC-SHA256(IV || ciphertext)), streaming encryption
// and verified decryption of files, and the streaming HTTP transfers to the server's blob
// service. Memory stays at a few chunks of kMediaChunkBytes whatever the file size.
//
// Thread-safety: stateless functions; thread-safe.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <string_view>

#include "base/bytes.h"
#include "base/result.h"
#include "client/content.h"
#include "client/content.pb.h"
#include "crypto/random.h"

namespace sotto::client {

inline constexpr size_t kMediaKeySize = 32;
inline constexpr size_t kMediaMacSize = 32;  // the full HMAC-SHA256 (docs/media.md says why)
inline constexpr std::string_view kMediaKdfInfo = "Sotto Media Keys v1";
inline constexpr size_t kMediaChunkBytes = size_t{64} * 1024;          // file and socket I/O unit
inline constexpr uint64_t kMaxAttachmentBytes = 1ull << 30;    // plaintext; the server may allow less
inline constexpr size_t kMaxAttachmentNameBytes = 255;         // AttachmentPointer.file_name
inline constexpr size_t kMaxContentTypeBytes = 127;            // AttachmentPointer.content_type
inline constexpr uint32_t kMediaIdleTimeoutMs = 30'000;        // per read/write of a transfer

// Module::kClient details (ContentErr uses 8300..8399).
enum class MediaErr : uint16_t {
  kRejected = 8400,     // the blob failed verification (size, MAC, ciphertext or plaintext digest)
  kTransfer = 8401,     // the HTTP upload or download failed (retry later)
  kFile = 8402,         // a local file could not be read or written
  kBadPointer = 8403,   // an AttachmentPointer with missing or out-of-range fields
  kTooLarge = 8404,     // a file larger than kMaxAttachmentBytes
  kUnsupported = 8405,  // e.g. an https:// media URL (not implemented yet)
};

// The size of the blob for a file of `plaintext_size` bytes.
uint64_t EncryptedBlobSize(uint64_t plaintext_size);

// Checks the fields of a received pointer (sizes, formats; not the digests). kBadPointer.
Status ValidatePointer(const content::AttachmentPointer& pointer);

// MIME type for a file name's extension from a small table; "application/octet-stream"
// when unknown.
std::string MimeTypeFor(std::string_view file_name);
// A file name safe to create inside a directory: the last path component of `hint`,
// reduced to [A-Za-z0-9._-] (others become '_'), no leading dots, at most 100 bytes;
// "attachment" if nothing is left.
std::string SanitizeFileName(std::string_view hint);

// Where consumes blob bytes (an upload socket, a file in tests).
using BlobSink = std::function<Status(ByteSpan)>;

// Encrypts the file at `path` with a fresh media key from `random`, streaming the blob
// to `sink`, and returns the pointer (blob_id empty: the caller sets it). `size` must be
// the file's size (the blob's Content-Length is announced before the data); a file that
// changes size meanwhile is kFile.
Result<content::AttachmentPointer> EncryptFile(const std::filesystem::path& path, uint64_t size,
                                               crypto::Random& random, const BlobSink& sink);

// Verifies the downloaded blob at `blob_path` against `pointer` (size, MAC, ciphertext
// SHA-256) while decrypting it into `out_path`.tmp, checks the plaintext's size and
// SHA-256, and only then renames it to `out_path`. On any mismatch nothing is left at
// `out_path` and the error is kRejected (Code::kUnauthenticated) naming the check.
Status DecryptBlobFile(const std::filesystem::path& blob_path,
                       const content::AttachmentPointer& pointer,
                       const std::filesystem::path& out_path);

// Where the blob service is: http://host:port plus a path prefix.
struct MediaEndpoint {
  std::string host;
  uint16_t port = 0;
  std::string path_prefix;  // "" or the public URL's path without a trailing '/'
};
// From the server's answer: its public base URL if set, else `server_host`:`port`.
Result<MediaEndpoint> ResolveMediaEndpoint(std::string_view server_host, uint32_t port,
                                           std::string_view base_url);

// PUTs `size` bytes produced by `produce` (which writes them to the sink it is given) to
// /v1/media/<blob_id> with the upload token. kTransfer on any HTTP failure or non-201.
Status UploadBlob(const MediaEndpoint& endpoint, std::string_view blob_id, std::string_view token,
                  uint64_t size, const std::function<Status(const BlobSink&)>& produce);

// Downloads the blob into `part_path`, resuming with a Range request from what the file
// already holds; done when it holds `size` bytes. Returns the bytes fetched by this call.
// kTransfer on HTTP failures (what arrived is kept for the next attempt); kRejected if
// the server's blob is not `size` bytes long.
Result<uint64_t> DownloadBlob(const MediaEndpoint& endpoint, std::string_view blob_id,
                              uint64_t size, const std::filesystem::path& part_path);

}  // namespace sotto::client
