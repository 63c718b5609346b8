#include "store/rocksdb/internal/db.h"

#include <rocksdb/filter_policy.h>
#include <rocksdb/options.h>
#include <rocksdb/table.h>

#include <chrono>
#include <thread>
#include <vector>

namespace sotto::store::internal {
namespace {

// Each sottod process may hold at most 20,000 open files (sockets included); RocksDB
// otherwise keeps every SST file open.
constexpr int kMaxOpenFiles = 512;
// All memtables together, across column families.
constexpr size_t kDbWriteBufferBytes = size_t{128} << 20;
// One memtable of one column family; the queue gets the same, since its entries are
// short-lived and mostly deleted before a flush.
constexpr size_t kCfWriteBufferBytes = size_t{32} << 20;
// Bloom filter bits per key: most point lookups (de-duplication ids, acked seqs, prekeys)
// ask for keys that are absent from most SST files.
constexpr double kBloomBitsPerKey = 10;
// At open, wait (up to this long) for background compaction to bring every column
// family's level 0 below the slowdown trigger before serving. Each restart turns the
// recovered WAL into new level-0 files; a crash loop that kills the server before they
// are compacted piles them up until RocksDB stops all writes (36 files), and Sends then
// hang. Waiting here makes each restart pay its compaction before taking traffic.
constexpr auto kLevel0WaitLimit = std::chrono::seconds(60);
constexpr auto kLevel0PollInterval = std::chrono::milliseconds(10);

// Deletes every entry of `cf` with one range tombstone (nothing if it is empty).
Status ClearColumnFamily(rocksdb::DB* db, rocksdb::ColumnFamilyHandle* cf,
                         const rocksdb::WriteOptions& write_options) {
  std::string first;
  std::string end;
  {
    std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(rocksdb::ReadOptions(), cf));
    it->SeekToFirst();
    if (!it->Valid()) {
      if (!it->status().ok()) return BackendError(it->status(), "cannot scan a legacy index");
      return Ok();
    }
    first = it->key().ToString();
    it->SeekToLast();
    if (!it->Valid()) return BackendError(it->status(), "cannot scan a legacy index");
    end = it->key().ToString();
  }
  end.push_back('\0');  // the smallest key above the last one: the range's end is exclusive
  rocksdb::Status s = db->DeleteRange(write_options, cf, ToSlice(first), ToSlice(end));
  if (!s.ok()) return BackendError(s, "cannot clear a legacy index");
  return Ok();
}

tl::unexpected<Error> NoSpaceError() {
  return StoreError(Code::kResourceExhausted, StoreErr::kNoSpace,
                    "the disk is full: writes are refused until space is freed");
}

}  // namespace

tl::unexpected<Error> BackendError(const rocksdb::Status& status, const char* message) {
  if (status.IsNoSpace()) return NoSpaceError();
  return StoreError(status.IsCorruption() ? Code::kDataLoss : Code::kInternal, StoreErr::kBackend,
                    message);
}

Result<std::unique_ptr<Db>> Db::Open(const std::string& path, bool sync,
                                     std::chrono::milliseconds space_probe_interval) {
  auto space = std::make_unique<SpaceMonitor>(path, space_probe_interval);
  rocksdb::DBOptions options;
  options.listeners.push_back(space->listener());
  options.create_if_missing = true;
  options.create_missing_column_families = true;
  options.max_open_files = kMaxOpenFiles;
  options.db_write_buffer_size = kDbWriteBufferBytes;
  options.info_log = NewSpdlogInfoLogger();  // no LOG file: docs/store.md, "Disk full"

  rocksdb::ColumnFamilyOptions cf_options;
  cf_options.write_buffer_size = kCfWriteBufferBytes;
  rocksdb::BlockBasedTableOptions table_options;
  table_options.filter_policy.reset(rocksdb::NewBloomFilterPolicy(kBloomBitsPerKey));
  cf_options.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table_options));
  std::vector<rocksdb::ColumnFamilyDescriptor> descriptors;
  descriptors.emplace_back(rocksdb::kDefaultColumnFamilyName, cf_options);
  for (std::string_view name : kCfNames) descriptors.emplace_back(std::string(name), cf_options);

  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* raw = nullptr;
  rocksdb::Status s = rocksdb::DB::Open(options, path, descriptors, &handles, &raw);
  if (!s.ok()) return BackendError(s, "cannot open the RocksDB database");

  std::unique_ptr<Db> db(new Db());
  db->db_ = raw;
  db->default_cf_ = handles[0];
  for (size_t i = 0; i < kCfCount; ++i) db->cfs_[i] = handles[i + 1];
  db->write_options_.sync = sync;
  db->space_ = std::move(space);

  // Background compaction is already scheduled for an over-full level 0; give it time.
  // (Waiting on RocksDB's own threads at startup: there is no completion to await in 7.8.)
  const auto wait_until = std::chrono::steady_clock::now() + kLevel0WaitLimit;
  const auto trigger = static_cast<uint64_t>(cf_options.level0_slowdown_writes_trigger);
  for (;;) {
    bool backlog = false;
    for (rocksdb::ColumnFamilyHandle* handle : handles) {
      uint64_t files = 0;
      if (raw->GetIntProperty(handle, "rocksdb.num-files-at-level0", &files) && files >= trigger) {
        backlog = true;
      }
    }
    if (!backlog || std::chrono::steady_clock::now() >= wait_until) break;
    std::this_thread::sleep_for(kLevel0PollInterval);
  }

  std::string version;
  s = raw->Get(rocksdb::ReadOptions(), db->default_cf_, ToSlice(kSchemaVersionKey), &version);
  if (s.IsNotFound()) {
    const char byte = static_cast<char>(kSchemaVersion);
    s = raw->Put(db->write_options_, db->default_cf_, ToSlice(kSchemaVersionKey),
                 rocksdb::Slice(&byte, 1));
    if (!s.ok()) return BackendError(s, "cannot write the schema version");
  } else if (!s.ok()) {
    return BackendError(s, "cannot read the schema version");
  } else if (version.size() != 1 || static_cast<uint8_t>(version[0]) != kSchemaVersion) {
    return StoreError(Code::kUnimplemented, StoreErr::kCorrupt, "unknown schema version");
  }
  // The expiry indexes of older versions are no longer written or read. Their families
  // stay (RocksDB opens a database only with every family listed); their entries go.
  for (Cf legacy : {Cf::kLegacyQueueExpiry, Cf::kLegacyDedupeExpiry}) {
    SOTTO_RETURN_IF_ERROR(ClearColumnFamily(raw, db->cf(legacy), db->write_options_));
  }
  std::vector<rocksdb::ColumnFamilyHandle*> all = {db->default_cf_};
  all.insert(all.end(), db->cfs_.begin(), db->cfs_.end());
  SOTTO_RETURN_IF_ERROR(db->space_->Start(raw, std::move(all), db->write_options_));
  return db;
}

Db::~Db() {
  if (space_ != nullptr) space_->Stop();
  if (db_ == nullptr) return;
  for (rocksdb::ColumnFamilyHandle* handle : cfs_) {
    if (handle != nullptr) static_cast<void>(db_->DestroyColumnFamilyHandle(handle));
  }
  if (default_cf_ != nullptr) static_cast<void>(db_->DestroyColumnFamilyHandle(default_cf_));
  // Close() flushes nothing we need (the WAL is already durable); its status only says
  // whether background work stopped cleanly.
  static_cast<void>(db_->Close());
  delete db_;
}

Result<std::optional<std::string>> Db::Get(Cf cf, std::string_view key) const {
  std::string value;
  rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), this->cf(cf), ToSlice(key), &value);
  if (s.IsNotFound()) return std::optional<std::string>();
  if (!s.ok()) return BackendError(s, "RocksDB read failed");
  return std::optional<std::string>(std::move(value));
}

Status Db::Write(rocksdb::WriteBatch* batch, const char* message) const {
  SOTTO_RETURN_IF_ERROR(Writable());
  return Check(db_->Write(write_options_, batch), message);
}

Status Db::Writable() const {
  if (space_->RefuseWrite()) return NoSpaceError();
  return Ok();
}

Status Db::Check(const rocksdb::Status& s, const char* message) const {
  if (s.ok()) return Ok();
  space_->OnWriteFailed(s);
  return BackendError(s, message);
}

Status Db::Put(rocksdb::WriteBatch* batch, Cf cf, std::string_view key,
               std::string_view value) const {
  rocksdb::Status s = batch->Put(this->cf(cf), ToSlice(key), ToSlice(value));
  if (!s.ok()) return BackendError(s, "cannot add to a write batch");
  return Ok();
}

Status Db::Delete(rocksdb::WriteBatch* batch, Cf cf, std::string_view key) const {
  rocksdb::Status s = batch->Delete(this->cf(cf), ToSlice(key));
  if (!s.ok()) return BackendError(s, "cannot add to a write batch");
  return Ok();
}

KeyScan KeyScan::Prefix(const Db& db, Cf cf, std::string prefix, std::string_view start) {
  std::optional<std::string> upper = PrefixSuccessor(prefix);
  return KeyScan(db, cf, std::move(prefix), std::move(upper), start);
}

KeyScan KeyScan::Below(const Db& db, Cf cf, std::optional<std::string> upper) {
  return KeyScan(db, cf, std::string(), std::move(upper), {});
}

KeyScan::KeyScan(const Db& db, Cf cf, std::string prefix, std::optional<std::string> upper,
                 std::string_view start)
    : prefix_(std::move(prefix)), upper_(std::move(upper)) {
  rocksdb::ReadOptions options;
  if (upper_) {
    upper_slice_ = ToSlice(*upper_);
    options.iterate_upper_bound = &upper_slice_;
  }
  it_.reset(db.db()->NewIterator(options, db.cf(cf)));
  it_->Seek(ToSlice(start.empty() ? std::string_view(prefix_) : start));
}

bool KeyScan::Valid() const {
  return it_->Valid() && ToView(it_->key()).substr(0, prefix_.size()) == prefix_;
}

Status KeyScan::status(const char* message) const {
  rocksdb::Status s = it_->status();
  if (!s.ok()) return BackendError(s, message);
  return Ok();
}

}  // namespace sotto::store::internal
