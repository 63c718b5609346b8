// LocalStore: groups, the holders of our sender keys, group messages' authors and the
// per-member receipts of our group messages. Schema: docs/client-store.md ("Groups").
#include <algorithm>
#include <limits>
#include <string>
#include <utility>

#include "client/internal/store_state.h"
#include "client/local_store.h"

namespace sotto::client {

using internal::Corrupt;
using internal::FromSql;
using internal::Statement;
using internal::ToSql;

namespace {

constexpr char kGroupColumns[] = "group_id, name, description, version, member, rotate, created_ms";
// messages columns, then the author from group_messages.
constexpr char kGroupMessageSelect[] =
    "SELECT m.id, m.message_id, m.peer, m.direction, m.peer_device, m.body, m.sent_ms, "
    "m.stored_ms, m.tick, m.untrusted, g.sender FROM messages m "
    "JOIN group_messages g ON g.message_rowid = m.id ";

int64_t Flag(bool value) { return value ? 1 : 0; }

int64_t SqlLimit(size_t limit) {
  return static_cast<int64_t>(
      std::min<uint64_t>(limit, static_cast<uint64_t>(std::numeric_limits<int64_t>::max())));
}

Result<std::vector<StoredMessage>> ReadGroupMessages(Statement& stmt) {
  std::vector<StoredMessage> messages;
  for (;;) {
    SOTTO_ASSIGN_OR_RETURN(const bool row, stmt.Step());
    if (!row) return messages;
    StoredMessage m;
    m.rowid = stmt.Int(0);
    m.message_id = stmt.Text(1);
    m.peer = stmt.Text(2);
    m.direction = stmt.Int(3) == 0 ? MessageDirection::kIncoming : MessageDirection::kOutgoing;
    m.peer_device = static_cast<uint32_t>(stmt.Int(4));
    m.body = stmt.Text(5);
    m.sent_ms = FromSql(stmt.Int(6));
    m.stored_ms = FromSql(stmt.Int(7));
    const int64_t tick = stmt.Int(8);
    if (tick < 0 || tick > static_cast<int64_t>(Tick::kBlocked)) {
      return Corrupt("a stored tick is out of range");
    }
    m.tick = static_cast<Tick>(tick);
    m.untrusted_identity = stmt.Int(9) != 0;
    m.group_sender = stmt.Text(10);
    m.group_id = m.peer;
    messages.push_back(std::move(m));
  }
}

}  // namespace

Status LocalStore::PutGroup(const StoredGroup& group) {
  Transaction tx(*this);
  {
    SOTTO_ASSIGN_OR_RETURN(
        Statement stmt,
        impl_->db->Prepare("INSERT INTO groups (group_id, name, description, version, member, "
                           "rotate, created_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) "
                           "ON CONFLICT (group_id) DO UPDATE SET name = excluded.name, "
                           "description = excluded.description, version = excluded.version, "
                           "member = excluded.member, rotate = excluded.rotate"));
    stmt.Bind(1, group.group_id).Bind(2, group.name).Bind(3, group.description);
    stmt.Bind(4, ToSql(group.version)).Bind(5, Flag(group.member)).Bind(6, Flag(group.rotate));
    stmt.Bind(7, ToSql(group.created_ms));
    SOTTO_RETURN_IF_ERROR(stmt.Run());
  }
  {
    SOTTO_ASSIGN_OR_RETURN(Statement stmt,
                           impl_->db->Prepare("DELETE FROM group_members WHERE group_id = ?1"));
    stmt.Bind(1, group.group_id);
    SOTTO_RETURN_IF_ERROR(stmt.Run());
  }
  for (const StoredGroupMember& member : group.members) {
    SOTTO_ASSIGN_OR_RETURN(Statement stmt,
                           impl_->db->Prepare("INSERT OR REPLACE INTO group_members (group_id, "
                                              "account, admin) VALUES (?1, ?2, ?3)"));
    stmt.Bind(1, group.group_id).Bind(2, member.account).Bind(3, Flag(member.admin));
    SOTTO_RETURN_IF_ERROR(stmt.Run());
  }
  return tx.Commit();
}

namespace {

Result<std::vector<StoredGroup>> ReadGroups(internal::StoreState& state, Statement& stmt) {
  std::vector<StoredGroup> groups;
  for (;;) {
    SOTTO_ASSIGN_OR_RETURN(const bool row, stmt.Step());
    if (!row) break;
    StoredGroup g;
    g.group_id = stmt.Text(0);
    g.name = stmt.Text(1);
    g.description = stmt.Text(2);
    g.version = FromSql(stmt.Int(3));
    g.member = stmt.Int(4) != 0;
    g.rotate = stmt.Int(5) != 0;
    g.created_ms = FromSql(stmt.Int(6));
    groups.push_back(std::move(g));
  }
  for (StoredGroup& g : groups) {
    SOTTO_ASSIGN_OR_RETURN(Statement members,
                           state.db->Prepare("SELECT account, admin FROM group_members "
                                             "WHERE group_id = ?1 ORDER BY account"));
    members.Bind(1, g.group_id);
    for (;;) {
      SOTTO_ASSIGN_OR_RETURN(const bool row, members.Step());
      if (!row) break;
      g.members.push_back({members.Text(0), members.Int(1) != 0});
    }
  }
  return groups;
}

}  // namespace

Result<std::optional<StoredGroup>> LocalStore::GetGroup(std::string_view group_id) {
  SOTTO_ASSIGN_OR_RETURN(Statement stmt, impl_->db->Prepare("SELECT " + std::string(kGroupColumns) +
                                                            " FROM groups WHERE group_id = ?1"));
  stmt.Bind(1, group_id);
  SOTTO_ASSIGN_OR_RETURN(std::vector<StoredGroup> groups, ReadGroups(*impl_, stmt));
  if (groups.empty()) return std::optional<StoredGroup>();
  return std::optional<StoredGroup>(std::move(groups.front()));
}

Result<std::vector<StoredGroup>> LocalStore::ListGroups() {
  SOTTO_ASSIGN_OR_RETURN(Statement stmt,
                         impl_->db->Prepare("SELECT " + std::string(kGroupColumns) +
                                            " FROM groups ORDER BY name, group_id"));
  return ReadGroups(*impl_, stmt);
}

Status LocalStore::SetGroupRotate(std::string_view group_id, bool rotate) {
  SOTTO_ASSIGN_OR_RETURN(Statement stmt,
                         impl_->db->Prepare("UPDATE groups SET rotate = ?2 WHERE group_id = ?1"));
  stmt.Bind(1, group_id).Bind(2, Flag(rotate));
  return stmt.Run();
}

Result<std::vector<GroupKeyHolder>> LocalStore::GroupKeyHolders(std::string_view group_id) {
  SOTTO_ASSIGN_OR_RETURN(Statement stmt,
                         impl_->db->Prepare("SELECT account, device_id, registration_id FROM "
                                            "group_key_holders WHERE group_id = ?1 "
                                            "ORDER BY account, device_id"));
  stmt.Bind(1, group_id);
  std::vector<GroupKeyHolder> holders;
  for (;;) {
    SOTTO_ASSIGN_OR_RETURN(const bool row, stmt.Step());
    if (!row) return holders;
    holders.push_back(
        {stmt.Text(0), static_cast<uint32_t>(stmt.Int(1)), static_cast<uint32_t>(stmt.Int(2))});
  }
}

Status LocalStore::AddGroupKeyHolders(std::string_view group_id,
                                      const std::vector<GroupKeyHolder>& holders) {
  Transaction tx(*this);
  for (const GroupKeyHolder& h : holders) {
    SOTTO_ASSIGN_OR_RETURN(
        Statement stmt,
        impl_->db->Prepare("INSERT OR REPLACE INTO group_key_holders (group_id, account, "
                           "device_id, registration_id) VALUES (?1, ?2, ?3, ?4)"));
    stmt.Bind(1, group_id).Bind(2, h.account).Bind(3, int64_t{h.device_id});
    stmt.Bind(4, int64_t{h.registration_id});
    SOTTO_RETURN_IF_ERROR(stmt.Run());
  }
  return tx.Commit();
}

Status LocalStore::ClearGroupKeyHolders(std::string_view group_id) {
  SOTTO_ASSIGN_OR_RETURN(Statement stmt,
                         impl_->db->Prepare("DELETE FROM group_key_holders WHERE group_id = ?1"));
  stmt.Bind(1, group_id);
  return stmt.Run();
}

Result<int64_t> LocalStore::AddGroupMessage(const StoredMessage& message) {
  Transaction tx(*this);
  StoredMessage row = message;
  row.peer = message.group_id;
  SOTTO_ASSIGN_OR_RETURN(const int64_t rowid, AddMessage(row));
  SOTTO_ASSIGN_OR_RETURN(Statement stmt,
                         impl_->db->Prepare("INSERT INTO group_messages (message_rowid, "
                                            "group_id, sender) VALUES (?1, ?2, ?3)"));
  stmt.Bind(1, rowid).Bind(2, message.group_id).Bind(3, message.group_sender);
  SOTTO_RETURN_IF_ERROR(stmt.Run());
  SOTTO_RETURN_IF_ERROR(tx.Commit());
  return rowid;
}

Result<std::vector<StoredMessage>> LocalStore::GroupConversation(std::string_view group_id,
                                                                 size_t limit) {
  SOTTO_ASSIGN_OR_RETURN(Statement stmt,
                         impl_->db->Prepare(std::string(kGroupMessageSelect) +
                                            "WHERE m.peer = ?1 ORDER BY m.id DESC LIMIT ?2"));
  stmt.Bind(1, group_id).Bind(2, SqlLimit(limit));
  SOTTO_ASSIGN_OR_RETURN(std::vector<StoredMessage> messages, ReadGroupMessages(stmt));
  std::reverse(messages.begin(), messages.end());
  return messages;
}

Result<std::vector<StoredMessage>> LocalStore::MarkGroupRead(std::string_view group_id) {
  Transaction tx(*this);
  std::vector<StoredMessage> unread;
  {
    SOTTO_ASSIGN_OR_RETURN(Statement stmt,
                           impl_->db->Prepare(std::string(kGroupMessageSelect) +
                                              "WHERE m.peer = ?1 AND m.direction = 0 "
                                              "AND m.tick <> 3 ORDER BY m.id"));
    stmt.Bind(1, group_id);
    SOTTO_ASSIGN_OR_RETURN(unread, ReadGroupMessages(stmt));
  }
  if (unread.empty()) return unread;
  SOTTO_ASSIGN_OR_RETURN(Statement stmt,
                         impl_->db->Prepare("UPDATE messages SET tick = 3 WHERE peer = ?1 "
                                            "AND direction = 0 AND tick <> 3"));
  stmt.Bind(1, group_id);
  SOTTO_RETURN_IF_ERROR(stmt.Run());
  SOTTO_RETURN_IF_ERROR(tx.Commit());
  for (StoredMessage& message : unread) message.tick = Tick::kRead;
  return unread;
}

Status LocalStore::AddGroupReceipts(std::string_view group_id, std::string_view message_id,
                                    const std::vector<std::string>& members) {
  Transaction tx(*this);
  for (const std::string& member : members) {
    SOTTO_ASSIGN_OR_RETURN(
        Statement stmt,
        impl_->db->Prepare("INSERT INTO group_receipts (message_id, member, group_id, "
                           "delivered_ms, read_ms) VALUES (?1, ?2, ?3, 0, 0) "
                           "ON CONFLICT DO NOTHING"));
    stmt.Bind(1, message_id).Bind(2, member).Bind(3, group_id);
    SOTTO_RETURN_IF_ERROR(stmt.Run());
  }
  return tx.Commit();
}

Result<GroupReceiptUpdate> LocalStore::MarkGroupReceipt(std::string_view message_id,
                                                        std::string_view member,
                                                        GroupReceiptKind kind, uint64_t now_ms) {
  GroupReceiptUpdate update;
  Transaction tx(*this);
  {
    SOTTO_ASSIGN_OR_RETURN(
        Statement stmt,
        impl_->db->Prepare("SELECT group_id FROM group_receipts WHERE message_id = ?1 "
                           "AND member = ?2"));
    stmt.Bind(1, message_id).Bind(2, member);
    SOTTO_ASSIGN_OR_RETURN(const bool row, stmt.Step());
    if (!row) return update;
    update.group_id = stmt.Text(0);
  }
  const char* set = kind == GroupReceiptKind::kRead
                        ? "UPDATE group_receipts SET read_ms = ?3, delivered_ms = CASE WHEN "
                          "delivered_ms = 0 THEN ?3 ELSE delivered_ms END WHERE message_id = ?1 "
                          "AND member = ?2 AND read_ms = 0"
                        : "UPDATE group_receipts SET delivered_ms = ?3 WHERE message_id = ?1 "
                          "AND member = ?2 AND delivered_ms = 0";
  {
    SOTTO_ASSIGN_OR_RETURN(Statement stmt, impl_->db->Prepare(set));
    stmt.Bind(1, message_id).Bind(2, member).Bind(3, ToSql(std::max<uint64_t>(now_ms, 1)));
    SOTTO_RETURN_IF_ERROR(stmt.Run());
    update.changed = impl_->db->changes() > 0;
  }
  {
    SOTTO_ASSIGN_OR_RETURN(
        Statement stmt,
        impl_->db->Prepare(kind == GroupReceiptKind::kRead
                               ? "SELECT COUNT(*) FROM group_receipts WHERE message_id = ?1 "
                                 "AND read_ms = 0"
                               : "SELECT COUNT(*) FROM group_receipts WHERE message_id = ?1 "
                                 "AND delivered_ms = 0"));
    stmt.Bind(1, message_id);
    SOTTO_ASSIGN_OR_RETURN(const bool row, stmt.Step());
    update.all = row && stmt.Int(0) == 0;
  }
  SOTTO_RETURN_IF_ERROR(tx.Commit());
  return update;
}

Result<std::vector<GroupReceiptRow>> LocalStore::GroupReceipts(std::string_view message_id) {
  SOTTO_ASSIGN_OR_RETURN(Statement stmt,
                         impl_->db->Prepare("SELECT member, delivered_ms, read_ms FROM "
                                            "group_receipts WHERE message_id = ?1 "
                                            "ORDER BY member"));
  stmt.Bind(1, message_id);
  std::vector<GroupReceiptRow> rows;
  for (;;) {
    SOTTO_ASSIGN_OR_RETURN(const bool row, stmt.Step());
    if (!row) return rows;
    rows.push_back({stmt.Text(0), FromSql(stmt.Int(1)), FromSql(stmt.Int(2))});
  }
}

}  // namespace sotto::client
