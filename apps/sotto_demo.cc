// sotto-demo: shows the protocol library working end to end in one process, until the
// server exists. Two devices, "alice" and "bob", each with their own in-memory stores:
// Bob publishes a prekey bundle, Alice starts a session from it (X3DH), they exchange
// messages over the Double Ratchet, then Bob starts a group sender key for Alice, and
// both compare safety numbers. Nothing crosses a network; this is not the server.
#include <cstdio>
#include <string>

#include "signal/fingerprint.h"
#include "signal/group.h"
#include "signal/in_memory_store.h"
#include "signal/session_builder.h"
#include "signal/session_cipher.h"

namespace {

using namespace sotto;          // NOLINT(google-build-using-namespace): a demo
using namespace sotto::signal;  // NOLINT(google-build-using-namespace)

int Fail(const char* what, const Error& e) {
  (void)std::fprintf(stderr, "demo: %s failed: %s\n", what, e.ToString().c_str());
  return 1;
}

}  // namespace

int main() {
  crypto::Random& random = crypto::SystemRandom();
  InMemoryProtocolStore alice(IdentityKeyPair::Generate(random), GenerateRegistrationId(random));
  InMemoryProtocolStore bob(IdentityKeyPair::Generate(random), GenerateRegistrationId(random));
  const ProtocolAddress alice_addr{"alice", 1};
  const ProtocolAddress bob_addr{"bob", 1};

  // Bob publishes a bundle: a signed prekey and one one-time prekey.
  IdentityKeyPair bob_identity = *bob.identity.GetIdentityKeyPair();
  SignedPreKeyRecord spk = GenerateSignedPreKey(bob_identity, 1, 0, random);
  PreKeyRecord opk = GeneratePreKeys(100, 1, random).front();
  (void)bob.signed_prekeys.StoreSignedPreKey(spk);
  (void)bob.prekeys.StorePreKey(opk);
  PreKeyBundle bundle;
  bundle.registration_id = *bob.identity.GetLocalRegistrationId();
  bundle.device_id = 1;
  bundle.prekey_id = opk.id;
  bundle.prekey = opk.key_pair.public_key;
  bundle.signed_prekey_id = spk.id;
  bundle.signed_prekey = spk.key_pair.public_key;
  bundle.signed_prekey_signature = spk.signature;
  bundle.identity_key = bob_identity.public_key;

  if (auto s = ProcessPreKeyBundle(alice.stores(), bob_addr, bundle, random); !s) {
    return Fail("X3DH", s.error());
  }
  std::printf("alice: session with bob set up from his prekey bundle (X3DH)\n");

  SessionCipher alice_cipher(alice.stores(), bob_addr, random);
  SessionCipher bob_cipher(bob.stores(), alice_addr, random);
  const char* lines[] = {"hi bob", "hi alice", "how are you?", "encrypted, thanks"};
  for (int i = 0; i < 4; ++i) {
    const bool from_alice = i % 2 == 0;
    SessionCipher& sender = from_alice ? alice_cipher : bob_cipher;
    SessionCipher& receiver = from_alice ? bob_cipher : alice_cipher;
    auto ct = sender.Encrypt(AsBytes(lines[i]));
    if (!ct) return Fail("encrypt", ct.error());
    auto pt = receiver.Decrypt(ct->bytes, ct->type);
    if (!pt) return Fail("decrypt", pt.error());
    std::printf("%s -> %s: %zu-byte %s, decrypted \"%s\"\n", from_alice ? "alice" : "bob",
                from_alice ? "bob" : "alice", ct->bytes.size(),
                ct->type == MessageType::kPreKey ? "PreKeySignalMessage" : "SignalMessage",
                std::string(AsString(*pt)).c_str());
  }

  const SenderKeyName bob_group{"demo-group", bob_addr};
  auto skdm = CreateSenderKeyDistribution(bob.sender_keys, bob_group, random);
  if (!skdm) return Fail("sender key", skdm.error());
  if (auto s = ProcessSenderKeyDistribution(alice.sender_keys, bob_group, *skdm); !s) {
    return Fail("sender key distribution", s.error());
  }
  GroupCipher bob_group_cipher(bob.sender_keys, bob_group, random);
  GroupCipher alice_group_cipher(alice.sender_keys, bob_group, random);
  auto gct = bob_group_cipher.Encrypt(AsBytes("hello group"));
  if (!gct) return Fail("group encrypt", gct.error());
  auto gpt = alice_group_cipher.Decrypt(*gct);
  if (!gpt) return Fail("group decrypt", gpt.error());
  std::printf("bob -> group: %zu-byte SenderKeyMessage, alice decrypted \"%s\"\n", gct->size(),
              std::string(AsString(*gpt)).c_str());

  IdentityKeyPair alice_identity = *alice.identity.GetIdentityKeyPair();
  auto fa = ComputeFingerprint(kFingerprintIterations, "alice", alice_identity.public_key, "bob",
                               bob_identity.public_key);
  auto fb = ComputeFingerprint(kFingerprintIterations, "bob", bob_identity.public_key, "alice",
                               alice_identity.public_key);
  if (!fa || !fb) return 1;
  std::printf("safety number (alice): %s\nsafety number (bob):   %s\n", fa->displayable.c_str(),
              fb->displayable.c_str());
  auto match = CompareScannable(fa->scannable, fb->scannable);
  std::printf("scannable fingerprints match: %s\n", match && *match ? "yes" : "no");
  return match && *match && fa->displayable == fb->displayable ? 0 : 1;
}
