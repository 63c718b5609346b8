// LocalStore: opening, transactions, the account, settings, the Signal stores and the
// identity trust policy. Messages, contacts, received ids and the outbox are in
// local_store_messages.cc. Schema and sealing: docs/client-store.md.
#include "client/local_store.h"

#include <chrono>
#include <string>
#include <utility>

#include "client/internal/records.h"
#include "client/internal/schema.h"
#include "client/internal/store_state.h"

namespace sotto::client {

using internal::AssociatedData;
using internal::Corrupt;
using internal::FromSql;
using internal::Statement;
using internal::StoreError;
using internal::StoreState;
using internal::ToSql;

namespace {

constexpr std::string_view kAccountColumns =
    "handle, server, server_key, secrets, registration_id, account_id, device_id, "
    "next_prekey_id, signed_prekey_id, signed_prekey_ms";

std::string AccountAd() { return AssociatedData("account", {"1"}); }
std::string PreKeyAd(uint32_t id) { return AssociatedData("prekey", {std::to_string(id)}); }
std::string SignedPreKeyAd(uint32_t id) {
  return AssociatedData("signed_prekey", {std::to_string(id)});
}
std::string SessionAd(const signal::ProtocolAddress& address) {
  return AssociatedData("session", {address.name, std::to_string(address.device_id)});
}
std::string SenderKeyAd(const signal::SenderKeyName& name) {
  return AssociatedData("sender_key",
                        {name.group_id, name.sender.name, std::to_string(name.sender.device_id)});
}

uint64_t NowMs() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                   std::chrono::system_clock::now().time_since_epoch())
                                   .count());
}

Result<signal::IdentityKey> ParseIdentityKey(ByteSpan bytes) {
  auto key = signal::PublicKey::Deserialize(bytes);
  if (!key) return Corrupt("a stored identity key does not parse");
  return *key;
}

// Runs one cached statement without parameters (transaction control).
Status RunSql(StoreState& state, std::string_view sql) {
  SOTTO_ASSIGN_OR_RETURN(Statement stmt, state.db->Prepare(sql));
  return stmt.Run();
}

enum class TxEnd : uint8_t { kCommit, kRollback };

// The outermost level is BEGIN IMMEDIATE (the write lock up front, so a transaction never
// fails half-way on an upgrade); inner levels are savepoints, so an inner rollback undoes
// only its own writes while only the outermost COMMIT makes anything durable.
void BeginTransaction(StoreState& state, LocalStore::Durability durability) {
  const size_t depth = state.transactions.size();
  if (depth > 0 && state.transactions.back().has_value()) {
    state.transactions.push_back(state.transactions.back());  // inside a failed BEGIN
    return;
  }
  if (depth == 0 && durability == LocalStore::Durability::kRelaxed) {
    state.relaxed = RunSql(state, "PRAGMA synchronous = NORMAL").has_value();
  }
  Status begun = depth == 0 ? RunSql(state, "BEGIN IMMEDIATE")
                            : RunSql(state, "SAVEPOINT nested_" + std::to_string(depth));
  state.transactions.push_back(begun ? std::nullopt : std::optional<Error>(begun.error()));
}

Status EndTransaction(StoreState& state, TxEnd end) {
  if (state.transactions.empty()) {
    return StoreError(Code::kFailedPrecondition, StoreErr::kSql, "no transaction is open");
  }
  const std::optional<Error> failed = state.transactions.back();
  state.transactions.pop_back();
  if (failed) return tl::unexpected<Error>(*failed);
  const size_t depth = state.transactions.size();
  if (depth == 0) {
    Status ended = end == TxEnd::kRollback ? RunSql(state, "ROLLBACK") : RunSql(state, "COMMIT");
    if (!ended && end == TxEnd::kCommit) (void)RunSql(state, "ROLLBACK");  // still open
    if (state.relaxed) {
      state.relaxed = false;
      SOTTO_RETURN_IF_ERROR(RunSql(state, "PRAGMA synchronous = FULL"));
    }
    return ended;
  }
  const std::string savepoint = "nested_" + std::to_string(depth);
  if (end == TxEnd::kRollback) SOTTO_RETURN_IF_ERROR(RunSql(state, "ROLLBACK TO " + savepoint));
  return RunSql(state, "RELEASE " + savepoint);
}

Result<std::optional<IdentityInfo>> ReadIdentity(StoreState& state,
                                                 const signal::ProtocolAddress& address) {
  SOTTO_ASSIGN_OR_RETURN(
      Statement stmt,
      state.db->Prepare("SELECT key, verified, pending_key, changed_ms FROM identities "
                        "WHERE name = ?1 AND device_id = ?2"));
  stmt.Bind(1, address.name).Bind(2, int64_t{address.device_id});
  SOTTO_ASSIGN_OR_RETURN(const bool row, stmt.Step());
  if (!row) return std::optional<IdentityInfo>();
  IdentityInfo info;
  SOTTO_ASSIGN_OR_RETURN(info.key, ParseIdentityKey(stmt.Blob(0)));
  info.verified = stmt.Int(1) != 0;
  if (!stmt.IsNull(2)) {
    SOTTO_ASSIGN_OR_RETURN(info.pending, ParseIdentityKey(stmt.Blob(2)));
  }
  info.changed_ms = FromSql(stmt.Int(3));
  return std::optional<IdentityInfo>(info);
}

// Records `key` as pending unless it already is (keeping when it was first seen).
Status WritePending(StoreState& state, const signal::ProtocolAddress& address,
                    const signal::IdentityKey& key, uint64_t now_ms) {
  SOTTO_ASSIGN_OR_RETURN(
      Statement stmt, state.db->Prepare("UPDATE identities SET pending_key = ?3, changed_ms = ?4 "
                                        "WHERE name = ?1 AND device_id = ?2 "
                                        "AND (pending_key IS NULL OR pending_key <> ?3)"));
  const signal::SerializedPublicKey serialized = key.Serialize();
  stmt.Bind(1, address.name).Bind(2, int64_t{address.device_id});
  stmt.BindBlob(3, serialized).Bind(4, ToSql(now_ms));
  return stmt.Run();
}

// Reads one sealed column by key and opens it.
Result<std::optional<crypto::SecretBytes>> LoadSealed(StoreState& state, std::string_view sql,
                                                      std::string_view ad, auto bind) {
  SOTTO_ASSIGN_OR_RETURN(Statement stmt, state.db->Prepare(sql));
  bind(stmt);
  SOTTO_ASSIGN_OR_RETURN(const bool row, stmt.Step());
  if (!row) return std::optional<crypto::SecretBytes>();
  SOTTO_ASSIGN_OR_RETURN(crypto::SecretBytes opened, state.sealer.Open(stmt.Blob(0), ad));
  return std::optional<crypto::SecretBytes>(std::move(opened));
}

// Seals `plaintext` and runs `sql` with the sealed blob bound at `sealed_index`.
Status StoreSealed(StoreState& state, std::string_view sql, ByteSpan plaintext, std::string_view ad,
                   int sealed_index, auto bind) {
  SOTTO_ASSIGN_OR_RETURN(const Bytes sealed, state.sealer.Seal(plaintext, ad));
  SOTTO_ASSIGN_OR_RETURN(Statement stmt, state.db->Prepare(sql));
  bind(stmt);
  stmt.BindBlob(sealed_index, sealed);
  return stmt.Run();
}

Status RunWithId(StoreState& state, std::string_view sql, uint32_t id) {
  SOTTO_ASSIGN_OR_RETURN(Statement stmt, state.db->Prepare(sql));
  stmt.Bind(1, int64_t{id});
  return stmt.Run();
}

}  // namespace

std::string_view TickName(Tick tick) {
  switch (tick) {
    case Tick::kPending:
      return "pending";
    case Tick::kSent:
      return "sent";
    case Tick::kDelivered:
      return "delivered";
    case Tick::kRead:
      return "read";
    case Tick::kBlocked:
      return "blocked";
  }
  return "unknown";
}

// --- Opening and transactions ------------------------------------------------------------

Result<std::unique_ptr<LocalStore>> LocalStore::Open(const std::filesystem::path& home,
                                                     crypto::Random& random) {
  SOTTO_ASSIGN_OR_RETURN(internal::PreparedHome prepared, internal::PrepareHome(home, random));
  SOTTO_ASSIGN_OR_RETURN(std::unique_ptr<internal::Database> db,
                         internal::Database::Open(prepared.database));
  SOTTO_RETURN_IF_ERROR(internal::ConfigureConnection(*db));
  SOTTO_ASSIGN_OR_RETURN(const int version, internal::Migrate(*db));
  auto impl = std::make_unique<Impl>(Impl{{
      .lock = std::move(prepared.lock),
      .db = std::move(db),
      .sealer = internal::Sealer(std::move(prepared.storage_key), random),
      .schema_version = version,
      .transactions = {},
  }});
  return std::unique_ptr<LocalStore>(new LocalStore(std::move(impl)));
}

LocalStore::LocalStore(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
LocalStore::~LocalStore() = default;

int LocalStore::schema_version() const { return impl_->schema_version; }

LocalStore::Transaction::Transaction(LocalStore& store, Durability durability) : store_(&store) {
  BeginTransaction(*store_->impl_, durability);
}

LocalStore::Transaction::~Transaction() {
  if (!done_) (void)EndTransaction(*store_->impl_, TxEnd::kRollback);
}

Status LocalStore::Transaction::Commit() {
  if (done_) {
    return StoreError(Code::kFailedPrecondition, StoreErr::kSql, "the transaction has ended");
  }
  done_ = true;
  return EndTransaction(*store_->impl_, TxEnd::kCommit);
}

// --- Account and settings ----------------------------------------------------------------

Result<std::optional<LocalAccount>> LocalStore::LoadAccount() {
  SOTTO_ASSIGN_OR_RETURN(
      Statement stmt,
      impl_->db->Prepare("SELECT " + std::string(kAccountColumns) + " FROM account WHERE id = 1"));
  SOTTO_ASSIGN_OR_RETURN(const bool row, stmt.Step());
  if (!row) return std::optional<LocalAccount>();
  LocalAccount account;
  account.handle = stmt.Text(0);
  account.server = stmt.Text(1);
  if (!stmt.IsNull(2)) {
    const ByteSpan key = stmt.Blob(2);
    if (key.size() != crypto::kX25519KeySize) return Corrupt("the pinned server key is corrupt");
    account.server_key.emplace();
    std::copy(key.begin(), key.end(), account.server_key->begin());
  }
  SOTTO_ASSIGN_OR_RETURN(const crypto::SecretBytes secrets,
                         impl_->sealer.Open(stmt.Blob(3), AccountAd()));
  SOTTO_ASSIGN_OR_RETURN(internal::AccountSecrets decoded,
                         internal::DecodeAccountSecrets(secrets.span()));
  account.noise_static = std::move(decoded.noise_static);
  account.identity = std::move(decoded.identity);
  account.registration_id = static_cast<uint32_t>(stmt.Int(4));
  const ByteSpan account_id = stmt.Blob(5);
  account.account_id.assign(account_id.begin(), account_id.end());
  account.device_id = static_cast<uint32_t>(stmt.Int(6));
  account.next_prekey_id = static_cast<uint32_t>(stmt.Int(7));
  account.signed_prekey_id = static_cast<uint32_t>(stmt.Int(8));
  account.signed_prekey_ms = FromSql(stmt.Int(9));
  return std::optional<LocalAccount>(std::move(account));
}

Status LocalStore::SaveAccount(const LocalAccount& account) {
  const crypto::SecretBytes secrets =
      internal::EncodeAccountSecrets(account.noise_static, account.identity);
  SOTTO_ASSIGN_OR_RETURN(const Bytes sealed, impl_->sealer.Seal(secrets.span(), AccountAd()));
  SOTTO_ASSIGN_OR_RETURN(
      Statement stmt,
      impl_->db->Prepare("INSERT OR REPLACE INTO account (id, " + std::string(kAccountColumns) +
                         ") VALUES (1, ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"));
  stmt.Bind(1, account.handle).Bind(2, account.server);
  if (account.server_key) {
    stmt.BindBlob(3, *account.server_key);
  } else {
    stmt.BindNull(3);
  }
  stmt.BindBlob(4, sealed).Bind(5, int64_t{account.registration_id});
  stmt.BindBlob(6, account.account_id).Bind(7, int64_t{account.device_id});
  stmt.Bind(8, int64_t{account.next_prekey_id}).Bind(9, int64_t{account.signed_prekey_id});
  stmt.Bind(10, ToSql(account.signed_prekey_ms));
  return stmt.Run();
}

Result<std::optional<std::string>> LocalStore::GetSetting(std::string_view key) {
  SOTTO_ASSIGN_OR_RETURN(Statement stmt, impl_->db->Prepare("SELECT v FROM settings WHERE k = ?1"));
  stmt.Bind(1, key);
  SOTTO_ASSIGN_OR_RETURN(const bool row, stmt.Step());
  if (!row) return std::optional<std::string>();
  return std::optional<std::string>(stmt.Text(0));
}

Status LocalStore::PutSetting(std::string_view key, std::string_view value) {
  SOTTO_ASSIGN_OR_RETURN(Statement stmt,
                         impl_->db->Prepare("INSERT INTO settings (k, v) VALUES (?1, ?2) "
                                            "ON CONFLICT (k) DO UPDATE SET v = excluded.v"));
  stmt.Bind(1, key).Bind(2, value);
  return stmt.Run();
}

// --- Identity key store ------------------------------------------------------------------

Result<signal::IdentityKeyPair> LocalStore::GetIdentityKeyPair() {
  SOTTO_ASSIGN_OR_RETURN(std::optional<LocalAccount> account, LoadAccount());
  if (!account) {
    return StoreError(Code::kFailedPrecondition, StoreErr::kNoAccount, "no account yet");
  }
  return std::move(account->identity);
}

Result<uint32_t> LocalStore::GetLocalRegistrationId() {
  SOTTO_ASSIGN_OR_RETURN(Statement stmt,
                         impl_->db->Prepare("SELECT registration_id FROM account WHERE id = 1"));
  SOTTO_ASSIGN_OR_RETURN(const bool row, stmt.Step());
  if (!row) return StoreError(Code::kFailedPrecondition, StoreErr::kNoAccount, "no account yet");
  return static_cast<uint32_t>(stmt.Int(0));
}

Result<signal::IdentityChange> LocalStore::SaveIdentity(const signal::ProtocolAddress& address,
                                                        const signal::IdentityKey& key) {
  Transaction tx(*this);
  SOTTO_ASSIGN_OR_RETURN(const std::optional<IdentityInfo> known, ReadIdentity(*impl_, address));
  if (known && known->key == key) return signal::IdentityChange::kUnchanged;
  if (known) {
    // Never replaced by itself: the user accepts the new key (AcceptIdentity).
    SOTTO_RETURN_IF_ERROR(WritePending(*impl_, address, key, NowMs()));
  } else {
    SOTTO_ASSIGN_OR_RETURN(Statement stmt,
                           impl_->db->Prepare("INSERT INTO identities (name, device_id, key) "
                                              "VALUES (?1, ?2, ?3)"));
    const signal::SerializedPublicKey serialized = key.Serialize();
    stmt.Bind(1, address.name).Bind(2, int64_t{address.device_id}).BindBlob(3, serialized);
    SOTTO_RETURN_IF_ERROR(stmt.Run());
  }
  SOTTO_RETURN_IF_ERROR(tx.Commit());
  return known ? signal::IdentityChange::kReplacedExisting : signal::IdentityChange::kNew;
}

Result<bool> LocalStore::IsTrustedIdentity(const signal::ProtocolAddress& address,
                                           const signal::IdentityKey& key,
                                           signal::Direction direction) {
  switch (direction) {
    case signal::Direction::kReceiving:
      // Messages from a changed key are accepted and flagged untrusted by the SDK.
      return true;
    case signal::Direction::kSending: {
      SOTTO_ASSIGN_OR_RETURN(const std::optional<IdentityInfo> known,
                             ReadIdentity(*impl_, address));
      // A pending key means the contact re-registered: the accepted key's session is dead
      // too, so nothing is sent until the user accepts the new key.
      return !known || (known->key == key && !known->pending);
    }
  }
  return false;
}

Result<std::optional<signal::IdentityKey>> LocalStore::GetIdentity(
    const signal::ProtocolAddress& address) {
  SOTTO_ASSIGN_OR_RETURN(const std::optional<IdentityInfo> known, ReadIdentity(*impl_, address));
  if (!known) return std::optional<signal::IdentityKey>();
  return std::optional<signal::IdentityKey>(known->key);
}

// --- Prekeys and signed prekeys ----------------------------------------------------------

Result<std::optional<signal::PreKeyRecord>> LocalStore::LoadPreKey(uint32_t id) {
  SOTTO_ASSIGN_OR_RETURN(
      const std::optional<crypto::SecretBytes> opened,
      LoadSealed(*impl_, "SELECT record FROM prekeys WHERE id = ?1", PreKeyAd(id),
                 [id](Statement& stmt) { stmt.Bind(1, int64_t{id}); }));
  if (!opened) return std::optional<signal::PreKeyRecord>();
  SOTTO_ASSIGN_OR_RETURN(signal::PreKeyRecord record, internal::DecodePreKey(opened->span()));
  if (record.id != id) return Corrupt("a prekey record is stored under another id");
  return std::optional<signal::PreKeyRecord>(std::move(record));
}

Status LocalStore::StorePreKey(const signal::PreKeyRecord& record) {
  const crypto::SecretBytes encoded = internal::EncodePreKey(record);
  return StoreSealed(*impl_, "INSERT OR REPLACE INTO prekeys (id, record) VALUES (?1, ?2)",
                     encoded.span(), PreKeyAd(record.id), 2,
                     [&](Statement& stmt) { stmt.Bind(1, int64_t{record.id}); });
}

Status LocalStore::RemovePreKey(uint32_t id) {
  return RunWithId(*impl_, "DELETE FROM prekeys WHERE id = ?1", id);
}

Result<uint32_t> LocalStore::CountPreKeys() {
  SOTTO_ASSIGN_OR_RETURN(const int64_t count, impl_->db->QueryInt("SELECT count(*) FROM prekeys"));
  return static_cast<uint32_t>(count);
}

Result<std::optional<signal::SignedPreKeyRecord>> LocalStore::LoadSignedPreKey(uint32_t id) {
  SOTTO_ASSIGN_OR_RETURN(
      const std::optional<crypto::SecretBytes> opened,
      LoadSealed(*impl_, "SELECT record FROM signed_prekeys WHERE id = ?1", SignedPreKeyAd(id),
                 [id](Statement& stmt) { stmt.Bind(1, int64_t{id}); }));
  if (!opened) return std::optional<signal::SignedPreKeyRecord>();
  SOTTO_ASSIGN_OR_RETURN(signal::SignedPreKeyRecord record,
                         internal::DecodeSignedPreKey(opened->span()));
  if (record.id != id) return Corrupt("a signed prekey record is stored under another id");
  return std::optional<signal::SignedPreKeyRecord>(std::move(record));
}

Status LocalStore::StoreSignedPreKey(const signal::SignedPreKeyRecord& record) {
  const crypto::SecretBytes encoded = internal::EncodeSignedPreKey(record);
  return StoreSealed(
      *impl_,
      "INSERT OR REPLACE INTO signed_prekeys (id, timestamp_ms, record) VALUES (?1, ?2, ?3)",
      encoded.span(), SignedPreKeyAd(record.id), 3, [&](Statement& stmt) {
        stmt.Bind(1, int64_t{record.id}).Bind(2, ToSql(record.timestamp_ms));
      });
}

Status LocalStore::RemoveSignedPreKey(uint32_t id) {
  return RunWithId(*impl_, "DELETE FROM signed_prekeys WHERE id = ?1", id);
}

Result<std::vector<uint32_t>> LocalStore::ListSignedPreKeys() {
  SOTTO_ASSIGN_OR_RETURN(
      Statement stmt,
      impl_->db->Prepare("SELECT id FROM signed_prekeys ORDER BY timestamp_ms, id"));
  std::vector<uint32_t> ids;
  for (;;) {
    SOTTO_ASSIGN_OR_RETURN(const bool row, stmt.Step());
    if (!row) return ids;
    ids.push_back(static_cast<uint32_t>(stmt.Int(0)));
  }
}

// --- Sessions and sender keys ------------------------------------------------------------

Result<std::optional<signal::SessionRecord>> LocalStore::LoadSession(
    const signal::ProtocolAddress& address) {
  SOTTO_ASSIGN_OR_RETURN(
      const std::optional<crypto::SecretBytes> opened,
      LoadSealed(*impl_, "SELECT record FROM sessions WHERE name = ?1 AND device_id = ?2",
                 SessionAd(address), [&](Statement& stmt) {
                   stmt.Bind(1, address.name).Bind(2, int64_t{address.device_id});
                 }));
  if (!opened) return std::optional<signal::SessionRecord>();
  auto record = signal::SessionRecord::Deserialize(opened->span());
  if (!record) return Corrupt("a session record does not parse");
  return std::optional<signal::SessionRecord>(std::move(*record));
}

Status LocalStore::StoreSession(const signal::ProtocolAddress& address,
                                const signal::SessionRecord& record) {
  Bytes serialized = record.Serialize();
  Status stored = StoreSealed(
      *impl_, "INSERT OR REPLACE INTO sessions (name, device_id, record) VALUES (?1, ?2, ?3)",
      serialized, SessionAd(address), 3,
      [&](Statement& stmt) { stmt.Bind(1, address.name).Bind(2, int64_t{address.device_id}); });
  crypto::SecureWipe(serialized);
  return stored;
}

Status LocalStore::DeleteSession(const signal::ProtocolAddress& address) {
  SOTTO_ASSIGN_OR_RETURN(
      Statement stmt,
      impl_->db->Prepare("DELETE FROM sessions WHERE name = ?1 AND device_id = ?2"));
  stmt.Bind(1, address.name).Bind(2, int64_t{address.device_id});
  return stmt.Run();
}

Result<std::vector<uint32_t>> LocalStore::GetDeviceSessions(std::string_view name) {
  SOTTO_ASSIGN_OR_RETURN(
      Statement stmt,
      impl_->db->Prepare("SELECT device_id FROM sessions WHERE name = ?1 ORDER BY device_id"));
  stmt.Bind(1, name);
  std::vector<uint32_t> devices;
  for (;;) {
    SOTTO_ASSIGN_OR_RETURN(const bool row, stmt.Step());
    if (!row) return devices;
    devices.push_back(static_cast<uint32_t>(stmt.Int(0)));
  }
}

Result<std::optional<signal::SenderKeyRecord>> LocalStore::LoadSenderKey(
    const signal::SenderKeyName& name) {
  SOTTO_ASSIGN_OR_RETURN(const std::optional<crypto::SecretBytes> opened,
                         LoadSealed(*impl_,
                                    "SELECT record FROM sender_keys "
                                    "WHERE group_id = ?1 AND name = ?2 AND device_id = ?3",
                                    SenderKeyAd(name), [&](Statement& stmt) {
                                      stmt.Bind(1, name.group_id).Bind(2, name.sender.name);
                                      stmt.Bind(3, int64_t{name.sender.device_id});
                                    }));
  if (!opened) return std::optional<signal::SenderKeyRecord>();
  auto record = signal::SenderKeyRecord::Deserialize(opened->span());
  if (!record) return Corrupt("a sender key record does not parse");
  return std::optional<signal::SenderKeyRecord>(std::move(*record));
}

Status LocalStore::StoreSenderKey(const signal::SenderKeyName& name,
                                  const signal::SenderKeyRecord& record) {
  Bytes serialized = record.Serialize();
  Status stored = StoreSealed(*impl_,
                              "INSERT OR REPLACE INTO sender_keys (group_id, name, device_id, "
                              "record) VALUES (?1, ?2, ?3, ?4)",
                              serialized, SenderKeyAd(name), 4, [&](Statement& stmt) {
                                stmt.Bind(1, name.group_id).Bind(2, name.sender.name);
                                stmt.Bind(3, int64_t{name.sender.device_id});
                              });
  crypto::SecureWipe(serialized);
  return stored;
}

// --- Identity trust ----------------------------------------------------------------------

Result<std::optional<IdentityInfo>> LocalStore::GetIdentityInfo(
    const signal::ProtocolAddress& address) {
  return ReadIdentity(*impl_, address);
}

Status LocalStore::RecordPendingIdentity(const signal::ProtocolAddress& address,
                                         const signal::IdentityKey& key, uint64_t now_ms) {
  Transaction tx(*this);
  SOTTO_ASSIGN_OR_RETURN(const std::optional<IdentityInfo> known, ReadIdentity(*impl_, address));
  if (!known || known->key == key) return Ok();
  SOTTO_RETURN_IF_ERROR(WritePending(*impl_, address, key, now_ms));
  return tx.Commit();
}

Result<std::vector<signal::ProtocolAddress>> LocalStore::PendingIdentities(std::string_view name) {
  SOTTO_ASSIGN_OR_RETURN(Statement stmt,
                         impl_->db->Prepare("SELECT device_id FROM identities WHERE name = ?1 "
                                            "AND pending_key IS NOT NULL ORDER BY device_id"));
  stmt.Bind(1, name);
  std::vector<signal::ProtocolAddress> addresses;
  for (;;) {
    SOTTO_ASSIGN_OR_RETURN(const bool row, stmt.Step());
    if (!row) return addresses;
    addresses.push_back({std::string(name), static_cast<uint32_t>(stmt.Int(0))});
  }
}

Status LocalStore::AcceptIdentity(const signal::ProtocolAddress& address) {
  SOTTO_ASSIGN_OR_RETURN(
      Statement stmt,
      impl_->db->Prepare("UPDATE identities SET key = pending_key, pending_key = NULL, "
                         "verified = 0 WHERE name = ?1 AND device_id = ?2 "
                         "AND pending_key IS NOT NULL"));
  stmt.Bind(1, address.name).Bind(2, int64_t{address.device_id});
  SOTTO_RETURN_IF_ERROR(stmt.Run());
  if (impl_->db->changes() == 0) {
    return StoreError(Code::kNotFound, StoreErr::kNotFound, "no pending identity key");
  }
  return Ok();
}

Status LocalStore::SetVerified(std::string_view name, Verification verification) {
  SOTTO_ASSIGN_OR_RETURN(Statement stmt,
                         impl_->db->Prepare("UPDATE identities SET verified = ?2 WHERE name = ?1"));
  stmt.Bind(1, name).Bind(2, int64_t{verification == Verification::kVerified ? 1 : 0});
  SOTTO_RETURN_IF_ERROR(stmt.Run());
  if (impl_->db->changes() == 0) {
    return StoreError(Code::kNotFound, StoreErr::kNotFound, "no identity key for this account");
  }
  return Ok();
}

}  // namespace sotto::client
