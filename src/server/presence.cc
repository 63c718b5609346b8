#include "server/presence.h"

#include <algorithm>

#include "server/internal/session.h"

namespace sotto::server {

void Presence::DeviceOnline(const AccountId& account) {
  bool changed = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    changed = entries_[account].online_devices++ == 0;
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
    if (changed) it->second.last_seen_ms = now_ms;
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
  switch (record->presence) {
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
  PresenceState state;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = entries_.find(account);
    if (it == entries_.end()) return;
    subs = it->second.subscribers;
    state = {it->second.online_devices > 0, it->second.last_seen_ms};
  }
  size_t sent = 0;
  for (const Subscriber& s : subs) {
    auto visible = Visible(account, s.viewer);
    if (!visible || !*visible) continue;
    ++sent;
    s.link->Post([account, state](internal::SessionContext& ctx) {
      wire::Frame frame;
      wire::PresenceUpdate* update = frame.mutable_presence();
      update->set_account_id(account.data(), account.size());
      update->set_online(state.online);
      update->set_last_seen_ms(state.last_seen_ms);
      ctx.protocol.SendFrame(ctx.state, frame, ctx.out);
    });
  }
  std::lock_guard<std::mutex> lock(mu_);
  updates_sent_ += sent;
}

}  // namespace sotto::server
