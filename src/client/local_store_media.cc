// LocalStore: message attachments (docs/media.md, docs/client-store.md).
#include <algorithm>
#include <limits>

#include "client/internal/store_state.h"
#include "client/local_store.h"

namespace sotto::client {

using internal::AssociatedData;
using internal::Corrupt;
using internal::FromSql;
using internal::Statement;
using internal::ToSql;

namespace {

std::string AttachmentAd(int64_t rowid) {
  return AssociatedData("attachments", {std::to_string(rowid)});
}

}  // namespace

std::string_view AttachmentStateName(AttachmentState state) {
  switch (state) {
    case AttachmentState::kPending: return "pending";
    case AttachmentState::kSaved: return "saved";
    case AttachmentState::kRejected: return "rejected";
    case AttachmentState::kSent: return "sent";
  }
  return "unknown";
}

Status LocalStore::PutAttachment(int64_t message_rowid, ByteSpan pointer,
                                 const AttachmentInfo& info) {
  SOTTO_ASSIGN_OR_RETURN(const Bytes sealed,
                         impl_->sealer.Seal(pointer, AttachmentAd(message_rowid)));
  SOTTO_ASSIGN_OR_RETURN(
      Statement stmt,
      impl_->db->Prepare("INSERT OR REPLACE INTO attachments (message_rowid, pointer, "
                         "content_type, size, file_name, local_path, state, attempts) "
                         "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 0)"));
  stmt.Bind(1, message_rowid).BindBlob(2, sealed).Bind(3, info.content_type);
  stmt.Bind(4, ToSql(info.size)).Bind(5, info.file_name).Bind(6, info.local_path);
  stmt.Bind(7, int64_t{static_cast<uint8_t>(info.state)});
  return stmt.Run();
}

Result<std::optional<LocalStore::Attachment>> LocalStore::GetAttachment(int64_t message_rowid) {
  SOTTO_ASSIGN_OR_RETURN(
      Statement stmt,
      impl_->db->Prepare("SELECT pointer, content_type, size, file_name, local_path, state, "
                         "attempts FROM attachments WHERE message_rowid = ?1"));
  stmt.Bind(1, message_rowid);
  SOTTO_ASSIGN_OR_RETURN(const bool row, stmt.Step());
  if (!row) return std::optional<Attachment>();
  Attachment a;
  a.message_rowid = message_rowid;
  SOTTO_ASSIGN_OR_RETURN(a.pointer, impl_->sealer.Open(stmt.Blob(0), AttachmentAd(message_rowid)));
  a.info.content_type = stmt.Text(1);
  a.info.size = FromSql(stmt.Int(2));
  a.info.file_name = stmt.Text(3);
  a.info.local_path = stmt.Text(4);
  const int64_t state = stmt.Int(5);
  if (state < 0 || state > static_cast<int64_t>(AttachmentState::kSent)) {
    return Corrupt("a stored attachment state is out of range");
  }
  a.info.state = static_cast<AttachmentState>(state);
  a.attempts = static_cast<uint32_t>(stmt.Int(6));
  return std::optional<Attachment>(std::move(a));
}

Status LocalStore::UpdateAttachment(int64_t message_rowid, AttachmentState state,
                                    std::string_view local_path, uint32_t attempts) {
  SOTTO_ASSIGN_OR_RETURN(Statement stmt,
                         impl_->db->Prepare("UPDATE attachments SET state = ?2, local_path = ?3, "
                                            "attempts = ?4 WHERE message_rowid = ?1"));
  stmt.Bind(1, message_rowid).Bind(2, int64_t{static_cast<uint8_t>(state)});
  stmt.Bind(3, local_path).Bind(4, int64_t{attempts});
  return stmt.Run();
}

Result<std::vector<int64_t>> LocalStore::PendingAttachments(size_t limit) {
  SOTTO_ASSIGN_OR_RETURN(
      Statement stmt,
      impl_->db->Prepare("SELECT message_rowid FROM attachments WHERE state = 0 "
                         "ORDER BY message_rowid LIMIT ?1"));
  stmt.Bind(1, static_cast<int64_t>(std::min<uint64_t>(
                   limit, static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))));
  std::vector<int64_t> out;
  for (;;) {
    SOTTO_ASSIGN_OR_RETURN(const bool row, stmt.Step());
    if (!row) return out;
    out.push_back(stmt.Int(0));
  }
}

}  // namespace sotto::client
