// Disk-full handling of the RocksDB backend (docs/store.md, "Disk full").
//
// When the disk fills, RocksDB fails the write that ran out of space (ENOSPC, an IOError
// with subcode kNoSpace) and stops accepting writes (a background "hard" error). Its own
// recovery waits until the free space exceeds a reserve as large as a memtable (tens of
// MiB), polling every few seconds, and says nothing. SpaceMonitor replaces that:
// - It notices the error at once (every failed write is shown to it, and its listener
//   sees RocksDB's background errors) and turns the store "full": storage_health()
//   reports it, and the failures are StoreErr::kNoSpace (kResourceExhausted).
// - It logs one warning when the store turns full and one when writes succeed again.
// - While full, Db refuses writes itself (Db::Writable) without reaching RocksDB, so no
//   write can land in a WAL whose tail a failed write may have torn.
// - It vetoes RocksDB's automatic recovery and instead, every probe interval while full,
//   calls DB::Resume(), writes a probe (kSpaceProbeBytes, then deleted) and flushes every
//   column family: that moves all data out of the old WAL (which a failed write may have
//   left with a torn tail, and which therefore must never be replayed) into SST files and
//   starts a new WAL. When all of that succeeds the episode ends: writes work again as
//   soon as the disk has room for them, with no restart.
//
// Thread-safety: thread-safe. The listener runs on RocksDB's threads (under its mutex),
// so it only sets atomics and wakes the monitor thread, which does the logging.
#pragma once

#include <rocksdb/db.h>
#include <rocksdb/env.h>
#include <rocksdb/listener.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "base/result.h"
#include "store/store.h"

namespace sotto::store::internal {

// The probe write: a value this large under kSpaceProbeKey (default column family), put
// and deleted in one synced batch. A disk that takes it has room for ordinary writes.
inline constexpr size_t kSpaceProbeBytes = size_t{64} * 1024;
inline constexpr std::string_view kSpaceProbeKey = "space-probe";

// RocksDB's info log, sent to spdlog (fatal as warn, errors as info, the rest at debug),
// instead of a LOG file in the data directory: on a full disk the file logger fails an append and
// then aborts the process at its next line (an assertion in Debian's librocksdb 7.8).
std::shared_ptr<rocksdb::Logger> NewSpdlogInfoLogger();

class SpaceMonitor {
 public:
  // `path` is the database directory (for the free-space figure). probe_interval > 0.
  SpaceMonitor(std::string path, std::chrono::milliseconds probe_interval);
  ~SpaceMonitor();  // Stop()s
  SpaceMonitor(const SpaceMonitor&) = delete;
  SpaceMonitor& operator=(const SpaceMonitor&) = delete;

  // To add to DBOptions::listeners before DB::Open. Holds no reference to the monitor's
  // lifetime: Stop() detaches it.
  std::shared_ptr<rocksdb::EventListener> listener() const;

  // Starts the monitor thread. `db` and the handles must stay valid until Stop();
  // `cfs` are every column family, the first one (default) takes the probe.
  // kInternal (StoreErr::kBackend) if the thread cannot start.
  Status Start(rocksdb::DB* db, std::vector<rocksdb::ColumnFamilyHandle*> cfs,
               const rocksdb::WriteOptions& write_options);
  // Stops and joins the monitor thread; idempotent. Must run before the DB closes.
  void Stop();

  // A write failed with `status` (not ok): if it is out of space, the store is full (or
  // stays full) and the write is counted as refused. Returns whether it was.
  bool OnWriteFailed(const rocksdb::Status& status);
  // Whether writes are refused now (the store is full); counts the refusal if so.
  bool RefuseWrite();

  StorageHealth health() const;

  class Listener;  // space_monitor.cc

 private:
  void MarkFull();
  void Run();
  // One recovery attempt: Resume, the probe write, a flush of every column family.
  // Ok = writes work again.
  rocksdb::Status TryRecover();

  const std::string path_;
  const std::chrono::milliseconds probe_interval_;
  std::shared_ptr<Listener> listener_;

  std::atomic<bool> full_{false};
  std::atomic<uint64_t> writes_refused_{0};
  std::atomic<uint64_t> episodes_{0};
  std::atomic<uint64_t> recoveries_{0};

  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;  // GUARDED_BY(mu_)
  bool wake_ = false;      // GUARDED_BY(mu_): full_ turned true since the thread looked

  rocksdb::DB* db_ = nullptr;                     // set by Start, before the thread runs
  std::vector<rocksdb::ColumnFamilyHandle*> cfs_;
  rocksdb::WriteOptions write_options_;
  std::thread thread_;
};

}  // namespace sotto::store::internal
