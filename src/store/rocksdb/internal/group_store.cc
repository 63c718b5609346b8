#include "store/rocksdb/internal/group_store.h"

#include <cstring>

#include "store/internal/checks.h"

namespace sotto::store::internal {

std::mutex& RocksDbGroupStore::StripeFor(const GroupId& id) {
  uint64_t h = 0;
  std::memcpy(&h, id.data(), sizeof h);  // group ids are random
  return mu_[h % kLockStripes];
}

Result<std::optional<GroupRecord>> RocksDbGroupStore::Get(const GroupId& id) {
  SOTTO_ASSIGN_OR_RETURN(auto value, db_.Get(Cf::kGroups, GroupKey(id)));
  if (!value) return std::optional<GroupRecord>();
  SOTTO_ASSIGN_OR_RETURN(GroupRecord group, DecodeGroup(id, *value));
  return std::optional<GroupRecord>(std::move(group));
}

Result<uint64_t> RocksDbGroupStore::RevisionLocked(const GroupId& id) {
  SOTTO_ASSIGN_OR_RETURN(auto stored, Get(id));
  return stored ? stored->revision : 0;
}

Result<uint64_t> RocksDbGroupStore::Put(const GroupRecord& group) {
  SOTTO_RETURN_IF_ERROR(CheckGroupRecord(group));
  SOTTO_RETURN_IF_ERROR(db_.Writable());
  std::lock_guard lock(StripeFor(group.id));
  SOTTO_ASSIGN_OR_RETURN(const uint64_t revision, RevisionLocked(group.id));
  if (revision != group.revision) return StaleError(kStaleGroup);
  GroupRecord stored = group;
  ++stored.revision;
  rocksdb::Status s = db_.db()->Put(db_.write_options(), db_.cf(Cf::kGroups),
                                    ToSlice(GroupKey(group.id)), ToSlice(EncodeGroup(stored)));
  SOTTO_RETURN_IF_ERROR(db_.Check(s, "cannot write the group"));
  return stored.revision;
}

Status RocksDbGroupStore::Delete(const GroupId& id, uint64_t expected_revision) {
  SOTTO_RETURN_IF_ERROR(db_.Writable());
  std::lock_guard lock(StripeFor(id));
  SOTTO_ASSIGN_OR_RETURN(const uint64_t revision, RevisionLocked(id));
  if (revision != expected_revision) return StaleError(kStaleGroup);
  if (revision == 0) return Ok();  // absent, as expected
  rocksdb::Status s =
      db_.db()->Delete(db_.write_options(), db_.cf(Cf::kGroups), ToSlice(GroupKey(id)));
  SOTTO_RETURN_IF_ERROR(db_.Check(s, "cannot delete the group"));
  return Ok();
}

}  // namespace sotto::store::internal
