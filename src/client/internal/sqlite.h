// A small RAII layer over the SQLite C API for the client's local store: one connection,
// prepared statements cached by their SQL text, and errors mapped to StoreErr.
//
// Thread-safety: externally synchronized (like the LocalStore that owns the Database).
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "base/bytes.h"
#include "base/result.h"
#include "client/local_store.h"

namespace sotto::client::internal {

inline tl::unexpected<Error> StoreError(Code code, StoreErr detail, const char* message) {
  return MakeError(code, Module::kClient, static_cast<uint16_t>(detail), message);
}

// Maps a failed SQLite result code: constraint -> kAlreadyExists, corrupt -> kCorrupt
// (kDataLoss), busy/locked -> kBusy, full -> kResourceExhausted, else kSql (kInternal).
tl::unexpected<Error> SqliteError(int rc);

class Database;

// A prepared statement borrowed from the Database's cache (or owned, when the cached one
// is already in use by an enclosing call). Binding errors are kept and reported by the
// next Step()/Run(); destruction resets the statement and clears its bindings so no
// bound value outlives the call. Columns and parameters are 0-based and 1-based, as in
// SQLite.
class Statement {
 public:
  Statement(Statement&& other) noexcept;
  Statement& operator=(Statement&&) = delete;
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;
  ~Statement();

  Statement& Bind(int index, int64_t value);
  Statement& Bind(int index, std::string_view text);
  Statement& BindBlob(int index, ByteSpan blob);
  Statement& BindNull(int index);

  // Advances: true when a row is available, false when done.
  Result<bool> Step();
  // Steps to completion, expecting no rows (INSERT/UPDATE/DELETE).
  Status Run();

  bool IsNull(int column) const;
  int64_t Int(int column) const;
  std::string Text(int column) const;
  // Valid until the next Step() or the statement's destruction.
  ByteSpan Blob(int column) const;

 private:
  friend class Database;
  Statement(sqlite3_stmt* stmt, bool* in_use);

  sqlite3_stmt* stmt_;
  bool* in_use_;  // the cache entry's flag; null for an owned statement
  int bind_error_ = SQLITE_OK;
};

class Database {
 public:
  // Opens (creating if absent) the database at `path`.
  static Result<std::unique_ptr<Database>> Open(const std::filesystem::path& path);
  ~Database();
  Database(const Database&) = delete;
  Database& operator=(const Database&) = delete;

  // Runs one or more statements without parameters or results (schema, PRAGMAs).
  Status Exec(const std::string& sql);
  // A statement for `sql`, prepared once and cached for the connection's life.
  Result<Statement> Prepare(std::string_view sql);
  // Runs a PRAGMA or query that returns one integer (or text, for journal_mode).
  Result<int64_t> QueryInt(std::string_view sql);
  Result<std::string> QueryText(std::string_view sql);

  int64_t last_insert_rowid() const { return sqlite3_last_insert_rowid(db_); }
  int64_t changes() const { return sqlite3_changes64(db_); }
  bool in_transaction() const { return sqlite3_get_autocommit(db_) == 0; }

 private:
  explicit Database(sqlite3* db) : db_(db) {}

  struct Cached {
    sqlite3_stmt* stmt = nullptr;
    bool in_use = false;
  };
  sqlite3* db_;
  // Node-based: Statement keeps a pointer to an entry's in_use flag.
  std::unordered_map<std::string, Cached> cache_;
};

}  // namespace sotto::client::internal
