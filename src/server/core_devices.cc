// Linked devices (part of ServerCore; docs/devices.md): the provisioning relay, link
// tokens, linking a companion, the signed device list, unlinking.
#include <algorithm>
#include <cstring>

#include <spdlog/spdlog.h>

#include "crypto/x25519.h"
#include "server/core.h"
#include "server/internal/core_util.h"
#include "server/internal/linking.h"
#include "server/internal/session.h"
#include "wire/device_list.h"

namespace sotto::server {

using internal::Fail;
using internal::FailFromError;
using internal::IsPublicKey;
using internal::SessionContext;
using internal::ToAccountId;

void ServerCore::CloseProvision(internal::SessionState& s) {
  if (!s.provisioning) return;
  linking_->CloseProvision(s.provisioning->id);
  s.provisioning.reset();
}

bool ServerCore::HandleLinkingRequest(SessionContext& ctx, const wire::Request& request,
                                      wire::Response& response) {
  internal::SessionState& s = ctx.state;
  const uint64_t now = store::SystemClockMs();
  switch (request.body_case()) {
    case wire::Request::kProvisionOpen: {
      // Reopening keeps the connection's one link: a transport clears only the links it
      // knows of when the connection closes, and a relayed frame may still hold this one.
      if (s.provisioning) {
        linking_->CloseProvision(s.provisioning->id);
        s.provisioning->id.clear();
      } else {
        s.provisioning = std::make_unique<internal::ProvisionSession>();
        s.provisioning->link = ctx.out.MakeLink();
      }
      auto id = linking_->OpenProvision(s.provisioning->link, s.peer, now, crypto::SystemRandom());
      if (!id) {
        metrics_.provision_ids_refused.fetch_add(1, std::memory_order_relaxed);
        if (id.error().detail == static_cast<uint16_t>(internal::LinkingErr::kSourceFull)) {
          Fail(response, wire::STATUS_RATE_LIMITED,
               "too many open provisioning ids from your address "
               "(devices.max_provision_ids_per_ip)");
        } else {
          Fail(response, wire::STATUS_UNAVAILABLE,
               "too many open provisioning ids (devices.max_provision_ids)");
        }
        return true;
      }
      s.provisioning->id = *id;
      auto* out = response.mutable_provision_open();
      out->set_provision_id(*id);
      out->set_expires_in_s(options_.devices.provision_ttl_s);
      return true;
    }
    case wire::Request::kProvisionSend: {
      const wire::ProvisionSendRequest& p = request.provision_send();
      if (p.provision_id().size() != internal::kProvisionIdBytes) {
        Fail(response, wire::STATUS_BAD_REQUEST, "provision_id must be 16 bytes");
        return true;
      }
      if (p.body().empty() || p.body().size() > options_.devices.max_provision_body_bytes) {
        Fail(response, wire::STATUS_TOO_LARGE,
             "provisioning body must be 1..devices.max_provision_body_bytes bytes");
        return true;
      }
      auto link = linking_->FindProvision(p.provision_id(), now);
      if (!link) {
        Fail(response, wire::STATUS_NOT_FOUND,
             "no open provisioning connection with this id (expired or closed)");
        return true;
      }
      wire::Frame frame;
      frame.mutable_provision()->set_provision_id(p.provision_id());
      frame.mutable_provision()->set_body(p.body());
      link->Post([frame = std::move(frame)](SessionContext& c) {
        c.protocol.SendFrame(c.state, frame, c.out);
      });
      metrics_.provision_frames_relayed.fetch_add(1, std::memory_order_relaxed);
      response.mutable_empty();
      return true;
    }
    // kLinkDevice: HandleLinkDevice (core_blocking.cc).
    default:
      return false;
  }
}

bool ServerCore::HandleDeviceRequest(SessionContext& ctx, const wire::Request& request,
                                     wire::Response& response) {
  internal::SessionState& s = ctx.state;
  switch (request.body_case()) {
    case wire::Request::kLinkToken: {
      if (s.device.device_id != store::kPrimaryDeviceId) {
        Fail(response, wire::STATUS_PERMISSION_DENIED, "only the primary device links devices");
        return true;
      }
      auto record = accounts_.Get(s.device.account);
      if (!record) {
        FailFromError(response, record.error());
        return true;
      }
      if (*record == nullptr) {
        Fail(response, wire::STATUS_NOT_FOUND, "no such account");
        return true;
      }
      if ((*record)->devices.size() >= options_.max_devices_per_account) {
        Fail(response, wire::STATUS_TOO_MANY_DEVICES,
             "the account already has devices.max_devices_per_account devices (a primary "
             "and 4 companions by default): unlink one first");
        return true;
      }
      auto token =
          linking_->IssueToken(s.device.account, store::SystemClockMs(), crypto::SystemRandom());
      if (!token) {
        metrics_.link_tokens_refused.fetch_add(1, std::memory_order_relaxed);
        if (token.error().detail == static_cast<uint16_t>(internal::LinkingErr::kAccountFull)) {
          Fail(response, wire::STATUS_RATE_LIMITED,
               "too many unexpired link tokens for this account "
               "(devices.max_link_tokens_per_account)");
        } else {
          Fail(response, wire::STATUS_UNAVAILABLE,
               "too many link tokens (devices.max_link_tokens)");
        }
        return true;
      }
      response.mutable_link_token()->set_token(*token);
      response.mutable_link_token()->set_expires_in_s(options_.devices.link_token_ttl_s);
      return true;
    }
    case wire::Request::kGetDeviceList:
      HandleGetDeviceList(ctx, request.get_device_list(), response);
      return true;
    // kPublishDeviceList, kUnlinkDevice: HandleRequest calls their handlers (pool jobs).
    default:
      return false;
  }
}

bool ServerCore::HandlePublishDeviceList(SessionContext& ctx, const wire::Request& request,
                                         wire::Response& response) {
  internal::SessionState& s = ctx.state;
  auto refuse = [&](wire::StatusCode code, const char* reason) {
    metrics_.device_lists_refused.fetch_add(1, std::memory_order_relaxed);
    Fail(response, code, reason);
    return true;
  };
  if (s.device.device_id != store::kPrimaryDeviceId) {
    return refuse(wire::STATUS_PERMISSION_DENIED,
                  "only the primary device publishes the device list");
  }
  const wire::SignedDeviceList& signed_list = request.publish_device_list().list();
  wire::DeviceList list;
  if (signed_list.signature().size() != wire::kDeviceListSignatureBytes ||
      !wire::ParseDeviceList(signed_list.list(), list)) {
    return refuse(wire::STATUS_BAD_REQUEST, "malformed device list (docs/devices.md)");
  }
  auto job = [this, device = s.device, signed_list, list = std::move(list)](wire::Response& out,
                                                                            BlockingFinish&) {
    PublishDeviceList(device, signed_list, list, out);
    return true;
  };
  return RunBlocking(ctx, request, response, std::move(job));
}

void ServerCore::PublishDeviceList(const DeviceAddress& device,
                                   const wire::SignedDeviceList& signed_list,
                                   const wire::DeviceList& list, wire::Response& response) {
  auto refuse = [&](wire::StatusCode code, const char* reason) {
    metrics_.device_lists_refused.fetch_add(1, std::memory_order_relaxed);
    Fail(response, code, reason);
  };
  auto primary_keys = store_.keys().GetDeviceKeys(device);
  if (!primary_keys) {
    FailFromError(response, primary_keys.error());
    return;
  }
  if (!*primary_keys) {
    refuse(wire::STATUS_BAD_REQUEST, "upload the primary's identity key first");
    return;
  }
  crypto::X25519Public identity{};
  std::memcpy(identity.data(), (*primary_keys)->identity_key.data() + 1, identity.size());
  const Bytes signed_bytes = wire::DeviceListSignedBytes(signed_list.list());
  if (!crypto::VerifySignature(identity, signed_bytes, AsBytes(signed_list.signature()))) {
    refuse(wire::STATUS_PERMISSION_DENIED,
           "the device list's signature does not verify with the primary's identity key");
    return;
  }
  AccountId listed_account{};
  if (!ToAccountId(list.account_id(), listed_account) || listed_account != device.account) {
    refuse(wire::STATUS_BAD_REQUEST, "the device list names another account");
    return;
  }
  if (static_cast<uint32_t>(list.devices_size()) > options_.max_devices_per_account) {
    refuse(wire::STATUS_TOO_MANY_DEVICES, "the device list has more than max devices per account");
    return;
  }
  std::vector<uint32_t> listed;
  for (const wire::DeviceListEntry& e : list.devices()) {
    auto keys = store_.keys().GetDeviceKeys({device.account, e.device_id()});
    if (!keys) {
      FailFromError(response, keys.error());
      return;
    }
    if (!*keys || std::memcmp((*keys)->identity_key.data(), e.identity_key().data(),
                              internal::kPublicKeyBytes) != 0) {
      refuse(wire::STATUS_CONFLICT,
             "a listed device does not exist or its identity key is not the one it uploaded");
      return;
    }
    listed.push_back(e.device_id());
  }
  auto published = accounts_.PublishDeviceList(device.account, signed_list.SerializeAsString(),
                                               list.version(), listed);
  if (!published) {
    FailFromError(response, published.error());
    return;
  }
  switch (*published) {
    case Accounts::Published::kStale:
      refuse(wire::STATUS_STALE_DEVICE_LIST,
             "the device list's version is not above the published one");
      return;
    case Accounts::Published::kMismatch:
      refuse(wire::STATUS_CONFLICT,
             "the device list must name every active device of the account and only its devices");
      return;
    case Accounts::Published::kTooFar:
      refuse(wire::STATUS_BAD_REQUEST,
             "the device list's version is more than kMaxDeviceListVersionStep above the "
             "published one");
      return;
    case Accounts::Published::kPublished:
      break;
  }
  metrics_.device_lists_published.fetch_add(1, std::memory_order_relaxed);
  response.mutable_empty();
}

void ServerCore::HandleGetDeviceList(SessionContext& ctx, const wire::GetDeviceListRequest& r,
                                     wire::Response& response) {
  internal::SessionState& s = ctx.state;
  AccountId target{};
  if (r.account_id().empty()) {
    target = s.device.account;
  } else if (!ToAccountId(r.account_id(), target)) {
    Fail(response, wire::STATUS_BAD_REQUEST, "account_id must be 16 bytes");
    return;
  }
  auto record = accounts_.Get(target);
  if (!record) {
    FailFromError(response, record.error());
    return;
  }
  if (*record == nullptr) {
    Fail(response, wire::STATUS_NOT_FOUND, "no such account");
    return;
  }
  auto* out = response.mutable_device_list();
  if (!(*record)->device_list.empty()) out->mutable_list()->ParseFromString((*record)->device_list);
  out->set_version((*record)->device_list_version);
  if (target != s.device.account) return;
  for (const store::DeviceRecord& d : (*record)->devices) {
    wire::DeviceInfo* info = out->add_devices();
    info->set_device_id(d.device_id);
    info->set_pending(d.pending);
    info->set_created_ms(d.created_ms);
    auto keys = store_.keys().GetDeviceKeys({target, d.device_id});
    if (!keys) {
      response.clear_device_list();
      FailFromError(response, keys.error());
      return;
    }
    if (*keys) info->set_identity_key((*keys)->identity_key.data(), internal::kPublicKeyBytes);
  }
}

bool ServerCore::HandleUnlink(SessionContext& ctx, const wire::Request& request,
                              wire::Response& response) {
  internal::SessionState& s = ctx.state;
  const uint32_t target = request.unlink_device().device_id();
  if (target == store::kPrimaryDeviceId) {
    Fail(response, wire::STATUS_BAD_REQUEST,
         "the primary cannot be unlinked (register the number on a new device instead)");
    return true;
  }
  if (s.device.device_id != store::kPrimaryDeviceId && target != s.device.device_id) {
    Fail(response, wire::STATUS_PERMISSION_DENIED, "a companion may only unlink itself");
    return true;
  }
  auto job = [this, device = DeviceAddress{s.device.account, target}, self = s.device](
                 wire::Response& out, BlockingFinish& finish) {
    auto removed = accounts_.RemoveDevice(device);
    if (!removed) {
      FailFromError(out, removed.error());  // kNotFound: no such device
      return true;
    }
    if (!store_.keys().DeleteDevice(device) || !queue_.DeleteDevice(device)) {
      spdlog::warn("cleaning up an unlinked device failed");
    }
    if (device == self) {
      // A companion unlinked itself: it gets the answer, then the close.
      finish = [](SessionContext& c, const wire::Frame& frame) {
        c.protocol.SendFrame(c.state, frame, c.out);
        c.out.CloseFromSession(CloseCause::kReplaced);
      };
    } else if (auto link = router_.Find(device)) {
      link->Post([](SessionContext& c) { c.out.CloseFromSession(CloseCause::kReplaced); });
    }
    metrics_.devices_unlinked.fetch_add(1, std::memory_order_relaxed);
    out.mutable_empty();
    return true;
  };
  return RunBlocking(ctx, request, response, std::move(job));
}

}  // namespace sotto::server
