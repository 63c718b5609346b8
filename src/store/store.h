// The server's durable state behind backend-neutral interfaces: accounts and their
// devices, the prekey directory, one ordered message queue per device, and groups. Two backends
// implement them: RocksDB (store/rocksdb/, the embedded default) and memory (tests,
// store/memory_store.h); NATS JetStream comes next, so nothing here names a RocksDB type.
// Key schema of the RocksDB backend: docs/store.md.
//
// Durability: every Status-returning write is durable (fsynced) when it returns;
// MessageQueue::Write is durable when its callback runs. Writes from many threads are
// group-committed: many share one fsync.
//
// Records (accounts, groups) carry a revision and change by compare-and-set: a writer
// that lost a race gets StoreErr::kStale, never a silent overwrite, so any number of
// processes may share one backend (docs/store.md, "Compare-and-set").
//
// Thread-safety: every interface here is thread-safe.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"

namespace sotto::store {

using AccountId = std::array<uint8_t, 16>;
using StaticKey = std::array<uint8_t, 32>;  // a device's Noise static public key
using PublicKey = std::array<uint8_t, 33>;  // Signal's 0x05-prefixed Curve25519 key
using Signature = std::array<uint8_t, 64>;  // XEdDSA

inline constexpr uint32_t kPrimaryDeviceId = 1;

using GroupId = std::array<uint8_t, 16>;

enum class StoreErr : uint16_t {
  kBackend = 6001,    // the backend failed (I/O, corruption); the message says which
  kCorrupt = 6002,    // a stored record did not parse
  kQueueFull = 6003,  // a recipient queue is at its depth limit (WriteRequest::max_depth)
  kConflict = 6004,   // e.g. a Noise key that already belongs to another device
  kClosed = 6005,     // the store is shutting down
  kInvalid = 6006,    // a request broke a documented limit (e.g. kMaxDedupeIdBytes)

  // A sender holds WriteRequest::max_per_sender entries in a recipient queue.
  kSenderQuota = 6007,
  kNoSpace = 6008,  // the disk is full (Code::kResourceExhausted); see StorageHealth
  // A compare-and-set lost: the stored record's revision is not the one the caller read
  // (Code::kAborted). Re-read and reapply the change, or report the conflict.
  kStale = 6009,
};

tl::unexpected<Error> StoreError(Code code, StoreErr detail, const char* message);

// Wall-clock milliseconds since the Unix epoch. MessageQueue::Write asks it whether a
// de-duplication entry has expired; tests pass a fake one. Backends treat an empty
// WallClock as SystemClockMs. Must be thread-safe.
using WallClock = std::function<uint64_t()>;
uint64_t SystemClockMs();

struct DeviceAddress {
  AccountId account{};
  uint32_t device_id = 0;
  friend bool operator==(const DeviceAddress&, const DeviceAddress&) = default;
};

struct DeviceAddressHash {
  size_t operator()(const DeviceAddress& a) const noexcept;
};

// Who may see an account's presence (online / last seen).
enum class PresenceVisibility : uint8_t { kEveryone = 0, kContacts = 1, kNobody = 2 };
// Who may add an account to a group (docs/server.md "Groups", consent).
enum class GroupAdds : uint8_t { kEveryone = 0, kContacts = 1, kNobody = 2 };

struct DeviceRecord {
  uint32_t device_id = 0;
  StaticKey noise_key{};
  uint32_t registration_id = 0;  // Signal registration id; 0 until keys are uploaded
  std::string push_endpoint;     // UnifiedPush-style URL; empty = none
  uint64_t created_ms = 0;
  // Linked but not yet in a device list the primary published: not routed to, not
  // required in a Send, not in lookups (docs/devices.md). Never true for the primary.
  bool pending = false;
};

// Records the store changes by compare-and-set (AccountRecord, GroupRecord) carry the
// store's revision of the record: 0 = not stored yet; each successful Put stores
// revision + 1 and returns it. It says nothing to clients (GroupRecord::version does).
struct AccountRecord {
  AccountId id{};
  uint64_t revision = 0;  // the store's revision (above); set by Get, checked by Put
  std::string handle;  // E.164, e.g. "+15551234567"
  PresenceVisibility presence = PresenceVisibility::kContacts;
  GroupAdds group_adds = GroupAdds::kEveryone;
  std::vector<DeviceRecord> devices;  // ordered by device_id; device 1 is the primary
  // Linked devices (docs/devices.md): the published SignedDeviceList (wire bytes, opaque
  // to the store; empty = none), its version, and the id the next linked device gets
  // (0 = one above the highest listed; ids are never reused).
  std::string device_list;
  uint64_t device_list_version = 0;
  uint32_t next_device_id = 0;

  const DeviceRecord* FindDevice(uint32_t device_id) const;
  // The device if it exists and is active (not pending): THE rule for routing, Send
  // completeness, lookups and group fan-out.
  const DeviceRecord* FindActiveDevice(uint32_t device_id) const;
  // The devices messages are routed to: every device that is not pending.
  std::vector<const DeviceRecord*> ActiveDevices() const;
};

class AccountStore {
 public:
  virtual ~AccountStore() = default;
  virtual Result<std::optional<AccountRecord>> Get(const AccountId& id) = 0;
  virtual Result<std::optional<AccountId>> FindByHandle(std::string_view handle) = 0;
  virtual Result<std::optional<DeviceAddress>> FindByNoiseKey(const StaticKey& key) = 0;
  // Compare-and-set: creates or replaces `account` only if the stored record's revision
  // is `account.revision` (0 = no record may exist), and, atomically with it, its handle
  // index and the Noise-key index of every device (entries of devices no longer listed
  // are removed). Returns the revision stored (account.revision + 1). kStale if the
  // revision does not match (nothing is written: re-read, reapply, retry or report);
  // kConflict if a device's Noise key belongs to another account or device, or the
  // handle to another account. docs/store.md, "Compare-and-set".
  virtual Result<uint64_t> Put(const AccountRecord& account) = 0;

  // The owner's contacts (the accounts presence "contacts" visibility admits). Set
  // operations: idempotent, so they need no revision.
  virtual Status AddContact(const AccountId& owner, const AccountId& contact) = 0;
  virtual Status RemoveContact(const AccountId& owner, const AccountId& contact) = 0;
  virtual Result<bool> HasContact(const AccountId& owner, const AccountId& contact) = 0;
};

struct SignedPreKey {
  uint32_t id = 0;
  PublicKey public_key{};
  Signature signature{};
};

struct OneTimePreKey {
  uint32_t id = 0;
  PublicKey public_key{};
};

// What a device publishes once per identity (and on signed-prekey rotation).
struct DeviceKeys {
  PublicKey identity_key{};
  uint32_t registration_id = 0;
  SignedPreKey signed_prekey;
};

class KeyStore {
 public:
  virtual ~KeyStore() = default;
  // Replaces the device's identity key, registration id and signed prekey.
  virtual Status PutDeviceKeys(const DeviceAddress& device, const DeviceKeys& keys) = 0;
  virtual Result<std::optional<DeviceKeys>> GetDeviceKeys(const DeviceAddress& device) = 0;
  // Adds one-time prekeys; a key with an id already stored replaces it.
  virtual Status AddOneTimePreKeys(const DeviceAddress& device,
                                   std::span<const OneTimePreKey> keys) = 0;
  // Removes and returns the device's lowest-id one-time prekey, durably, so each is handed
  // out at most once even to concurrent callers (of every process sharing the backend);
  // nullopt when the pool is empty.
  virtual Result<std::optional<OneTimePreKey>> ClaimOneTimePreKey(const DeviceAddress& device) = 0;
  virtual Result<uint32_t> CountOneTimePreKeys(const DeviceAddress& device) = 0;
  // Drops every key of the device (re-registration, unlinking).
  virtual Status DeleteDevice(const DeviceAddress& device) = 0;
};

// One entry of a device's queue as stored and read back.
struct StoredMessage {
  uint64_t seq = 0;         // per-device, increasing; assigned by the queue
  uint64_t expires_ms = 0;  // wall clock (ms since the Unix epoch)
  std::string payload;      // opaque to the store (the server's serialized envelope)
  std::optional<AccountId> sender;  // the Append's sender (per-sender quota), if it had one
};

struct Append {
  DeviceAddress recipient;
  // Idempotency key, unique per recipient (e.g. sender device + message id), at most
  // kMaxDedupeIdBytes; empty = no de-duplication. A second append with the same key
  // before `expires_ms` of the first is reported kDuplicate and stores nothing.
  std::string dedupe_id;
  uint64_t expires_ms = 0;
  std::string payload;
  // The sending account whose per-sender quota in the recipient's queue this entry counts
  // against (WriteRequest::max_per_sender) for as long as it is queued; nullopt = none
  // (server-generated receipts, messages to one's own devices).
  std::optional<AccountId> sender;
};

struct Removal {
  DeviceAddress device;
  uint64_t seq = 0;
};

// What a WriteRequest does with an append that would take its queue past max_depth.
enum class OnFullQueue : uint8_t {
  kRefuseRequest,  // nothing of the request is written (kQueueFull)
  kSkipAppend,     // only that append is dropped (kSkippedFull, kSkippedSenderQuota)
};

struct WriteRequest {
  std::vector<Append> appends;
  std::vector<Removal> removals;  // e.g. acked messages; unknown seqs are ignored
  // Appends are all-or-nothing: if any would take its recipient's queue past max_depth
  // entries, nothing of the request is written and the result is kQueueFull naming the
  // first such append in WriteResult::full_index. 0 = unbounded. Removals apply first,
  // so a request may make room for its own appends. A dedupe_id longer than
  // kMaxDedupeIdBytes fails the whole request with kInvalid.
  uint32_t max_depth = 0;
  // kSkipAppend (group fan-out): an append that finds its queue full is dropped and
  // reported kSkippedFull (seq 0); the rest of the request is written.
  OnFullQueue on_full = OnFullQueue::kRefuseRequest;
  // The per-sender quota: an append with a sender that already has this many entries in
  // its recipient's queue (expired ones included until purged, this request's own
  // removals and earlier appends counted) fails the request with kSenderQuota naming it
  // in full_index, or with kSkipAppend is dropped as kSkippedSenderQuota. Checked after
  // max_depth. 0 = unbounded. Entries are counted per sender whatever this says.
  uint32_t max_per_sender = 0;
};

enum class AppendOutcome : uint8_t { kStored, kDuplicate, kSkippedFull, kSkippedSenderQuota };

struct WriteResult {
  Status status;                        // kQueueFull, kInvalid, kBackend, kClosed
  std::vector<AppendOutcome> outcomes;  // one per append, when status is ok
  std::vector<uint64_t> seqs;           // the seq of each append (the first one's, for a duplicate)
  size_t full_index = 0;                // with kQueueFull or kSenderQuota
  size_t removed = 0;                   // removals that found their message
};

inline constexpr size_t kMaxDedupeIdBytes = 64;

struct QueueStats {
  uint64_t commits = 0;   // fsynced batches
  uint64_t requests = 0;  // WriteRequests committed
  uint64_t appends = 0;   // messages stored
  uint64_t duplicates = 0;
  uint64_t removals = 0;
  uint64_t expired = 0;        // purged by PurgeExpired
  uint64_t commit_micros = 0;  // total time in write+fsync
};

// A live MessageQueue::Subscribe. Destroying it stops its callbacks: once the destructor
// returns, none of them runs or will run (a call under way on another thread is waited
// for, so the destructor must not hold anything that callback waits for). It may be
// destroyed inside its own callback: then no further call starts, and the one under way
// is the caller's own. It may outlive its queue.
class QueueSubscription {
 public:
  virtual ~QueueSubscription() = default;
};

// Called with a message just stored in `device`'s queue (seq and payload as Read returns
// them). Runs on the queue's own thread (or the thread of some Write for the memory
// backend); keep it short: post to a loop. It may call the queue (Write, Read, Subscribe,
// destroy a subscription) but not Store::Close.
using OnNewMessage = std::function<void(const DeviceAddress& device, const StoredMessage& message)>;

class MessageQueue {
 public:
  // Runs on the queue's own thread (or inline for the memory backend), once per request,
  // after the request is durable or has failed. Keep it short: post to a loop. It may
  // call the queue (Write, Read, ...) but not Store::Close.
  using Done = std::function<void(WriteRequest&& request, WriteResult&& result)>;

  virtual ~MessageQueue() = default;
  // Queues `request` for the next group commit; all of one request commits atomically.
  // Order is promised per device queue only (docs/store.md, "Subscriptions and
  // ordering"): requests that touch the same device's queue apply to it in the order Write
  // was called, and that queue's seqs, assigned by the backend, increase in that order.
  // Nothing is promised across devices, nor about the order of Done callbacks.
  virtual void Write(WriteRequest request, Done done) = 0;
  // Calls `on_new` once for every append stored in `device`'s queue after Subscribe
  // returns, when durable and after its Write's Done, in seq order; never for duplicates,
  // skipped or refused appends, removals, purges or DeleteDevice. Any number may watch one
  // device; each gets every entry. An entry stored before Subscribe returned may or may
  // not be reported, so a reader subscribes first and then reads what is already queued
  // (Read), dropping reported seqs it has already read.
  virtual std::unique_ptr<QueueSubscription> Subscribe(const DeviceAddress& device,
                                                       OnNewMessage on_new) = 0;
  // Up to `max` messages of `device` with seq > after_seq, in seq order, skipping those
  // expired at now_ms.
  virtual Result<std::vector<StoredMessage>> Read(const DeviceAddress& device, uint64_t after_seq,
                                                  size_t max, uint64_t now_ms) = 0;
  // Entries in the device's queue (expired ones included until purged).
  virtual Result<uint32_t> Depth(const DeviceAddress& device) = 0;
  // Deletes up to `max` messages expired at now_ms and returns how many it deleted. It
  // returns less than `max` only after visiting every device's queue, so calling it until
  // it returns less than `max` purges every expired message that leads its queue. An
  // expired message behind an unexpired one of the same device (possible only if the TTL
  // was shortened) may stay until the messages before it are gone; Read skips it.
  // It also deletes up to `max` expired de-duplication entries, but may look at only a
  // bounded share of them per call: reaching all of them can take several calls. Expired
  // entries de-duplicate nothing whether purged or not. The RocksDB backend works in short
  // steps between group commits, so writes never wait for a whole purge.
  virtual Result<uint64_t> PurgeExpired(uint64_t now_ms, size_t max) = 0;
  // Drops the device's whole queue and its de-duplication entries (re-registration,
  // unlinking). Durable on return. Seqs keep counting: a seq is never reused.
  virtual Status DeleteDevice(const DeviceAddress& device) = 0;
  virtual QueueStats stats() const = 0;
};

// One member of a group as stored: fan-out needs only who is in and who is admin.
struct GroupMemberRecord {
  AccountId account{};
  bool admin = false;
  // The group version whose change added the member: who has been in longest (the
  // successor of a last admin who leaves) is the lowest, then the lowest account id.
  uint64_t joined_version = 0;
};

struct GroupRecord {
  GroupId id{};
  uint64_t revision = 0;  // the store's revision (see AccountRecord); not the version
  uint64_t version = 0;   // bumped by every membership change; told to clients
  uint64_t created_ms = 0;
  std::vector<GroupMemberRecord> members;  // strictly ordered by account id
  // Former members who left refusing to be added again (strictly ordered, none a member).
  std::vector<AccountId> refused;

  const GroupMemberRecord* FindMember(const AccountId& account) const;  // binary search
  bool Refuses(const AccountId& account) const;                         // binary search
};

// Groups for server-side fan-out (docs/server.md "Groups").
class GroupStore {
 public:
  virtual ~GroupStore() = default;
  virtual Result<std::optional<GroupRecord>> Get(const GroupId& id) = 0;
  // Compare-and-set: creates or replaces the group only if the stored record's revision
  // is `group.revision` (0 = no record may exist); returns the revision stored
  // (group.revision + 1). kStale if it does not match (nothing is written); kInvalid if
  // members are not strictly ordered by account id (which also rules out duplicates) or
  // more than kMaxStoredGroupMembers.
  virtual Result<uint64_t> Put(const GroupRecord& group) = 0;
  // Deletes the group if its stored revision is `expected_revision`, where an absent
  // group counts as revision 0 (so Delete(id, 0) of an absent group does nothing and
  // succeeds). kStale otherwise (nothing is deleted).
  virtual Status Delete(const GroupId& id, uint64_t expected_revision) = 0;
};

// The most members a stored group may have, whatever the server's groups.max_members.
inline constexpr size_t kMaxStoredGroupMembers = 65'536;
// The most refusals (GroupRecord::refused) a stored group may hold.
inline constexpr size_t kMaxStoredGroupRefusals = 65'536;

// A whole backend: one object owns all four.
// How a backend's disk is doing (docs/store.md, "Disk full"). While disk_full, writes
// fail with StoreErr::kNoSpace; the backend retries by itself and clears it as soon as a
// write succeeds again. Backends without a disk report all zero.
struct StorageHealth {
  bool disk_full = false;
  uint64_t writes_refused = 0;  // writes that failed for lack of space, since open
  uint64_t full_episodes = 0;   // times the store turned full
  uint64_t recoveries = 0;      // times writes worked again after that
  uint64_t free_bytes = 0;      // free space for the database (0 if unknown)
};

class Store {
 public:
  virtual ~Store() = default;
  virtual AccountStore& accounts() = 0;
  virtual KeyStore& keys() = 0;
  virtual MessageQueue& queue() = 0;
  virtual GroupStore& groups() = 0;
  // Finishes pending writes (their callbacks run) and stops background threads.
  virtual void Close() = 0;
  virtual StorageHealth storage_health() const { return {}; }
};

}  // namespace sotto::store
