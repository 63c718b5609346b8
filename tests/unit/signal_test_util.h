// Helpers shared by the Signal tests: a device with in-memory stores and a bundle.
#pragma once

#include <memory>
#include <string>

#include "signal/in_memory_store.h"
#include "signal/session_builder.h"
#include "signal/session_cipher.h"

namespace sotto::signal::testing {

struct Device {
  Device(std::string name_in, crypto::Random& random_in)
      : name(std::move(name_in)),
        random(random_in),
        store(IdentityKeyPair::Generate(random_in), GenerateRegistrationId(random_in)) {}

  ProtocolAddress address() const { return {name, 1}; }
  IdentityKeyPair identity() { return *store.identity.GetIdentityKeyPair(); }

  // Publishes a fresh signed prekey (id) and, if `with_prekey`, one-time prekey (id).
  PreKeyBundle MakeBundle(uint32_t signed_id, uint32_t prekey_id, bool with_prekey) {
    SignedPreKeyRecord spk = GenerateSignedPreKey(identity(), signed_id, 0, random);
    EXPECT_TRUE(store.signed_prekeys.StoreSignedPreKey(spk));
    PreKeyBundle b;
    b.registration_id = *store.identity.GetLocalRegistrationId();
    b.device_id = 1;
    if (with_prekey) {
      PreKeyRecord opk{prekey_id, KeyPair::Generate(random)};
      EXPECT_TRUE(store.prekeys.StorePreKey(opk));
      b.prekey_id = prekey_id;
      b.prekey = opk.key_pair.public_key;
    }
    b.signed_prekey_id = signed_id;
    b.signed_prekey = spk.key_pair.public_key;
    b.signed_prekey_signature = spk.signature;
    b.identity_key = identity().public_key;
    return b;
  }

  SessionCipher CipherFor(const Device& peer) {
    return SessionCipher(store.stores(), peer.address(), random);
  }

  std::string name;
  crypto::Random& random;
  InMemoryProtocolStore store;
};

}  // namespace sotto::signal::testing
