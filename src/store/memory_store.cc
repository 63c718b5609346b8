#include "store/memory_store.h"

#include <algorithm>
#include <limits>
#include <map>
#include <mutex>
#include <set>
#include <unordered_map>
#include <unordered_set>
#include <utility>

#include "store/internal/checks.h"
#include "store/internal/subscriptions.h"

namespace sotto::store {
namespace {

using internal::ClosedError;
using internal::FailedResult;
using internal::QueueFullError;
using internal::SenderCounts;
using internal::SenderQuotaError;

tl::unexpected<Error> ConflictError(const char* message) {
  return StoreError(Code::kAlreadyExists, StoreErr::kConflict, message);
}

using internal::StaleError;

// Thread-safe.
class MemoryAccountStore final : public AccountStore {
 public:
  Result<std::optional<AccountRecord>> Get(const AccountId& id) override {
    std::lock_guard lock(mu_);
    auto it = accounts_.find(id);
    if (it == accounts_.end()) return std::optional<AccountRecord>();
    return std::optional<AccountRecord>(it->second);
  }

  Result<std::optional<AccountId>> FindByHandle(std::string_view handle) override {
    std::lock_guard lock(mu_);
    auto it = handles_.find(handle);
    if (it == handles_.end()) return std::optional<AccountId>();
    return std::optional<AccountId>(it->second);
  }

  Result<std::optional<DeviceAddress>> FindByNoiseKey(const StaticKey& key) override {
    std::lock_guard lock(mu_);
    auto it = noise_keys_.find(key);
    if (it == noise_keys_.end()) return std::optional<DeviceAddress>();
    return std::optional<DeviceAddress>(it->second);
  }

  // Compare-and-set: the revision check, the conflict checks and the write happen under
  // one lock.
  Result<uint64_t> Put(const AccountRecord& account) override {
    SOTTO_RETURN_IF_ERROR(internal::CheckAccountRecord(account));
    std::lock_guard lock(mu_);
    auto old = accounts_.find(account.id);
    if ((old == accounts_.end() ? 0 : old->second.revision) != account.revision) {
      return StaleError(internal::kStaleAccount);
    }
    if (!account.handle.empty()) {
      auto it = handles_.find(account.handle);
      if (it != handles_.end() && it->second != account.id) {
        return ConflictError("handle belongs to another account");
      }
    }
    for (const DeviceRecord& device : account.devices) {
      auto it = noise_keys_.find(device.noise_key);
      if (it != noise_keys_.end() && it->second != DeviceAddress{account.id, device.device_id}) {
        return ConflictError("Noise key belongs to another device");
      }
    }
    if (old != accounts_.end()) {
      if (!old->second.handle.empty()) handles_.erase(old->second.handle);
      for (const DeviceRecord& device : old->second.devices) noise_keys_.erase(device.noise_key);
    }
    if (!account.handle.empty()) handles_[account.handle] = account.id;
    for (const DeviceRecord& device : account.devices) {
      noise_keys_[device.noise_key] = DeviceAddress{account.id, device.device_id};
    }
    AccountRecord& stored = accounts_[account.id];
    stored = account;
    return ++stored.revision;
  }

  Status AddContact(const AccountId& owner, const AccountId& contact) override {
    std::lock_guard lock(mu_);
    contacts_.emplace(owner, contact);
    return Ok();
  }

  Status RemoveContact(const AccountId& owner, const AccountId& contact) override {
    std::lock_guard lock(mu_);
    contacts_.erase({owner, contact});
    return Ok();
  }

  Result<bool> HasContact(const AccountId& owner, const AccountId& contact) override {
    std::lock_guard lock(mu_);
    return contacts_.count({owner, contact}) != 0;
  }

 private:
  std::mutex mu_;
  std::map<AccountId, AccountRecord> accounts_;            // GUARDED_BY(mu_)
  std::map<std::string, AccountId, std::less<>> handles_;  // GUARDED_BY(mu_)
  std::map<StaticKey, DeviceAddress> noise_keys_;          // GUARDED_BY(mu_)
  std::set<std::pair<AccountId, AccountId>> contacts_;     // GUARDED_BY(mu_)
};

// Thread-safe.
class MemoryKeyStore final : public KeyStore {
 public:
  Status PutDeviceKeys(const DeviceAddress& device, const DeviceKeys& keys) override {
    std::lock_guard lock(mu_);
    device_keys_[device] = keys;
    return Ok();
  }

  Result<std::optional<DeviceKeys>> GetDeviceKeys(const DeviceAddress& device) override {
    std::lock_guard lock(mu_);
    auto it = device_keys_.find(device);
    if (it == device_keys_.end()) return std::optional<DeviceKeys>();
    return std::optional<DeviceKeys>(it->second);
  }

  Status AddOneTimePreKeys(const DeviceAddress& device,
                           std::span<const OneTimePreKey> keys) override {
    if (keys.empty()) return Ok();
    std::lock_guard lock(mu_);
    auto& pool = one_time_[device];
    for (const OneTimePreKey& key : keys) pool[key.id] = key.public_key;
    return Ok();
  }

  Result<std::optional<OneTimePreKey>> ClaimOneTimePreKey(const DeviceAddress& device) override {
    std::lock_guard lock(mu_);
    auto it = one_time_.find(device);
    if (it == one_time_.end() || it->second.empty()) return std::optional<OneTimePreKey>();
    auto first = it->second.begin();
    OneTimePreKey key{first->first, first->second};
    it->second.erase(first);
    if (it->second.empty()) one_time_.erase(it);
    return std::optional<OneTimePreKey>(key);
  }

  Result<uint32_t> CountOneTimePreKeys(const DeviceAddress& device) override {
    std::lock_guard lock(mu_);
    auto it = one_time_.find(device);
    if (it == one_time_.end()) return uint32_t{0};
    return static_cast<uint32_t>(
        std::min<size_t>(it->second.size(), std::numeric_limits<uint32_t>::max()));
  }

  Status DeleteDevice(const DeviceAddress& device) override {
    std::lock_guard lock(mu_);
    device_keys_.erase(device);
    one_time_.erase(device);
    return Ok();
  }

 private:
  std::mutex mu_;
  std::unordered_map<DeviceAddress, DeviceKeys, DeviceAddressHash> device_keys_;  // GUARDED_BY(mu_)
  std::unordered_map<DeviceAddress, std::map<uint32_t, PublicKey>, DeviceAddressHash>
      one_time_;  // GUARDED_BY(mu_)
};

struct SeqKey {
  DeviceAddress device;
  uint64_t seq = 0;
  friend bool operator==(const SeqKey&, const SeqKey&) = default;
};

struct SeqKeyHash {
  size_t operator()(const SeqKey& k) const noexcept {
    return DeviceAddressHash()(k.device) ^ std::hash<uint64_t>()(k.seq);
  }
};

struct DedupeKey {
  DeviceAddress device;
  std::string id;
  friend bool operator==(const DedupeKey&, const DedupeKey&) = default;
};

struct DedupeKeyHash {
  size_t operator()(const DedupeKey& k) const noexcept {
    return DeviceAddressHash()(k.device) ^ std::hash<std::string>()(k.id);
  }
};

// Thread-safe.
class MemoryQueue final : public MessageQueue {
 public:
  explicit MemoryQueue(WallClock clock) : clock_(std::move(clock)) {}

  void Write(WriteRequest request, Done done) override {
    bool published = false;
    WriteResult result = Apply(request, published);
    // As the RocksDB queue: the callback first, then the notifications.
    if (done) done(std::move(request), std::move(result));
    if (published) subscriptions_.Deliver();
  }

  std::unique_ptr<QueueSubscription> Subscribe(const DeviceAddress& device,
                                               OnNewMessage on_new) override {
    return subscriptions_.Subscribe(device, std::move(on_new));
  }

  Result<std::vector<StoredMessage>> Read(const DeviceAddress& device, uint64_t after_seq,
                                          size_t max, uint64_t now_ms) override {
    std::vector<StoredMessage> out;
    if (max == 0 || after_seq == std::numeric_limits<uint64_t>::max()) return out;
    std::lock_guard lock(mu_);
    auto it = devices_.find(device);
    if (it == devices_.end()) return out;
    const auto& messages = it->second.messages;
    for (auto m = messages.lower_bound(after_seq + 1); m != messages.end() && out.size() < max;
         ++m) {
      if (m->second.expires_ms > now_ms) out.push_back(m->second);
    }
    return out;
  }

  Result<uint32_t> Depth(const DeviceAddress& device) override {
    std::lock_guard lock(mu_);
    auto it = devices_.find(device);
    if (it == devices_.end()) return uint32_t{0};
    return static_cast<uint32_t>(
        std::min<size_t>(it->second.messages.size(), std::numeric_limits<uint32_t>::max()));
  }

  Result<uint64_t> PurgeExpired(uint64_t now_ms, size_t max) override {
    std::lock_guard lock(mu_);
    if (closed_) return ClosedError();
    uint64_t messages = 0;
    size_t dedupes = 0;
    for (auto& [address, queue] : devices_) {
      for (auto m = queue.messages.begin(); m != queue.messages.end() && messages < max;) {
        if (m->second.expires_ms <= now_ms) {
          if (m->second.sender) Uncount(queue, *m->second.sender);
          m = queue.messages.erase(m);
          ++messages;
        } else {
          ++m;
        }
      }
      for (auto d = queue.dedupe.begin(); d != queue.dedupe.end() && dedupes < max;) {
        if (d->second.expires_ms <= now_ms) {
          d = queue.dedupe.erase(d);
          ++dedupes;
        } else {
          ++d;
        }
      }
    }
    stats_.expired += messages;
    return messages;
  }

  Status DeleteDevice(const DeviceAddress& device) override {
    std::lock_guard lock(mu_);
    if (closed_) return ClosedError();
    auto it = devices_.find(device);
    if (it != devices_.end()) {
      it->second.messages.clear();
      it->second.dedupe.clear();  // last_seq stays: seqs are never reused
      it->second.senders.clear();
    }
    return Ok();
  }

  QueueStats stats() const override {
    std::lock_guard lock(mu_);
    return stats_;
  }

  void Close() {
    std::lock_guard lock(mu_);
    closed_ = true;
  }

 private:
  struct Dedupe {
    uint64_t seq = 0;
    uint64_t expires_ms = 0;
  };
  struct DeviceQueue {
    std::map<uint64_t, StoredMessage> messages;
    std::unordered_map<std::string, Dedupe> dedupe;
    uint64_t last_seq = 0;
    SenderCounts senders;  // entries per StoredMessage::sender
  };
  using SenderKey = internal::SenderKey;
  using SenderKeyHash = internal::SenderKeyHash;

  static void Uncount(DeviceQueue& queue, const AccountId& sender) {
    auto it = queue.senders.find(sender);
    if (it == queue.senders.end()) return;
    if (--it->second == 0) queue.senders.erase(it);
  }
  // What a request will do, decided before anything changes (all-or-nothing).
  struct Projection {
    uint64_t depth = 0;
    uint64_t last_seq = 0;
  };

  // Sets `published` if it queued a notification (subscriptions_.Deliver() then runs it).
  WriteResult Apply(const WriteRequest& request, bool& published) {
    if (auto checked = internal::CheckWriteRequest(request); !checked) {
      return FailedResult(checked.error());
    }
    const uint64_t now_ms = clock_ ? clock_() : SystemClockMs();
    std::lock_guard lock(mu_);
    if (closed_) return FailedResult(ClosedError().value());

    std::unordered_map<DeviceAddress, Projection, DeviceAddressHash> projected;
    auto project = [&](const DeviceAddress& device) -> Projection& {
      auto [it, inserted] = projected.try_emplace(device);
      if (inserted) {
        auto q = devices_.find(device);
        if (q != devices_.end()) it->second = {q->second.messages.size(), q->second.last_seq};
      }
      return it->second;
    };

    // Entries per sender after the plan so far.
    std::unordered_map<SenderKey, uint32_t, SenderKeyHash> held;
    auto held_by = [&](const DeviceAddress& device, const AccountId& sender) -> uint32_t& {
      auto [it, inserted] = held.try_emplace(SenderKey{device, sender});
      if (inserted) {
        if (auto q = devices_.find(device); q != devices_.end()) {
          if (auto c = q->second.senders.find(sender); c != q->second.senders.end()) {
            it->second = c->second;
          }
        }
      }
      return it->second;
    };

    // Plan: removals first (they may make room), then appends.
    WriteResult result;
    std::unordered_set<SeqKey, SeqKeyHash> removed;
    for (const Removal& removal : request.removals) {
      auto q = devices_.find(removal.device);
      if (q == devices_.end()) continue;
      auto m = q->second.messages.find(removal.seq);
      if (m == q->second.messages.end()) continue;
      if (!removed.insert({removal.device, removal.seq}).second) continue;
      --project(removal.device).depth;
      if (m->second.sender) {
        uint32_t& n = held_by(removal.device, *m->second.sender);
        if (n > 0) --n;
      }
    }
    std::unordered_map<DedupeKey, Dedupe, DedupeKeyHash> new_dedupes;
    for (size_t i = 0; i < request.appends.size(); ++i) {
      const Append& append = request.appends[i];
      if (!append.dedupe_id.empty()) {
        const Dedupe* original = nullptr;
        auto in_request = new_dedupes.find({append.recipient, append.dedupe_id});
        if (in_request != new_dedupes.end()) {
          original = &in_request->second;
        } else if (auto q = devices_.find(append.recipient); q != devices_.end()) {
          auto d = q->second.dedupe.find(append.dedupe_id);
          if (d != q->second.dedupe.end()) original = &d->second;
        }
        if (original != nullptr && original->expires_ms > now_ms) {
          result.outcomes.push_back(AppendOutcome::kDuplicate);
          result.seqs.push_back(original->seq);
          continue;
        }
      }
      Projection& p = project(append.recipient);
      if (request.max_depth != 0 && p.depth + 1 > request.max_depth &&
          request.on_full == OnFullQueue::kSkipAppend) {
        result.outcomes.push_back(AppendOutcome::kSkippedFull);
        result.seqs.push_back(0);
        continue;
      }
      if (request.max_depth != 0 && p.depth + 1 > request.max_depth) {
        WriteResult full = FailedResult(QueueFullError().value());
        full.full_index = i;
        return full;
      }
      if (append.sender) {
        uint32_t& n = held_by(append.recipient, *append.sender);
        if (request.max_per_sender != 0 && n >= request.max_per_sender) {
          if (request.on_full == OnFullQueue::kSkipAppend) {
            result.outcomes.push_back(AppendOutcome::kSkippedSenderQuota);
            result.seqs.push_back(0);
            continue;
          }
          WriteResult full = FailedResult(SenderQuotaError().value());
          full.full_index = i;
          return full;
        }
        ++n;
      }
      ++p.depth;
      const uint64_t seq = ++p.last_seq;
      result.outcomes.push_back(AppendOutcome::kStored);
      result.seqs.push_back(seq);
      if (!append.dedupe_id.empty()) {
        new_dedupes[{append.recipient, append.dedupe_id}] = Dedupe{seq, append.expires_ms};
      }
    }

    // Commit the plan.
    for (const SeqKey& key : removed) {
      DeviceQueue& q = devices_[key.device];
      auto m = q.messages.find(key.seq);
      if (m->second.sender) Uncount(q, *m->second.sender);
      q.messages.erase(m);
    }
    result.removed = removed.size();
    for (size_t i = 0; i < request.appends.size(); ++i) {
      if (result.outcomes[i] != AppendOutcome::kStored) continue;
      const Append& append = request.appends[i];
      DeviceQueue& q = devices_[append.recipient];
      const uint64_t seq = result.seqs[i];
      q.messages[seq] = StoredMessage{seq, append.expires_ms, append.payload, append.sender};
      if (append.sender) ++q.senders[*append.sender];
      q.last_seq = std::max(q.last_seq, seq);
      if (!append.dedupe_id.empty()) q.dedupe[append.dedupe_id] = Dedupe{seq, append.expires_ms};
      ++stats_.appends;
      // Under mu_, so that notifications of one device queue in seq order.
      if (subscriptions_.Publish(append.recipient, seq, append.expires_ms, append.payload,
                                 append.sender)) {
        published = true;
      }
    }
    stats_.duplicates += static_cast<uint64_t>(
        std::count(result.outcomes.begin(), result.outcomes.end(), AppendOutcome::kDuplicate));
    stats_.removals += result.removed;
    ++stats_.requests;
    ++stats_.commits;
    return result;
  }

  const WallClock clock_;
  mutable std::mutex mu_;
  std::unordered_map<DeviceAddress, DeviceQueue, DeviceAddressHash> devices_;  // GUARDED_BY(mu_)
  QueueStats stats_;                                                           // GUARDED_BY(mu_)
  bool closed_ = false;                                                        // GUARDED_BY(mu_)
  internal::SubscriptionRegistry subscriptions_;
};

// Thread-safe.
class MemoryGroupStore final : public GroupStore {
 public:
  Result<std::optional<GroupRecord>> Get(const GroupId& id) override {
    std::lock_guard lock(mu_);
    auto it = groups_.find(id);
    if (it == groups_.end()) return std::optional<GroupRecord>();
    return std::optional<GroupRecord>(it->second);
  }

  Result<uint64_t> Put(const GroupRecord& group) override {
    SOTTO_RETURN_IF_ERROR(internal::CheckGroupRecord(group));
    std::lock_guard lock(mu_);
    if (RevisionLocked(group.id) != group.revision) return StaleError(internal::kStaleGroup);
    GroupRecord& stored = groups_[group.id];
    stored = group;
    return ++stored.revision;
  }

  Status Delete(const GroupId& id, uint64_t expected_revision) override {
    std::lock_guard lock(mu_);
    if (RevisionLocked(id) != expected_revision) return StaleError(internal::kStaleGroup);
    groups_.erase(id);
    return Ok();
  }

 private:
  std::mutex mu_;
  uint64_t RevisionLocked(const GroupId& id) const {
    auto it = groups_.find(id);
    return it == groups_.end() ? 0 : it->second.revision;
  }

  std::map<GroupId, GroupRecord> groups_;  // GUARDED_BY(mu_)
};

// Thread-safe.
class MemoryStore final : public Store {
 public:
  explicit MemoryStore(WallClock clock) : queue_(std::move(clock)) {}
  AccountStore& accounts() override { return accounts_; }
  KeyStore& keys() override { return keys_; }
  MessageQueue& queue() override { return queue_; }
  GroupStore& groups() override { return groups_; }
  void Close() override { queue_.Close(); }

 private:
  MemoryAccountStore accounts_;
  MemoryKeyStore keys_;
  MemoryQueue queue_;
  MemoryGroupStore groups_;
};

}  // namespace

std::unique_ptr<Store> NewMemoryStore(WallClock clock) {
  return std::make_unique<MemoryStore>(std::move(clock));
}

}  // namespace sotto::store
