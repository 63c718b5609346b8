// GroupStore on RocksDB: one record per group in the `groups` column family
// (docs/store.md).
//
// Thread-safety: thread-safe. A Put or Delete holds its group's striped lock across the
// revision check and the synced write, so compare-and-set is atomic. That is correct
// because one process alone opens a data directory (RocksDB's LOCK file), so these locks
// see every writer.
#pragma once

#include <array>
#include <mutex>

#include "store/rocksdb/internal/db.h"
#include "store/store.h"

namespace sotto::store::internal {

class RocksDbGroupStore final : public GroupStore {
 public:
  // `db` must outlive this object.
  explicit RocksDbGroupStore(const Db& db) : db_(db) {}

  Result<std::optional<GroupRecord>> Get(const GroupId& id) override;
  Result<uint64_t> Put(const GroupRecord& group) override;
  Status Delete(const GroupId& id, uint64_t expected_revision) override;

 private:
  static constexpr size_t kLockStripes = 64;
  std::mutex& StripeFor(const GroupId& id);
  // The stored revision (0 = absent). Requires the group's stripe.
  Result<uint64_t> RevisionLocked(const GroupId& id);

  const Db& db_;
  std::array<std::mutex, kLockStripes> mu_;
};

}  // namespace sotto::store::internal
