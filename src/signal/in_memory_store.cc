#include "signal/in_memory_store.h"

namespace sotto::signal {

Result<IdentityChange> InMemoryIdentityKeyStore::SaveIdentity(const ProtocolAddress& address,
                                                              const IdentityKey& key) {
  auto [it, inserted] = known_.try_emplace(address, key);
  if (inserted) return IdentityChange::kNew;
  if (it->second == key) return IdentityChange::kUnchanged;
  it->second = key;
  return IdentityChange::kReplacedExisting;
}

Result<bool> InMemoryIdentityKeyStore::IsTrustedIdentity(const ProtocolAddress& address,
                                                         const IdentityKey& key, Direction) {
  auto it = known_.find(address);
  return it == known_.end() || it->second == key;
}

Result<std::optional<IdentityKey>> InMemoryIdentityKeyStore::GetIdentity(
    const ProtocolAddress& address) {
  auto it = known_.find(address);
  if (it == known_.end()) return std::optional<IdentityKey>();
  return std::optional<IdentityKey>(it->second);
}

Result<std::optional<PreKeyRecord>> InMemoryPreKeyStore::LoadPreKey(uint32_t id) {
  auto it = keys_.find(id);
  if (it == keys_.end()) return std::optional<PreKeyRecord>();
  return std::optional<PreKeyRecord>(it->second);
}
Status InMemoryPreKeyStore::StorePreKey(const PreKeyRecord& record) {
  keys_.insert_or_assign(record.id, record);
  return Ok();
}
Status InMemoryPreKeyStore::RemovePreKey(uint32_t id) {
  keys_.erase(id);
  return Ok();
}

Result<std::optional<SignedPreKeyRecord>> InMemorySignedPreKeyStore::LoadSignedPreKey(uint32_t id) {
  auto it = keys_.find(id);
  if (it == keys_.end()) return std::optional<SignedPreKeyRecord>();
  return std::optional<SignedPreKeyRecord>(it->second);
}
Status InMemorySignedPreKeyStore::StoreSignedPreKey(const SignedPreKeyRecord& record) {
  keys_.insert_or_assign(record.id, record);
  return Ok();
}
Status InMemorySignedPreKeyStore::RemoveSignedPreKey(uint32_t id) {
  keys_.erase(id);
  return Ok();
}

Result<std::optional<SessionRecord>> InMemorySessionStore::LoadSession(
    const ProtocolAddress& address) {
  auto it = records_.find(address);
  if (it == records_.end()) return std::optional<SessionRecord>();
  SOTTO_ASSIGN_OR_RETURN(SessionRecord record, SessionRecord::Deserialize(it->second));
  return std::optional<SessionRecord>(std::move(record));
}
Status InMemorySessionStore::StoreSession(const ProtocolAddress& address,
                                          const SessionRecord& record) {
  records_.insert_or_assign(address, record.Serialize());
  return Ok();
}
Status InMemorySessionStore::DeleteSession(const ProtocolAddress& address) {
  records_.erase(address);
  return Ok();
}
Result<std::vector<uint32_t>> InMemorySessionStore::GetDeviceSessions(std::string_view name) {
  std::vector<uint32_t> devices;
  for (const auto& [address, bytes] : records_) {
    if (address.name == name) devices.push_back(address.device_id);
  }
  return devices;
}

Result<std::optional<SenderKeyRecord>> InMemorySenderKeyStore::LoadSenderKey(
    const SenderKeyName& name) {
  auto it = records_.find(name);
  if (it == records_.end()) return std::optional<SenderKeyRecord>();
  SOTTO_ASSIGN_OR_RETURN(SenderKeyRecord record, SenderKeyRecord::Deserialize(it->second));
  return std::optional<SenderKeyRecord>(std::move(record));
}
Status InMemorySenderKeyStore::StoreSenderKey(const SenderKeyName& name,
                                              const SenderKeyRecord& record) {
  records_.insert_or_assign(name, record.Serialize());
  return Ok();
}

}  // namespace sotto::signal
