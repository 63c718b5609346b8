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

// Limits of one purge step, the work the writer does between two group commits: a step
// Seeks to at most kPurgeDevicesPerStep devices, deletes at most kPurgeDeletesPerStep
// messages and reads at most kDedupeScanPerStep dedupe entries (a few ms in all), so
// writes queued behind it wait little. PurgeExpired runs as many steps as it needs.
constexpr size_t kPurgeDevicesPerStep = 1024;
constexpr size_t kPurgeDeletesPerStep = 4096;
constexpr size_t kDedupeScanPerStep = 4096;
// Dedupe entries one PurgeExpired call reads, resuming where the previous call stopped.
// Without an expiry index every entry is read once per sweep, and entries live as long
// as their message (the TTL), so a sweep only has to finish well within a TTL: at the
// server's default interval (60 s) this reads 94 million entries a day.
constexpr size_t kDedupeScanPerCall = 65536;

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
      senders_.Commit();
      return result;
    }
    broken_ = broken_ || !wb_.RollbackToSavePoint().ok();
    devices_.Abort();
    queue_.Abort();
    dedupe_.Abort();
    senders_.Abort();
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
    for (const auto& [key, count] : senders_.committed()) {
      if (count != 0) {
        q_.senders_[key.device][key.sender] = count;
        continue;
      }
      auto it = q_.senders_.find(key.device);
      if (it == q_.senders_.end()) continue;
      it->second.erase(key.sender);
      if (it->second.empty()) q_.senders_.erase(it);
    }
  }

 private:
  // Whether a queue entry exists, as far as this batch knows, and whose quota it is in.
  struct QueueEntry {
    bool present = false;
    std::optional<AccountId> sender;
  };

  Status Apply(const WriteRequest& request, WriteResult* result) {
    // Removals first: an ack may make room for the request's own appends.
    for (const Removal& removal : request.removals) {
      std::string key = QueueKey(removal.device, removal.seq);
      SOTTO_ASSIGN_OR_RETURN(QueueEntry entry, FindQueueEntry(key));
      if (!entry.present) continue;
      SOTTO_ASSIGN_OR_RETURN(DeviceState state, State(removal.device));
      SOTTO_RETURN_IF_ERROR(q_.db_.Delete(&wb_, Cf::kQueue, key));
      queue_.Set(key, QueueEntry{});
      if (state.depth > 0) --state.depth;
      devices_.Set(removal.device, state);
      if (entry.sender) {
        SOTTO_ASSIGN_OR_RETURN(uint32_t held, SenderCount(removal.device, *entry.sender));
        if (held > 0) senders_.Set({removal.device, *entry.sender}, held - 1);
      }
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
      if (request.max_depth != 0 && state.depth >= request.max_depth &&
          request.on_full == OnFullQueue::kSkipAppend) {
        result->outcomes.push_back(AppendOutcome::kSkippedFull);
        result->seqs.push_back(0);
        continue;
      }
      if (request.max_depth != 0 && state.depth >= request.max_depth) {
        result->full_index = i;
        return QueueFullError();
      }
      uint32_t held = 0;  // the sender's entries in this queue
      if (append.sender) {
        SOTTO_ASSIGN_OR_RETURN(held, SenderCount(append.recipient, *append.sender));
        if (request.max_per_sender != 0 && held >= request.max_per_sender) {
          if (request.on_full == OnFullQueue::kSkipAppend) {
            result->outcomes.push_back(AppendOutcome::kSkippedSenderQuota);
            result->seqs.push_back(0);
            continue;
          }
          result->full_index = i;
          return SenderQuotaError();
        }
        senders_.Set({append.recipient, *append.sender}, held + 1);
      }
      const uint64_t seq = ++state.last_seq;
      ++state.depth;
      devices_.Set(append.recipient, state);

      const Db& db = q_.db_;
      std::string key = QueueKey(append.recipient, seq);
      SOTTO_RETURN_IF_ERROR(
          db.Put(&wb_, Cf::kQueue, key,
                 EncodeQueueValue(append.expires_ms, append.payload, append.sender)));
      queue_.Set(key, QueueEntry{true, append.sender});
      if (!dedupe_key.empty()) {  // new, or replacing an expired original
        const DedupeValue value{seq, append.expires_ms};
        SOTTO_RETURN_IF_ERROR(db.Put(&wb_, Cf::kDedupe, dedupe_key, EncodeDedupeValue(value)));
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
    SenderCounts senders;
    SOTTO_ASSIGN_OR_RETURN(DeviceState loaded, q_.LoadDeviceState(device, &senders));
    q_.cache_.emplace(device, loaded);
    if (senders.empty()) {
      q_.senders_.erase(device);
    } else {
      q_.senders_[device] = std::move(senders);
    }
    return loaded;
  }

  // The sender's entries in the device's queue after the requests applied so far.
  Result<uint32_t> SenderCount(const DeviceAddress& device, const AccountId& sender) {
    if (const uint32_t* count = senders_.Find({device, sender})) return *count;
    SOTTO_RETURN_IF_ERROR(State(device));  // loads the device's counts with its state
    auto it = q_.senders_.find(device);
    if (it == q_.senders_.end()) return uint32_t{0};
    auto count = it->second.find(sender);
    return count == it->second.end() ? 0 : count->second;
  }

  // Present entries read from the database carry their sender; one that does not decode
  // counts against no sender (Read reports it).
  Result<QueueEntry> FindQueueEntry(const std::string& key) {
    if (const QueueEntry* entry = queue_.Find(key)) return *entry;
    SOTTO_ASSIGN_OR_RETURN(auto value, q_.db_.Get(Cf::kQueue, key));
    if (!value) return QueueEntry{};
    QueueEntry entry{true, std::nullopt};
    if (auto decoded = DecodeQueueValue(*value)) entry.sender = decoded->sender;
    return entry;
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
  Layered<SenderKey, uint32_t, SenderKeyHash> senders_;
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

std::unique_ptr<QueueSubscription> RocksDbQueue::Subscribe(const DeviceAddress& device,
                                                           OnNewMessage on_new) {
  return subscriptions_.Subscribe(device, std::move(on_new));
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
        if (cache_.size() > kMaxCachedDevices) ClearCache();
        batch.emplace(*this, clock_());
      }
      WriteResult result = batch->Add(write->request);
      applied.push_back(Applied{std::move(*write), std::move(result)});
      continue;
    }
    // Purges and deletions see every write queued before them, and none after.
    Commit(batch, applied);
    if (auto* purge = std::get_if<PurgeOp>(&op)) {
      purge->result.set_value(PurgeStep(*purge->pass));
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
  bool notify = false;
  if (written) {
    batch->Publish();
    for (const Applied& a : applied) {
      if (!a.result.status) continue;
      ++delta.requests;
      for (size_t i = 0; i < a.result.outcomes.size(); ++i) {
        const AppendOutcome outcome = a.result.outcomes[i];
        if (outcome == AppendOutcome::kStored) {
          ++delta.appends;
          const Append& append = a.op.request.appends[i];
          if (subscriptions_.Publish(append.recipient, a.result.seqs[i], append.expires_ms,
                                     append.payload, append.sender)) {
            notify = true;
          }
        }
        if (outcome == AppendOutcome::kDuplicate) ++delta.duplicates;
      }
      delta.removals += a.result.removed;
    }
  } else {
    // Whether a failed write reached the disk is unknown: reload state from the database.
    ClearCache();
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
  // Done callbacks first, then the notifications (Publish copied what they carry): by the
  // time a device sees a message, its writer's callback (the sender's answer, the server's
  // counters) has run.
  for (Applied& a : applied) {
    if (a.op.done) a.op.done(std::move(a.op.request), std::move(a.result));
  }
  if (notify) subscriptions_.Deliver();
  applied.clear();
}

void RocksDbQueue::ClearCache() {
  cache_.clear();
  senders_.clear();
}

Result<RocksDbQueue::DeviceState> RocksDbQueue::LoadDeviceState(const DeviceAddress& device,
                                                                SenderCounts* senders) {
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
    // Rebuilt from the entries themselves, so the counts are right after any restart.
    if (auto value = DecodeQueueValue(scan.value()); value && value->sender) {
      ++(*senders)[*value->sender];
    }
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
    out.push_back(
        StoredMessage{parts.seq, value.expires_ms, std::string(value.payload), value.sender});
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
  PurgePass pass;
  pass.now_ms = now_ms;
  pass.max = max;
  // One writer op per step: writes queued meanwhile commit between the steps.
  while (!(pass.queue_done && pass.dedupe_done)) {
    if (OnWriterThread()) {
      SOTTO_RETURN_IF_ERROR(PurgeStep(pass));
      continue;
    }
    std::future<Status> future;
    {
      std::lock_guard lock(mu_);
      if (closing_) return ClosedError();
      PurgeOp op{&pass, {}};
      future = op.result.get_future();
      pending_.push_back(std::move(op));
    }
    cv_.notify_one();
    SOTTO_RETURN_IF_ERROR(future.get());
  }
  return pass.purged;
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

Status RocksDbQueue::PurgeStep(PurgePass& pass) {
  if (!pass.started) {
    pass.started = true;
    pass.start = queue_cursor_;
    pass.queue_done = pass.dedupe_done = pass.max == 0;
  }
  rocksdb::WriteBatch wb;
  DeviceCounts purged;
  if (!pass.queue_done) SOTTO_RETURN_IF_ERROR(PurgeQueueStep(pass, &wb, &purged));
  if (!pass.dedupe_done) SOTTO_RETURN_IF_ERROR(PurgeDedupeStep(pass, &wb));
  if (wb.Count() > 0) {
    Status written = db_.Write(&wb, "cannot purge expired messages");
    if (!written) {
      ClearCache();
      return written;
    }
  }
  uint64_t n = 0;
  for (const auto& [device, p] : purged) {
    n += p.total;
    auto it = cache_.find(device);
    if (it != cache_.end()) it->second.depth -= std::min(it->second.depth, p.total);
    auto counts = senders_.find(device);
    if (counts == senders_.end()) continue;
    for (const auto& [sender, gone] : p.senders) {
      auto c = counts->second.find(sender);
      if (c == counts->second.end()) continue;
      c->second -= std::min(c->second, gone);
      if (c->second == 0) counts->second.erase(c);
    }
    if (counts->second.empty()) senders_.erase(counts);
  }
  std::lock_guard lock(stats_mu_);
  stats_.expired += n;
  return Ok();
}

// Visits devices in key order from queue_cursor_ and deletes each one's leading expired
// messages: seqs and expiries rise together (one TTL for every message), so the first
// unexpired message ends a device's expired run and the step Seeks straight to the next
// device. A pass costs O(devices with messages + deleted messages), not O(messages). An
// expired message behind an unexpired one (the TTL was shortened) waits until the
// messages before it go; Read skips it meanwhile.
Status RocksDbQueue::PurgeQueueStep(PurgePass& pass, rocksdb::WriteBatch* wb,
                                    DeviceCounts* purged) {
  // pass.purged <= pass.max: no step deletes past the call's budget.
  const auto budget =
      static_cast<size_t>(std::min<uint64_t>(kPurgeDeletesPerStep, pass.max - pass.purged));
  rocksdb::ReadOptions options;
  rocksdb::Slice upper;
  if (pass.wrapped) {  // the keys from `start` on were visited before wrapping
    upper = ToSlice(pass.start);
    options.iterate_upper_bound = &upper;
  }
  std::unique_ptr<rocksdb::Iterator> it(db_.db()->NewIterator(options, db_.cf(Cf::kQueue)));
  it->Seek(ToSlice(queue_cursor_));
  size_t deleted = 0;
  bool last_device = false;  // visited the device whose prefix has no successor
  for (size_t visits = 0; it->Valid() && visits < kPurgeDevicesPerStep && deleted < budget;
       ++visits) {
    auto first = ParseQueueKey(ToView(it->key()));
    if (!first) {  // a damaged key: Read reports it; the purge steps over it
      it->Next();
      continue;
    }
    const std::string prefix = DeviceKey(first->device);
    for (; it->Valid() && deleted < budget; it->Next()) {
      const std::string_view key = ToView(it->key());
      if (!key.starts_with(prefix) || key.size() != kQueueKeyBytes) break;
      auto value = DecodeQueueValue(ToView(it->value()));
      if (!value || value->expires_ms > pass.now_ms) break;
      SOTTO_RETURN_IF_ERROR(db_.Delete(wb, Cf::kQueue, key));
      ++deleted;
      Purged& p = (*purged)[first->device];
      ++p.total;
      if (value->sender) ++p.senders[*value->sender];
    }
    if (deleted >= budget) break;  // resume at the iterator's key: the device's next entry
    std::optional<std::string> next = PrefixSuccessor(prefix);
    if (!next) {
      last_device = true;
      break;
    }
    it->Seek(ToSlice(*next));
  }
  pass.purged += deleted;
  if (!last_device && it->Valid()) {
    queue_cursor_ = std::string(ToView(it->key()));
  } else {
    if (!it->status().ok()) return BackendError(it->status(), "cannot scan the queue");
    if (!pass.wrapped && !pass.start.empty()) {
      pass.wrapped = true;
      queue_cursor_.clear();
    } else {
      pass.queue_done = true;  // a full pass
      queue_cursor_ = pass.start;
    }
  }
  if (pass.purged >= pass.max) pass.queue_done = true;
  return Ok();
}

// Reads dedupe entries in key order from dedupe_cursor_ and deletes the expired ones. It
// runs on the writer thread, which alone writes the family, so what it reads is current:
// an entry replaced by a newer append since the last step is seen with its new expiry.
Status RocksDbQueue::PurgeDedupeStep(PurgePass& pass, rocksdb::WriteBatch* wb) {
  const size_t budget = std::min(kDedupeScanPerStep, kDedupeScanPerCall - pass.dedupes_scanned);
  std::unique_ptr<rocksdb::Iterator> it(
      db_.db()->NewIterator(rocksdb::ReadOptions(), db_.cf(Cf::kDedupe)));
  it->Seek(ToSlice(dedupe_cursor_));
  size_t scanned = 0;
  for (; it->Valid() && scanned < budget && pass.dedupes_purged < pass.max; it->Next()) {
    ++scanned;
    auto value = DecodeDedupeValue(ToView(it->value()));
    // One that does not parse stays: Write counts it as absent and replaces it.
    if (!value || value->expires_ms > pass.now_ms) continue;
    SOTTO_RETURN_IF_ERROR(db_.Delete(wb, Cf::kDedupe, ToView(it->key())));
    ++pass.dedupes_purged;
  }
  pass.dedupes_scanned += scanned;
  if (it->Valid()) {
    dedupe_cursor_ = std::string(ToView(it->key()));
    pass.dedupe_done =
        pass.dedupes_scanned >= kDedupeScanPerCall || pass.dedupes_purged >= pass.max;
  } else {
    if (!it->status().ok()) return BackendError(it->status(), "cannot scan dedupe entries");
    dedupe_cursor_.clear();  // the next call starts a new sweep
    pass.dedupe_done = true;
  }
  return Ok();
}

Status RocksDbQueue::DropDevice(const DeviceAddress& device) {
  rocksdb::WriteBatch wb;
  const std::string prefix = DeviceKey(device);
  {
    KeyScan scan = KeyScan::Prefix(db_, Cf::kQueue, prefix);
    for (; scan.Valid(); scan.Next()) {
      SOTTO_RETURN_IF_ERROR(db_.Delete(&wb, Cf::kQueue, scan.key()));
    }
    SOTTO_RETURN_IF_ERROR(scan.status("cannot scan a device queue"));
  }
  {
    KeyScan scan = KeyScan::Prefix(db_, Cf::kDedupe, prefix);
    for (; scan.Valid(); scan.Next()) {
      SOTTO_RETURN_IF_ERROR(db_.Delete(&wb, Cf::kDedupe, scan.key()));
    }
    SOTTO_RETURN_IF_ERROR(scan.status("cannot scan a device's dedupe entries"));
  }
  if (wb.Count() > 0) {
    Status written = db_.Write(&wb, "cannot delete a device queue");
    if (!written) {
      ClearCache();
      return written;
    }
  }
  if (auto it = cache_.find(device); it != cache_.end()) it->second.depth = 0;
  senders_.erase(device);
  return Ok();
}

}  // namespace sotto::store::internal
