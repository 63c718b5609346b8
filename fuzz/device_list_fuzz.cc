// Fuzzes what a device list reader sees (docs/devices.md): the first byte picks the
// entry point: 0 = wire::ParseDeviceList on the rest (the server's and the client's
// shape checks), else the rest as a SignedDeviceList through client::VerifyDeviceList
// with the fixture's primary key. An accepted list must satisfy every documented rule.
#include <cstddef>
#include <cstdint>

#include "client/device_list.h"
#include "fuzz/devices_fuzz_fixture.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace sotto;  // NOLINT(google-build-using-namespace)
  if (size == 0) return 0;
  const std::string_view rest(reinterpret_cast<const char*>(data + 1), size - 1);
  wire::DeviceList list;
  if (data[0] == 0) {
    if (!wire::ParseDeviceList(rest, list)) return 0;
  } else {
    wire::SignedDeviceList signed_list;
    if (!signed_list.ParseFromArray(rest.data(), static_cast<int>(rest.size()))) return 0;
    static const signal::IdentityKeyPair primary = fuzz::DevicesPrimary();
    auto verified =
        client::VerifyDeviceList(signed_list, fuzz::kDevicesAccount, primary.public_key, data[0]);
    if (!verified) return 0;
    if (verified->version() < data[0] || verified->account_id() != fuzz::kDevicesAccount) {
      __builtin_trap();
    }
    list = *verified;
  }
  if (list.devices_size() < 1 ||
      static_cast<size_t>(list.devices_size()) > wire::kMaxDeviceListEntries ||
      list.devices(0).device_id() != 1 || list.account_id().size() != wire::kAccountIdBytes) {
    __builtin_trap();
  }
  for (int i = 1; i < list.devices_size(); ++i) {
    if (list.devices(i).device_id() <= list.devices(i - 1).device_id()) __builtin_trap();
  }
  return 0;
}
