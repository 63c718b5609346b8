#include "client/device_list.h"

#include <algorithm>
#include <cstring>

#include "client/internal/client_impl.h"
#include "crypto/x25519.h"

namespace sotto::client {
namespace {

tl::unexpected<Error> Refused(const char* message) {
  return SdkError(Code::kPermissionDenied, SdkErr::kBadDeviceList, message);
}

}  // namespace

Result<wire::DeviceList> VerifyDeviceList(const wire::SignedDeviceList& signed_list,
                                          std::string_view account_id,
                                          const signal::IdentityKey& primary_identity,
                                          uint64_t min_version) {
  if (signed_list.list().empty()) return Refused("the account has no signed device list");
  if (signed_list.signature().size() != wire::kDeviceListSignatureBytes) {
    return Refused("the device list is not signed");
  }
  if (signed_list.list().size() > wire::kMaxDeviceListBytes) {
    return Refused("the device list is larger than kMaxDeviceListBytes");
  }
  const Bytes signed_bytes = wire::DeviceListSignedBytes(signed_list.list());
  if (!crypto::VerifySignature(primary_identity.raw(), signed_bytes,
                               AsBytes(signed_list.signature()))) {
    return Refused("the device list's signature does not verify with the primary's identity key");
  }
  wire::DeviceList list;
  if (!wire::ParseDeviceList(signed_list.list(), list)) {
    return Refused("the device list is malformed");
  }
  if (list.account_id() != account_id) return Refused("the device list names another account");
  const signal::SerializedPublicKey primary = primary_identity.Serialize();
  const std::string& listed = list.devices(0).identity_key();
  if (listed.size() != primary.size() ||
      std::memcmp(listed.data(), primary.data(), primary.size()) != 0) {
    return Refused("the device list's primary is not the trusted identity");
  }
  if (list.version() < min_version) {
    return Refused("the device list is older than one already accepted (stale)");
  }
  return list;
}

wire::SignedDeviceList SignDeviceList(std::string_view account_id, uint64_t version,
                                      uint64_t timestamp_ms,
                                      std::vector<DeviceListEntryInput> entries,
                                      const signal::IdentityKeyPair& primary,
                                      crypto::Random& random) {
  std::sort(entries.begin(), entries.end(),
            [](const auto& a, const auto& b) { return a.device_id < b.device_id; });
  wire::DeviceList list;
  list.set_account_id(std::string(account_id));
  list.set_version(version);
  list.set_timestamp_ms(timestamp_ms);
  for (const DeviceListEntryInput& e : entries) {
    wire::DeviceListEntry* out = list.add_devices();
    out->set_device_id(e.device_id);
    const signal::SerializedPublicKey key = e.identity_key.Serialize();
    out->set_identity_key(key.data(), key.size());
  }
  wire::SignedDeviceList signed_list;
  signed_list.set_list(list.SerializeAsString());
  const Bytes signed_bytes = wire::DeviceListSignedBytes(signed_list.list());
  const crypto::Signature signature = crypto::Sign(primary.private_key, signed_bytes, random);
  signed_list.set_signature(signature.data(), signature.size());
  return signed_list;
}

std::optional<signal::IdentityKey> ListedIdentity(const wire::DeviceList& list,
                                                  uint32_t device_id) {
  for (const wire::DeviceListEntry& e : list.devices()) {
    if (e.device_id() != device_id) continue;
    auto key = signal::PublicKey::Deserialize(AsBytes(e.identity_key()));
    if (!key) return std::nullopt;
    return *key;
  }
  return std::nullopt;
}

}  // namespace sotto::client
