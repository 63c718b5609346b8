#include "store/internal/checks.h"

#include <algorithm>

namespace sotto::store::internal {

Status CheckAccountRecord(const AccountRecord& account) {
  // Records hold a handful of devices: quadratic is cheaper than building a set.
  const auto& devices = account.devices;
  for (size_t i = 0; i < devices.size(); ++i) {
    for (size_t j = i + 1; j < devices.size(); ++j) {
      if (devices[i].device_id == devices[j].device_id) {
        return StoreError(Code::kInvalidArgument, StoreErr::kInvalid,
                          "account lists a device id twice");
      }
      if (devices[i].noise_key == devices[j].noise_key) {
        return StoreError(Code::kAlreadyExists, StoreErr::kConflict,
                          "two devices share a Noise key");
      }
    }
  }
  return Ok();
}

Status CheckGroupRecord(const GroupRecord& group) {
  if (group.members.size() > kMaxStoredGroupMembers) {
    return StoreError(Code::kInvalidArgument, StoreErr::kInvalid,
                      "group has more than kMaxStoredGroupMembers members");
  }
  for (size_t i = 1; i < group.members.size(); ++i) {
    if (!(group.members[i - 1].account < group.members[i].account)) {
      return StoreError(Code::kInvalidArgument, StoreErr::kInvalid,
                        "group members not strictly ordered by account id");
    }
  }
  if (group.refused.size() > kMaxStoredGroupRefusals) {
    return StoreError(Code::kInvalidArgument, StoreErr::kInvalid,
                      "group has more than kMaxStoredGroupRefusals refusals");
  }
  for (size_t i = 0; i < group.refused.size(); ++i) {
    if (i > 0 && !(group.refused[i - 1] < group.refused[i])) {
      return StoreError(Code::kInvalidArgument, StoreErr::kInvalid,
                        "group refusals not strictly ordered by account id");
    }
    if (group.FindMember(group.refused[i]) != nullptr) {
      return StoreError(Code::kInvalidArgument, StoreErr::kInvalid,
                        "a group member is also listed as refusing the group");
    }
  }
  return Ok();
}

Status CheckWriteRequest(const WriteRequest& request) {
  const bool too_long =
      std::any_of(request.appends.begin(), request.appends.end(),
                  [](const Append& append) { return append.dedupe_id.size() > kMaxDedupeIdBytes; });
  if (too_long) {
    return StoreError(Code::kInvalidArgument, StoreErr::kInvalid, "dedupe_id too long");
  }
  return Ok();
}

tl::unexpected<Error> StaleError(const char* message) {
  return StoreError(Code::kAborted, StoreErr::kStale, message);
}

tl::unexpected<Error> QueueFullError() {
  return StoreError(Code::kResourceExhausted, StoreErr::kQueueFull, "recipient queue full");
}

tl::unexpected<Error> SenderQuotaError() {
  return StoreError(Code::kResourceExhausted, StoreErr::kSenderQuota,
                    "sender's quota in the recipient queue reached");
}

size_t AccountIdHash::operator()(const AccountId& id) const noexcept {
  return DeviceAddressHash()(DeviceAddress{id, 0});
}

tl::unexpected<Error> ClosedError() {
  return StoreError(Code::kFailedPrecondition, StoreErr::kClosed, "store closed");
}

WriteResult FailedResult(Error error) {
  WriteResult result;
  result.status = tl::unexpected<Error>(error);
  return result;
}

}  // namespace sotto::store::internal
