// Requests whose work waits on the store, run on the core's blocking-work pool instead of
// the connection's loop (docs/server.md "Threads"): the loop checks what needs no store
// (input, rate limits), copies what the job needs from the session, and the job answers
// through the connection's link; a session change (registration) is made on the loop, when
// the response is sent. Part of ServerCore; the key and device handlers that use it are in
// core_keys.cc and core_devices.cc.
#include <spdlog/spdlog.h>

#include "crypto/random.h"
#include "net/http_client.h"
#include "server/core.h"
#include "server/internal/blocking_pool.h"
#include "server/internal/core_util.h"
#include "server/internal/linking.h"
#include "server/internal/session.h"

namespace sotto::server {

using internal::Fail;
using internal::FailFromError;
using internal::SessionContext;
using internal::ToAccountId;

bool ServerCore::RunBlocking(SessionContext& ctx, const wire::Request& request,
                             wire::Response& response, BlockingJob job,
                             const std::function<bool(wire::Response&)>& admit) {
  std::optional<internal::BlockingPool::Slot> slot = pool_->Reserve();
  if (!slot) {
    metrics_.blocking_jobs_refused.fetch_add(1, std::memory_order_relaxed);
    Fail(response, wire::STATUS_BUSY,
         "server busy: store.io_queue_depth requests wait for the store; retry soon");
    return true;
  }
  if (admit && !admit(response)) return true;  // the slot goes back unused
  internal::SessionState& s = ctx.state;
  std::shared_ptr<internal::SessionLink> link;
  if (s.messaging) {
    link = s.messaging->link;
  } else {
    if (!s.link) s.link = ctx.out.MakeLink();
    link = s.link;
  }
  pool_->Submit(
      std::move(*slot), [link = std::move(link), id = request.id(), job = std::move(job)] {
        wire::Frame frame;
        wire::Response* r = frame.mutable_response();
        r->set_id(id);
        BlockingFinish finish;
        if (!job(*r, finish)) return;
        link->Post([frame = std::move(frame), finish = std::move(finish)](SessionContext& c) {
          if (finish) {
            finish(c, frame);
          } else {
            c.protocol.SendFrame(c.state, frame, c.out);
          }
        });
      });
  return false;
}

void ServerCore::FinishAuthentication(SessionContext& ctx, const wire::Frame& frame,
                                      const DeviceAddress& device) {
  internal::SessionState& s = ctx.state;
  const bool was_authenticated = s.authenticated;
  if (!was_authenticated && frame.response().status() == wire::STATUS_OK) {
    ctx.protocol.Authenticate(s, device, ctx.out);
  }
  const bool sent = ctx.protocol.SendFrame(s, frame, ctx.out);
  // Its messaging starts after the response (as SessionProtocol::OnRequest does for an
  // answer sent at once); not on a connection the write just closed.
  if (sent && !was_authenticated && s.authenticated && !s.messaging) OnOnline(ctx);
}

bool ServerCore::HandleRegister(SessionContext& ctx, const wire::Request& request,
                                wire::Response& response) {
  const wire::RegisterRequest& r = request.register_();
  internal::SessionState& s = ctx.state;
  if (!IsE164(r.handle())) {
    Fail(response, wire::STATUS_BAD_REQUEST, "handle must be an E.164 number (+ and 8..15 digits)");
    return true;
  }
  const uint64_t now = store::SystemClockMs();
  // The code is checked (and used up) on the loop, once the pool has room for the rest.
  auto admit = [&](wire::Response& refused) {
    auto checked = codes_.Check(r.handle(), r.code(), s.peer, now);
    if (checked) return true;
    const auto detail = static_cast<VerifyErr>(checked.error().detail);
    if (detail == VerifyErr::kSourceGuessLimited) {
      metrics_.guesses_refused.fetch_add(1, std::memory_order_relaxed);
      Fail(refused, wire::STATUS_RATE_LIMITED,
           "too many wrong codes from your address (registration.ip_guess_rate)");
    } else if (detail == VerifyErr::kGlobalGuessLimited) {
      metrics_.guesses_refused.fetch_add(1, std::memory_order_relaxed);
      Fail(refused, wire::STATUS_RATE_LIMITED,
           "too many wrong codes on this server right now (registration.global_guess_rate)");
    } else {
      Fail(refused, wire::STATUS_BAD_CODE, "verification code wrong, expired or already used");
    }
    return false;
  };
  auto job = [this, handle = r.handle(), key = s.remote_static, now](wire::Response& out,
                                                                     BlockingFinish& finish) {
    auto reg = accounts_.RegisterPrimary(handle, key, now, crypto::SystemRandom());
    if (!reg) {
      FailFromError(out, reg.error());  // kAlreadyExists: the key is another device's
      return true;
    }
    if (reg->reregistered) {
      metrics_.reregistrations.fetch_add(1, std::memory_order_relaxed);
      for (const DeviceAddress& old : reg->removed) {
        if (auto link = router_.Find(old)) {
          link->Post([](SessionContext& c) { c.out.CloseFromSession(CloseCause::kReplaced); });
        }
        if (!store_.keys().DeleteDevice(old) || !queue_.DeleteDevice(old)) {
          spdlog::warn("cleaning up a re-registered account's old device failed");
        }
      }
    } else {
      metrics_.registrations.fetch_add(1, std::memory_order_relaxed);
    }
    auto* body = out.mutable_register_();
    body->set_account_id(reg->device.account.data(), reg->device.account.size());
    body->set_device_id(reg->device.device_id);
    body->set_reregistered(reg->reregistered);
    finish = [this, device = reg->device](SessionContext& c, const wire::Frame& frame) {
      FinishAuthentication(c, frame, device);
    };
    return true;
  };
  return RunBlocking(ctx, request, response, std::move(job), admit);
}

bool ServerCore::HandleLinkDevice(SessionContext& ctx, const wire::Request& request,
                                  wire::Response& response) {
  internal::SessionState& s = ctx.state;
  if (s.authenticated) {
    Fail(response, wire::STATUS_CONFLICT, "this device key is already registered");
    return true;
  }
  auto job = [this, token = request.link_device().token(), key = s.remote_static](
                 wire::Response& out, BlockingFinish& finish) {
    const uint64_t now = store::SystemClockMs();
    auto account = linking_->RedeemToken(token, now);
    if (!account) {
      Fail(out, wire::STATUS_BAD_CODE, "link token wrong, expired or already used");
      return true;
    }
    auto linked = accounts_.LinkDevice(*account, key, options_.max_devices_per_account, now);
    if (!linked) {
      // kAlreadyExists: the key is another device's; kNotFound: the account is gone.
      FailFromError(out, linked.error());
      return true;
    }
    if (!*linked) {
      Fail(out, wire::STATUS_TOO_MANY_DEVICES,
           "the account already has devices.max_devices_per_account devices (a primary "
           "and 4 companions by default): unlink one first");
      return true;
    }
    metrics_.devices_linked.fetch_add(1, std::memory_order_relaxed);
    auto* body = out.mutable_link_device();
    body->set_account_id((*linked)->account.data(), (*linked)->account.size());
    body->set_device_id((*linked)->device_id);
    finish = [this, device = **linked](SessionContext& c, const wire::Frame& frame) {
      FinishAuthentication(c, frame, device);
    };
    return true;
  };
  return RunBlocking(ctx, request, response, std::move(job));
}

bool ServerCore::HandleSetPresenceVisibility(SessionContext& ctx, const wire::Request& request,
                                             wire::Response& response) {
  store::PresenceVisibility v = store::PresenceVisibility::kContacts;
  switch (request.set_presence_visibility().visibility()) {
    case wire::PRESENCE_EVERYONE:
      v = store::PresenceVisibility::kEveryone;
      break;
    case wire::PRESENCE_NOBODY:
      v = store::PresenceVisibility::kNobody;
      break;
    case wire::PRESENCE_CONTACTS:
      v = store::PresenceVisibility::kContacts;
      break;
    default:
      Fail(response, wire::STATUS_BAD_REQUEST, "unknown presence visibility");
      return true;
  }
  auto job = [this, account = ctx.state.device.account, v](wire::Response& out, BlockingFinish&) {
    if (auto set = accounts_.SetPresenceVisibility(account, v); !set) {
      FailFromError(out, set.error());
    } else {
      out.mutable_empty();
    }
    return true;
  };
  return RunBlocking(ctx, request, response, std::move(job));
}

bool ServerCore::HandleContact(SessionContext& ctx, const wire::Request& request,
                               wire::Response& response) {
  AccountId contact{};
  if (!ToAccountId(request.contact().account_id(), contact)) {
    Fail(response, wire::STATUS_BAD_REQUEST, "account_id must be 16 bytes");
    return true;
  }
  auto job = [this, owner = ctx.state.device.account, contact, remove = request.contact().remove()](
                 wire::Response& out, BlockingFinish&) {
    Status done;
    if (remove) {
      done = store_.accounts().RemoveContact(owner, contact);
    } else {
      auto record = accounts_.Get(contact);
      if (!record) {
        FailFromError(out, record.error());
        return true;
      }
      if (*record == nullptr) {
        Fail(out, wire::STATUS_NOT_FOUND, "no such account");
        return true;
      }
      done = store_.accounts().AddContact(owner, contact);
    }
    if (!done) {
      FailFromError(out, done.error());
      return true;
    }
    out.mutable_empty();
    return true;
  };
  return RunBlocking(ctx, request, response, std::move(job));
}

bool ServerCore::HandleRegisterPush(SessionContext& ctx, const wire::Request& request,
                                    wire::Response& response) {
  const std::string& endpoint = request.register_push().endpoint();
  if (!endpoint.empty()) {
    if (endpoint.size() > options_.max_push_endpoint_bytes) {
      Fail(response, wire::STATUS_TOO_LARGE, "endpoint longer than push.max_endpoint_bytes");
      return true;
    }
    auto url = net::ParseUrl(endpoint);
    if (!url) {
      // ParseUrl's static text says why (scheme, host, numeric host not a dotted quad).
      Fail(response, wire::STATUS_BAD_REQUEST, url.error().message);
      return true;
    }
    if (!options_.allow_private_push_endpoints && net::IsLocalOrPrivateHost(url->host)) {
      Fail(response, wire::STATUS_PERMISSION_DENIED,
           "endpoint is a local or private address (push.allow_private_endpoints)");
      return true;
    }
  }
  auto job = [this, device = ctx.state.device, endpoint](wire::Response& out, BlockingFinish&) {
    if (auto set = accounts_.SetPushEndpoint(device, endpoint); !set) {
      FailFromError(out, set.error());
    } else {
      out.mutable_empty();
    }
    return true;
  };
  return RunBlocking(ctx, request, response, std::move(job));
}

void ServerCore::AppendBlockingPrometheus(std::string& out) const {
  AppendPrometheusSeries(out, "sotto_blocking_jobs_refused_total", "counter",
                         "requests refused with STATUS_BUSY: store.io_queue_depth jobs waited",
                         metrics_.blocking_jobs_refused.load(std::memory_order_relaxed));
  AppendPrometheusSeries(out, "sotto_blocking_jobs_queued", "gauge",
                         "store-writing requests waiting for an io thread (store.io_threads)",
                         pool_->queued());
  AppendPrometheusSeries(out, "sotto_blocking_jobs_running", "gauge",
                         "store-writing requests running on an io thread", pool_->running());
}

}  // namespace sotto::server
