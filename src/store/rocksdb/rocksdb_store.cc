#include "store/rocksdb/rocksdb_store.h"

#include <utility>

#include "store/rocksdb/internal/account_store.h"
#include "store/rocksdb/internal/db.h"
#include "store/rocksdb/internal/group_store.h"
#include "store/rocksdb/internal/queue.h"

namespace sotto::store {
namespace {

using internal::Db;
using internal::RocksDbAccountStore;
using internal::RocksDbGroupStore;
using internal::RocksDbKeyStore;
using internal::RocksDbQueue;

// Thread-safe. Members are declared so that the queue (and its writer thread) goes first
// and the database last.
class RocksDbStore final : public Store {
 public:
  RocksDbStore(std::unique_ptr<Db> db, std::unique_ptr<RocksDbQueue> queue)
      : db_(std::move(db)),
        accounts_(*db_),
        keys_(*db_),
        groups_(*db_),
        queue_(std::move(queue)) {}
  ~RocksDbStore() override { Close(); }
  RocksDbStore(const RocksDbStore&) = delete;
  RocksDbStore& operator=(const RocksDbStore&) = delete;

  AccountStore& accounts() override { return accounts_; }
  KeyStore& keys() override { return keys_; }
  MessageQueue& queue() override { return *queue_; }
  GroupStore& groups() override { return groups_; }
  void Close() override { queue_->Close(); }
  StorageHealth storage_health() const override { return db_->storage_health(); }

 private:
  std::unique_ptr<Db> db_;
  RocksDbAccountStore accounts_;
  RocksDbKeyStore keys_;
  RocksDbGroupStore groups_;
  std::unique_ptr<RocksDbQueue> queue_;
};

}  // namespace

Result<std::unique_ptr<Store>> OpenRocksDbStore(const RocksDbOptions& options) {
  if (options.path.empty()) {
    return StoreError(Code::kInvalidArgument, StoreErr::kInvalid, "empty RocksDB path");
  }
  if (options.max_batch_requests == 0) {
    return StoreError(Code::kInvalidArgument, StoreErr::kInvalid,
                      "max_batch_requests must be positive");
  }
  if (options.space_probe_interval.count() <= 0) {
    return StoreError(Code::kInvalidArgument, StoreErr::kInvalid,
                      "space_probe_interval must be positive");
  }
  SOTTO_ASSIGN_OR_RETURN(std::unique_ptr<Db> db,
                         Db::Open(options.path, options.sync, options.space_probe_interval));
  SOTTO_ASSIGN_OR_RETURN(std::unique_ptr<RocksDbQueue> queue,
                         RocksDbQueue::Create(*db, options.max_batch_requests, options.clock));
  return std::unique_ptr<Store>(new RocksDbStore(std::move(db), std::move(queue)));
}

}  // namespace sotto::store
