// The embedded, durable backend of store.h on RocksDB: one database directory, one column
// family per kind of record, the message queue group-committed by one writer thread (many
// requests share one fsync). Key schema and design: docs/store.md.
//
// Nothing here names a RocksDB type; only this folder's .cc files and internal/ headers
// include RocksDB.
//
// Thread-safety: the Store and its three interfaces are thread-safe. A process may open a
// directory once at a time (RocksDB locks it).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "base/result.h"
#include "store/store.h"

namespace sotto::store {

// While the disk is full, the store retries (Resume + a probe write) this often.
inline constexpr int64_t kDefaultSpaceProbeIntervalMs = 1'000;

struct RocksDbOptions {
  std::string path;  // the database directory; created if missing (its parent must exist)
  // Fsync the write-ahead log before a write is reported done. false: tests and
  // benchmarks only (a crash may lose the last writes, never corrupt the database).
  bool sync = true;
  // Most MessageQueue requests one group commit takes; more wait for the next one.
  size_t max_batch_requests = 4096;
  // Judges de-duplication expiry in MessageQueue::Write; empty = SystemClockMs.
  WallClock clock;
  // While the disk is full, how often the store tries to write again (docs/store.md,
  // "Disk full"). Must be positive.
  std::chrono::milliseconds space_probe_interval{kDefaultSpaceProbeIntervalMs};
};

// Opens (or creates) the store at options.path and starts its writer thread.
// kInvalidArgument/kInvalid for an empty path, max_batch_requests == 0 or a
// space_probe_interval that is not positive; kBackend when
// RocksDB cannot open the directory (e.g. it is locked by another open store);
// kCorrupt when it holds an unknown schema version. Destroying the store (or calling
// Close) runs the queued requests first; it must not happen inside a Done callback.
Result<std::unique_ptr<Store>> OpenRocksDbStore(const RocksDbOptions& options);

}  // namespace sotto::store
