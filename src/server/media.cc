#include "server/media.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <filesystem>
#include <optional>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "crypto/random.h"
#include "crypto/secret.h"
#include "net/event_loop.h"

namespace sotto::server {
namespace {

constexpr char kBase64Url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
constexpr std::string_view kPartSuffix = ".part";

tl::unexpected<Error> MediaError(Code code, MediaErr detail, const char* message) {
  return MakeError(code, Module::kServer, static_cast<uint16_t>(detail), message);
}

uint64_t SystemNowMs() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                   std::chrono::system_clock::now().time_since_epoch())
                                   .count());
}

std::string Base64Url(ByteSpan bytes) {
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  for (uint8_t b : bytes) {
    acc = (acc << 8) | b;
    bits += 8;
    while (bits >= 6) {
      bits -= 6;
      out.push_back(kBase64Url[(acc >> bits) & 0x3f]);
    }
  }
  if (bits > 0) out.push_back(kBase64Url[(acc << (6 - bits)) & 0x3f]);
  return out;
}

// Modification time of `path` in wall-clock ms; nullopt if it is gone.
std::optional<uint64_t> ModifiedMs(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return std::nullopt;
  return static_cast<uint64_t>(st.st_mtim.tv_sec) * 1000 +
         static_cast<uint64_t>(st.st_mtim.tv_nsec) / 1'000'000;
}

}  // namespace

bool IsBlobId(std::string_view id) {
  if (id.size() != kBlobIdChars) return false;
  for (char c : id) {
    const bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                    c == '-' || c == '_';
    if (!ok) return false;
  }
  return true;
}

MediaService::MediaService(const MediaConfig& config, std::string dir, MediaClock now_ms)
    : config_(config), dir_(std::move(dir)), now_(now_ms ? std::move(now_ms) : MediaClock(SystemNowMs)) {}

Result<std::unique_ptr<MediaService>> MediaService::Start(const MediaConfig& config,
                                                          std::string dir, MediaClock now_ms,
                                                          net::FdBudget* fd_budget) {
  SOTTO_ASSIGN_OR_RETURN(net::SocketAddress address, net::ParseHostPort(config.listen));
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return MediaError(Code::kInternal, MediaErr::kIo, "cannot create the media directory");
  std::unique_ptr<MediaService> service(new MediaService(config, std::move(dir), std::move(now_ms)));
  service->fd_budget_ = fd_budget;
  SOTTO_ASSIGN_OR_RETURN(service->listen_fd_, net::Listen(address, 128, net::ReusePort::kNo));
  SOTTO_ASSIGN_OR_RETURN(net::SocketAddress bound, net::LocalAddress(service->listen_fd_));
  service->port_ = bound.port();
  if (::pipe2(service->wake_, O_CLOEXEC | O_NONBLOCK) != 0) {
    return MediaError(Code::kInternal, MediaErr::kIo, "pipe2 failed");
  }
  MediaService* raw = service.get();
  service->acceptor_ = std::thread([raw] { raw->AcceptLoop(); });
  service->sweeper_ = std::thread([raw] { raw->SweepLoop(); });
  return service;
}

std::unique_ptr<MediaService> MediaService::Offline(const MediaConfig& config, std::string dir,
                                                    MediaClock now_ms) {
  return std::unique_ptr<MediaService>(new MediaService(config, std::move(dir), std::move(now_ms)));
}

MediaService::~MediaService() {
  Stop();
  if (listen_fd_ >= 0) ::close(listen_fd_);
  if (wake_[0] >= 0) ::close(wake_[0]);
  if (wake_[1] >= 0) ::close(wake_[1]);
}

void MediaService::Stop() {
  if (stopped_.exchange(true)) return;
  {
    std::lock_guard<std::mutex> lock(stop_mu_);
    stopping_ = true;
  }
  stop_cv_.notify_all();
  if (wake_[1] >= 0) {
    const char byte = 1;
    (void)!::write(wake_[1], &byte, 1);
  }
  if (acceptor_.joinable()) acceptor_.join();
  if (sweeper_.joinable()) sweeper_.join();
  std::map<uint64_t, std::thread> threads;
  {
    std::lock_guard<std::mutex> lock(conn_mu_);
    for (const auto& [id, fd] : fds_) ::shutdown(fd, SHUT_RDWR);
    threads.swap(threads_);
  }
  for (auto& [id, t] : threads) t.join();
}

void MediaService::ReapFinished() {
  std::vector<std::thread> done;
  {
    std::lock_guard<std::mutex> lock(conn_mu_);
    for (uint64_t id : finished_) {
      auto it = threads_.find(id);
      if (it == threads_.end()) continue;
      done.push_back(std::move(it->second));
      threads_.erase(it);
    }
    finished_.clear();
  }
  for (std::thread& t : done) t.join();
}

void MediaService::AcceptLoop() {
  for (;;) {
    pollfd fds[2] = {{listen_fd_, POLLIN, 0}, {wake_[0], POLLIN, 0}};
    const int n = ::poll(fds, 2, -1);
    if (n < 0 && errno != EINTR) break;
    if (fds[1].revents != 0) break;  // Stop()
    ReapFinished();
    if (n <= 0 || fds[0].revents == 0) continue;
    net::SocketAddress peer;
    peer.length = sizeof peer.storage;
    const int fd = ::accept4(listen_fd_, reinterpret_cast<sockaddr*>(&peer.storage), &peer.length,
                             SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd < 0) {
      if (errno == EMFILE || errno == ENFILE) {
        ::poll(nullptr, 0, 50);  // let transfers finish instead of spinning
      }
      continue;
    }
    // Refusals are counted before the peer can see them.
    auto refuse = [fd](std::string_view why) {
      const std::string busy = fmt::format(
          "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n"
          "Connection: close\r\n\r\n{}",
          why.size(), why);
      (void)!::send(fd, busy.data(), busy.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
      ::close(fd);
    };
    if (metrics_.active_transfers.load() >= config_.max_transfers) {
      metrics_.rejected.fetch_add(1, std::memory_order_relaxed);
      refuse("too many transfers (max_transfers)");
      continue;
    }
    const net::IpKey source = peer.Key();
    std::lock_guard<std::mutex> lock(conn_mu_);
    uint32_t& from_source = per_source_[source];
    if (from_source >= config_.max_transfers_per_ip) {
      metrics_.rejected.fetch_add(1, std::memory_order_relaxed);
      metrics_.refused_per_ip.fetch_add(1, std::memory_order_relaxed);
      if (from_source == 0) per_source_.erase(source);
      refuse("too many transfers from this address (max_transfers_per_ip)");
      continue;
    }
    if (fd_budget_ != nullptr && !fd_budget_->TryAcquire(kFdsPerMediaTransfer)) {
      metrics_.rejected.fetch_add(1, std::memory_order_relaxed);
      metrics_.refused_fd_budget.fetch_add(1, std::memory_order_relaxed);
      if (from_source == 0) per_source_.erase(source);
      refuse("server descriptor budget exhausted");
      continue;
    }
    ++from_source;
    metrics_.active_transfers.fetch_add(1, std::memory_order_relaxed);
    const uint64_t id = next_id_++;
    fds_[id] = fd;
    threads_[id] = std::thread([this, id, fd, source] {
      Serve(id, fd);
      if (fd_budget_ != nullptr) fd_budget_->Release(kFdsPerMediaTransfer);
      metrics_.active_transfers.fetch_sub(1, std::memory_order_relaxed);
      std::lock_guard<std::mutex> done(conn_mu_);
      if (auto it = per_source_.find(source); it != per_source_.end() && --it->second == 0) {
        per_source_.erase(it);
      }
      finished_.push_back(id);
    });
  }
}

void MediaService::SweepLoop() {
  std::unique_lock<std::mutex> lock(stop_mu_);
  while (!stopping_) {
    stop_cv_.wait_for(lock, std::chrono::milliseconds(config_.sweep_interval_ms),
                      [this] { return stopping_; });
    if (stopping_) break;
    lock.unlock();
    Sweep();
    lock.lock();
  }
}

void MediaService::Sweep() {
  const uint64_t now = now_();
  {
    std::lock_guard<std::mutex> lock(tokens_mu_);
    for (auto it = tokens_.begin(); it != tokens_.end();) {
      auto next = std::next(it);
      if (it->second.expires_ms <= now) EraseTokenLocked(it);
      it = next;
    }
  }
  const uint64_t blob_ttl_ms = uint64_t{config_.blob_ttl_s} * 1000;
  // A partial upload is stale once no transfer can still be writing it: its token has
  // expired and it has been idle longer than the idle timeout.
  const uint64_t part_ttl_ms =
      uint64_t{config_.upload_token_ttl_s} * 1000 + uint64_t{config_.idle_timeout_ms};
  std::error_code ec;
  std::filesystem::directory_iterator it(dir_, ec);
  if (ec) {
    spdlog::warn("media sweep: cannot read the media directory");
    return;
  }
  std::vector<std::pair<std::string, bool>> doomed;  // path, is a partial upload
  for (; it != std::filesystem::directory_iterator(); it.increment(ec)) {
    const std::string file_name = it->path().filename().string();
    const std::string_view name = file_name;
    const bool part = name.size() == kBlobIdChars + kPartSuffix.size() &&
                      name.substr(kBlobIdChars) == kPartSuffix &&
                      IsBlobId(name.substr(0, kBlobIdChars));
    if (!part && !IsBlobId(name)) continue;
    const std::string path = dir_ + "/" + std::string(name);
    const auto modified = ModifiedMs(path);
    if (!modified) continue;
    if (now >= *modified + (part ? part_ttl_ms : blob_ttl_ms)) doomed.emplace_back(path, part);
  }
  for (const auto& [path, part] : doomed) {
    if (::unlink(path.c_str()) != 0) continue;
    (part ? metrics_.parts_removed : metrics_.blobs_expired).fetch_add(1, std::memory_order_relaxed);
  }
  metrics_.sweeps.fetch_add(1, std::memory_order_relaxed);
}

void MediaService::EraseTokenLocked(TokenMap::iterator it) {
  if (auto owned = owner_tokens_.find(it->second.owner); owned != owner_tokens_.end()) {
    std::erase(owned->second, it->first);
    if (owned->second.empty()) owner_tokens_.erase(owned);
  }
  tokens_.erase(it);
}

Result<UploadGrant> MediaService::IssueUpload(uint64_t size, std::string_view owner_key) {
  if (size > config_.max_blob_bytes) {
    metrics_.rejected.fetch_add(1, std::memory_order_relaxed);
    return MediaError(Code::kResourceExhausted, MediaErr::kTooLarge,
                      "blob larger than media.max_blob_bytes");
  }
  uint8_t id_bytes[kBlobIdRandomBytes];
  crypto::SecretArray<kUploadTokenBytes> token;
  crypto::SystemRandom().Fill(id_bytes);
  crypto::SystemRandom().Fill(token.mutable_span());
  UploadGrant grant{Base64Url(id_bytes), ToHex(token.span())};
  const uint64_t now = now_();
  Token entry{crypto::Sha256(AsBytes(grant.token)), size,
              now + uint64_t{config_.upload_token_ttl_s} * 1000, std::string(owner_key)};
  std::lock_guard<std::mutex> lock(tokens_mu_);
  // The owner's share first (its own expired tokens go), then the whole server's.
  if (auto owned = owner_tokens_.find(entry.owner);
      owned != owner_tokens_.end() && owned->second.size() >= config_.max_tokens_per_account) {
    const std::vector<std::string> ids = owned->second;  // erasing edits the list
    for (const std::string& id : ids) {
      auto it = tokens_.find(id);
      if (it != tokens_.end() && it->second.expires_ms <= now) EraseTokenLocked(it);
    }
    owned = owner_tokens_.find(entry.owner);
    if (owned != owner_tokens_.end() && owned->second.size() >= config_.max_tokens_per_account) {
      metrics_.rejected.fetch_add(1, std::memory_order_relaxed);
      return MediaError(Code::kResourceExhausted, MediaErr::kTooManyForOwner,
                        "too many unused upload tokens for this account "
                        "(media.max_tokens_per_account)");
    }
  }
  if (tokens_.size() >= config_.max_pending_tokens) {
    for (auto it = tokens_.begin(); it != tokens_.end();) {
      auto next = std::next(it);
      if (it->second.expires_ms <= now) EraseTokenLocked(it);
      it = next;
    }
    if (tokens_.size() >= config_.max_pending_tokens) {
      metrics_.rejected.fetch_add(1, std::memory_order_relaxed);
      return MediaError(Code::kResourceExhausted, MediaErr::kTooManyTokens,
                        "too many unused upload tokens (media.max_pending_tokens)");
    }
  }
  owner_tokens_[entry.owner].push_back(grant.blob_id);
  tokens_.emplace(grant.blob_id, std::move(entry));
  metrics_.tokens_issued.fetch_add(1, std::memory_order_relaxed);
  return grant;
}

MediaService::TokenCheck MediaService::ConsumeToken(std::string_view blob_id,
                                                    std::string_view token, uint64_t size) {
  const crypto::Sha256Digest presented = crypto::Sha256(AsBytes(token));
  std::lock_guard<std::mutex> lock(tokens_mu_);
  auto it = tokens_.find(std::string(blob_id));
  if (it == tokens_.end() || it->second.expires_ms <= now_()) {
    if (it != tokens_.end()) EraseTokenLocked(it);
    return TokenCheck::kMissing;
  }
  if (!crypto::ConstantTimeEqual(presented, it->second.hash)) return TokenCheck::kWrong;
  const uint64_t granted = it->second.size;
  EraseTokenLocked(it);  // single use, whatever happens to the upload
  return granted == size ? TokenCheck::kOk : TokenCheck::kWrongSize;
}

std::string MediaService::BlobPath(std::string_view blob_id) const {
  return dir_ + "/" + std::string(blob_id);
}

std::string MediaService::RenderPrometheus() const {
  std::string out;
  auto counter = [&out](const char* name, const char* help, const MediaMetrics::Counter& c) {
    out += fmt::format("# HELP sotto_{} {}\n# TYPE sotto_{} counter\nsotto_{} {}\n", name, help,
                       name, name, c.load(std::memory_order_relaxed));
  };
  const MediaMetrics& m = metrics_;
  counter("media_tokens_issued_total", "upload tokens handed out", m.tokens_issued);
  counter("media_uploads_total", "blobs stored", m.uploads);
  counter("media_downloads_total", "blob downloads (200 or 206)", m.downloads);
  counter("media_bytes_uploaded_total", "ciphertext bytes stored", m.bytes_uploaded);
  counter("media_bytes_downloaded_total", "ciphertext bytes served", m.bytes_downloaded);
  counter("media_blobs_expired_total", "blobs deleted after media.blob_ttl_s", m.blobs_expired);
  counter("media_parts_removed_total", "stale partial uploads deleted", m.parts_removed);
  counter("media_rejected_total", "media requests refused", m.rejected);
  counter("media_sweeps_total", "expiry sweeps completed", m.sweeps);
  counter("media_refused_per_ip_total", "connections refused by media.max_transfers_per_ip",
          m.refused_per_ip);
  counter("media_refused_fd_budget_total", "connections refused by the descriptor budget",
          m.refused_fd_budget);
  counter("media_slow_clients_total",
          "transfers cut by media.header_timeout_ms or media.min_transfer_bytes_per_s",
          m.slow_clients);
  out += fmt::format("# HELP sotto_media_active_transfers open media connections\n"
                     "# TYPE sotto_media_active_transfers gauge\nsotto_media_active_transfers {}\n",
                     m.active_transfers.load(std::memory_order_relaxed));
  return out;
}

}  // namespace sotto::server
