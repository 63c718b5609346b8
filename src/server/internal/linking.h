// The server's short-lived linking state, kept in memory only: provisioning ids (a relay
// address bound to one open connection, docs/devices.md "Provisioning channel") and
// single-use link tokens that let one new device join an account. Sans-I/O: the clock
// and randomness are passed in, so the limits are tested at their edges.
//
// Both are bounded per owner before the whole server's bound: provisioning ids per source
// address (they need no account), link tokens per account, so one user filling its share
// leaves room for everyone else.
//
// Thread-safety: thread-safe.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "base/result.h"
#include "crypto/random.h"
#include "net/socket.h"
#include "server/accounts.h"
#include "store/store.h"

namespace sotto::server::internal {

class SessionLink;

inline constexpr size_t kProvisionIdBytes = 16;
inline constexpr size_t kLinkTokenBytes = 32;

// Detail codes (Module::kServer, kResourceExhausted) of the refusals below.
enum class LinkingErr : uint16_t {
  kSourceFull = 7070,   // devices.max_provision_ids_per_ip open ids from this source
  kAccountFull = 7071,  // devices.max_link_tokens_per_account unexpired tokens of this account
  kServerFull = 7072,   // devices.max_provision_ids / devices.max_link_tokens, whole server
};

struct LinkingLimits {
  uint64_t provision_ttl_ms = 600'000;       // devices.provision_ttl_s
  size_t max_provision_ids = 10'000;         // devices.max_provision_ids (whole server)
  uint64_t link_token_ttl_ms = 300'000;      // devices.link_token_ttl_s
  size_t max_link_tokens = 10'000;           // devices.max_link_tokens (whole server)
  size_t max_provision_ids_per_source = 16;  // devices.max_provision_ids_per_ip
  size_t max_link_tokens_per_account = 4;    // devices.max_link_tokens_per_account
};

class Linking {
 public:
  explicit Linking(LinkingLimits limits) : limits_(limits) {}

  const LinkingLimits& limits() const { return limits_; }

  // A new provisioning id (kProvisionIdBytes random bytes) that reaches `link` until
  // now_ms + provision_ttl_ms, counted against `source` (the connection's net::IpKey).
  // Errors: kResourceExhausted with LinkingErr::kSourceFull or kServerFull.
  Result<std::string> OpenProvision(std::shared_ptr<SessionLink> link, const net::IpKey& source,
                                    uint64_t now_ms, crypto::Random& random);
  // Forgets `id` (its connection closed or opened another one).
  void CloseProvision(const std::string& id);
  // The connection behind `id`, if it is open and unexpired at now_ms.
  std::shared_ptr<SessionLink> FindProvision(const std::string& id, uint64_t now_ms);

  // A single-use token for `account`, valid until now_ms + link_token_ttl_ms.
  // Errors: kResourceExhausted with LinkingErr::kAccountFull or kServerFull.
  Result<std::string> IssueToken(const store::AccountId& account, uint64_t now_ms,
                                 crypto::Random& random);
  // The token's account, consuming the token; nullopt if unknown, used or expired.
  std::optional<store::AccountId> RedeemToken(const std::string& token, uint64_t now_ms);

  size_t provision_count();
  size_t token_count();

 private:
  struct Provision {
    std::shared_ptr<SessionLink> link;
    uint64_t expires_ms = 0;
    net::IpKey source;
  };
  struct Token {
    store::AccountId account{};
    uint64_t expires_ms = 0;
  };
  void PurgeLocked(uint64_t now_ms);
  void EraseProvisionLocked(std::unordered_map<std::string, Provision>::iterator it);
  void EraseTokenLocked(std::unordered_map<std::string, Token>::iterator it);

  LinkingLimits limits_;
  std::mutex mu_;
  std::unordered_map<std::string, Provision> provisions_;  // GUARDED_BY(mu_)
  std::unordered_map<std::string, Token> tokens_;          // GUARDED_BY(mu_)
  // The ids of each source and the tokens of each account (at most the per-owner limit
  // each, so checking one owner's expired entries is cheap). GUARDED_BY(mu_)
  std::unordered_map<net::IpKey, std::vector<std::string>, net::IpKeyHash> source_ids_;
  std::unordered_map<store::AccountId, std::vector<std::string>, AccountIdHash> account_tokens_;
};

}  // namespace sotto::server::internal
