// The server's short-lived linking state, kept in memory only: provisioning ids (a relay
// address bound to one open connection, docs/devices.md "Provisioning channel") and
// single-use link tokens that let one new device join an account. Sans-I/O: the clock
// and randomness are passed in, so the limits are tested at their edges.
//
// Thread-safety: thread-safe.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

#include "crypto/random.h"
#include "store/store.h"

namespace sotto::server::internal {

class SessionLink;

inline constexpr size_t kProvisionIdBytes = 16;
inline constexpr size_t kLinkTokenBytes = 32;

struct LinkingLimits {
  uint64_t provision_ttl_ms = 600'000;   // devices.provision_ttl_s
  size_t max_provision_ids = 10'000;     // devices.max_provision_ids (whole server)
  uint64_t link_token_ttl_ms = 300'000;  // devices.link_token_ttl_s
  size_t max_link_tokens = 10'000;       // devices.max_link_tokens (whole server)
};

class Linking {
 public:
  explicit Linking(LinkingLimits limits) : limits_(limits) {}

  const LinkingLimits& limits() const { return limits_; }

  // A new provisioning id (kProvisionIdBytes random bytes) that reaches `link` until
  // now_ms + provision_ttl_ms. nullopt when max_provision_ids unexpired ids exist.
  std::optional<std::string> OpenProvision(std::shared_ptr<SessionLink> link, uint64_t now_ms,
                                           crypto::Random& random);
  // Forgets `id` (its connection closed or opened another one).
  void CloseProvision(const std::string& id);
  // The connection behind `id`, if it is open and unexpired at now_ms.
  std::shared_ptr<SessionLink> FindProvision(const std::string& id, uint64_t now_ms);

  // A single-use token for `account`, valid until now_ms + link_token_ttl_ms. nullopt when
  // max_link_tokens unexpired tokens exist.
  std::optional<std::string> IssueToken(const store::AccountId& account, uint64_t now_ms,
                                        crypto::Random& random);
  // The token's account, consuming the token; nullopt if unknown, used or expired.
  std::optional<store::AccountId> RedeemToken(const std::string& token, uint64_t now_ms);

  size_t provision_count();
  size_t token_count();

 private:
  struct Provision {
    std::shared_ptr<SessionLink> link;
    uint64_t expires_ms = 0;
  };
  struct Token {
    store::AccountId account{};
    uint64_t expires_ms = 0;
  };
  void PurgeLocked(uint64_t now_ms);

  LinkingLimits limits_;
  std::mutex mu_;
  std::unordered_map<std::string, Provision> provisions_;  // GUARDED_BY(mu_)
  std::unordered_map<std::string, Token> tokens_;          // GUARDED_BY(mu_)
};

}  // namespace sotto::server::internal
