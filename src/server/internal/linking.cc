#include "server/internal/linking.h"

#include <iterator>

namespace sotto::server::internal {
namespace {

std::string RandomId(size_t n, crypto::Random& random) {
  std::string id(n, '\0');
  random.Fill(MutableByteSpan(reinterpret_cast<uint8_t*>(id.data()), id.size()));
  return id;
}

}  // namespace

void Linking::PurgeLocked(uint64_t now_ms) {
  std::erase_if(provisions_, [&](const auto& e) { return e.second.expires_ms <= now_ms; });
  std::erase_if(tokens_, [&](const auto& e) { return e.second.expires_ms <= now_ms; });
}

std::optional<std::string> Linking::OpenProvision(std::shared_ptr<SessionLink> link,
                                                  uint64_t now_ms, crypto::Random& random) {
  std::lock_guard<std::mutex> lock(mu_);
  if (provisions_.size() >= limits_.max_provision_ids) PurgeLocked(now_ms);
  if (provisions_.size() >= limits_.max_provision_ids) return std::nullopt;
  std::string id = RandomId(kProvisionIdBytes, random);
  provisions_[id] = Provision{std::move(link), now_ms + limits_.provision_ttl_ms};
  return id;
}

void Linking::CloseProvision(const std::string& id) {
  std::lock_guard<std::mutex> lock(mu_);
  provisions_.erase(id);
}

std::shared_ptr<SessionLink> Linking::FindProvision(const std::string& id, uint64_t now_ms) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = provisions_.find(id);
  if (it == provisions_.end()) return nullptr;
  if (it->second.expires_ms <= now_ms) {
    provisions_.erase(it);
    return nullptr;
  }
  return it->second.link;
}

std::optional<std::string> Linking::IssueToken(const store::AccountId& account, uint64_t now_ms,
                                               crypto::Random& random) {
  std::lock_guard<std::mutex> lock(mu_);
  if (tokens_.size() >= limits_.max_link_tokens) PurgeLocked(now_ms);
  if (tokens_.size() >= limits_.max_link_tokens) return std::nullopt;
  std::string token = RandomId(kLinkTokenBytes, random);
  tokens_[token] = Token{account, now_ms + limits_.link_token_ttl_ms};
  return token;
}

std::optional<store::AccountId> Linking::RedeemToken(const std::string& token, uint64_t now_ms) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = tokens_.find(token);
  if (it == tokens_.end()) return std::nullopt;
  const Token t = it->second;
  tokens_.erase(it);
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
