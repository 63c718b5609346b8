// The local store's schema as an ordered list of migrations keyed by PRAGMA user_version.
// Adding schema version N is one entry in kMigrations (schema.cc) and kSchemaVersion = N
// in local_store.h. Tables and the migration rule: docs/client-store.md.
//
// Thread-safety: functions only; the Database is externally synchronized.
#pragma once

#include "base/result.h"
#include "client/internal/sqlite.h"

namespace sotto::client::internal {

// Sets the connection's PRAGMAs (WAL, synchronous=FULL, foreign keys, busy timeout).
Status ConfigureConnection(Database& db);

// Applies every migration above the database's user_version, each in its own IMMEDIATE
// transaction together with its user_version bump. Returns the resulting version.
// kSchema if the database is newer than this program or a migration fails.
Result<int> Migrate(Database& db);

}  // namespace sotto::client::internal
