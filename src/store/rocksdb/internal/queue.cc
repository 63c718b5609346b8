#include "store/rocksdb/internal/queue.h"

#include <algorithm>
#include <chrono>
#include <limits>
#include <string>
#include <system_error>
#include <utility>

#include "store/internal/checks.h"

namespace sotto::store::internal {
namespace {

// The writer's per-device cache is dropped (between batches) past this many devices and
// reloads lazily, so its memory stays bounded however many devices write.
constexpr size_t kMaxCachedDevices = size_t{1} << 20;

// Changes of the request being applied layered over those of the requests before it in
// the same batch: a request that fails is dropped whole (Abort), one that succeeds
// becomes visible to the next (Commit). Externally synchronized.
template <typename K, typename V, typename H = std::hash<K>>
class Layered {
 public:
  const V* Find(const K& key) const {
    if (auto it = request_.find(key); it != request_.end()) return &it->second;
    if (auto it = batch_.find(key); it != batch_.end()) return &it->second;
    return nullptr;
  }
  void Set(const K& key, V value) { request_.insert_or_assign(key, std::move(value)); }
  void Commit() {
    for (auto& [key, value] : request_) batch_.insert_or_assign(key, std::move(value));
    request_.clear();
  }
  void Abort() { request_.clear(); }
  const std::unordered_map<K, V, H>& committed() const { return batch_; }

 private:
  std::unordered_map<K, V, H> request_;
  std::unordered_map<K, V, H> batch_;
};

// Upper bound of the expiry index for entries expired at now_ms (expires_ms <= now_ms).
std::optional<std::string> ExpiredBound(uint64_t now_ms) {
  if (now_ms == std::numeric_limits<uint64_t>::max()) return std::nullopt;
  std::string key = QueueExpiryKey(now_ms + 1, DeviceAddress{}, 0);
  key.resize(kExpiryPrefixBytes);
  return key;
}

}  // namespace

// One group commit under construction. Externally synchronized: the writer thread only.
class RocksDbQueue::Batch {
 public:
  Batch(RocksDbQueue& queue, uint64_t now_ms) : q_(queue), now_ms_(now_ms) {}

  // Applies `request` after the requests before it: into the WriteBatch and the
  // overlays, or (on any failure) not at all.
  WriteResult Add(const WriteRequest& request) {
    if (auto checked = CheckWriteRequest(request); !checked) return FailedResult(checked.error());
    WriteResult result;
    wb_.SetSavePoint();
    Status applied = Apply(request, &result);
    if (applied) {
      broken_ = broken_ || !wb_.PopSavePoint().ok();
      devices_.Commit();
      queue_.Commit();
      dedupe_.Commit();
      return result;
    }
    broken_ = broken_ || !wb_.RollbackToSavePoint().ok();
    devices_.Abort();
    queue_.Abort();
    dedupe_.Abort();
    WriteResult failed = FailedResult(applied.error());
    failed.full_index = result.full_index;
    return failed;
  }

  // Adds the new last seq of every device that got appends.
  Status Finish() {
    if (broken_) {
      return StoreError(Code::kInternal, StoreErr::kBackend, "queue batch save point failed");
    }
    for (const auto& [device, state] : devices_.committed()) {
      auto cached = q_.cache_.find(device);
      if (cached != q_.cache_.end() && cached->second.last_seq == state.last_seq) continue;
      SOTTO_RETURN_IF_ERROR(
          q_.db_.Put(&wb_, Cf::kQueueSeq, DeviceKey(device), EncodeSeq(state.last_seq)));
    }
    return Ok();
  }

  rocksdb::WriteBatch* write_batch() { return &wb_; }

  // After the batch is durable: its device states become the committed ones.
  void Publish() {
    for (const auto& [device, state] : devices_.committed()) q_.cache_[device] = state;
  }

 private:
  // A queue entry as far as this batch knows. `expires_ms` is unknown for an entry whose
  // stored value does not parse (it is still removable).
  struct QueueEntry {
    bool present = false;
    std::optional<uint64_t> expires_ms;
  };

  Status Apply(const WriteRequest& request, WriteResult* result) {
    // Removals first: an ack may make room for the request's own appends.
    for (const Removal& removal : request.removals) {
      std::string key = QueueKey(removal.device, removal.seq);
      SOTTO_ASSIGN_OR_RETURN(QueueEntry entry, FindQueueEntry(key));
      if (!entry.present) continue;
      SOTTO_ASSIGN_OR_RETURN(DeviceState state, State(removal.device));
      SOTTO_RETURN_IF_ERROR(q_.db_.Delete(&wb_, Cf::kQueue, key));
      if (entry.expires_ms) {
        SOTTO_RETURN_IF_ERROR(
            q_.db_.Delete(&wb_, Cf::kQueueExpiry,
                          QueueExpiryKey(*entry.expires_ms, removal.device, removal.seq)));
      }
      queue_.Set(key, QueueEntry{});
      if (state.depth > 0) --state.depth;
      devices_.Set(removal.device, state);
      ++result->removed;
    }
    for (size_t i = 0; i < request.appends.size(); ++i) {
      const Append& append = request.appends[i];
      std::string dedupe_key;
      std::optional<DedupeValue> previous;
      if (!append.dedupe_id.empty()) {
        dedupe_key = DedupeKey(append.recipient, append.dedupe_id);
        SOTTO_ASSIGN_OR_RETURN(previous, FindDedupe(dedupe_key));
        if (previous && previous->expires_ms > now_ms_) {
          result->outcomes.push_back(AppendOutcome::kDuplicate);
          result->seqs.push_back(previous->seq);
          continue;
        }
      }
      SOTTO_ASSIGN_OR_RETURN(DeviceState state, State(append.recipient));
      if (request.max_depth != 0 && state.depth >= request.max_depth) {
        result->full_index = i;
        return QueueFullError();
      }
      const uint64_t seq = ++state.last_seq;
      ++state.depth;
      devices_.Set(append.recipient, state);

      const Db& db = q_.db_;
      std::string key = QueueKey(append.recipient, seq);
      SOTTO_RETURN_IF_ERROR(
          db.Put(&wb_, Cf::kQueue, key, EncodeQueueValue(append.expires_ms, append.payload)));
      SOTTO_RETURN_IF_ERROR(
          db.Put(&wb_, Cf::kQueueExpiry, QueueExpiryKey(append.expires_ms, append.recipient, seq)));
      queue_.Set(key, QueueEntry{true, append.expires_ms});
      if (!dedupe_key.empty()) {
        if (previous) {  // an expired original: replaced, with its index entry
          SOTTO_RETURN_IF_ERROR(
              db.Delete(&wb_, Cf::kDedupeExpiry,
                        DedupeExpiryKey(previous->expires_ms, append.recipient, append.dedupe_id)));
        }
        const DedupeValue value{seq, append.expires_ms};
        SOTTO_RETURN_IF_ERROR(db.Put(&wb_, Cf::kDedupe, dedupe_key, EncodeDedupeValue(value)));
        SOTTO_RETURN_IF_ERROR(
            db.Put(&wb_, Cf::kDedupeExpiry,
                   DedupeExpiryKey(append.expires_ms, append.recipient, append.dedupe_id)));
        dedupe_.Set(dedupe_key, value);
      }
      result->outcomes.push_back(AppendOutcome::kStored);
      result->seqs.push_back(seq);
    }
    return Ok();
  }

  // The device's state after the requests applied so far; loads it on first use.
  Result<DeviceState> State(const DeviceAddress& device) {
    if (const DeviceState* state = devices_.Find(device)) return *state;
    if (auto it = q_.cache_.find(device); it != q_.cache_.end()) return it->second;
    SOTTO_ASSIGN_OR_RETURN(DeviceState loaded, q_.LoadDeviceState(device));
    q_.cache_.emplace(device, loaded);
    return loaded;
  }

  Result<QueueEntry> FindQueueEntry(const std::string& key) {
    if (const QueueEntry* entry = queue_.Find(key)) return *entry;
    SOTTO_ASSIGN_OR_RETURN(auto value, q_.db_.Get(Cf::kQueue, key));
    if (!value) return QueueEntry{};
    auto decoded = DecodeQueueValue(*value);
    if (!decoded) return QueueEntry{true, std::nullopt};
    return QueueEntry{true, decoded->expires_ms};
  }

  // A stored value that does not parse counts as absent: the new entry replaces it.
  Result<std::optional<DedupeValue>> FindDedupe(const std::string& key) {
    if (const DedupeValue* value = dedupe_.Find(key)) return std::optional<DedupeValue>(*value);
    SOTTO_ASSIGN_OR_RETURN(auto value, q_.db_.Get(Cf::kDedupe, key));
    if (!value) return std::optional<DedupeValue>();
    auto decoded = DecodeDedupeValue(*value);
    if (!decoded) return std::optional<DedupeValue>();
    return std::optional<DedupeValue>(*decoded);
  }

  RocksDbQueue& q_;
  const uint64_t now_ms_;
  rocksdb::WriteBatch wb_;
  bool broken_ = false;  // a save point failed: the WriteBatch no longer matches the overlays
  Layered<DeviceAddress, DeviceState, DeviceAddressHash> devices_;
  Layered<std::string, QueueEntry> queue_;
  Layered<std::string, DedupeValue> dedupe_;
};

RocksDbQueue::RocksDbQueue(const Db& db, size_t max_batch_requests, WallClock clock)
    : db_(db), max_batch_requests_(max_batch_requests), clock_(std::move(clock)) {}

Result<std::unique_ptr<RocksDbQueue>> RocksDbQueue::Create(const Db& db, size_t max_batch_requests,
                                                           WallClock clock) {
  if (max_batch_requests == 0) {
    return StoreError(Code::kInvalidArgument, StoreErr::kInvalid,
                      "max_batch_requests must be positive");
  }
  if (!clock) clock = SystemClockMs;
  std::unique_ptr<RocksDbQueue> queue(new RocksDbQueue(db, max_batch_requests, std::move(clock)));
  try {
    RocksDbQueue* q = queue.get();
    queue->writer_ = std::thread([q] { q->Run(); });
  } catch (const std::system_error&) {
    return StoreError(Code::kInternal, StoreErr::kBackend, "cannot start the queue writer");
  }
  queue->writer_id_ = queue->writer_.get_id();
  return queue;
}

RocksDbQueue::~RocksDbQueue() { Close(); }

void RocksDbQueue::Close() {
  {
    std::lock_guard lock(mu_);
    closing_ = true;
  }
  cv_.notify_all();
  // From a callback (the writer thread itself): the writer stops after its current
  // requests; whoever destroys the queue joins it.
  if (OnWriterThread()) return;
  std::lock_guard lock(join_mu_);
  if (writer_.joinable()) writer_.join();
}

void RocksDbQueue::Write(WriteRequest request, Done done) {
  std::unique_lock lock(mu_);
  if (closing_) {
    lock.unlock();
    if (done) done(std::move(request), FailedResult(ClosedError().value()));
    return;
  }
  pending_.push_back(WriteOp{std::move(request), std::move(done)});
  lock.unlock();
  cv_.notify_one();
}

void RocksDbQueue::Run() {
  std::vector<Op> ops;
  for (;;) {
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [this] { return closing_ || !pending_.empty(); });
      if (pending_.empty()) return;  // closing, and everything queued has run
      const size_t n = std::min(pending_.size(), max_batch_requests_);
      for (size_t i = 0; i < n; ++i) {
        ops.push_back(std::move(pending_.front()));
        pending_.pop_front();
      }
    }
    RunOps(ops);
    ops.clear();
  }
}

void RocksDbQueue::RunOps(std::vector<Op>& ops) {
  std::optional<Batch> batch;
  std::vector<Applied> applied;
  applied.reserve(ops.size());
  for (Op& op : ops) {
    if (auto* write = std::get_if<WriteOp>(&op)) {
      if (!batch) {
        if (cache_.size() > kMaxCachedDevices) cache_.clear();
        batch.emplace(*this, clock_());
      }
      WriteResult result = batch->Add(write->request);
      applied.push_back(Applied{std::move(*write), std::move(result)});
      continue;
    }
    // Purges and deletions see every write queued before them, and none after.
    Commit(batch, applied);
    if (auto* purge = std::get_if<PurgeOp>(&op)) {
      purge->result.set_value(Purge(purge->now_ms, purge->max));
    } else if (auto* drop = std::get_if<DeleteOp>(&op)) {
      drop->result.set_value(DropDevice(drop->device));
    }
  }
  Commit(batch, applied);
}

void RocksDbQueue::Commit(std::optional<Batch>& batch, std::vector<Applied>& applied) {
  if (!batch) return;
  Status written = batch->Finish();
  QueueStats delta;
  if (written && batch->write_batch()->Count() > 0) {
    const auto start = std::chrono::steady_clock::now();
    written = db_.Write(batch->write_batch(), "cannot commit the queue batch");
    const auto elapsed = std::chrono::steady_clock::now() - start;
    delta.commits = 1;
    delta.commit_micros = static_cast<uint64_t>(
        std::chrono::duration_cast<std::chrono::microseconds>(elapsed).count());
  }
  if (written) {
    batch->Publish();
    for (const Applied& a : applied) {
      if (!a.result.status) continue;
      ++delta.requests;
      for (AppendOutcome outcome : a.result.outcomes) {
        ++(outcome == AppendOutcome::kStored ? delta.appends : delta.duplicates);
      }
      delta.removals += a.result.removed;
    }
  } else {
    // Whether a failed write reached the disk is unknown: reload state from the database.
    cache_.clear();
    delta = QueueStats{};
    for (Applied& a : applied) {
      if (a.result.status) a.result = FailedResult(written.error());
    }
  }
  batch.reset();
  {
    std::lock_guard lock(stats_mu_);
    stats_.commits += delta.commits;
    stats_.requests += delta.requests;
    stats_.appends += delta.appends;
    stats_.duplicates += delta.duplicates;
    stats_.removals += delta.removals;
    stats_.commit_micros += delta.commit_micros;
  }
  for (Applied& a : applied) {
    if (a.op.done) a.op.done(std::move(a.op.request), std::move(a.result));
  }
  applied.clear();
}

Result<RocksDbQueue::DeviceState> RocksDbQueue::LoadDeviceState(const DeviceAddress& device) {
  DeviceState state;
  SOTTO_ASSIGN_OR_RETURN(auto seq_value, db_.Get(Cf::kQueueSeq, DeviceKey(device)));
  if (seq_value) {
    SOTTO_ASSIGN_OR_RETURN(state.last_seq, DecodeSeq(*seq_value));
  }
  KeyScan scan = KeyScan::Prefix(db_, Cf::kQueue, DeviceKey(device));
  for (; scan.Valid(); scan.Next()) {
    SOTTO_ASSIGN_OR_RETURN(QueueKeyParts parts, ParseQueueKey(scan.key()));
    state.last_seq = std::max(state.last_seq, parts.seq);
    ++state.depth;
  }
  SOTTO_RETURN_IF_ERROR(scan.status("cannot scan a device queue"));
  return state;
}

Result<std::vector<StoredMessage>> RocksDbQueue::Read(const DeviceAddress& device,
                                                      uint64_t after_seq, size_t max,
                                                      uint64_t now_ms) {
  std::vector<StoredMessage> out;
  if (max == 0 || after_seq == std::numeric_limits<uint64_t>::max()) return out;
  KeyScan scan =
      KeyScan::Prefix(db_, Cf::kQueue, DeviceKey(device), QueueKey(device, after_seq + 1));
  for (; scan.Valid() && out.size() < max; scan.Next()) {
    SOTTO_ASSIGN_OR_RETURN(QueueKeyParts parts, ParseQueueKey(scan.key()));
    SOTTO_ASSIGN_OR_RETURN(QueueValue value, DecodeQueueValue(scan.value()));
    if (value.expires_ms <= now_ms) continue;
    out.push_back(StoredMessage{parts.seq, value.expires_ms, std::string(value.payload)});
  }
  SOTTO_RETURN_IF_ERROR(scan.status("cannot read a device queue"));
  return out;
}

Result<uint32_t> RocksDbQueue::Depth(const DeviceAddress& device) {
  uint32_t depth = 0;
  KeyScan scan = KeyScan::Prefix(db_, Cf::kQueue, DeviceKey(device));
  for (; scan.Valid(); scan.Next()) {
    if (depth < std::numeric_limits<uint32_t>::max()) ++depth;
  }
  SOTTO_RETURN_IF_ERROR(scan.status("cannot scan a device queue"));
  return depth;
}

Result<uint64_t> RocksDbQueue::PurgeExpired(uint64_t now_ms, size_t max) {
  if (OnWriterThread()) return Purge(now_ms, max);
  std::future<Result<uint64_t>> future;
  {
    std::lock_guard lock(mu_);
    if (closing_) return ClosedError();
    PurgeOp op{now_ms, max, {}};
    future = op.result.get_future();
    pending_.push_back(std::move(op));
  }
  cv_.notify_one();
  return future.get();
}

Status RocksDbQueue::DeleteDevice(const DeviceAddress& device) {
  if (OnWriterThread()) return DropDevice(device);
  std::future<Status> future;
  {
    std::lock_guard lock(mu_);
    if (closing_) return ClosedError();
    DeleteOp op{device, {}};
    future = op.result.get_future();
    pending_.push_back(std::move(op));
  }
  cv_.notify_one();
  return future.get();
}

QueueStats RocksDbQueue::stats() const {
  std::lock_guard lock(stats_mu_);
  return stats_;
}

Result<uint64_t> RocksDbQueue::Purge(uint64_t now_ms, size_t max) {
  rocksdb::WriteBatch wb;
  std::unordered_map<DeviceAddress, uint64_t, DeviceAddressHash> purged_per_device;
  uint64_t purged = 0;
  {
    KeyScan scan = KeyScan::Below(db_, Cf::kQueueExpiry, ExpiredBound(now_ms));
    for (size_t visited = 0; visited < max && scan.Valid(); ++visited, scan.Next()) {
      SOTTO_RETURN_IF_ERROR(db_.Delete(&wb, Cf::kQueueExpiry, scan.key()));
      auto parts = ParseQueueExpiryKey(scan.key());
      if (!parts) continue;  // an index entry that does not parse is dropped
      const std::string key = QueueKey(parts->device, parts->seq);
      SOTTO_ASSIGN_OR_RETURN(auto value, db_.Get(Cf::kQueue, key));
      if (!value) continue;  // its message was removed (or its device deleted) already
      SOTTO_RETURN_IF_ERROR(db_.Delete(&wb, Cf::kQueue, key));
      ++purged;
      ++purged_per_device[parts->device];
    }
    SOTTO_RETURN_IF_ERROR(scan.status("cannot scan the queue expiry index"));
  }
  SOTTO_RETURN_IF_ERROR(PurgeDedupe(now_ms, max, &wb));
  if (wb.Count() > 0) {
    Status written = db_.Write(&wb, "cannot purge expired messages");
    if (!written) {
      cache_.clear();
      return tl::unexpected<Error>(written.error());
    }
  }
  for (const auto& [device, n] : purged_per_device) {
    auto it = cache_.find(device);
    if (it != cache_.end()) it->second.depth -= std::min(it->second.depth, n);
  }
  std::lock_guard lock(stats_mu_);
  stats_.expired += purged;
  return purged;
}

Result<uint64_t> RocksDbQueue::PurgeDedupe(uint64_t now_ms, size_t max, rocksdb::WriteBatch* wb) {
  uint64_t purged = 0;
  KeyScan scan = KeyScan::Below(db_, Cf::kDedupeExpiry, ExpiredBound(now_ms));
  for (size_t visited = 0; visited < max && scan.Valid(); ++visited, scan.Next()) {
    SOTTO_RETURN_IF_ERROR(db_.Delete(wb, Cf::kDedupeExpiry, scan.key()));
    auto parts = ParseDedupeExpiryKey(scan.key());
    if (!parts) continue;
    const std::string key = DedupeKey(parts->device, parts->dedupe_id);
    SOTTO_ASSIGN_OR_RETURN(auto value, db_.Get(Cf::kDedupe, key));
    if (!value) continue;
    // An entry replaced since (a duplicate of an expired original) has a new expiry and
    // a new index entry; it stays.
    auto decoded = DecodeDedupeValue(*value);
    if (decoded && decoded->expires_ms != parts->expires_ms) continue;
    SOTTO_RETURN_IF_ERROR(db_.Delete(wb, Cf::kDedupe, key));
    ++purged;
  }
  SOTTO_RETURN_IF_ERROR(scan.status("cannot scan the dedupe expiry index"));
  return purged;
}

Status RocksDbQueue::DropDevice(const DeviceAddress& device) {
  rocksdb::WriteBatch wb;
  const std::string prefix = DeviceKey(device);
  {
    KeyScan scan = KeyScan::Prefix(db_, Cf::kQueue, prefix);
    for (; scan.Valid(); scan.Next()) {
      SOTTO_RETURN_IF_ERROR(db_.Delete(&wb, Cf::kQueue, scan.key()));
      auto parts = ParseQueueKey(scan.key());
      auto value = DecodeQueueValue(scan.value());
      if (!parts || !value) continue;  // its index entry, if any, is dropped by a purge
      SOTTO_RETURN_IF_ERROR(
          db_.Delete(&wb, Cf::kQueueExpiry, QueueExpiryKey(value->expires_ms, device, parts->seq)));
    }
    SOTTO_RETURN_IF_ERROR(scan.status("cannot scan a device queue"));
  }
  {
    KeyScan scan = KeyScan::Prefix(db_, Cf::kDedupe, prefix);
    for (; scan.Valid(); scan.Next()) {
      SOTTO_RETURN_IF_ERROR(db_.Delete(&wb, Cf::kDedupe, scan.key()));
      auto value = DecodeDedupeValue(scan.value());
      if (!value) continue;
      const std::string_view dedupe_id = scan.key().substr(kDeviceBytes);
      SOTTO_RETURN_IF_ERROR(db_.Delete(&wb, Cf::kDedupeExpiry,
                                       DedupeExpiryKey(value->expires_ms, device, dedupe_id)));
    }
    SOTTO_RETURN_IF_ERROR(scan.status("cannot scan a device's dedupe entries"));
  }
  if (wb.Count() > 0) {
    Status written = db_.Write(&wb, "cannot delete a device queue");
    if (!written) {
      cache_.clear();
      return written;
    }
  }
  if (auto it = cache_.find(device); it != cache_.end()) it->second.depth = 0;
  return Ok();
}

}  // namespace sotto::store::internal
