// Argument checks and errors both backends share, so they refuse the same inputs with
// the same errors.
//
// Thread-safety: pure functions.
#pragma once

#include <unordered_map>

#include "base/result.h"
#include "store/store.h"

namespace sotto::store::internal {

// kInvalid when two devices share a device id; kConflict when two devices share a
// Noise key.
Status CheckAccountRecord(const AccountRecord& account);

// kInvalid when members are not strictly ordered by account id or too many.
Status CheckGroupRecord(const GroupRecord& group);

// kInvalid when a dedupe_id is longer than kMaxDedupeIdBytes.
Status CheckWriteRequest(const WriteRequest& request);

// The account or group records' compare-and-set names what it lost on.
inline constexpr const char* kStaleAccount =
    "compare-and-set: the account changed since it was read";
inline constexpr const char* kStaleGroup = "compare-and-set: the group changed since it was read";
// kStale (Code::kAborted) with one of the messages above.
tl::unexpected<Error> StaleError(const char* message);

tl::unexpected<Error> QueueFullError();
tl::unexpected<Error> SenderQuotaError();

// Hashes account ids for the per-sender counts (peer-chosen keys: a real mix).
struct AccountIdHash {
  size_t operator()(const AccountId& id) const noexcept;
};
// Entries per sending account in one device's queue.
using SenderCounts = std::unordered_map<AccountId, uint32_t, AccountIdHash>;

// One sender's entries in one device's queue (the per-sender quota), as a map key.
struct SenderKey {
  DeviceAddress device;
  AccountId sender{};
  friend bool operator==(const SenderKey&, const SenderKey&) = default;
};

struct SenderKeyHash {
  size_t operator()(const SenderKey& k) const noexcept {
    return DeviceAddressHash()(k.device) ^ (AccountIdHash()(k.sender) * 0x9e3779b97f4a7c15ULL);
  }
};
tl::unexpected<Error> ClosedError();

// The result of a request that failed as a whole (no outcomes, no seqs).
WriteResult FailedResult(Error error);

}  // namespace sotto::store::internal
