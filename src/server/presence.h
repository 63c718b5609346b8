// Presence: online / last seen per account, in memory only (never written to disk, so a
// restart forgets last-seen times), visible only to the accounts its owner allows
// (everyone, contacts = accounts the owner added, nobody) and pushed to subscribed
// connections on change. Visibility is checked when an update is pushed, so a change of
// the owner's setting or contacts takes effect at the next update.
//
// Thread-safety: thread-safe. Store reads happen outside the mutex.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "base/result.h"
#include "server/accounts.h"
#include "server/internal/session_link.h"
#include "store/store.h"

namespace sotto::server {

struct PresenceState {
  bool online = false;
  uint64_t last_seen_ms = 0;  // wall clock; 0 = not seen since the server started
};

class Presence {
 public:
  Presence(Accounts& accounts, store::AccountStore& store) : accounts_(accounts), store_(store) {}

  // A device of `account` connected / disconnected (calls balance per device).
  void DeviceOnline(const AccountId& account);
  void DeviceOffline(const AccountId& account, uint64_t now_ms);
  PresenceState Get(const AccountId& account) const;
  // Whether `viewer` may see `owner`'s presence.
  Result<bool> Visible(const AccountId& owner, const AccountId& viewer);

  // `link` (a connection of `viewer`) receives PresenceUpdate frames for `target`.
  void Subscribe(const AccountId& target, const AccountId& viewer,
                 std::shared_ptr<internal::SessionLink> link);
  void Unsubscribe(const AccountId& target, const internal::SessionLink* link);
  uint64_t updates_sent() const;

 private:
  struct Subscriber {
    AccountId viewer{};
    std::shared_ptr<internal::SessionLink> link;
  };
  struct Entry {
    uint32_t online_devices = 0;
    uint64_t last_seen_ms = 0;
    uint64_t version = 0;  // bumped on every change; orders concurrent publishes
    std::vector<Subscriber> subscribers;
  };
  void Publish(const AccountId& account);
  // Visible() once the owner's setting is known (contacts still need a store read).
  Result<bool> VisibleWith(store::PresenceVisibility setting, const AccountId& owner,
                           const AccountId& viewer);

  Accounts& accounts_;
  store::AccountStore& store_;
  mutable std::mutex mu_;
  std::unordered_map<AccountId, Entry, AccountIdHash> entries_;  // GUARDED_BY(mu_)
  uint64_t updates_sent_ = 0;                                     // GUARDED_BY(mu_)
};

}  // namespace sotto::server
