// The open RocksDB database shared by the backend's three stores, and the few helpers
// they all use (point reads, ordered scans, status mapping).
//
// Thread-safety: Db is thread-safe after Open (RocksDB's DB is); KeyScan is externally
// synchronized (one thread at a time).
#pragma once

#include <rocksdb/db.h>
#include <rocksdb/iterator.h>
#include <rocksdb/write_batch.h>

#include <array>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "base/result.h"
#include "store/rocksdb/internal/schema.h"
#include "store/rocksdb/internal/space_monitor.h"

namespace sotto::store::internal {

inline rocksdb::Slice ToSlice(std::string_view s) { return {s.data(), s.size()}; }
inline std::string_view ToView(const rocksdb::Slice& s) { return {s.data(), s.size()}; }

// Maps a failed RocksDB status to kBackend (Code::kDataLoss for corruption, else
// kInternal), or to kNoSpace (Code::kResourceExhausted) for a full disk. `message` must
// be static text. Writes use Db::Check, which also tells the SpaceMonitor.
tl::unexpected<Error> BackendError(const rocksdb::Status& status, const char* message);

class Db {
 public:
  // Opens (creating if missing) the database at `path` with every column family of
  // schema.h, checks or writes the schema version, and starts the SpaceMonitor, which
  // retries every `space_probe_interval` while the disk is full.
  static Result<std::unique_ptr<Db>> Open(const std::string& path, bool sync,
                                          std::chrono::milliseconds space_probe_interval);
  ~Db();
  Db(const Db&) = delete;
  Db& operator=(const Db&) = delete;

  rocksdb::DB* db() const { return db_; }
  rocksdb::ColumnFamilyHandle* cf(Cf cf) const { return cfs_[CfIndex(cf)]; }
  // sync = the RocksDbOptions' sync: true fsyncs the WAL before returning.
  const rocksdb::WriteOptions& write_options() const { return write_options_; }

  // The value under `key`, nullopt if absent; kBackend on failure.
  Result<std::optional<std::string>> Get(Cf cf, std::string_view key) const;
  // Writes `batch` atomically with write_options(); kNoSpace while the disk is full,
  // kBackend on another failure.
  Status Write(rocksdb::WriteBatch* batch, const char* message) const;
  // Add one change to `batch`; kBackend if RocksDB refuses it.
  Status Put(rocksdb::WriteBatch* batch, Cf cf, std::string_view key,
             std::string_view value = {}) const;
  Status Delete(rocksdb::WriteBatch* batch, Cf cf, std::string_view key) const;
  // Before a RocksDB write: kNoSpace while the disk is full (the write is refused and
  // counted; the SpaceMonitor alone writes until it recovers), else Ok. Db::Write calls it.
  Status Writable() const;
  // The Status of a RocksDB write: Ok, kNoSpace (after telling the SpaceMonitor) or
  // BackendError(s, message).
  Status Check(const rocksdb::Status& s, const char* message) const;
  StorageHealth storage_health() const { return space_->health(); }

 private:
  Db() = default;

  rocksdb::DB* db_ = nullptr;  // owned; deleted after cfs_ are destroyed
  std::array<rocksdb::ColumnFamilyHandle*, kCfCount> cfs_{};
  rocksdb::ColumnFamilyHandle* default_cf_ = nullptr;
  rocksdb::WriteOptions write_options_;
  // Stopped first in ~Db (its thread calls db_). Never null after Open.
  std::unique_ptr<SpaceMonitor> space_;
};

// Iterates keys of one column family in order. Not copyable or movable (RocksDB keeps a
// pointer to the upper bound it owns); the factories rely on guaranteed copy elision.
class KeyScan {
 public:
  // The keys that start with `prefix`, from `start` (default: the prefix) upwards.
  static KeyScan Prefix(const Db& db, Cf cf, std::string prefix, std::string_view start = {});
  // The keys below `upper` (every key if nullopt), from the first.
  static KeyScan Below(const Db& db, Cf cf, std::optional<std::string> upper);

  KeyScan(const KeyScan&) = delete;
  KeyScan& operator=(const KeyScan&) = delete;

  bool Valid() const;
  void Next() { it_->Next(); }
  std::string_view key() const { return ToView(it_->key()); }
  std::string_view value() const { return ToView(it_->value()); }
  // After Valid() turns false: whether the scan ended cleanly.
  Status status(const char* message) const;

 private:
  KeyScan(const Db& db, Cf cf, std::string prefix, std::optional<std::string> upper,
          std::string_view start);

  std::string prefix_;
  std::optional<std::string> upper_;
  rocksdb::Slice upper_slice_;
  std::unique_ptr<rocksdb::Iterator> it_;
};

}  // namespace sotto::store::internal
