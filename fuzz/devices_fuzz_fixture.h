// Fixed keys shared by the linked-device fuzz targets and make_seeds, so that seeds are
// validly signed / sealed and reach the deepest checks (docs/devices.md).
#pragma once

#include <string>

#include "client/provisioning.h"
#include "signal/keys.h"

namespace sotto::fuzz {

inline signal::IdentityKeyPair DevicesPrimary() {
  const Bytes raw(32, 0x42);
  auto pair = signal::KeyPair::FromPrivate(raw);
  return signal::IdentityKeyPair{pair->public_key, pair->private_key};
}
inline crypto::X25519Private ProvisionCompanionKey() {
  return crypto::X25519Private(Bytes(32, 0x17));
}
inline crypto::X25519Private ProvisionPrimaryKey() {
  return crypto::X25519Private(Bytes(32, 0x29));
}
inline const std::string kDevicesAccount(16, 'A');
inline const std::string kCompanionProvisionId(16, 'c');
inline const std::string kPrimaryProvisionId(16, 'p');

inline client::ProvisionKeys FixedProvisionKeys() {
  const crypto::X25519Public companion = crypto::PublicKeyOf(ProvisionCompanionKey());
  const crypto::X25519Public primary = crypto::PublicKeyOf(ProvisionPrimaryKey());
  return *client::DeriveProvisionKeys(ProvisionPrimaryKey(), companion, companion, primary);
}

}  // namespace sotto::fuzz
