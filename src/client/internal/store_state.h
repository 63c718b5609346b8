// What a LocalStore holds, shared by local_store.cc and local_store_messages.cc, and
// helpers for reading rows. Not part of the client's interface.
//
// Thread-safety: externally synchronized, like the LocalStore.
#pragma once

#include <memory>
#include <optional>
#include <vector>

#include "client/internal/home_dir.h"
#include "client/internal/sealing.h"
#include "client/internal/sqlite.h"
#include "client/local_store.h"

namespace sotto::client::internal {

struct StoreState {
  HomeLock lock;  // declared first: released last, after the database is closed
  std::unique_ptr<Database> db;
  Sealer sealer;
  int schema_version = 0;
  // One entry per open Transaction, innermost last: whether its BEGIN or SAVEPOINT
  // succeeded (and the error if not, for Commit() to report).
  std::vector<std::optional<Error>> transactions;
  bool relaxed = false;  // the outermost transaction runs with synchronous=NORMAL
};

inline tl::unexpected<Error> Corrupt(const char* message) {
  return StoreError(Code::kDataLoss, StoreErr::kCorrupt, message);
}

// Milliseconds and other uint64 values are stored as their int64 bit pattern.
inline int64_t ToSql(uint64_t value) { return static_cast<int64_t>(value); }
inline uint64_t FromSql(int64_t value) { return static_cast<uint64_t>(value); }

}  // namespace sotto::client::internal

namespace sotto::client {

struct LocalStore::Impl : internal::StoreState {};

}  // namespace sotto::client
