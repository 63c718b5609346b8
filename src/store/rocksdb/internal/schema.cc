#include "store/rocksdb/internal/schema.h"

#include <cstring>
#include <utility>

namespace sotto::store::internal {
namespace {

void PutU8(std::string* out, uint8_t v) { out->push_back(static_cast<char>(v)); }

void PutU32(std::string* out, uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) PutU8(out, static_cast<uint8_t>(v >> shift));
}

void PutU64(std::string* out, uint64_t v) {
  for (int shift = 56; shift >= 0; shift -= 8) PutU8(out, static_cast<uint8_t>(v >> shift));
}

template <size_t N>
void PutArray(std::string* out, const std::array<uint8_t, N>& bytes) {
  out->append(reinterpret_cast<const char*>(bytes.data()), N);
}

// Length-prefixed (u32) bytes.
void PutString(std::string* out, std::string_view s) {
  PutU32(out, static_cast<uint32_t>(s.size()));
  out->append(s);
}

void PutDevice(std::string* out, const DeviceAddress& device) {
  PutArray(out, device.account);
  PutU32(out, device.device_id);
}

// Bounds-checked reads over stored bytes: every read fails (and stays failed) instead
// of reading past the end.
class Reader {
 public:
  explicit Reader(std::string_view in) : in_(in) {}

  bool ok() const { return ok_; }
  bool AtEnd() const { return ok_ && in_.empty(); }
  size_t remaining() const { return in_.size(); }

  uint8_t U8() {
    std::string_view b = Take(1);
    return b.empty() ? 0 : static_cast<uint8_t>(b[0]);
  }
  uint32_t U32() {
    uint32_t v = 0;
    for (char c : Take(4)) v = (v << 8) | static_cast<uint8_t>(c);
    return v;
  }
  uint64_t U64() {
    uint64_t v = 0;
    for (char c : Take(8)) v = (v << 8) | static_cast<uint8_t>(c);
    return v;
  }
  template <size_t N>
  std::array<uint8_t, N> Array() {
    std::array<uint8_t, N> out{};
    std::string_view b = Take(N);
    if (!b.empty()) std::memcpy(out.data(), b.data(), N);
    return out;
  }
  std::string_view String() {
    const uint32_t n = U32();
    return Take(n);
  }
  std::string_view Rest() {
    std::string_view rest = in_;
    in_ = {};
    return rest;
  }
  DeviceAddress Device() {
    DeviceAddress device;
    device.account = Array<kAccountIdBytes>();
    device.device_id = U32();
    return device;
  }
  // Consumes the version byte; false (and failed) unless it is kValueVersion.
  bool Version() {
    if (U8() != kValueVersion) ok_ = false;
    return ok_;
  }

 private:
  std::string_view Take(size_t n) {
    if (!ok_ || in_.size() < n) {
      ok_ = false;
      in_ = {};
      return {};
    }
    std::string_view out = in_.substr(0, n);
    in_.remove_prefix(n);
    return out;
  }

  std::string_view in_;
  bool ok_ = true;
};

// A group member: account, flags, joined_version.
constexpr size_t kGroupMemberBytes = 16 + 1 + 8;
constexpr uint8_t kGroupAdminFlag = 0x01;

// Fixed encodings of a device record, not counting its two strings.
constexpr size_t kMinDeviceRecordBytes = 4 + 32 + 4 + 4 + 8;

tl::unexpected<Error> RevisionCorruptError() {
  return StoreError(Code::kDataLoss, StoreErr::kCorrupt, "record: bad revision");
}

// Records of `revision_version` end in revision(8): strips it from `value` and returns
// it. Older versions have no revision stored and read as revision 1.
Result<uint64_t> SplitRevision(std::string_view* value, uint8_t revision_version) {
  if (value->empty() || static_cast<uint8_t>(value->front()) != revision_version) return 1;
  if (value->size() < 1 + kRevisionBytes) return RevisionCorruptError();
  Reader tail(value->substr(value->size() - kRevisionBytes));
  const uint64_t revision = tail.U64();
  if (revision == 0) return RevisionCorruptError();
  value->remove_suffix(kRevisionBytes);
  return revision;
}

}  // namespace

tl::unexpected<Error> CorruptError(const char* message) {
  return StoreError(Code::kDataLoss, StoreErr::kCorrupt, message);
}

std::string AccountKey(const AccountId& id) {
  std::string out;
  PutArray(&out, id);
  return out;
}

std::string GroupKey(const GroupId& id) {
  std::string out;
  PutArray(&out, id);
  return out;
}

std::string ContactKey(const AccountId& owner, const AccountId& contact) {
  std::string out;
  PutArray(&out, owner);
  PutArray(&out, contact);
  return out;
}

std::string DeviceKey(const DeviceAddress& device) {
  std::string out;
  PutDevice(&out, device);
  return out;
}

std::string OneTimePreKeyKey(const DeviceAddress& device, uint32_t key_id) {
  std::string out = DeviceKey(device);
  PutU32(&out, key_id);
  return out;
}

std::string QueueKey(const DeviceAddress& device, uint64_t seq) {
  std::string out = DeviceKey(device);
  PutU64(&out, seq);
  return out;
}

std::string DedupeKey(const DeviceAddress& device, std::string_view dedupe_id) {
  std::string out = DeviceKey(device);
  out.append(dedupe_id);
  return out;
}

std::optional<std::string> PrefixSuccessor(std::string_view prefix) {
  std::string out(prefix);
  while (!out.empty()) {
    auto last = static_cast<uint8_t>(out.back());
    if (last != 0xff) {
      out.back() = static_cast<char>(last + 1);
      return out;
    }
    out.pop_back();
  }
  return std::nullopt;
}

Result<QueueKeyParts> ParseQueueKey(std::string_view key) {
  if (key.size() != kQueueKeyBytes) return CorruptError("queue key has the wrong size");
  Reader r(key);
  QueueKeyParts parts;
  parts.device = r.Device();
  parts.seq = r.U64();
  return parts;
}

Result<uint32_t> ParseOneTimePreKeyId(std::string_view key) {
  if (key.size() != kDeviceBytes + 4) return CorruptError("prekey key has the wrong size");
  Reader r(key.substr(kDeviceBytes));
  return r.U32();
}

std::string EncodeAccount(const AccountRecord& account) {
  std::string out;
  PutU8(&out, kAccountRevisionValueVersion);
  PutString(&out, account.handle);
  PutU8(&out, static_cast<uint8_t>(account.presence));
  PutU32(&out, static_cast<uint32_t>(account.devices.size()));
  for (const DeviceRecord& device : account.devices) {
    PutU32(&out, device.device_id);
    PutArray(&out, device.noise_key);
    PutU32(&out, device.registration_id);
    PutString(&out, device.push_endpoint);
    PutU64(&out, device.created_ms);
  }
  // Linked devices (a trailer, absent in records written before them).
  PutString(&out, account.device_list);
  PutU64(&out, account.device_list_version);
  PutU32(&out, account.next_device_id);
  uint32_t pending = 0;
  for (const DeviceRecord& device : account.devices) pending += device.pending ? 1 : 0;
  PutU32(&out, pending);
  for (const DeviceRecord& device : account.devices) {
    if (device.pending) PutU32(&out, device.device_id);
  }
  PutU8(&out, static_cast<uint8_t>(account.group_adds));
  PutU64(&out, account.revision);
  return out;
}

Result<AccountRecord> DecodeAccount(const AccountId& id, std::string_view value) {
  SOTTO_ASSIGN_OR_RETURN(const uint64_t revision,
                         SplitRevision(&value, kAccountRevisionValueVersion));
  Reader r(value);
  // kValueVersion: written before linked devices, no trailer; kAccountValueVersion: the
  // linked-devices trailer follows the devices; kAccountConsentValueVersion and
  // kAccountRevisionValueVersion: then group_adds (docs/store.md).
  const uint8_t version = r.U8();
  if (version != kValueVersion && version != kAccountValueVersion &&
      version != kAccountConsentValueVersion && version != kAccountRevisionValueVersion) {
    return CorruptError("account record: bad version");
  }
  const bool has_group_adds =
      version == kAccountConsentValueVersion || version == kAccountRevisionValueVersion;
  AccountRecord account;
  account.id = id;
  account.revision = revision;
  account.handle = std::string(r.String());
  const uint8_t presence = r.U8();
  if (presence > static_cast<uint8_t>(PresenceVisibility::kNobody)) {
    return CorruptError("account record: bad presence");
  }
  account.presence = static_cast<PresenceVisibility>(presence);
  const uint32_t count = r.U32();
  if (!r.ok() || count > r.remaining() / kMinDeviceRecordBytes) {
    return CorruptError("account record: truncated");
  }
  account.devices.reserve(count);
  for (uint32_t i = 0; i < count && r.ok(); ++i) {
    DeviceRecord device;
    device.device_id = r.U32();
    device.noise_key = r.Array<32>();
    device.registration_id = r.U32();
    device.push_endpoint = std::string(r.String());
    device.created_ms = r.U64();
    account.devices.push_back(std::move(device));
  }
  if (version != kValueVersion) {
    account.device_list = std::string(r.String());
    account.device_list_version = r.U64();
    account.next_device_id = r.U32();
    const uint32_t pending = r.U32();
    if (!r.ok() || pending > account.devices.size()) {
      return CorruptError("account record: bad pending devices");
    }
    for (uint32_t i = 0; i < pending && r.ok(); ++i) {
      const uint32_t pending_id = r.U32();
      bool found = false;
      for (DeviceRecord& device : account.devices) {
        if (device.device_id == pending_id && pending_id != kPrimaryDeviceId) {
          found = !device.pending;
          device.pending = true;
        }
      }
      if (!found) return CorruptError("account record: bad pending device id");
    }
  }
  if (has_group_adds) {
    const uint8_t adds = r.U8();
    if (!r.ok() || adds > static_cast<uint8_t>(GroupAdds::kNobody)) {
      return CorruptError("account record: bad group adds");
    }
    account.group_adds = static_cast<GroupAdds>(adds);
  }
  if (!r.AtEnd()) return CorruptError("account record: truncated or trailing bytes");
  return account;
}

std::string EncodeGroup(const GroupRecord& group) {
  std::string out;
  out.reserve(1 + 8 + 8 + 4 + group.members.size() * kGroupMemberBytes + 4 +
              group.refused.size() * kAccountIdBytes + kRevisionBytes);
  PutU8(&out, kGroupRevisionValueVersion);
  PutU64(&out, group.version);
  PutU64(&out, group.created_ms);
  PutU32(&out, static_cast<uint32_t>(group.members.size()));
  for (const GroupMemberRecord& m : group.members) {
    PutArray(&out, m.account);
    PutU8(&out, m.admin ? kGroupAdminFlag : 0);
    PutU64(&out, m.joined_version);
  }
  PutU32(&out, static_cast<uint32_t>(group.refused.size()));
  for (const AccountId& a : group.refused) PutArray(&out, a);
  PutU64(&out, group.revision);
  return out;
}

Result<GroupRecord> DecodeGroup(const GroupId& id, std::string_view value) {
  SOTTO_ASSIGN_OR_RETURN(const uint64_t revision,
                         SplitRevision(&value, kGroupRevisionValueVersion));
  Reader r(value);
  const uint8_t value_version = r.U8();
  if (value_version != kValueVersion && value_version != kGroupRefusalsValueVersion &&
      value_version != kGroupRevisionValueVersion) {
    return CorruptError("group record: bad version");
  }
  // Version 2 holds at least one refusal; version 3 always has the count, maybe 0.
  const bool refusals = value_version != kValueVersion;
  GroupRecord group;
  group.id = id;
  group.revision = revision;
  group.version = r.U64();
  group.created_ms = r.U64();
  const uint32_t count = r.U32();
  if (!r.ok() || (refusals ? count > r.remaining() / kGroupMemberBytes
                           : (count != r.remaining() / kGroupMemberBytes ||
                              r.remaining() % kGroupMemberBytes != 0))) {
    return CorruptError("group record: truncated or trailing bytes");
  }
  if (count > kMaxStoredGroupMembers) return CorruptError("group record: too many members");
  group.members.reserve(count);
  for (uint32_t i = 0; i < count; ++i) {
    GroupMemberRecord m;
    m.account = r.Array<kAccountIdBytes>();
    const uint8_t flags = r.U8();
    if ((flags & ~kGroupAdminFlag) != 0) return CorruptError("group record: unknown member flags");
    m.admin = (flags & kGroupAdminFlag) != 0;
    m.joined_version = r.U64();
    if (!group.members.empty() && !(group.members.back().account < m.account)) {
      return CorruptError("group record: members out of order");
    }
    group.members.push_back(m);
  }
  if (refusals) {
    const uint32_t refused = r.U32();
    const bool none_allowed = value_version == kGroupRevisionValueVersion;
    if (!r.ok() || (refused == 0 && !none_allowed) || refused > kMaxStoredGroupRefusals ||
        refused != r.remaining() / kAccountIdBytes || r.remaining() % kAccountIdBytes != 0) {
      return CorruptError("group record: bad refusals");
    }
    group.refused.reserve(refused);
    for (uint32_t i = 0; i < refused; ++i) {
      const AccountId a = r.Array<kAccountIdBytes>();
      if (!group.refused.empty() && !(group.refused.back() < a)) {
        return CorruptError("group record: refusals out of order");
      }
      if (group.FindMember(a) != nullptr) return CorruptError("group record: a member refuses");
      group.refused.push_back(a);
    }
  }
  if (!r.AtEnd()) return CorruptError("group record: truncated or trailing bytes");
  return group;
}

std::string EncodeAccountId(const AccountId& id) {
  std::string out;
  PutU8(&out, kValueVersion);
  PutArray(&out, id);
  return out;
}

Result<AccountId> DecodeAccountId(std::string_view value) {
  Reader r(value);
  r.Version();
  AccountId id = r.Array<kAccountIdBytes>();
  if (!r.AtEnd()) return CorruptError("handle index: bad value");
  return id;
}

std::string EncodeDeviceAddress(const DeviceAddress& device) {
  std::string out;
  PutU8(&out, kValueVersion);
  PutDevice(&out, device);
  return out;
}

Result<DeviceAddress> DecodeDeviceAddress(std::string_view value) {
  Reader r(value);
  r.Version();
  DeviceAddress device = r.Device();
  if (!r.AtEnd()) return CorruptError("Noise-key index: bad value");
  return device;
}

std::string EncodeDeviceKeys(const DeviceKeys& keys) {
  std::string out;
  PutU8(&out, kValueVersion);
  PutArray(&out, keys.identity_key);
  PutU32(&out, keys.registration_id);
  PutU32(&out, keys.signed_prekey.id);
  PutArray(&out, keys.signed_prekey.public_key);
  PutArray(&out, keys.signed_prekey.signature);
  return out;
}

Result<DeviceKeys> DecodeDeviceKeys(std::string_view value) {
  Reader r(value);
  r.Version();
  DeviceKeys keys;
  keys.identity_key = r.Array<std::tuple_size_v<PublicKey>>();
  keys.registration_id = r.U32();
  keys.signed_prekey.id = r.U32();
  keys.signed_prekey.public_key = r.Array<std::tuple_size_v<PublicKey>>();
  keys.signed_prekey.signature = r.Array<std::tuple_size_v<Signature>>();
  if (!r.AtEnd()) return CorruptError("device keys: bad value");
  return keys;
}

std::string EncodePublicKey(const PublicKey& key) {
  std::string out;
  PutU8(&out, kValueVersion);
  PutArray(&out, key);
  return out;
}

Result<PublicKey> DecodePublicKey(std::string_view value) {
  Reader r(value);
  r.Version();
  PublicKey key = r.Array<std::tuple_size_v<PublicKey>>();
  if (!r.AtEnd()) return CorruptError("one-time prekey: bad value");
  return key;
}

std::string EncodeQueueValue(uint64_t expires_ms, std::string_view payload,
                             const std::optional<AccountId>& sender) {
  std::string out;
  out.reserve(1 + 8 + kAccountIdBytes + payload.size());
  PutU8(&out, sender ? kQueueValueWithSender : kValueVersion);
  PutU64(&out, expires_ms);
  if (sender) out.append(reinterpret_cast<const char*>(sender->data()), sender->size());
  out.append(payload);
  return out;
}

Result<QueueValue> DecodeQueueValue(std::string_view value) {
  Reader r(value);
  const uint8_t version = r.U8();
  QueueValue out;
  out.expires_ms = r.U64();
  if (version == kQueueValueWithSender) {
    out.sender = r.Array<kAccountIdBytes>();
  } else if (version != kValueVersion) {
    return CorruptError("queue entry: bad version");
  }
  if (!r.ok()) return CorruptError("queue entry: bad value");
  out.payload = r.Rest();
  return out;
}

std::string EncodeSeq(uint64_t seq) {
  std::string out;
  PutU8(&out, kValueVersion);
  PutU64(&out, seq);
  return out;
}

Result<uint64_t> DecodeSeq(std::string_view value) {
  Reader r(value);
  r.Version();
  const uint64_t seq = r.U64();
  if (!r.AtEnd()) return CorruptError("queue seq: bad value");
  return seq;
}

std::string EncodeDedupeValue(const DedupeValue& value) {
  std::string out;
  PutU8(&out, kValueVersion);
  PutU64(&out, value.seq);
  PutU64(&out, value.expires_ms);
  return out;
}

Result<DedupeValue> DecodeDedupeValue(std::string_view value) {
  Reader r(value);
  r.Version();
  DedupeValue out;
  out.seq = r.U64();
  out.expires_ms = r.U64();
  if (!r.AtEnd()) return CorruptError("dedupe entry: bad value");
  return out;
}

}  // namespace sotto::store::internal
