// The media blob service: an HTTP/1.1 server (Boost.Beast, synchronous, one thread per
// transfer, at most media.max_transfers at once) that stores encrypted attachment blobs
// under DATA/media/ and serves them back, and the single-use upload tokens the server core
// hands out over the Noise channel. The service only ever sees ciphertext and sizes.
// Format, URLs and rules: docs/media.md; config: docs/config.md [media].
//
//   PUT|POST /v1/media/<blob_id>   Authorization: Bearer <token>, Content-Length = granted size
//   GET|HEAD /v1/media/<blob_id>   optional Range: bytes=N- | N-M | -S
//
// Uploads stream to `<blob_id>.part` and are renamed to `<blob_id>` when complete;
// downloads stream from the file. Blobs live media.blob_ttl_s after their upload, then a
// sweep (every media.sweep_interval_ms) deletes them, and stale `.part` files too.
//
// Thread-safety: thread-safe.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "base/result.h"
#include "crypto/hash.h"
#include "net/fd_budget.h"
#include "net/socket.h"
#include "server/config.h"

namespace sotto::server {

inline constexpr size_t kBlobIdRandomBytes = 16;   // 128 bits
inline constexpr size_t kBlobIdChars = 22;         // base64url without padding
inline constexpr size_t kUploadTokenBytes = 32;    // sent as 64 hex characters
inline constexpr size_t kMediaChunkBytes = size_t{64} * 1024;  // per read/write of a transfer

enum class MediaErr : uint16_t {
  kTooLarge = 7050,         // size above media.max_blob_bytes
  kTooManyTokens = 7051,    // media.max_pending_tokens unused tokens outstanding
  kIo = 7052,               // the blob directory could not be used
  kTooManyForOwner = 7053,  // media.max_tokens_per_account unused tokens of this owner
};

// True if `id` has the form of a blob id (22 URL-safe base64 characters).
bool IsBlobId(std::string_view id);

// One media request head as parsed from HTTP (media_http.cc): the input of
// MediaService::Decide. Views into the parser's storage.
struct MediaRequestHead {
  std::string_view method;         // e.g. "GET", "PUT"
  std::string_view target;         // e.g. "/v1/media/<blob_id>?x"
  std::string_view authorization;  // the Authorization header's value; empty if absent
  std::optional<uint64_t> content_length;
  bool chunked = false;
};

enum class MediaAction : uint8_t { kReply, kUpload, kDownload };

struct MediaDecision {
  MediaAction action = MediaAction::kReply;
  unsigned status = 0;     // kReply: the status to answer with
  const char* text = "";   // kReply: the one-line body
  const char* extra = "";  // kReply: extra CRLF-terminated header lines
  std::string blob_id;     // kUpload, kDownload
};

// What a GET of a `size`-byte blob sends for a Range header value `range` (empty: none):
// 200 with everything, 206 with [first, first + length) and a Content-Range header line,
// or 416 with "Content-Range: bytes */size".
struct MediaRangePlan {
  unsigned status = 200;
  uint64_t first = 0;
  uint64_t length = 0;
  std::string content_range;  // a CRLF-terminated header line, or empty
};
MediaRangePlan PlanDownload(std::string_view range, uint64_t size);

struct MediaMetrics {
  using Counter = std::atomic<uint64_t>;
  Counter tokens_issued{0};
  Counter uploads{0};          // blobs stored
  Counter downloads{0};        // GET responses that sent a body (200 or 206)
  Counter bytes_uploaded{0};
  Counter bytes_downloaded{0};
  Counter blobs_expired{0};    // deleted by the sweep
  Counter parts_removed{0};    // stale partial uploads deleted by the sweep
  Counter rejected{0};         // requests refused (bad token, size, range, busy, not found)
  Counter sweeps{0};           // completed sweeps (tests await this)
  Counter active_transfers{0};
  Counter refused_per_ip{0};     // connections refused by media.max_transfers_per_ip
  Counter refused_fd_budget{0};  // connections refused by the shared descriptor budget
  Counter slow_clients{0};       // cut by media.header_timeout_ms or min_transfer_bytes_per_s
};

// Wall-clock milliseconds; tests pass their own to expire tokens and blobs.
using MediaClock = std::function<uint64_t()>;

struct UploadGrant {
  std::string blob_id;
  std::string token;  // hex
};

class MediaService {
 public:
  // Serves `config.listen` with blobs in `dir` (created if missing). `now_ms` is the
  // wall clock (empty: the system clock). `fd_budget` (may be null; must outlive the
  // service) is shared with the process's other listeners: each transfer takes
  // kFdsPerMediaTransfer from it. Errors: the listen address does not parse or bind
  // (kNet), the directory cannot be created (MediaErr::kIo).
  static Result<std::unique_ptr<MediaService>> Start(const MediaConfig& config, std::string dir,
                                                     MediaClock now_ms = {},
                                                     net::FdBudget* fd_budget = nullptr);
  ~MediaService();  // Stop()
  MediaService(const MediaService&) = delete;
  MediaService& operator=(const MediaService&) = delete;

  // Ends every transfer (their sockets are shut down) and the sweep; idempotent.
  void Stop();

  uint16_t port() const { return port_; }
  const MediaConfig& config() const { return config_; }
  const MediaMetrics& metrics() const { return metrics_; }
  std::string RenderPrometheus() const;

  // A single-use token to upload one blob of exactly `size` bytes, valid for
  // media.upload_token_ttl_s, counted against `owner` (opaque: the account id) until it is
  // used or expires (empty: one owner for all such calls). Errors: kResourceExhausted with
  // MediaErr::kTooLarge, kTooManyForOwner (media.max_tokens_per_account) or kTooManyTokens.
  Result<UploadGrant> IssueUpload(uint64_t size, std::string_view owner = {});

  // Deletes expired blobs and stale partial uploads now (the sweep thread calls it).
  void Sweep();

  // Decides a parsed request head before any body byte or file I/O: a refusal, or the
  // upload (its token checked and consumed, single use) or the download of a blob.
  // Refusals are counted in metrics().rejected. Serve() acts on it.
  MediaDecision Decide(const MediaRequestHead& head);

  // A service with no listener and no threads (Stop() is a no-op): for fuzzing and
  // testing Decide() and the token table on parsed requests, without sockets.
  static std::unique_ptr<MediaService> Offline(const MediaConfig& config, std::string dir,
                                               MediaClock now_ms = {});

 private:
  struct Token {
    crypto::Sha256Digest hash;  // SHA-256 of the token: the token itself is not kept
    uint64_t size = 0;
    uint64_t expires_ms = 0;
    std::string owner;
  };
  using TokenMap = std::unordered_map<std::string, Token>;
  void EraseTokenLocked(TokenMap::iterator it);
  enum class TokenCheck : uint8_t { kOk, kMissing, kWrong, kWrongSize };
  struct Connection;

  MediaService(const MediaConfig& config, std::string dir, MediaClock now_ms);
  void AcceptLoop();
  void SweepLoop();
  // Serves one connection (media_http.cc); runs on its own thread.
  void Serve(uint64_t id, int fd);
  void HandleUpload(Connection& c, std::string_view blob_id);
  void HandleDownload(Connection& c, std::string_view blob_id);
  // Consumes the token for `blob_id` if `token` matches it (constant-time) and it was
  // granted for `size` bytes. Any presented token for the id is consumed.
  TokenCheck ConsumeToken(std::string_view blob_id, std::string_view token, uint64_t size);
  std::string BlobPath(std::string_view blob_id) const;
  void ReapFinished();

  MediaConfig config_;
  std::string dir_;
  MediaClock now_;
  uint16_t port_ = 0;
  int listen_fd_ = -1;
  int wake_[2] = {-1, -1};
  mutable MediaMetrics metrics_;

  std::mutex tokens_mu_;
  TokenMap tokens_;  // GUARDED_BY(tokens_mu_), by blob id
  // Each owner's unused tokens (blob ids; at most max_tokens_per_account). GUARDED_BY(tokens_mu_)
  std::unordered_map<std::string, std::vector<std::string>> owner_tokens_;

  std::mutex conn_mu_;
  std::map<uint64_t, std::thread> threads_;  // GUARDED_BY(conn_mu_)
  std::map<uint64_t, int> fds_;              // GUARDED_BY(conn_mu_): to shut down on Stop
  // GUARDED_BY(conn_mu_): open transfers per source (media.max_transfers_per_ip).
  std::unordered_map<net::IpKey, uint32_t, net::IpKeyHash> per_source_;
  net::FdBudget* fd_budget_ = nullptr;
  std::vector<uint64_t> finished_;           // GUARDED_BY(conn_mu_): threads to join
  uint64_t next_id_ = 0;                     // GUARDED_BY(conn_mu_)

  std::mutex stop_mu_;
  std::condition_variable stop_cv_;
  bool stopping_ = false;  // GUARDED_BY(stop_mu_)
  std::atomic<bool> stopped_{false};
  std::thread acceptor_;
  std::thread sweeper_;
};

}  // namespace sotto::server
