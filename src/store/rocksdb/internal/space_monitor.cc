#include "store/rocksdb/internal/space_monitor.h"

#include <rocksdb/env.h>
#include <rocksdb/write_batch.h>

#include <spdlog/spdlog.h>

#include <cstdarg>
#include <cstdio>
#include <system_error>
#include <utility>

namespace sotto::store::internal {
namespace {

constexpr size_t kMaxInfoLogLine = 1024;

class SpdlogInfoLogger final : public rocksdb::Logger {
 public:
  SpdlogInfoLogger() : rocksdb::Logger(rocksdb::InfoLogLevel::INFO_LEVEL) {}
  using rocksdb::Logger::Logv;
  void Logv(const char* format, va_list ap) override {
    Logv(rocksdb::InfoLogLevel::INFO_LEVEL, format, ap);
  }
  void Logv(const rocksdb::InfoLogLevel level, const char* format, va_list ap) override {
    if (level < GetInfoLogLevel()) return;
    // RocksDB logs ordinary events as errors too (a missing directory on first open);
    // the failures that matter reach the store's callers as errors.
    const spdlog::level::level_enum to = level >= rocksdb::InfoLogLevel::FATAL_LEVEL ? spdlog::level::warn
                                         : level >= rocksdb::InfoLogLevel::ERROR_LEVEL
                                             ? spdlog::level::info
                                             : spdlog::level::debug;
    if (!spdlog::should_log(to)) return;
    char line[kMaxInfoLogLine];
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
    (void)std::vsnprintf(line, sizeof line, format, ap);
#pragma GCC diagnostic pop
    spdlog::log(to, "rocksdb: {}", line);
  }
};

}  // namespace

std::shared_ptr<rocksdb::Logger> NewSpdlogInfoLogger() {
  return std::make_shared<SpdlogInfoLogger>();
}

// Runs on RocksDB's threads with its mutex held: sets state and wakes the monitor thread,
// nothing more. Detached (monitor_ = nullptr) by Stop(), since RocksDB may keep its
// shared_ptr a little longer than the monitor lives.
class SpaceMonitor::Listener final : public rocksdb::EventListener {
 public:
  explicit Listener(SpaceMonitor* monitor) : monitor_(monitor) {}

  void OnBackgroundError(rocksdb::BackgroundErrorReason /*reason*/,
                         rocksdb::Status* bg_error) override {
    if (bg_error == nullptr || !bg_error->IsNoSpace()) return;
    std::lock_guard lock(mu_);
    if (monitor_ != nullptr) monitor_->MarkFull();
  }

  // RocksDB's own recovery from a full disk waits for its reserve (a memtable's worth of
  // free space) and polls every few seconds; the monitor thread recovers instead.
  void OnErrorRecoveryBegin(rocksdb::BackgroundErrorReason /*reason*/, rocksdb::Status bg_error,
                            bool* auto_recovery) override {
    if (bg_error.IsNoSpace() && auto_recovery != nullptr) *auto_recovery = false;
  }

  void Detach() {
    std::lock_guard lock(mu_);
    monitor_ = nullptr;
  }

 private:
  std::mutex mu_;
  SpaceMonitor* monitor_;  // GUARDED_BY(mu_)
};

SpaceMonitor::SpaceMonitor(std::string path, std::chrono::milliseconds probe_interval)
    : path_(std::move(path)),
      probe_interval_(probe_interval),
      listener_(std::make_shared<Listener>(this)) {}

SpaceMonitor::~SpaceMonitor() { Stop(); }

std::shared_ptr<rocksdb::EventListener> SpaceMonitor::listener() const { return listener_; }

Status SpaceMonitor::Start(rocksdb::DB* db, std::vector<rocksdb::ColumnFamilyHandle*> cfs,
                           const rocksdb::WriteOptions& write_options) {
  db_ = db;
  cfs_ = std::move(cfs);
  write_options_ = write_options;
  try {
    thread_ = std::thread([this] { Run(); });
  } catch (const std::system_error&) {
    return StoreError(Code::kInternal, StoreErr::kBackend, "cannot start the disk-space monitor");
  }
  return Ok();
}

void SpaceMonitor::Stop() {
  listener_->Detach();
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

bool SpaceMonitor::OnWriteFailed(const rocksdb::Status& status) {
  if (!status.IsNoSpace()) return false;
  writes_refused_.fetch_add(1, std::memory_order_relaxed);
  MarkFull();
  return true;
}

bool SpaceMonitor::RefuseWrite() {
  if (!full_.load()) return false;
  writes_refused_.fetch_add(1, std::memory_order_relaxed);
  return true;
}

void SpaceMonitor::MarkFull() {
  if (full_.exchange(true)) return;
  episodes_.fetch_add(1, std::memory_order_relaxed);
  {
    std::lock_guard lock(mu_);
    wake_ = true;
  }
  cv_.notify_all();
}

StorageHealth SpaceMonitor::health() const {
  StorageHealth h;
  h.disk_full = full_.load();
  h.writes_refused = writes_refused_.load(std::memory_order_relaxed);
  h.full_episodes = episodes_.load(std::memory_order_relaxed);
  h.recoveries = recoveries_.load(std::memory_order_relaxed);
  uint64_t free_bytes = 0;
  if (rocksdb::Env::Default()->GetFreeSpace(path_, &free_bytes).ok()) h.free_bytes = free_bytes;
  return h;
}

rocksdb::Status SpaceMonitor::TryRecover() {
  // Resume clears RocksDB's background error (flushing the memtables, which needs room
  // too); it is ok at once when there is none (a write failed in the foreground only).
  rocksdb::Status s = db_->Resume();
  if (!s.ok()) return s;
  rocksdb::WriteBatch probe;
  s = probe.Put(cfs_.front(), kSpaceProbeKey, std::string(kSpaceProbeBytes, '\0'));
  if (s.ok()) s = probe.Delete(cfs_.front(), kSpaceProbeKey);
  if (s.ok()) s = db_->Write(write_options_, &probe);
  if (!s.ok()) return s;
  // The probe makes the default family's memtable non-empty, so this flush switches to a
  // new WAL; flushing every family leaves nothing alive in the old one.
  rocksdb::FlushOptions flush;
  flush.allow_write_stall = true;
  return db_->Flush(flush, cfs_);
}

void SpaceMonitor::Run() {
  std::unique_lock lock(mu_);
  while (!stopping_) {
    cv_.wait(lock, [this] { return stopping_ || wake_; });
    if (stopping_) break;
    wake_ = false;
    const auto since = std::chrono::steady_clock::now();
    const uint64_t refused_before = writes_refused_.load(std::memory_order_relaxed);
    spdlog::warn(
        "store: the disk is full (no space left on the device of {}): writes are refused "
        "until space is freed; retrying every {} ms",
        path_, probe_interval_.count());
    while (!stopping_) {
      cv_.wait_for(lock, probe_interval_, [this] { return stopping_; });
      if (stopping_) break;
      lock.unlock();
      const rocksdb::Status s = TryRecover();
      lock.lock();
      if (!s.ok()) {
        if (s.IsNoSpace()) continue;  // still full: the expected case, already logged
        spdlog::debug("store: disk-full recovery attempt failed: {}", s.ToString());
        continue;
      }
      // Writes pass again. (Should a background flush or compaction run out of space
      // before this line, the next write fails, and that starts a new episode.)
      full_.store(false);
      recoveries_.fetch_add(1, std::memory_order_relaxed);
      const auto seconds = std::chrono::duration_cast<std::chrono::seconds>(
                               std::chrono::steady_clock::now() - since)
                               .count();
      spdlog::warn("store: disk space is available again: writes succeed after {} s ({} writes "
                   "refused meanwhile)",
                   seconds, writes_refused_.load(std::memory_order_relaxed) - refused_before);
      break;
    }
  }
}

}  // namespace sotto::store::internal
