#include "server/presence.h"

#include <algorithm>

#include "server/internal/session.h"

namespace sotto::server {

void Presence::DeviceOnline(const AccountId& account) {
  bool changed = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    Entry& e = entries_[account];
    changed = e.online_devices++ == 0;
    if (changed) ++e.version;
  }
  if (changed) Publish(account);
}

void Presence::DeviceOffline(const AccountId& account, uint64_t now_ms) {
  bool changed = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = entries_.find(account);
    if (it == entries_.end() || it->second.online_devices == 0) return;
    changed = --it->second.online_devices == 0;
    if (changed) {
      it->second.last_seen_ms = now_ms;
      ++it->second.version;
    }
  }
  if (changed) Publish(account);
}

PresenceState Presence::Get(const AccountId& account) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = entries_.find(account);
  if (it == entries_.end()) return {};
  return {it->second.online_devices > 0, it->second.last_seen_ms};
}

Result<bool> Presence::Visible(const AccountId& owner, const AccountId& viewer) {
  if (owner == viewer) return true;
  SOTTO_ASSIGN_OR_RETURN(auto record, accounts_.Get(owner));
  if (record == nullptr) return false;
  return VisibleWith(record->presence, owner, viewer);
}

Result<bool> Presence::VisibleWith(store::PresenceVisibility setting, const AccountId& owner,
                                   const AccountId& viewer) {
  if (owner == viewer) return true;
  switch (setting) {
    case store::PresenceVisibility::kEveryone: return true;
    case store::PresenceVisibility::kNobody: return false;
    case store::PresenceVisibility::kContacts: return store_.HasContact(owner, viewer);
  }
  return false;
}

void Presence::Subscribe(const AccountId& target, const AccountId& viewer,
                         std::shared_ptr<internal::SessionLink> link) {
  std::lock_guard<std::mutex> lock(mu_);
  auto& subs = entries_[target].subscribers;
  for (const Subscriber& s : subs) {
    if (s.link == link) return;
  }
  subs.push_back({viewer, std::move(link)});
}

void Presence::Unsubscribe(const AccountId& target, const internal::SessionLink* link) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = entries_.find(target);
  if (it == entries_.end()) return;
  auto& subs = it->second.subscribers;
  subs.erase(std::remove_if(subs.begin(), subs.end(),
                            [&](const Subscriber& s) { return s.link.get() == link; }),
             subs.end());
}

uint64_t Presence::updates_sent() const {
  std::lock_guard<std::mutex> lock(mu_);
  return updates_sent_;
}

void Presence::Publish(const AccountId& account) {
  std::vector<Subscriber> subs;
  uint64_t version = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = entries_.find(account);
    if (it == entries_.end()) return;
    subs = it->second.subscribers;
    version = it->second.version;
  }
  // Visibility needs store reads: decide outside the lock (the owner's setting once)...
  auto record = accounts_.Get(account);
  if (!record || *record == nullptr) return;
  const store::PresenceVisibility setting = (*record)->presence;
  std::vector<Subscriber> visible;
  for (Subscriber& s : subs) {
    auto allowed = VisibleWith(setting, account, s.viewer);
    if (allowed && *allowed) visible.push_back(std::move(s));
  }
  // ...then post under it, and only if no later change happened meanwhile (that one's
  // Publish sends the newer state), so subscribers never see states out of order.
  std::lock_guard<std::mutex> lock(mu_);
  auto it = entries_.find(account);
  if (it == entries_.end() || it->second.version != version) return;
  const PresenceState state{it->second.online_devices > 0, it->second.last_seen_ms};
  for (const Subscriber& s : visible) {
    s.link->Post([account, state](internal::SessionContext& ctx) {
      wire::Frame frame;
      wire::PresenceUpdate* update = frame.mutable_presence();
      update->set_account_id(account.data(), account.size());
      update->set_online(state.online);
      update->set_last_seen_ms(state.last_seen_ms);
      ctx.protocol.SendFrame(ctx.state, frame, ctx.out);
    });
  }
  updates_sent_ += visible.size();
}

}  // namespace sotto::server
