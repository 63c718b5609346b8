#include "store/rocksdb/internal/group_store.h"

#include "store/internal/checks.h"

namespace sotto::store::internal {

Result<std::optional<GroupRecord>> RocksDbGroupStore::Get(const GroupId& id) {
  SOTTO_ASSIGN_OR_RETURN(auto value, db_.Get(Cf::kGroups, GroupKey(id)));
  if (!value) return std::optional<GroupRecord>();
  SOTTO_ASSIGN_OR_RETURN(GroupRecord group, DecodeGroup(id, *value));
  return std::optional<GroupRecord>(std::move(group));
}

Status RocksDbGroupStore::Put(const GroupRecord& group) {
  SOTTO_RETURN_IF_ERROR(CheckGroupRecord(group));
  SOTTO_RETURN_IF_ERROR(db_.Writable());
  rocksdb::Status s = db_.db()->Put(db_.write_options(), db_.cf(Cf::kGroups),
                                    ToSlice(GroupKey(group.id)), ToSlice(EncodeGroup(group)));
  SOTTO_RETURN_IF_ERROR(db_.Check(s, "cannot write the group"));
  return Ok();
}

Status RocksDbGroupStore::Delete(const GroupId& id) {
  SOTTO_RETURN_IF_ERROR(db_.Writable());
  rocksdb::Status s =
      db_.db()->Delete(db_.write_options(), db_.cf(Cf::kGroups), ToSlice(GroupKey(id)));
  SOTTO_RETURN_IF_ERROR(db_.Check(s, "cannot delete the group"));
  return Ok();
}

}  // namespace sotto::store::internal
