// In-memory implementations of every store in store.h and group.h, for tests, demos
// and benchmarks. Sessions and sender keys are kept serialized, so each load and store
// does the same parse/serialize round trip a durable store would.
//
// Identity trust is "trust on first use": an address's first key is trusted; a
// different key later is untrusted until the application calls SaveIdentity.
//
// Thread-safety: externally synchronized.
#pragma once

#include <map>
#include <string>

#include "signal/group.h"
#include "signal/store.h"

namespace sotto::signal {

class InMemoryIdentityKeyStore final : public IdentityKeyStore {
 public:
  InMemoryIdentityKeyStore(IdentityKeyPair identity, uint32_t registration_id)
      : identity_(std::move(identity)), registration_id_(registration_id) {}
  Result<IdentityKeyPair> GetIdentityKeyPair() override { return identity_; }
  Result<uint32_t> GetLocalRegistrationId() override { return registration_id_; }
  Result<IdentityChange> SaveIdentity(const ProtocolAddress& address,
                                      const IdentityKey& key) override;
  Result<bool> IsTrustedIdentity(const ProtocolAddress& address, const IdentityKey& key,
                                 Direction direction) override;
  Result<std::optional<IdentityKey>> GetIdentity(const ProtocolAddress& address) override;

 private:
  IdentityKeyPair identity_;
  uint32_t registration_id_;
  std::map<ProtocolAddress, IdentityKey> known_;
};

class InMemoryPreKeyStore final : public PreKeyStore {
 public:
  Result<std::optional<PreKeyRecord>> LoadPreKey(uint32_t id) override;
  Status StorePreKey(const PreKeyRecord& record) override;
  Status RemovePreKey(uint32_t id) override;
  size_t size() const { return keys_.size(); }

 private:
  std::map<uint32_t, PreKeyRecord> keys_;
};

class InMemorySignedPreKeyStore final : public SignedPreKeyStore {
 public:
  Result<std::optional<SignedPreKeyRecord>> LoadSignedPreKey(uint32_t id) override;
  Status StoreSignedPreKey(const SignedPreKeyRecord& record) override;
  Status RemoveSignedPreKey(uint32_t id) override;

 private:
  std::map<uint32_t, SignedPreKeyRecord> keys_;
};

class InMemorySessionStore final : public SessionStore {
 public:
  Result<std::optional<SessionRecord>> LoadSession(const ProtocolAddress& address) override;
  Status StoreSession(const ProtocolAddress& address, const SessionRecord& record) override;
  Status DeleteSession(const ProtocolAddress& address) override;
  Result<std::vector<uint32_t>> GetDeviceSessions(std::string_view name) override;

 private:
  std::map<ProtocolAddress, Bytes> records_;
};

class InMemorySenderKeyStore final : public SenderKeyStore {
 public:
  Result<std::optional<SenderKeyRecord>> LoadSenderKey(const SenderKeyName& name) override;
  Status StoreSenderKey(const SenderKeyName& name, const SenderKeyRecord& record) override;

 private:
  std::map<SenderKeyName, Bytes> records_;
};

// One device's complete set of in-memory stores.
struct InMemoryProtocolStore {
  InMemoryProtocolStore(IdentityKeyPair identity_key_pair, uint32_t registration_id)
      : identity(std::move(identity_key_pair), registration_id) {}
  ProtocolStores stores() { return ProtocolStores{identity, prekeys, signed_prekeys, sessions}; }

  InMemoryIdentityKeyStore identity;
  InMemoryPreKeyStore prekeys;
  InMemorySignedPreKeyStore signed_prekeys;
  InMemorySessionStore sessions;
  InMemorySenderKeyStore sender_keys;
};

}  // namespace sotto::signal
