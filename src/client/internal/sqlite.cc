#include "client/internal/sqlite.h"

#include <limits>
#include <utility>

namespace sotto::client::internal {

tl::unexpected<Error> SqliteError(int rc) {
  switch (rc & 0xff) {
    case SQLITE_CONSTRAINT:
      return StoreError(Code::kAlreadyExists, StoreErr::kSql, "a constraint failed");
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
      return StoreError(Code::kDataLoss, StoreErr::kCorrupt, "the database file is corrupt");
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return StoreError(Code::kFailedPrecondition, StoreErr::kBusy, "the database is locked");
    case SQLITE_FULL:
      return StoreError(Code::kResourceExhausted, StoreErr::kSql, "the disk is full");
    case SQLITE_IOERR:
      return StoreError(Code::kInternal, StoreErr::kSql, "database I/O error");
    default:
      return StoreError(Code::kInternal, StoreErr::kSql, "a database statement failed");
  }
}

Statement::Statement(sqlite3_stmt* stmt, bool* in_use) : stmt_(stmt), in_use_(in_use) {
  if (in_use_ != nullptr) *in_use_ = true;
}

Statement::Statement(Statement&& other) noexcept
    : stmt_(std::exchange(other.stmt_, nullptr)),
      in_use_(std::exchange(other.in_use_, nullptr)),
      bind_error_(other.bind_error_) {}

Statement::~Statement() {
  if (stmt_ == nullptr) return;
  if (in_use_ != nullptr) {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
    *in_use_ = false;
  } else {
    sqlite3_finalize(stmt_);
  }
}

Statement& Statement::Bind(int index, int64_t value) {
  const int rc = sqlite3_bind_int64(stmt_, index, value);
  if (bind_error_ == SQLITE_OK) bind_error_ = rc;
  return *this;
}

Statement& Statement::Bind(int index, std::string_view text) {
  // SQLITE_TRANSIENT: SQLite copies, so the caller's buffer may go away before Step().
  const int rc = text.size() > static_cast<size_t>(std::numeric_limits<int>::max())
                     ? SQLITE_TOOBIG
                     : sqlite3_bind_text(stmt_, index, text.data(), static_cast<int>(text.size()),
                                         SQLITE_TRANSIENT);
  if (bind_error_ == SQLITE_OK) bind_error_ = rc;
  return *this;
}

Statement& Statement::BindBlob(int index, ByteSpan blob) {
  // A zero-length blob with a null pointer would bind NULL; zeroblob keeps it a blob.
  int rc;
  if (blob.empty()) {
    rc = sqlite3_bind_zeroblob(stmt_, index, 0);
  } else if (blob.size() > static_cast<size_t>(std::numeric_limits<int>::max())) {
    rc = SQLITE_TOOBIG;
  } else {
    rc = sqlite3_bind_blob(stmt_, index, blob.data(), static_cast<int>(blob.size()),
                           SQLITE_TRANSIENT);
  }
  if (bind_error_ == SQLITE_OK) bind_error_ = rc;
  return *this;
}

Statement& Statement::BindNull(int index) {
  const int rc = sqlite3_bind_null(stmt_, index);
  if (bind_error_ == SQLITE_OK) bind_error_ = rc;
  return *this;
}

Result<bool> Statement::Step() {
  if (bind_error_ != SQLITE_OK) return SqliteError(bind_error_);
  const int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  return SqliteError(rc);
}

Status Statement::Run() {
  for (;;) {
    SOTTO_ASSIGN_OR_RETURN(const bool row, Step());
    if (!row) return Ok();
  }
}

bool Statement::IsNull(int column) const {
  return sqlite3_column_type(stmt_, column) == SQLITE_NULL;
}

int64_t Statement::Int(int column) const { return sqlite3_column_int64(stmt_, column); }

std::string Statement::Text(int column) const {
  const unsigned char* text = sqlite3_column_text(stmt_, column);
  const int size = sqlite3_column_bytes(stmt_, column);
  if (text == nullptr || size <= 0) return {};
  return {reinterpret_cast<const char*>(text), static_cast<size_t>(size)};
}

ByteSpan Statement::Blob(int column) const {
  const void* blob = sqlite3_column_blob(stmt_, column);
  const int size = sqlite3_column_bytes(stmt_, column);
  if (blob == nullptr || size <= 0) return {};
  return {static_cast<const uint8_t*>(blob), static_cast<size_t>(size)};
}

Result<std::unique_ptr<Database>> Database::Open(const std::filesystem::path& path) {
  sqlite3* db = nullptr;
  const int rc = sqlite3_open_v2(
      path.c_str(), &db,
      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE,
      nullptr);
  if (rc != SQLITE_OK) {
    sqlite3_close(db);  // SQLite may allocate a handle even on failure.
    return StoreError(Code::kFailedPrecondition, StoreErr::kOpen, "cannot open the database");
  }
  return std::unique_ptr<Database>(new Database(db));
}

Database::~Database() {
  for (auto& [sql, cached] : cache_) sqlite3_finalize(cached.stmt);
  sqlite3_close(db_);
}

Status Database::Exec(const std::string& sql) {
  const int rc = sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, nullptr);
  if (rc != SQLITE_OK) return SqliteError(rc);
  return Ok();
}

Result<Statement> Database::Prepare(std::string_view sql) {
  auto it = cache_.find(std::string(sql));
  if (it != cache_.end() && !it->second.in_use)
    return Statement(it->second.stmt, &it->second.in_use);

  sqlite3_stmt* stmt = nullptr;
  const int rc =
      sqlite3_prepare_v3(db_, sql.data(), static_cast<int>(sql.size()),
                         it == cache_.end() ? SQLITE_PREPARE_PERSISTENT : 0, &stmt, nullptr);
  if (rc != SQLITE_OK) {
    sqlite3_finalize(stmt);
    return SqliteError(rc);
  }
  // Re-entrant use of a statement already in use gets a private, finalized-on-drop copy.
  if (it != cache_.end()) return Statement(stmt, nullptr);
  auto [inserted, ok] = cache_.emplace(std::string(sql), Cached{stmt, false});
  return Statement(inserted->second.stmt, &inserted->second.in_use);
}

Result<int64_t> Database::QueryInt(std::string_view sql) {
  SOTTO_ASSIGN_OR_RETURN(Statement stmt, Prepare(sql));
  SOTTO_ASSIGN_OR_RETURN(const bool row, stmt.Step());
  if (!row) return StoreError(Code::kInternal, StoreErr::kSql, "query returned no row");
  return stmt.Int(0);
}

Result<std::string> Database::QueryText(std::string_view sql) {
  SOTTO_ASSIGN_OR_RETURN(Statement stmt, Prepare(sql));
  SOTTO_ASSIGN_OR_RETURN(const bool row, stmt.Step());
  if (!row) return StoreError(Code::kInternal, StoreErr::kSql, "query returned no row");
  return stmt.Text(0);
}

}  // namespace sotto::client::internal
