#include "store/store.h"

#include <algorithm>
#include <chrono>
#include <cstring>

namespace sotto::store {

tl::unexpected<Error> StoreError(Code code, StoreErr detail, const char* message) {
  return MakeError(code, Module::kStore, static_cast<uint16_t>(detail), message);
}

uint64_t SystemClockMs() {
  const auto since_epoch = std::chrono::system_clock::now().time_since_epoch();
  return static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::milliseconds>(since_epoch).count());
}

size_t DeviceAddressHash::operator()(const DeviceAddress& a) const noexcept {
  // Account ids are random, but hash tables keyed by peer-chosen values deserve a real
  // mix rather than a truncation: splitmix64's finalizer over both halves.
  uint64_t lo = 0;
  uint64_t hi = 0;
  std::memcpy(&lo, a.account.data(), sizeof lo);
  std::memcpy(&hi, a.account.data() + sizeof lo, sizeof hi);
  uint64_t x = lo ^ (hi * 0x9e3779b97f4a7c15ULL) ^ (uint64_t{a.device_id} << 17);
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebULL;
  x ^= x >> 31;
  return static_cast<size_t>(x);
}

const DeviceRecord* AccountRecord::FindDevice(uint32_t device_id) const {
  for (const DeviceRecord& device : devices) {
    if (device.device_id == device_id) return &device;
  }
  return nullptr;
}

const DeviceRecord* AccountRecord::FindActiveDevice(uint32_t device_id) const {
  const DeviceRecord* d = FindDevice(device_id);
  return d != nullptr && !d->pending ? d : nullptr;
}

std::vector<const DeviceRecord*> AccountRecord::ActiveDevices() const {
  std::vector<const DeviceRecord*> out;
  out.reserve(devices.size());
  for (const DeviceRecord& device : devices) {
    if (!device.pending) out.push_back(&device);
  }
  return out;
}

const GroupMemberRecord* GroupRecord::FindMember(const AccountId& account) const {
  auto it = std::lower_bound(
      members.begin(), members.end(), account,
      [](const GroupMemberRecord& m, const AccountId& a) { return m.account < a; });
  if (it == members.end() || it->account != account) return nullptr;
  return &*it;
}

bool GroupRecord::Refuses(const AccountId& account) const {
  return std::binary_search(refused.begin(), refused.end(), account);
}

}  // namespace sotto::store
