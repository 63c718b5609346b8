// Store interfaces the Signal library reads and writes: identities, one-time prekeys,
// signed prekeys, sessions and sender keys. Implementations decide durability (the
// client SDK keeps them in SQLite); in_memory_store.h has ones for tests.
//
// Thread-safety: implementations say; the library calls a store from one thread at a
// time per SessionCipher/GroupCipher.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "signal/keys.h"
#include "signal/session_record.h"

namespace sotto::signal {

enum class Direction : uint8_t { kSending, kReceiving };

// What SaveIdentity did, so callers can tell a user "safety number changed".
enum class IdentityChange : uint8_t { kUnchanged, kNew, kReplacedExisting };

class IdentityKeyStore {
 public:
  virtual ~IdentityKeyStore() = default;
  virtual Result<IdentityKeyPair> GetIdentityKeyPair() = 0;
  virtual Result<uint32_t> GetLocalRegistrationId() = 0;
  // Records `key` as the identity of `address`. Called after a session is set up, and
  // by the application when the user accepts a changed identity.
  virtual Result<IdentityChange> SaveIdentity(const ProtocolAddress& address,
                                              const IdentityKey& key) = 0;
  // Whether `key` may be used for `address`. The library refuses untrusted keys with
  // Err::kUntrustedIdentity and never saves them by itself.
  virtual Result<bool> IsTrustedIdentity(const ProtocolAddress& address, const IdentityKey& key,
                                         Direction direction) = 0;
  virtual Result<std::optional<IdentityKey>> GetIdentity(const ProtocolAddress& address) = 0;
};

class PreKeyStore {
 public:
  virtual ~PreKeyStore() = default;
  virtual Result<std::optional<PreKeyRecord>> LoadPreKey(uint32_t id) = 0;
  virtual Status StorePreKey(const PreKeyRecord& record) = 0;
  virtual Status RemovePreKey(uint32_t id) = 0;
};

class SignedPreKeyStore {
 public:
  virtual ~SignedPreKeyStore() = default;
  virtual Result<std::optional<SignedPreKeyRecord>> LoadSignedPreKey(uint32_t id) = 0;
  virtual Status StoreSignedPreKey(const SignedPreKeyRecord& record) = 0;
  virtual Status RemoveSignedPreKey(uint32_t id) = 0;
};

class SessionStore {
 public:
  virtual ~SessionStore() = default;
  virtual Result<std::optional<SessionRecord>> LoadSession(const ProtocolAddress& address) = 0;
  virtual Status StoreSession(const ProtocolAddress& address, const SessionRecord& record) = 0;
  virtual Status DeleteSession(const ProtocolAddress& address) = 0;
  // Device ids (other than none) with a session for `name`.
  virtual Result<std::vector<uint32_t>> GetDeviceSessions(std::string_view name) = 0;
};

// All four stores a pairwise session needs. The stores must outlive every user of
// this struct.
struct ProtocolStores {
  IdentityKeyStore& identity;
  PreKeyStore& prekeys;
  SignedPreKeyStore& signed_prekeys;
  SessionStore& sessions;
};

}  // namespace sotto::signal
