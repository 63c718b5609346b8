#include "server/internal/linking.h"

#include <algorithm>
#include <iterator>

namespace sotto::server::internal {
namespace {

std::string RandomId(size_t n, crypto::Random& random) {
  std::string id(n, '\0');
  random.Fill(MutableByteSpan(reinterpret_cast<uint8_t*>(id.data()), id.size()));
  return id;
}

tl::unexpected<Error> Refused(LinkingErr detail, const char* message) {
  return MakeError(Code::kResourceExhausted, Module::kServer, static_cast<uint16_t>(detail),
                   message);
}

template <typename Map, typename Key>
void RemoveFromOwner(Map& owners, const Key& owner, const std::string& id) {
  auto it = owners.find(owner);
  if (it == owners.end()) return;
  std::erase(it->second, id);
  if (it->second.empty()) owners.erase(it);
}

}  // namespace

void Linking::EraseProvisionLocked(std::unordered_map<std::string, Provision>::iterator it) {
  RemoveFromOwner(source_ids_, it->second.source, it->first);
  provisions_.erase(it);
}

void Linking::EraseTokenLocked(std::unordered_map<std::string, Token>::iterator it) {
  RemoveFromOwner(account_tokens_, it->second.account, it->first);
  tokens_.erase(it);
}

void Linking::PurgeLocked(uint64_t now_ms) {
  for (auto it = provisions_.begin(); it != provisions_.end();) {
    auto next = std::next(it);
    if (it->second.expires_ms <= now_ms) EraseProvisionLocked(it);
    it = next;
  }
  for (auto it = tokens_.begin(); it != tokens_.end();) {
    auto next = std::next(it);
    if (it->second.expires_ms <= now_ms) EraseTokenLocked(it);
    it = next;
  }
}

Result<std::string> Linking::OpenProvision(std::shared_ptr<SessionLink> link,
                                           const net::IpKey& source, uint64_t now_ms,
                                           crypto::Random& random) {
  std::lock_guard<std::mutex> lock(mu_);
  if (auto owned = source_ids_.find(source);
      owned != source_ids_.end() && owned->second.size() >= limits_.max_provision_ids_per_source) {
    const std::vector<std::string> ids = owned->second;  // erasing edits the list
    for (const std::string& id : ids) {
      auto it = provisions_.find(id);
      if (it != provisions_.end() && it->second.expires_ms <= now_ms) EraseProvisionLocked(it);
    }
    owned = source_ids_.find(source);
    if (owned != source_ids_.end() &&
        owned->second.size() >= limits_.max_provision_ids_per_source) {
      return Refused(
          LinkingErr::kSourceFull,
          "too many open provisioning ids from this source (devices.max_provision_ids_per_ip)");
    }
  }
  if (provisions_.size() >= limits_.max_provision_ids) PurgeLocked(now_ms);
  if (provisions_.size() >= limits_.max_provision_ids) {
    return Refused(LinkingErr::kServerFull,
                   "too many open provisioning ids (devices.max_provision_ids)");
  }
  std::string id = RandomId(kProvisionIdBytes, random);
  provisions_[id] = Provision{std::move(link), now_ms + limits_.provision_ttl_ms, source};
  source_ids_[source].push_back(id);
  return id;
}

void Linking::CloseProvision(const std::string& id) {
  std::lock_guard<std::mutex> lock(mu_);
  if (auto it = provisions_.find(id); it != provisions_.end()) EraseProvisionLocked(it);
}

std::shared_ptr<SessionLink> Linking::FindProvision(const std::string& id, uint64_t now_ms) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = provisions_.find(id);
  if (it == provisions_.end()) return nullptr;
  if (it->second.expires_ms <= now_ms) {
    EraseProvisionLocked(it);
    return nullptr;
  }
  return it->second.link;
}

Result<std::string> Linking::IssueToken(const store::AccountId& account, uint64_t now_ms,
                                        crypto::Random& random) {
  std::lock_guard<std::mutex> lock(mu_);
  if (auto owned = account_tokens_.find(account);
      owned != account_tokens_.end() &&
      owned->second.size() >= limits_.max_link_tokens_per_account) {
    const std::vector<std::string> ids = owned->second;
    for (const std::string& id : ids) {
      auto it = tokens_.find(id);
      if (it != tokens_.end() && it->second.expires_ms <= now_ms) EraseTokenLocked(it);
    }
    owned = account_tokens_.find(account);
    if (owned != account_tokens_.end() &&
        owned->second.size() >= limits_.max_link_tokens_per_account) {
      return Refused(LinkingErr::kAccountFull,
                     "too many unexpired link tokens for this account "
                     "(devices.max_link_tokens_per_account)");
    }
  }
  if (tokens_.size() >= limits_.max_link_tokens) PurgeLocked(now_ms);
  if (tokens_.size() >= limits_.max_link_tokens) {
    return Refused(LinkingErr::kServerFull, "too many link tokens (devices.max_link_tokens)");
  }
  std::string token = RandomId(kLinkTokenBytes, random);
  tokens_[token] = Token{account, now_ms + limits_.link_token_ttl_ms};
  account_tokens_[account].push_back(token);
  return token;
}

std::optional<store::AccountId> Linking::RedeemToken(const std::string& token, uint64_t now_ms) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = tokens_.find(token);
  if (it == tokens_.end()) return std::nullopt;
  const Token t = it->second;
  EraseTokenLocked(it);
  if (t.expires_ms <= now_ms) return std::nullopt;
  return t.account;
}

size_t Linking::provision_count() {
  std::lock_guard<std::mutex> lock(mu_);
  return provisions_.size();
}

size_t Linking::token_count() {
  std::lock_guard<std::mutex> lock(mu_);
  return tokens_.size();
}

}  // namespace sotto::server::internal
