#include "wire/device_list.h"

#include <cstring>

namespace sotto::wire {

Status ParseDeviceList(std::string_view bytes, DeviceList& out) {
  if (bytes.size() > kMaxDeviceListBytes) {
    return WireError(Code::kResourceExhausted, WireErr::kTooLarge,
                     "device list longer than kMaxDeviceListBytes");
  }
  out.Clear();
  if (!out.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
    return WireError(Code::kInvalidArgument, WireErr::kMalformed, "device list does not parse");
  }
  if (out.account_id().size() != kAccountIdBytes || out.version() == 0) {
    return WireError(Code::kInvalidArgument, WireErr::kMalformed,
                     "device list needs a 16-byte account id and a version >= 1");
  }
  if (out.devices_size() == 0 || static_cast<size_t>(out.devices_size()) > kMaxDeviceListEntries) {
    return WireError(Code::kInvalidArgument, WireErr::kTooLarge,
                     "device list must have 1..kMaxDeviceListEntries entries");
  }
  uint32_t previous = 0;
  for (const DeviceListEntry& e : out.devices()) {
    if (e.device_id() <= previous) {
      return WireError(Code::kInvalidArgument, WireErr::kMalformed,
                       "device list entries must be in strictly increasing device-id order");
    }
    previous = e.device_id();
    if (e.identity_key().size() != kIdentityKeyBytes ||
        static_cast<uint8_t>(e.identity_key()[0]) != 0x05) {
      return WireError(Code::kInvalidArgument, WireErr::kMalformed,
                       "device list identity keys must be 33-byte type-5 keys");
    }
  }
  if (out.devices(0).device_id() != 1) {
    return WireError(Code::kInvalidArgument, WireErr::kMalformed,
                     "device list must start with the primary (device 1)");
  }
  return Ok();
}

Bytes DeviceListSignedBytes(std::string_view list) {
  const size_t prefix = kDeviceListSignaturePrefix.size();
  Bytes out(prefix + list.size());
  std::memcpy(out.data(), kDeviceListSignaturePrefix.data(), prefix);
  if (!list.empty()) std::memcpy(out.data() + prefix, list.data(), list.size());
  return out;
}

}  // namespace sotto::wire
