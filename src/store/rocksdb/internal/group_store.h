// GroupStore on RocksDB: one record per group in the `groups` column family
// (docs/store.md).
//
// Thread-safety: thread-safe (callers serialize read-modify-write cycles themselves).
#pragma once

#include "store/rocksdb/internal/db.h"
#include "store/store.h"

namespace sotto::store::internal {

class RocksDbGroupStore final : public GroupStore {
 public:
  // `db` must outlive this object.
  explicit RocksDbGroupStore(const Db& db) : db_(db) {}

  Result<std::optional<GroupRecord>> Get(const GroupId& id) override;
  Status Put(const GroupRecord& group) override;
  Status Delete(const GroupId& id) override;

 private:
  const Db& db_;
};

}  // namespace sotto::store::internal
