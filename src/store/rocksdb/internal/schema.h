// The byte layout of the RocksDB backend: column families, keys and values. The
// authoritative description is docs/store.md; this file implements it and nothing here
// depends on RocksDB, so the codecs can be tested (and fuzzed) alone.
//
// Keys are fixed-width big-endian so that RocksDB's bytewise order is the logical order
// (a device's queue iterates in seq order). Every value starts with kValueVersion.
// Decoders bounds-check everything and return kCorrupt (Code::kDataLoss); they never
// trust a stored length.
//
// Thread-safety: pure functions.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "base/result.h"
#include "store/store.h"

namespace sotto::store::internal {

// One column family per kind of record. The order is the order of kCfNames.
enum class Cf : uint8_t {
  kAccounts,            // account(16) -> AccountRecord
  kHandles,             // handle bytes -> account(16)
  kNoiseKeys,           // static key(32) -> account(16) device_id(4)
  kContacts,            // owner(16) contact(16) -> empty
  kDeviceKeys,          // device(20) -> DeviceKeys
  kOneTimePreKeys,      // device(20) key_id(4) -> public key(33)
  kQueue,               // device(20) seq(8) -> expires_ms(8) payload
  kQueueSeq,            // device(20) -> last assigned seq(8)
  kLegacyQueueExpiry,   // unused: an old expiry index, emptied at open (docs/store.md)
  kDedupe,              // device(20) dedupe_id -> seq(8) expires_ms(8)
  kLegacyDedupeExpiry,  // unused: an old expiry index, emptied at open (docs/store.md)
  kGroups,              // group(16) -> GroupRecord
};
inline constexpr size_t kCfCount = 12;
inline constexpr std::array<std::string_view, kCfCount> kCfNames = {
    "accounts", "handles",   "noise_keys",   "contacts", "device_keys",   "one_time_prekeys",
    "queue",    "queue_seq", "queue_expiry", "dedupe",   "dedupe_expiry", "groups"};
inline constexpr size_t CfIndex(Cf cf) { return static_cast<size_t>(cf); }

// The default column family holds only this key, whose value is kSchemaVersion (one byte).
inline constexpr std::string_view kSchemaVersionKey = "schema_version";
inline constexpr uint8_t kSchemaVersion = 1;
inline constexpr uint8_t kValueVersion = 1;
inline constexpr uint8_t kAccountValueVersion =
    2;  // account records with the linked-devices trailer
// Account records with a group-adds choice other than everyone: the linked-devices
// trailer, then group_adds(1). Records with the default are still written as version 2.
inline constexpr uint8_t kAccountConsentValueVersion = 3;
// Group records with refusals: the members, then refused_count(4) and account(16) each.
// No longer written (kGroupRevisionValueVersion is); still read.
inline constexpr uint8_t kGroupRefusalsValueVersion = 2;
// Compare-and-set (docs/store.md): what every account and group record is written with
// now. Account: the version-3 layout (group_adds always present), then revision(8).
// Group: the version-2 layout with refused_count(4) always present (0 allowed), then
// revision(8). Records of older versions decode with revision 1; a stored revision of 0
// is corrupt.
inline constexpr uint8_t kAccountRevisionValueVersion = 4;
inline constexpr uint8_t kGroupRevisionValueVersion = 3;
inline constexpr size_t kRevisionBytes = 8;

inline constexpr size_t kAccountIdBytes = 16;
inline constexpr size_t kDeviceBytes = kAccountIdBytes + 4;  // account, device_id BE
inline constexpr size_t kSeqBytes = 8;
inline constexpr size_t kQueueKeyBytes = kDeviceBytes + kSeqBytes;

// ---- keys
std::string AccountKey(const AccountId& id);
std::string GroupKey(const GroupId& id);
std::string ContactKey(const AccountId& owner, const AccountId& contact);
std::string DeviceKey(const DeviceAddress& device);  // also the prefix of its per-device CFs
std::string OneTimePreKeyKey(const DeviceAddress& device, uint32_t key_id);
std::string QueueKey(const DeviceAddress& device, uint64_t seq);
std::string DedupeKey(const DeviceAddress& device, std::string_view dedupe_id);
// The smallest key greater than every key starting with `prefix`; nullopt if none exists
// (the prefix is all 0xff).
std::optional<std::string> PrefixSuccessor(std::string_view prefix);

struct QueueKeyParts {
  DeviceAddress device;
  uint64_t seq = 0;
};
Result<QueueKeyParts> ParseQueueKey(std::string_view key);
Result<uint32_t> ParseOneTimePreKeyId(std::string_view key);

// ---- values
// Account and group records store their `revision` as it is: the store sets it to the
// new revision before encoding.
std::string EncodeAccount(const AccountRecord& account);
Result<AccountRecord> DecodeAccount(const AccountId& id, std::string_view value);

// Members: account(16) flags(1: bit 0 = admin, other bits zero) joined_version(8), in
// strictly increasing account order; a decoded record always passes CheckGroupRecord.
std::string EncodeGroup(const GroupRecord& group);
Result<GroupRecord> DecodeGroup(const GroupId& id, std::string_view value);

std::string EncodeAccountId(const AccountId& id);
Result<AccountId> DecodeAccountId(std::string_view value);

std::string EncodeDeviceAddress(const DeviceAddress& device);
Result<DeviceAddress> DecodeDeviceAddress(std::string_view value);

std::string EncodeDeviceKeys(const DeviceKeys& keys);
Result<DeviceKeys> DecodeDeviceKeys(std::string_view value);

std::string EncodePublicKey(const PublicKey& key);
Result<PublicKey> DecodePublicKey(std::string_view value);

// Queue entries with a sender (the per-sender quota) are written with this version:
// v(2), expires_ms(8), sender(16), payload. Entries without one keep kValueVersion.
inline constexpr uint8_t kQueueValueWithSender = 2;
struct QueueValue {
  uint64_t expires_ms = 0;
  std::string_view payload;  // points into the decoded value
  std::optional<AccountId> sender;
};
std::string EncodeQueueValue(uint64_t expires_ms, std::string_view payload,
                             const std::optional<AccountId>& sender = std::nullopt);
Result<QueueValue> DecodeQueueValue(std::string_view value);

std::string EncodeSeq(uint64_t seq);
Result<uint64_t> DecodeSeq(std::string_view value);

struct DedupeValue {
  uint64_t seq = 0;
  uint64_t expires_ms = 0;
};
std::string EncodeDedupeValue(const DedupeValue& value);
Result<DedupeValue> DecodeDedupeValue(std::string_view value);

tl::unexpected<Error> CorruptError(const char* message);

}  // namespace sotto::store::internal
