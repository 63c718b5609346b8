// Limits of the core that one user must not lift by using many connections or accounts
// (part of ServerCore; issue 12): handle lookups per account, per source address and
// server-wide, and bundle fetches per requester with a lower rate for young accounts.
// The per-target prekey budget is in core_keys.cc. Config: docs/config.md [lookups],
// [prekeys].
#include "server/core.h"
#include "server/internal/core_util.h"
#include "server/internal/session.h"
#include "server/metrics.h"

namespace sotto::server {

using internal::Fail;
using internal::SessionContext;

bool ServerCore::LookupAllowed(SessionContext& ctx, wire::Response& response, uint64_t now_ms) {
  const internal::SessionState& s = ctx.state;
  const LookupConfig& l = options_.lookups;
  auto refuse = [&](const char* reason) {
    metrics_.lookups_refused.fetch_add(1, std::memory_order_relaxed);
    Fail(response, wire::STATUS_RATE_LIMITED, reason);
    return false;
  };
  if (!lookup_accounts_.Allow(s.device.account, now_ms, l.account_rate)) {
    return refuse("too many handle lookups for this account (lookups.account_rate)");
  }
  // A later limit's refusal gives the earlier tokens back: a user sharing an address or
  // the server with an abuser does not pay for the abuser.
  if (!lookup_sources_.Allow(s.peer, now_ms, l.ip_rate)) {
    lookup_accounts_.Refund(s.device.account, l.account_rate);
    return refuse("too many handle lookups from your address (lookups.ip_rate)");
  }
  if (!lookup_global_.Allow(now_ms, l.global_rate)) {
    lookup_accounts_.Refund(s.device.account, l.account_rate);
    lookup_sources_.Refund(s.peer, l.ip_rate);
    return refuse("too many handle lookups on this server right now (lookups.global_rate)");
  }
  return true;
}

bool ServerCore::BundleAllowed(SessionContext& ctx, wire::Response& response, uint64_t now_ms) {
  const internal::SessionState& s = ctx.state;
  const PreKeyConfig& p = options_.prekeys;
  if (!bundle_requesters_.Allow(s.device.account, now_ms, p.bundle_rate)) {
    metrics_.bundles_rate_limited.fetch_add(1, std::memory_order_relaxed);
    Fail(response, wire::STATUS_RATE_LIMITED, "too many bundle fetches (prekeys.bundle_rate)");
    return false;
  }
  if (p.new_account_age_s == 0 || p.new_account_bundle_rate.per_second <= 0) return true;
  // The account's age is its primary's registration time (a re-registration starts over).
  auto record = accounts_.Get(s.device.account);
  if (!record || *record == nullptr) return true;  // the fetch itself reports store trouble
  const store::DeviceRecord* primary = (*record)->FindDevice(store::kPrimaryDeviceId);
  if (primary == nullptr) return true;
  const uint64_t young_until = primary->created_ms + uint64_t{p.new_account_age_s} * 1'000;
  if (store::SystemClockMs() >= young_until) return true;
  if (!bundle_new_accounts_.Allow(s.device.account, now_ms, p.new_account_bundle_rate)) {
    bundle_requesters_.Refund(s.device.account, p.bundle_rate);
    metrics_.bundles_new_account_limited.fetch_add(1, std::memory_order_relaxed);
    Fail(response, wire::STATUS_RATE_LIMITED,
         "too many bundle fetches for an account this new (prekeys.new_account_bundle_rate, "
         "prekeys.new_account_age_s)");
    return false;
  }
  return true;
}

void ServerCore::AppendLimitPrometheus(std::string& out) const {
  auto counter = [&](const char* name, const char* help, const std::atomic<uint64_t>& c) {
    AppendPrometheusSeries(out, name, "counter", help, c.load(std::memory_order_relaxed));
  };
  counter("sotto_guesses_refused_total",
          "registrations refused by registration.ip_guess_rate or global_guess_rate",
          metrics_.guesses_refused);
  counter("sotto_lookups_refused_total", "handle lookups refused by lookups.*",
          metrics_.lookups_refused);
  counter("sotto_bundles_new_account_limited_total",
          "bundle fetches refused by prekeys.new_account_bundle_rate",
          metrics_.bundles_new_account_limited);
  counter("sotto_prekeys_withheld_total",
          "bundles handed out without a one-time prekey by prekeys.target_rate",
          metrics_.prekeys_withheld);
  counter("sotto_link_tokens_refused_total", "link tokens refused by devices.max_link_tokens*",
          metrics_.link_tokens_refused);
  counter("sotto_provision_ids_refused_total",
          "provisioning ids refused by devices.max_provision_ids*", metrics_.provision_ids_refused);
  counter("sotto_media_tokens_refused_total",
          "upload tokens refused by media.max_tokens_per_account or max_pending_tokens",
          metrics_.media_tokens_refused);
}

}  // namespace sotto::server
