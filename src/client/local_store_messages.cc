// LocalStore: contacts, messages and their full-text index, received ids and the outbox.
// Schema: docs/client-store.md.
#include <algorithm>
#include <limits>
#include <string>
#include <utility>

#include "client/internal/fts_query.h"
#include "client/internal/store_state.h"
#include "client/local_store.h"

namespace sotto::client {

using internal::AssociatedData;
using internal::Corrupt;
using internal::FromSql;
using internal::Statement;
using internal::StoreError;
using internal::StoreState;
using internal::ToSql;

namespace {

// Qualified: the search joins messages with messages_fts, which also has `body`.
constexpr char kMessageColumns[] =
    "messages.id, messages.message_id, messages.peer, messages.direction, "
    "messages.peer_device, messages.body, messages.sent_ms, messages.stored_ms, "
    "messages.tick, messages.untrusted";
constexpr int kMessageColumnCount = 10;

constexpr char kContactColumns[] = "handle, account_id, name, added_ms";
constexpr char kOutboxColumns[] =
    "id, message_id, recipient, content, online_only, attempts, next_attempt_ms, blocked";

std::string OutboxAd(std::string_view message_id) { return AssociatedData("outbox", {message_id}); }

int64_t SqlLimit(size_t limit) {
  return static_cast<int64_t>(
      std::min<uint64_t>(limit, static_cast<uint64_t>(std::numeric_limits<int64_t>::max())));
}

Result<Tick> ParseTick(int64_t value) {
  if (value < 0 || value > static_cast<int64_t>(Tick::kBlocked)) {
    return Corrupt("a stored tick is out of range");
  }
  return static_cast<Tick>(value);
}

Result<StoredMessage> ReadMessage(const Statement& stmt) {
  StoredMessage message;
  message.rowid = stmt.Int(0);
  message.message_id = stmt.Text(1);
  message.peer = stmt.Text(2);
  message.direction = stmt.Int(3) == 0 ? MessageDirection::kIncoming : MessageDirection::kOutgoing;
  message.peer_device = static_cast<uint32_t>(stmt.Int(4));
  message.body = stmt.Text(5);
  message.sent_ms = FromSql(stmt.Int(6));
  message.stored_ms = FromSql(stmt.Int(7));
  SOTTO_ASSIGN_OR_RETURN(message.tick, ParseTick(stmt.Int(8)));
  message.untrusted_identity = stmt.Int(9) != 0;
  return message;
}

Result<std::vector<StoredMessage>> ReadMessages(Statement& stmt) {
  std::vector<StoredMessage> messages;
  for (;;) {
    SOTTO_ASSIGN_OR_RETURN(const bool row, stmt.Step());
    if (!row) return messages;
    SOTTO_ASSIGN_OR_RETURN(StoredMessage message, ReadMessage(stmt));
    messages.push_back(std::move(message));
  }
}

Contact ReadContact(const Statement& stmt) {
  return Contact{stmt.Text(0), stmt.Text(1), stmt.Text(2), FromSql(stmt.Int(3))};
}

Result<std::optional<Contact>> ContactWhere(StoreState& state, std::string_view where,
                                            std::string_view value) {
  SOTTO_ASSIGN_OR_RETURN(Statement stmt,
                         state.db->Prepare("SELECT " + std::string(kContactColumns) +
                                           " FROM contacts WHERE " + std::string(where)));
  stmt.Bind(1, value);
  SOTTO_ASSIGN_OR_RETURN(const bool row, stmt.Step());
  if (!row) return std::optional<Contact>();
  return std::optional<Contact>(ReadContact(stmt));
}

// The header's tick rules: forward only in kPending < kSent < kDelivered < kRead; a held
// message (kBlocked) may only go back to kPending; anything not yet read may be held.
bool TickMayMove(Tick from, Tick to) {
  if (from == to) return false;
  if (to == Tick::kBlocked) return from != Tick::kRead;
  if (from == Tick::kBlocked) return to == Tick::kPending;
  return static_cast<uint8_t>(to) > static_cast<uint8_t>(from);
}

int64_t Flag(bool value) { return value ? 1 : 0; }

}  // namespace

// --- Contacts ----------------------------------------------------------------------------

Status LocalStore::PutContact(const Contact& contact) {
  Transaction tx(*this);
  if (!contact.account_id.empty()) {
    // The account moved to this handle (a new number): the old entry goes.
    SOTTO_ASSIGN_OR_RETURN(
        Statement stmt,
        impl_->db->Prepare("DELETE FROM contacts WHERE account_id = ?1 AND handle <> ?2"));
    stmt.Bind(1, contact.account_id).Bind(2, contact.handle);
    SOTTO_RETURN_IF_ERROR(stmt.Run());
  }
  SOTTO_ASSIGN_OR_RETURN(
      Statement stmt,
      impl_->db->Prepare("INSERT INTO contacts (handle, account_id, name, added_ms) "
                         "VALUES (?1, ?2, ?3, ?4) ON CONFLICT (handle) DO UPDATE SET "
                         "account_id = excluded.account_id, name = excluded.name, "
                         "added_ms = excluded.added_ms"));
  stmt.Bind(1, contact.handle);
  if (contact.account_id.empty()) {
    stmt.BindNull(2);  // unknown ids are NULL, which UNIQUE lets repeat
  } else {
    stmt.Bind(2, contact.account_id);
  }
  stmt.Bind(3, contact.name).Bind(4, ToSql(contact.added_ms));
  SOTTO_RETURN_IF_ERROR(stmt.Run());
  return tx.Commit();
}

Result<std::optional<Contact>> LocalStore::ContactByHandle(std::string_view handle) {
  return ContactWhere(*impl_, "handle = ?1", handle);
}

Result<std::optional<Contact>> LocalStore::ContactByAccount(std::string_view account_id) {
  return ContactWhere(*impl_, "account_id = ?1", account_id);
}

Result<std::vector<Contact>> LocalStore::ListContacts() {
  SOTTO_ASSIGN_OR_RETURN(Statement stmt,
                         impl_->db->Prepare("SELECT " + std::string(kContactColumns) +
                                            " FROM contacts ORDER BY handle"));
  std::vector<Contact> contacts;
  for (;;) {
    SOTTO_ASSIGN_OR_RETURN(const bool row, stmt.Step());
    if (!row) return contacts;
    contacts.push_back(ReadContact(stmt));
  }
}

// --- Messages ----------------------------------------------------------------------------

Result<int64_t> LocalStore::AddMessage(const StoredMessage& message) {
  // The FTS index follows through the messages_fts_insert trigger.
  SOTTO_ASSIGN_OR_RETURN(
      Statement stmt,
      impl_->db->Prepare("INSERT INTO messages (message_id, peer, direction, peer_device, "
                         "body, sent_ms, stored_ms, tick, untrusted) "
                         "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) "
                         "ON CONFLICT (peer, direction, message_id) DO NOTHING RETURNING id"));
  stmt.Bind(1, message.message_id).Bind(2, message.peer);
  stmt.Bind(3, int64_t{static_cast<uint8_t>(message.direction)});
  stmt.Bind(4, int64_t{message.peer_device}).Bind(5, message.body);
  stmt.Bind(6, ToSql(message.sent_ms)).Bind(7, ToSql(message.stored_ms));
  stmt.Bind(8, int64_t{static_cast<uint8_t>(message.tick)});
  stmt.Bind(9, Flag(message.untrusted_identity));
  SOTTO_ASSIGN_OR_RETURN(const bool row, stmt.Step());
  if (!row) {
    return StoreError(Code::kAlreadyExists, StoreErr::kSql, "the message is already stored");
  }
  const int64_t rowid = stmt.Int(0);
  SOTTO_RETURN_IF_ERROR(stmt.Run());  // RETURNING: the insert completes at SQLITE_DONE
  return rowid;
}

Result<std::optional<StoredMessage>> LocalStore::GetMessage(std::string_view peer,
                                                            MessageDirection direction,
                                                            std::string_view message_id) {
  SOTTO_ASSIGN_OR_RETURN(Statement stmt,
                         impl_->db->Prepare("SELECT " + std::string(kMessageColumns) +
                                            " FROM messages WHERE peer = ?1 AND direction = ?2 "
                                            "AND message_id = ?3"));
  stmt.Bind(1, peer).Bind(2, int64_t{static_cast<uint8_t>(direction)}).Bind(3, message_id);
  SOTTO_ASSIGN_OR_RETURN(const bool row, stmt.Step());
  if (!row) return std::optional<StoredMessage>();
  SOTTO_ASSIGN_OR_RETURN(StoredMessage message, ReadMessage(stmt));
  return std::optional<StoredMessage>(std::move(message));
}

Result<std::optional<StoredMessage>> LocalStore::GetMessageByRowid(int64_t rowid) {
  SOTTO_ASSIGN_OR_RETURN(Statement stmt,
                         impl_->db->Prepare("SELECT " + std::string(kMessageColumns) +
                                            " FROM messages WHERE id = ?1"));
  stmt.Bind(1, rowid);
  SOTTO_ASSIGN_OR_RETURN(const bool row, stmt.Step());
  if (!row) return std::optional<StoredMessage>();
  SOTTO_ASSIGN_OR_RETURN(StoredMessage message, ReadMessage(stmt));
  return std::optional<StoredMessage>(std::move(message));
}

Result<bool> LocalStore::AdvanceTick(std::string_view peer, std::string_view message_id,
                                     Tick tick) {
  Tick from;
  {
    SOTTO_ASSIGN_OR_RETURN(
        Statement stmt,
        impl_->db->Prepare("SELECT tick FROM messages WHERE peer = ?1 AND direction = 1 "
                           "AND message_id = ?2"));
    stmt.Bind(1, peer).Bind(2, message_id);
    SOTTO_ASSIGN_OR_RETURN(const bool row, stmt.Step());
    if (!row) return false;
    SOTTO_ASSIGN_OR_RETURN(from, ParseTick(stmt.Int(0)));
  }
  if (!TickMayMove(from, tick)) return false;
  // Compare-and-set on the tick read above, so the rule holds without a transaction.
  SOTTO_ASSIGN_OR_RETURN(
      Statement stmt,
      impl_->db->Prepare("UPDATE messages SET tick = ?4 WHERE peer = ?1 AND direction = 1 "
                         "AND message_id = ?2 AND tick = ?3"));
  stmt.Bind(1, peer).Bind(2, message_id).Bind(3, int64_t{static_cast<uint8_t>(from)});
  stmt.Bind(4, int64_t{static_cast<uint8_t>(tick)});
  SOTTO_RETURN_IF_ERROR(stmt.Run());
  return impl_->db->changes() > 0;
}

Result<std::vector<StoredMessage>> LocalStore::Conversation(std::string_view peer, size_t limit) {
  SOTTO_ASSIGN_OR_RETURN(Statement stmt,
                         impl_->db->Prepare("SELECT " + std::string(kMessageColumns) +
                                            " FROM messages WHERE peer = ?1 "
                                            "ORDER BY id DESC LIMIT ?2"));
  stmt.Bind(1, peer).Bind(2, SqlLimit(limit));
  SOTTO_ASSIGN_OR_RETURN(std::vector<StoredMessage> messages, ReadMessages(stmt));
  std::reverse(messages.begin(), messages.end());
  return messages;
}

Result<std::vector<StoredMessage>> LocalStore::MarkRead(std::string_view peer) {
  Transaction tx(*this);
  std::vector<StoredMessage> unread;
  {
    SOTTO_ASSIGN_OR_RETURN(Statement stmt,
                           impl_->db->Prepare("SELECT " + std::string(kMessageColumns) +
                                              " FROM messages WHERE peer = ?1 AND direction = 0 "
                                              "AND tick <> 3 ORDER BY id"));
    stmt.Bind(1, peer);
    SOTTO_ASSIGN_OR_RETURN(unread, ReadMessages(stmt));
  }
  if (unread.empty()) return unread;
  SOTTO_ASSIGN_OR_RETURN(Statement stmt,
                         impl_->db->Prepare("UPDATE messages SET tick = 3 WHERE peer = ?1 "
                                            "AND direction = 0 AND tick <> 3"));
  stmt.Bind(1, peer);
  SOTTO_RETURN_IF_ERROR(stmt.Run());
  SOTTO_RETURN_IF_ERROR(tx.Commit());
  for (StoredMessage& message : unread) message.tick = Tick::kRead;
  return unread;
}

Result<std::vector<SearchHit>> LocalStore::Search(std::string_view words, size_t limit) {
  const std::string query = internal::BuildMatchQuery(words);
  const size_t count = std::min(limit, kMaxSearchResults);
  std::vector<SearchHit> hits;
  if (query.empty() || count == 0) return hits;
  SOTTO_ASSIGN_OR_RETURN(
      Statement stmt,
      impl_->db->Prepare("SELECT " + std::string(kMessageColumns) +
                         ", snippet(messages_fts, 0, '[', ']', '…', 16) FROM messages_fts "
                         "JOIN messages ON messages.id = messages_fts.rowid "
                         "WHERE messages_fts MATCH ?1 ORDER BY messages.id DESC LIMIT ?2"));
  stmt.Bind(1, query).Bind(2, SqlLimit(count));
  for (;;) {
    SOTTO_ASSIGN_OR_RETURN(const bool row, stmt.Step());
    if (!row) return hits;
    SOTTO_ASSIGN_OR_RETURN(StoredMessage message, ReadMessage(stmt));
    hits.push_back({std::move(message), stmt.Text(kMessageColumnCount)});
  }
}

// --- Received ids ------------------------------------------------------------------------

Result<bool> LocalStore::HasReceived(std::string_view source, std::string_view message_id) {
  SOTTO_ASSIGN_OR_RETURN(
      Statement stmt,
      impl_->db->Prepare("SELECT 1 FROM received WHERE source = ?1 AND message_id = ?2"));
  stmt.Bind(1, source).Bind(2, message_id);
  return stmt.Step();
}

Status LocalStore::MarkReceived(std::string_view source, std::string_view message_id,
                                uint64_t now_ms) {
  // The first sighting counts: retention runs from when the id was first received.
  SOTTO_ASSIGN_OR_RETURN(Statement stmt,
                         impl_->db->Prepare("INSERT INTO received (source, message_id, "
                                            "received_ms) VALUES (?1, ?2, ?3) "
                                            "ON CONFLICT DO NOTHING"));
  stmt.Bind(1, source).Bind(2, message_id).Bind(3, ToSql(now_ms));
  return stmt.Run();
}

Result<size_t> LocalStore::PruneReceived(uint64_t now_ms) {
  if (now_ms <= kReceivedIdRetentionMs) return size_t{0};
  SOTTO_ASSIGN_OR_RETURN(Statement stmt,
                         impl_->db->Prepare("DELETE FROM received WHERE received_ms < ?1"));
  stmt.Bind(1, ToSql(now_ms - kReceivedIdRetentionMs));
  SOTTO_RETURN_IF_ERROR(stmt.Run());
  return static_cast<size_t>(impl_->db->changes());
}

// --- Outbox ------------------------------------------------------------------------------

Result<int64_t> LocalStore::AddOutbox(const OutboxItem& item) {
  SOTTO_ASSIGN_OR_RETURN(const Bytes sealed,
                         impl_->sealer.Seal(item.content, OutboxAd(item.message_id)));
  SOTTO_ASSIGN_OR_RETURN(
      Statement stmt,
      impl_->db->Prepare("INSERT INTO outbox (message_id, recipient, content, online_only, "
                         "attempts, next_attempt_ms, blocked) "
                         "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) RETURNING id"));
  stmt.Bind(1, item.message_id).Bind(2, item.recipient).BindBlob(3, sealed);
  stmt.Bind(4, Flag(item.online_only)).Bind(5, int64_t{item.attempts});
  stmt.Bind(6, ToSql(item.next_attempt_ms)).Bind(7, Flag(item.blocked));
  SOTTO_ASSIGN_OR_RETURN(const bool row, stmt.Step());  // a duplicate id: kAlreadyExists
  if (!row) return StoreError(Code::kInternal, StoreErr::kSql, "the outbox insert returned no id");
  const int64_t rowid = stmt.Int(0);
  SOTTO_RETURN_IF_ERROR(stmt.Run());
  return rowid;
}

Result<std::vector<OutboxItem>> LocalStore::ListOutbox(size_t limit, OutboxFilter filter) {
  SOTTO_ASSIGN_OR_RETURN(Statement stmt,
                         impl_->db->Prepare("SELECT " + std::string(kOutboxColumns) +
                                            " FROM outbox WHERE ?1 OR blocked = 0 "
                                            "ORDER BY id LIMIT ?2"));
  stmt.Bind(1, Flag(filter == OutboxFilter::kIncludeBlocked)).Bind(2, SqlLimit(limit));
  std::vector<OutboxItem> items;
  for (;;) {
    SOTTO_ASSIGN_OR_RETURN(const bool row, stmt.Step());
    if (!row) return items;
    OutboxItem item;
    item.rowid = stmt.Int(0);
    item.message_id = stmt.Text(1);
    item.recipient = stmt.Text(2);
    SOTTO_ASSIGN_OR_RETURN(const crypto::SecretBytes content,
                           impl_->sealer.Open(stmt.Blob(3), OutboxAd(item.message_id)));
    item.content.assign(content.span().begin(), content.span().end());
    item.online_only = stmt.Int(4) != 0;
    item.attempts = static_cast<uint32_t>(stmt.Int(5));
    item.next_attempt_ms = FromSql(stmt.Int(6));
    item.blocked = stmt.Int(7) != 0;
    items.push_back(std::move(item));
  }
}

Status LocalStore::UpdateOutbox(const OutboxItem& item) {
  SOTTO_ASSIGN_OR_RETURN(Statement stmt,
                         impl_->db->Prepare("UPDATE outbox SET attempts = ?2, next_attempt_ms = "
                                            "?3, blocked = ?4 WHERE message_id = ?1"));
  stmt.Bind(1, item.message_id).Bind(2, int64_t{item.attempts});
  stmt.Bind(3, ToSql(item.next_attempt_ms)).Bind(4, Flag(item.blocked));
  SOTTO_RETURN_IF_ERROR(stmt.Run());
  if (impl_->db->changes() == 0) {
    return StoreError(Code::kNotFound, StoreErr::kNotFound, "no such outbox item");
  }
  return Ok();
}

Status LocalStore::RemoveOutbox(std::string_view message_id) {
  // Idempotent: the server's ack may arrive twice.
  SOTTO_ASSIGN_OR_RETURN(Statement stmt,
                         impl_->db->Prepare("DELETE FROM outbox WHERE message_id = ?1"));
  stmt.Bind(1, message_id);
  return stmt.Run();
}

Result<size_t> LocalStore::UnblockOutbox(std::string_view recipient) {
  SOTTO_ASSIGN_OR_RETURN(
      Statement stmt,
      impl_->db->Prepare("UPDATE outbox SET blocked = 0 WHERE recipient = ?1 AND blocked <> 0"));
  stmt.Bind(1, recipient);
  SOTTO_RETURN_IF_ERROR(stmt.Run());
  return static_cast<size_t>(impl_->db->changes());
}

Result<size_t> LocalStore::CountOutbox() {
  SOTTO_ASSIGN_OR_RETURN(Statement stmt, impl_->db->Prepare("SELECT COUNT(*) FROM outbox"));
  SOTTO_ASSIGN_OR_RETURN(const bool row, stmt.Step());
  return row ? static_cast<size_t>(stmt.Int(0)) : size_t{0};
}

Result<size_t> LocalStore::CountOutbox(std::string_view recipient) {
  SOTTO_ASSIGN_OR_RETURN(Statement stmt,
                         impl_->db->Prepare("SELECT COUNT(*) FROM outbox WHERE recipient = ?1"));
  stmt.Bind(1, recipient);
  SOTTO_ASSIGN_OR_RETURN(const bool row, stmt.Step());
  return row ? static_cast<size_t>(stmt.Int(0)) : size_t{0};
}

}  // namespace sotto::client
