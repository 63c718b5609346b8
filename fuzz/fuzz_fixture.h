// A deterministic two-device setup shared by the fuzz targets and the seed generator
// (make_seeds.cc), so that seeds decrypt against the same state the targets build.
#pragma once

#include <memory>

#include "signal/group.h"
#include "signal/in_memory_store.h"
#include "signal/session_builder.h"
#include "signal/session_cipher.h"

namespace sotto::fuzz {

struct Fixture {
  Fixture()
      : random(20261128),
        alice(signal::IdentityKeyPair::Generate(random), 11),
        bob(signal::IdentityKeyPair::Generate(random), 22) {
    using namespace signal;  // NOLINT(google-build-using-namespace)
    IdentityKeyPair bob_identity = *bob.identity.GetIdentityKeyPair();
    SignedPreKeyRecord spk = GenerateSignedPreKey(bob_identity, 5, 0, random);
    (void)bob.signed_prekeys.StoreSignedPreKey(spk);
    for (uint32_t id = 1; id <= 3; ++id) {
      (void)bob.prekeys.StorePreKey(PreKeyRecord{id, KeyPair::Generate(random)});
    }
    PreKeyRecord opk = **bob.prekeys.LoadPreKey(1);
    first_prekey = opk;
    bundle = PreKeyBundle{22, 1, opk.id, opk.key_pair.public_key, spk.id,
                          spk.key_pair.public_key, spk.signature, bob_identity.public_key};
    (void)ProcessPreKeyBundle(alice.stores(), kBob, bundle, random);
    first = *SessionCipher(alice.stores(), kBob, random).Encrypt(AsBytes("first"));
    // Bob's stores before the first message: the PreKeySignalMessage target starts here.
    (void)SessionCipher(bob.stores(), kAlice, random).Decrypt(first.bytes, first.type);
    auto reply = *SessionCipher(bob.stores(), kAlice, random).Encrypt(AsBytes("reply"));
    (void)SessionCipher(alice.stores(), kBob, random).Decrypt(reply.bytes, reply.type);
    bob_record = **bob.sessions.LoadSession(kAlice);

    own_sender_key = *CreateSenderKeyDistribution(alice.sender_keys, kGroup, random);
    (void)ProcessSenderKeyDistribution(bob.sender_keys, kGroup, own_sender_key);
    bob_sender_record = **bob.sender_keys.LoadSenderKey(kGroup);
  }

  inline static const signal::ProtocolAddress kAlice{"alice", 1};
  inline static const signal::ProtocolAddress kBob{"bob", 1};
  inline static const signal::SenderKeyName kGroup{"g", {"alice", 1}};

  crypto::DeterministicRandom random;
  signal::InMemoryProtocolStore alice;
  signal::InMemoryProtocolStore bob;
  signal::PreKeyBundle bundle;
  signal::PreKeyRecord first_prekey;  // consumed by the first message; kept for replays
  signal::CiphertextMessage first;
  signal::SessionRecord bob_record;  // after the first exchange
  signal::SenderKeyDistributionMessage own_sender_key;
  signal::SenderKeyRecord bob_sender_record;
};

}  // namespace sotto::fuzz
