#include "client/internal/schema.h"

#include <string>

namespace sotto::client::internal {
namespace {

// Version 1: the initial schema. Integers that are uint64 in C++ (milliseconds) are
// stored as their int64 bit pattern. Sealed columns are marked; see docs/client-store.md.
constexpr char kSchemaV1[] = R"sql(
CREATE TABLE account (
  id               INTEGER PRIMARY KEY CHECK (id = 1),
  handle           TEXT NOT NULL,
  server           TEXT NOT NULL,
  server_key       BLOB,
  secrets          BLOB NOT NULL,  -- sealed: noise private key, identity key pair
  registration_id  INTEGER NOT NULL,
  account_id       BLOB NOT NULL,
  device_id        INTEGER NOT NULL,
  next_prekey_id   INTEGER NOT NULL,
  signed_prekey_id INTEGER NOT NULL,
  signed_prekey_ms INTEGER NOT NULL
) STRICT;

CREATE TABLE settings (
  k TEXT PRIMARY KEY,
  v TEXT NOT NULL
) STRICT, WITHOUT ROWID;

CREATE TABLE identities (
  name        TEXT NOT NULL,
  device_id   INTEGER NOT NULL,
  key         BLOB NOT NULL,
  verified    INTEGER NOT NULL DEFAULT 0,
  pending_key BLOB,
  changed_ms  INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (name, device_id)
) STRICT, WITHOUT ROWID;

CREATE TABLE prekeys (
  id     INTEGER PRIMARY KEY,
  record BLOB NOT NULL  -- sealed
) STRICT;

CREATE TABLE signed_prekeys (
  id           INTEGER PRIMARY KEY,
  timestamp_ms INTEGER NOT NULL,
  record       BLOB NOT NULL  -- sealed
) STRICT;

CREATE TABLE sessions (
  name      TEXT NOT NULL,
  device_id INTEGER NOT NULL,
  record    BLOB NOT NULL,  -- sealed
  PRIMARY KEY (name, device_id)
) STRICT, WITHOUT ROWID;

CREATE TABLE sender_keys (
  group_id  TEXT NOT NULL,
  name      TEXT NOT NULL,
  device_id INTEGER NOT NULL,
  record    BLOB NOT NULL,  -- sealed
  PRIMARY KEY (group_id, name, device_id)
) STRICT, WITHOUT ROWID;

CREATE TABLE contacts (
  handle     TEXT PRIMARY KEY,
  account_id TEXT UNIQUE,  -- NULL while unknown
  name       TEXT NOT NULL,
  added_ms   INTEGER NOT NULL
) STRICT;

CREATE TABLE messages (
  id          INTEGER PRIMARY KEY,
  message_id  TEXT NOT NULL,
  peer        TEXT NOT NULL,
  direction   INTEGER NOT NULL CHECK (direction IN (0, 1)),
  peer_device INTEGER NOT NULL,
  body        TEXT NOT NULL,
  sent_ms     INTEGER NOT NULL,
  stored_ms   INTEGER NOT NULL,
  tick        INTEGER NOT NULL CHECK (tick BETWEEN 0 AND 4),
  untrusted   INTEGER NOT NULL DEFAULT 0,
  UNIQUE (peer, direction, message_id)
) STRICT;
CREATE INDEX messages_by_peer ON messages (peer, id);

CREATE VIRTUAL TABLE messages_fts USING fts5(
  body, content = 'messages', content_rowid = 'id',
  tokenize = 'unicode61 remove_diacritics 2');
CREATE TRIGGER messages_fts_insert AFTER INSERT ON messages BEGIN
  INSERT INTO messages_fts (rowid, body) VALUES (new.id, new.body);
END;
CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages BEGIN
  INSERT INTO messages_fts (messages_fts, rowid, body) VALUES ('delete', old.id, old.body);
END;
CREATE TRIGGER messages_fts_update AFTER UPDATE OF body ON messages BEGIN
  INSERT INTO messages_fts (messages_fts, rowid, body) VALUES ('delete', old.id, old.body);
  INSERT INTO messages_fts (rowid, body) VALUES (new.id, new.body);
END;

CREATE TABLE received (
  source      TEXT NOT NULL,
  message_id  TEXT NOT NULL,
  received_ms INTEGER NOT NULL,
  PRIMARY KEY (source, message_id)
) STRICT, WITHOUT ROWID;
CREATE INDEX received_by_time ON received (received_ms);

CREATE TABLE outbox (
  id              INTEGER PRIMARY KEY,
  message_id      TEXT NOT NULL UNIQUE,
  recipient       TEXT NOT NULL,
  content         BLOB NOT NULL,  -- sealed
  online_only     INTEGER NOT NULL,
  attempts        INTEGER NOT NULL,
  next_attempt_ms INTEGER NOT NULL,
  blocked         INTEGER NOT NULL
) STRICT;
CREATE INDEX outbox_by_recipient ON outbox (recipient);
)sql";

// Version 2: groups (issue 6). A group's messages live in `messages` with peer = the group
// id (hex); group_messages names the author of each. Our own sender key's holders, the
// rotate flag and per-member receipts of our group messages. See docs/client-store.md.
constexpr char kSchemaGroups[] = R"sql(
CREATE TABLE groups (
  group_id    TEXT PRIMARY KEY,   -- hex of the server's 16-byte id
  name        TEXT NOT NULL,      -- end to end between members, never sent to the server
  description TEXT NOT NULL,
  version     INTEGER NOT NULL,   -- the server's membership version last applied
  member      INTEGER NOT NULL,   -- 1 while this account is a member
  rotate      INTEGER NOT NULL,   -- 1: rotate our sender key before the next group send
  created_ms  INTEGER NOT NULL
) STRICT;

CREATE TABLE group_members (
  group_id TEXT NOT NULL REFERENCES groups (group_id) ON DELETE CASCADE,
  account  TEXT NOT NULL,          -- account id hex
  admin    INTEGER NOT NULL,
  PRIMARY KEY (group_id, account)
) STRICT, WITHOUT ROWID;

-- Member devices that hold our current sender key for the group (cleared on rotation).
CREATE TABLE group_key_holders (
  group_id        TEXT NOT NULL,
  account         TEXT NOT NULL,
  device_id       INTEGER NOT NULL,
  registration_id INTEGER NOT NULL,
  PRIMARY KEY (group_id, account, device_id)
) STRICT, WITHOUT ROWID;

-- The author of each group message (its messages row has peer = the group id).
CREATE TABLE group_messages (
  message_rowid INTEGER PRIMARY KEY REFERENCES messages (id) ON DELETE CASCADE,
  group_id      TEXT NOT NULL,
  sender        TEXT NOT NULL      -- account id hex (ours for outgoing)
) STRICT;

-- Our group messages, one row per member they were sent to.
CREATE TABLE group_receipts (
  message_id   TEXT NOT NULL,
  member       TEXT NOT NULL,
  group_id     TEXT NOT NULL,
  delivered_ms INTEGER NOT NULL,   -- 0: not yet
  read_ms      INTEGER NOT NULL,
  PRIMARY KEY (message_id, member)
) STRICT, WITHOUT ROWID;
)sql";

struct Migration {
  int version;      // the user_version after this step
  const char* sql;  // runs in one transaction with the version bump
};

// Append only: a released entry never changes, since databases in the field ran it.
constexpr Migration kMigrations[] = {
    {1, kSchemaV1},
    {2, kSchemaGroups},
};
static_assert(std::size(kMigrations) == static_cast<size_t>(kSchemaVersion),
              "one migration per schema version");

Status Apply(Database& db, const Migration& migration) {
  SOTTO_RETURN_IF_ERROR(db.Exec("BEGIN IMMEDIATE"));
  Status applied = db.Exec(migration.sql);
  if (applied) applied = db.Exec("PRAGMA user_version = " + std::to_string(migration.version));
  if (applied) applied = db.Exec("COMMIT");
  if (!applied) {
    (void)db.Exec("ROLLBACK");
    return StoreError(Code::kInternal, StoreErr::kSchema, "a schema migration failed");
  }
  return Ok();
}

}  // namespace

Status ConfigureConnection(Database& db) {
  SOTTO_ASSIGN_OR_RETURN(const std::string mode, db.QueryText("PRAGMA journal_mode = WAL"));
  if (mode != "wal") {
    return StoreError(Code::kInternal, StoreErr::kOpen, "the database refused WAL mode");
  }
  return db.Exec(
      "PRAGMA synchronous = FULL;"
      "PRAGMA foreign_keys = ON;"
      "PRAGMA busy_timeout = 5000;");
}

Result<int> Migrate(Database& db) {
  SOTTO_ASSIGN_OR_RETURN(const int64_t current, db.QueryInt("PRAGMA user_version"));
  if (current > kSchemaVersion) {
    return StoreError(Code::kFailedPrecondition, StoreErr::kSchema,
                      "database is newer than this program");
  }
  if (current < 0) {
    return StoreError(Code::kDataLoss, StoreErr::kSchema, "the database has a bad user_version");
  }
  for (const Migration& migration : kMigrations) {
    if (migration.version > current) SOTTO_RETURN_IF_ERROR(Apply(db, migration));
  }
  return kSchemaVersion;
}

}  // namespace sotto::client::internal
