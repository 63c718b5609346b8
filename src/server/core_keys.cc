// The prekey directory's requests (part of ServerCore; split from core.cc for size).
#include <cstring>

#include "crypto/x25519.h"
#include "server/core.h"
#include "server/internal/core_util.h"
#include "server/internal/session.h"

namespace sotto::server {

using internal::Fail;
using internal::IsPublicKey;
using internal::kPublicKeyBytes;
using internal::kSignatureBytes;
using internal::SessionContext;
using internal::ToAccountId;
using internal::ToArray;

// The checks that need no store run on the loop, so bad input is refused at once; the
// store work runs on the blocking-work pool (core_blocking.cc).
bool ServerCore::HandleUploadKeys(SessionContext& ctx, const wire::Request& request,
                                  wire::Response& response) {
  const wire::UploadKeysRequest& u = request.upload_keys();
  if (!u.identity_key().empty() || u.has_signed_prekey()) {
    const wire::SignedPreKey& spk = u.signed_prekey();
    if (!IsPublicKey(u.identity_key()) || !IsPublicKey(spk.public_key()) ||
        spk.signature().size() != kSignatureBytes) {
      Fail(response, wire::STATUS_BAD_REQUEST,
           "identity and signed prekey must be 33-byte type-5 keys with a 64-byte signature");
      return true;
    }
    if (u.registration_id() == 0 || u.registration_id() > internal::kMaxRegistrationId) {
      Fail(response, wire::STATUS_BAD_REQUEST, "registration_id must be in 1..16380");
      return true;
    }
    crypto::X25519Public identity{};
    std::memcpy(identity.data(), u.identity_key().data() + 1, identity.size());
    if (!crypto::VerifySignature(identity, AsBytes(spk.public_key()), AsBytes(spk.signature()))) {
      Fail(response, wire::STATUS_BAD_REQUEST, "the signed prekey's signature does not verify");
      return true;
    }
  }
  if (static_cast<uint32_t>(u.one_time_prekeys_size()) > options_.prekeys.max_upload) {
    Fail(response, wire::STATUS_TOO_LARGE, "more one-time prekeys than prekeys.max_upload");
    return true;
  }
  for (const wire::OneTimePreKey& k : u.one_time_prekeys()) {
    if (!IsPublicKey(k.public_key())) {
      Fail(response, wire::STATUS_BAD_REQUEST, "one-time prekeys must be 33-byte type-5 keys");
      return true;
    }
  }
  auto job = [this, device = ctx.state.device, u](wire::Response& out, BlockingFinish&) {
    UploadKeys(device, u, out);
    return true;
  };
  return RunBlocking(ctx, request, response, std::move(job));
}

void ServerCore::UploadKeys(const DeviceAddress& device, const wire::UploadKeysRequest& u,
                            wire::Response& response) {
  store::KeyStore& keys = store_.keys();
  if (!u.identity_key().empty() || u.has_signed_prekey()) {
    const wire::SignedPreKey& spk = u.signed_prekey();
    store::DeviceKeys device_keys;
    device_keys.identity_key = ToArray<kPublicKeyBytes>(u.identity_key());
    device_keys.registration_id = u.registration_id();
    device_keys.signed_prekey.id = spk.id();
    device_keys.signed_prekey.public_key = ToArray<kPublicKeyBytes>(spk.public_key());
    device_keys.signed_prekey.signature = ToArray<kSignatureBytes>(spk.signature());
    if (!keys.PutDeviceKeys(device, device_keys) ||
        !accounts_.SetRegistrationId(device, u.registration_id())) {
      Fail(response, wire::STATUS_INTERNAL, "store failure");
      return;
    }
  }
  auto count = keys.CountOneTimePreKeys(device);
  if (!count) {
    Fail(response, wire::STATUS_INTERNAL, "store failure");
    return;
  }
  if (u.one_time_prekeys_size() > 0) {
    auto published = keys.GetDeviceKeys(device);
    if (!published || !*published) {
      Fail(response, wire::STATUS_BAD_REQUEST, "upload the identity and signed prekey first");
      return;
    }
    const auto n = static_cast<uint32_t>(u.one_time_prekeys_size());
    if (*count + n > options_.prekeys.max_one_time_prekeys) {
      Fail(response, wire::STATUS_TOO_LARGE, "the pool would exceed prekeys.max_one_time_prekeys");
      return;
    }
    std::vector<store::OneTimePreKey> batch;
    batch.reserve(n);
    for (const wire::OneTimePreKey& k : u.one_time_prekeys()) {
      batch.push_back({k.id(), ToArray<kPublicKeyBytes>(k.public_key())});
    }
    if (!keys.AddOneTimePreKeys(device, batch)) {
      Fail(response, wire::STATUS_INTERNAL, "store failure");
      return;
    }
    count = keys.CountOneTimePreKeys(device);
    if (!count) {
      Fail(response, wire::STATUS_INTERNAL, "store failure");
      return;
    }
  }
  response.mutable_upload_keys()->set_one_time_prekeys(*count);
}

// The requester's rate limits run on the loop; the claim (a durable write) on the pool.
bool ServerCore::HandleGetBundle(SessionContext& ctx, const wire::Request& request,
                                 wire::Response& response, uint64_t now_ms) {
  const wire::GetBundleRequest& r = request.get_bundle();
  AccountId target{};
  if (!ToAccountId(r.account_id(), target)) {
    Fail(response, wire::STATUS_BAD_REQUEST, "account_id must be 16 bytes");
    return true;
  }
  auto job = [this, target, device_id = r.device_id(), now_ms](wire::Response& out,
                                                               BlockingFinish&) {
    GetBundle(target, device_id, out, now_ms);
    return true;
  };
  // Taken once the pool has room, so a refusal for a busy server costs no token.
  auto admit = [&](wire::Response& refused) { return BundleAllowed(ctx, refused, now_ms); };
  return RunBlocking(ctx, request, response, std::move(job), admit);
}

void ServerCore::GetBundle(const AccountId& target, uint32_t device_id, wire::Response& response,
                           uint64_t now_ms) {
  auto record = accounts_.Get(target);
  if (!record) {
    Fail(response, wire::STATUS_INTERNAL, "store failure");
    return;
  }
  if (*record == nullptr) {
    Fail(response, wire::STATUS_NOT_FOUND, "no such account");
    return;
  }
  auto* out = response.mutable_get_bundle();
  if (!(*record)->device_list.empty()) {
    out->mutable_device_list()->ParseFromString((*record)->device_list);
  }
  for (const store::DeviceRecord& d : (*record)->devices) {
    if (d.pending) continue;  // not routed to until the primary lists it
    if (device_id != 0 && d.device_id != device_id) continue;
    const DeviceAddress device{target, d.device_id};
    auto keys = store_.keys().GetDeviceKeys(device);
    if (!keys) {
      Fail(response, wire::STATUS_INTERNAL, "store failure");
      return;
    }
    if (!*keys) continue;
    wire::DeviceBundle* b = out->add_bundles();
    b->set_device_id(d.device_id);
    b->set_registration_id((*keys)->registration_id);
    b->set_identity_key((*keys)->identity_key.data(), (*keys)->identity_key.size());
    auto* spk = b->mutable_signed_prekey();
    spk->set_id((*keys)->signed_prekey.id);
    spk->set_public_key((*keys)->signed_prekey.public_key.data(), kPublicKeyBytes);
    spk->set_signature((*keys)->signed_prekey.signature.data(), kSignatureBytes);
    // The target's budget of one-time prekeys (prekeys.target_rate): past it the bundle
    // carries the signed prekey only, so requesters from many accounts cannot drain it.
    if (!prekey_targets_.Allow(device, now_ms, options_.prekeys.target_rate)) {
      metrics_.prekeys_withheld.fetch_add(1, std::memory_order_relaxed);
      continue;
    }
    auto claimed = store_.keys().ClaimOneTimePreKey(device);
    if (!claimed) {
      Fail(response, wire::STATUS_INTERNAL, "store failure");
      return;
    }
    if (!*claimed)
      prekey_targets_.Refund(device, options_.prekeys.target_rate);  // none to hand out
    if (*claimed) {
      metrics_.prekeys_claimed.fetch_add(1, std::memory_order_relaxed);
      auto* otk = b->mutable_one_time_prekey();
      otk->set_id((*claimed)->id);
      otk->set_public_key((*claimed)->public_key.data(), kPublicKeyBytes);
      if (auto left = store_.keys().CountOneTimePreKeys(device);
          left && *left < options_.prekeys.low_watermark) {
        NotifyPreKeysLow(device, *left);
      }
    }
  }
  if (out->bundles_size() == 0) {
    response.clear_get_bundle();
    Fail(response, wire::STATUS_NOT_FOUND, "no keys published for this device");
    return;
  }
  metrics_.bundles_fetched.fetch_add(1, std::memory_order_relaxed);
}

void ServerCore::NotifyPreKeysLow(const DeviceAddress& device, uint32_t count) {
  auto link = router_.Find(device);
  if (!link) return;  // told when it next connects
  link->Post([count](SessionContext& ctx) {
    wire::Frame frame;
    frame.mutable_prekeys_low()->set_count(count);
    ctx.protocol.SendFrame(ctx.state, frame, ctx.out);
  });
}

}  // namespace sotto::server
