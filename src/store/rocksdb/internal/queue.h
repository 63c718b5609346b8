// MessageQueue on RocksDB with group commit (docs/store.md, "Group commit").
//
// Write() only enqueues. One writer thread takes every pending request (up to
// max_batch_requests), applies them in order into one rocksdb::WriteBatch, writes it with
// one fsync and then runs each request's callback. While it fsyncs, new requests pile up
// for the next batch, so under load many requests share one fsync.
//
// The writer thread is the only one that writes the queue's column families (queue,
// queue_seq, dedupe), so it can keep per-device state (last seq, depth, entries per
// sender) in memory: loaded
// lazily from the database, updated only after a batch is durable, dropped when a write
// fails. PurgeExpired and DeleteDevice also run on the writer thread, in order with the
// writes around them; PurgeExpired in short steps (docs/store.md, "Expiry"), so writes
// wait for one step at most, never for a whole purge.
//
// Subscriptions (store.h) are told of each stored append on the writer thread, after the
// batch's fsync and before the batch's Done callbacks run.
//
// Thread-safety: thread-safe. Read and Depth read committed state directly.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <variant>
#include <vector>

#include "store/internal/checks.h"
#include "store/internal/subscriptions.h"
#include "store/rocksdb/internal/db.h"
#include "store/store.h"

namespace sotto::store::internal {

class RocksDbQueue final : public MessageQueue {
 public:
  // Starts the writer thread. `db` must outlive the queue. `clock` judges dedupe expiry.
  static Result<std::unique_ptr<RocksDbQueue>> Create(const Db& db, size_t max_batch_requests,
                                                      WallClock clock);
  ~RocksDbQueue() override;
  RocksDbQueue(const RocksDbQueue&) = delete;
  RocksDbQueue& operator=(const RocksDbQueue&) = delete;

  void Write(WriteRequest request, Done done) override;
  std::unique_ptr<QueueSubscription> Subscribe(const DeviceAddress& device,
                                               OnNewMessage on_new) override;
  Result<std::vector<StoredMessage>> Read(const DeviceAddress& device, uint64_t after_seq,
                                          size_t max, uint64_t now_ms) override;
  Result<uint32_t> Depth(const DeviceAddress& device) override;
  Result<uint64_t> PurgeExpired(uint64_t now_ms, size_t max) override;
  Status DeleteDevice(const DeviceAddress& device) override;
  QueueStats stats() const override;

  // Runs the requests already queued (their callbacks run), then stops the writer
  // thread. Later calls fail with kClosed. Idempotent.
  void Close();

 private:
  struct WriteOp {
    WriteRequest request;
    Done done;
  };
  // One PurgeExpired call's progress across its steps. Owned by the calling thread,
  // touched by the writer thread only while the caller waits for a step.
  struct PurgePass {
    uint64_t now_ms = 0;
    size_t max = 0;       // message deletions allowed, and dedupe deletions allowed
    uint64_t purged = 0;  // messages deleted so far
    size_t dedupes_purged = 0;
    size_t dedupes_scanned = 0;
    bool started = false;
    std::string start;     // the queue cursor when the call began
    bool wrapped = false;  // reached the end; now from the first key up to `start`
    bool queue_done = false;
    bool dedupe_done = false;
  };
  struct PurgeOp {
    PurgePass* pass = nullptr;  // the caller's; outlives the op (the caller waits)
    std::promise<Status> result;
  };
  struct DeleteOp {
    DeviceAddress device;
    std::promise<Status> result;
  };
  using Op = std::variant<WriteOp, PurgeOp, DeleteOp>;

  // Committed per-device state kept by the writer thread.
  struct DeviceState {
    uint64_t last_seq = 0;  // the highest seq ever assigned
    uint64_t depth = 0;     // entries in the queue column family
  };
  using DeviceMap = std::unordered_map<DeviceAddress, DeviceState, DeviceAddressHash>;
  using SenderMap = std::unordered_map<DeviceAddress, SenderCounts, DeviceAddressHash>;

  class Batch;  // one group commit under construction (queue.cc)
  struct Applied {
    WriteOp op;
    WriteResult result;
  };

  RocksDbQueue(const Db& db, size_t max_batch_requests, WallClock clock);

  bool OnWriterThread() const { return std::this_thread::get_id() == writer_id_; }
  void Run();
  void RunOps(std::vector<Op>& ops);
  void Commit(std::optional<Batch>& batch, std::vector<Applied>& applied);
  // Scans the device's queue: its state, and its entries per sender into `senders`.
  Result<DeviceState> LoadDeviceState(const DeviceAddress& device, SenderCounts* senders);
  // Drops the cached state of every device (it reloads from the database).
  void ClearCache();
  struct Purged {
    uint64_t total = 0;
    SenderCounts senders;
  };
  using DeviceCounts = std::unordered_map<DeviceAddress, Purged, DeviceAddressHash>;
  Status PurgeStep(PurgePass& pass);
  Status PurgeQueueStep(PurgePass& pass, rocksdb::WriteBatch* batch, DeviceCounts* purged);
  Status PurgeDedupeStep(PurgePass& pass, rocksdb::WriteBatch* batch);
  Status DropDevice(const DeviceAddress& device);

  const Db& db_;
  const size_t max_batch_requests_;
  const WallClock clock_;

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Op> pending_;  // GUARDED_BY(mu_)
  bool closing_ = false;    // GUARDED_BY(mu_)

  std::thread writer_;
  std::thread::id writer_id_;  // set before any request can reach the writer
  std::mutex join_mu_;         // serializes Close()'s join

  DeviceMap cache_;  // writer thread only
  // Entries per sender of each device in cache_ (absent: none). Writer thread only.
  SenderMap senders_;
  // Where the next purge step resumes its sweep of the queue and dedupe column families
  // (a key to Seek to; empty = the first key). Writer thread only.
  std::string queue_cursor_;
  std::string dedupe_cursor_;

  mutable std::mutex stats_mu_;
  QueueStats stats_;  // GUARDED_BY(stats_mu_)

  SubscriptionRegistry subscriptions_;  // published to by the writer thread only
};

}  // namespace sotto::store::internal
