// The client's home directory before the database opens: the directory itself (0700),
// the exclusive lock file, and the storage key file (32 random bytes, 0600).
// Why a key file beside the database: docs/client-store.md ("Keys at rest").
//
// Thread-safety: functions only; a HomeLock is externally synchronized.
#pragma once

#include <filesystem>

#include "base/result.h"
#include "crypto/random.h"
#include "crypto/secret.h"

namespace sotto::client::internal {

inline constexpr char kDatabaseFile[] = "sotto.db";
inline constexpr char kKeyFile[] = "storage.key";
inline constexpr char kLockFile[] = "lock";
inline constexpr size_t kStorageKeySize = 32;

// An exclusive flock(2) on HOME/lock, released when the HomeLock is destroyed.
class HomeLock {
 public:
  HomeLock() = default;
  explicit HomeLock(int fd) : fd_(fd) {}
  HomeLock(HomeLock&& other) noexcept;
  HomeLock& operator=(HomeLock&& other) noexcept;
  HomeLock(const HomeLock&) = delete;
  HomeLock& operator=(const HomeLock&) = delete;
  ~HomeLock();

 private:
  int fd_ = -1;
};

struct PreparedHome {
  HomeLock lock;
  crypto::SecretBytes storage_key;
  std::filesystem::path database;  // HOME/sotto.db, created empty with mode 0600
};

// Creates HOME (0700; tightened if more open), takes the lock (kBusy if held), reads or
// creates the storage key (kKeyFile if absent while the database exists, of the wrong
// size, not a regular file or open to group/others) and makes sure the database file
// exists with mode 0600 before SQLite opens it, so its -wal and -shm files are 0600 too.
Result<PreparedHome> PrepareHome(const std::filesystem::path& home, crypto::Random& random);

}  // namespace sotto::client::internal
