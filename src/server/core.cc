#include "server/core.h"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <string>

#include <spdlog/spdlog.h>

#include "crypto/random.h"
#include "crypto/x25519.h"
#include "net/http_client.h"
#include "server/internal/blocking_pool.h"
#include "server/internal/core_util.h"
#include "server/internal/linking.h"
#include "server/internal/session.h"

namespace sotto::server {
namespace {

using internal::AppendDevice;
using internal::Fail;
using internal::FailFromError;
using internal::SessionContext;
using internal::ToAccountId;

constexpr size_t kMaxAcksPerFrame = 4'096;
constexpr size_t kPurgeBatch = 10'000;
// What an envelope frame adds to its stored payload on the wire: the frame's field tag
// and length, the seq field, the AEAD tag and the length prefix (an upper bound).
constexpr size_t kEnvelopeFrameOverhead = 64;
// Messages one queue read fetches while catching up: a read that finds the write budget
// used up after a few large envelopes wastes at most this many.
constexpr size_t kPumpReadBatch = 32;

uint64_t DeviceHash(const DeviceAddress& d) { return store::DeviceAddressHash{}(d); }

}  // namespace

ServerCore::ServerCore(CoreOptions options, store::Store& store, VerificationCodes& codes,
                       CodeSender& codes_out, PushNotifier* push)
    : options_(options),
      store_(store),
      queue_(store.queue()),
      accounts_(store.accounts()),
      codes_(codes),
      code_sender_(codes_out),
      push_(push),
      presence_(accounts_, store.accounts()),
      linking_(std::make_unique<internal::Linking>(internal::LinkingLimits{
          uint64_t{options.devices.provision_ttl_s} * 1'000, options.devices.max_provision_ids,
          uint64_t{options.devices.link_token_ttl_s} * 1'000, options.devices.max_link_tokens,
          options.devices.max_provision_ids_per_ip, options.devices.max_link_tokens_per_account})),
      groups_(store.groups(), accounts_, options.groups),
      pool_(std::make_unique<internal::BlockingPool>(options.store.io_threads,
                                                     options.store.io_queue_depth)) {}

ServerCore::~ServerCore() { Stop(); }

void ServerCore::Start() {
  maintenance_ = std::thread([this] { MaintenanceLoop(); });
}

void ServerCore::Stop() {
  {
    std::lock_guard<std::mutex> lock(maintenance_mu_);
    stopping_ = true;
  }
  maintenance_cv_.notify_all();
  if (maintenance_.joinable()) maintenance_.join();
  pool_->Stop();
}

void ServerCore::MaintenanceLoop() {
  std::unique_lock<std::mutex> lock(maintenance_mu_);
  while (!stopping_) {
    maintenance_cv_.wait_for(lock, std::chrono::milliseconds(options_.store.purge_interval_ms),
                             [this] { return stopping_; });
    if (stopping_) break;
    lock.unlock();
    for (;;) {
      auto purged = queue_.PurgeExpired(store::SystemClockMs(), kPurgeBatch);
      if (!purged) {
        spdlog::warn("purging expired messages failed: {}", purged.error().ToString());
        break;
      }
      metrics_.messages_expired.fetch_add(*purged, std::memory_order_relaxed);
      if (*purged < kPurgeBatch) break;
    }
    lock.lock();
  }
}

std::optional<DeviceAddress> ServerCore::Authenticate(const StaticKey& key) {
  auto found = accounts_.FindByNoiseKey(key);
  if (!found) {
    spdlog::warn("device lookup failed: {}", found.error().ToString());
    return std::nullopt;
  }
  return *found;
}

void ServerCore::OnOnline(SessionContext& ctx) {
  internal::SessionState& s = ctx.state;
  s.messaging = std::make_unique<internal::DeviceSession>();
  s.messaging->link = ctx.out.MakeLink();
  if (auto previous = router_.Attach(s.device, s.messaging->link)) {
    previous->Post([](SessionContext& old) { old.out.CloseFromSession(CloseCause::kReplaced); });
  }
  // Delivery comes from the store, whichever node stored the message (docs/server.md,
  // "Send, queue, delivery, receipts"). Subscribed before the first Pump: an entry
  // committed in between is read by the Pump or reported after it, and DeliverNotified
  // drops seqs already sent.
  s.messaging->queue_subscription = queue_.Subscribe(
      s.device,
      [this, link = s.messaging->link](const DeviceAddress&, const store::StoredMessage& m) {
        link->Post([this, seq = m.seq, payload = m.payload](SessionContext& c) {
          DeliverNotified(c, seq, payload);
        });
      });
  presence_.DeviceOnline(s.device.account);
  if (auto count = store_.keys().CountOneTimePreKeys(s.device);
      count && *count < options_.prekeys.low_watermark) {
    wire::Frame frame;
    frame.mutable_prekeys_low()->set_count(*count);
    ctx.protocol.SendFrame(s, frame, ctx.out);
  }
  Pump(ctx);
}

void ServerCore::OnOffline(internal::SessionState& s) {
  CloseProvision(s);
  if (!s.messaging) return;
  s.messaging->queue_subscription.reset();  // waits for a notification under way
  const internal::SessionLink* link = s.messaging->link.get();
  router_.Detach(s.device, link);
  for (const AccountId& target : s.messaging->presence_subscriptions) presence_.Unsubscribe(target, link);
  presence_.DeviceOffline(s.device.account, store::SystemClockMs());
  s.messaging.reset();
}

bool ServerCore::HandleRequest(SessionContext& ctx, const wire::Request& request,
                               wire::Response& response, uint64_t now_ms) {
  internal::SessionState& s = ctx.state;
  const auto body = request.body_case();
  if (body == wire::Request::BODY_NOT_SET) {
    // An empty request, or one whose body is a field this server does not know.
    Fail(response, wire::STATUS_BAD_REQUEST, "unknown or empty request type (docs/wire.md)");
    return true;
  }
  if (body == wire::Request::kRequestCode) {
    const std::string& handle = request.request_code().handle();
    auto code = codes_.Issue(handle, s.peer, store::SystemClockMs(), crypto::SystemRandom());
    if (!code) {
      metrics_.codes_refused.fetch_add(1, std::memory_order_relaxed);
      const auto detail = static_cast<VerifyErr>(code.error().detail);
      if (detail == VerifyErr::kBadHandle) {
        Fail(response, wire::STATUS_BAD_REQUEST, "handle must be an E.164 number (+ and 8..15 digits)");
      } else if (detail == VerifyErr::kRateLimited) {
        Fail(response, wire::STATUS_RATE_LIMITED, "too many codes for this handle (registration.code_rate)");
      } else if (detail == VerifyErr::kSourceRateLimited) {
        Fail(response, wire::STATUS_RATE_LIMITED,
             "too many codes for your address (registration.ip_code_rate)");
      } else if (detail == VerifyErr::kGlobalRateLimited) {
        Fail(response, wire::STATUS_RATE_LIMITED,
             "too many codes on this server right now (registration.global_code_rate)");
      } else {
        Fail(response, wire::STATUS_UNAVAILABLE, "too many pending codes (registration.max_pending_codes)");
      }
      return true;
    }
    if (auto sent = code_sender_.Send(handle, *code); !sent) {
      Fail(response, wire::STATUS_INTERNAL, "the verification code could not be sent");
      return true;
    }
    metrics_.codes_issued.fetch_add(1, std::memory_order_relaxed);
    response.mutable_request_code()->set_expires_in_s(options_.code_ttl_s);
    return true;
  }
  if (body == wire::Request::kRegister) return HandleRegister(ctx, request, response);
  if (body == wire::Request::kLinkDevice) return HandleLinkDevice(ctx, request, response);
  if (HandleLinkingRequest(ctx, request, response)) return true;
  if (!s.authenticated || !s.messaging) {
    Fail(response, wire::STATUS_UNAUTHENTICATED, "unknown device key: register first");
    return true;
  }
  switch (request.body_case()) {
    case wire::Request::kLookup: {
      const std::string& handle = request.lookup().handle();
      if (!LookupAllowed(ctx, response, now_ms)) break;
      if (!IsE164(handle)) {
        Fail(response, wire::STATUS_BAD_REQUEST, "handle must be an E.164 number (+ and 8..15 digits)");
        break;
      }
      auto id = accounts_.FindByHandle(handle);
      if (!id) {
        FailFromError(response, id.error());
        break;
      }
      auto record = *id ? accounts_.Get(**id) : Result<std::shared_ptr<const store::AccountRecord>>();
      if (!record) {
        FailFromError(response, record.error());
        break;
      }
      if (!*id || *record == nullptr) {
        Fail(response, wire::STATUS_NOT_FOUND, "no account with this handle");
        break;
      }
      auto* out = response.mutable_lookup();
      out->set_account_id((*record)->id.data(), (*record)->id.size());
      for (const store::DeviceRecord* d : (*record)->ActiveDevices())
        out->add_device_ids(d->device_id);
      break;
    }
    case wire::Request::kUploadKeys:
      return HandleUploadKeys(ctx, request, response);
    case wire::Request::kPrekeyCount: {
      auto count = store_.keys().CountOneTimePreKeys(s.device);
      if (!count) {
        FailFromError(response, count.error());
        break;
      }
      response.mutable_prekey_count()->set_count(*count);
      break;
    }
    case wire::Request::kGetBundle:
      return HandleGetBundle(ctx, request, response, now_ms);
    case wire::Request::kSend: {
      bool deferred = false;
      HandleSend(ctx, request, response, deferred);
      return !deferred;
    }
    case wire::Request::kSetPresenceVisibility:
      return HandleSetPresenceVisibility(ctx, request, response);
    case wire::Request::kContact:
      return HandleContact(ctx, request, response);
    case wire::Request::kSubscribePresence:
      HandleSubscribe(ctx, request.subscribe_presence(), response);
      break;
    case wire::Request::kRegisterPush:
      return HandleRegisterPush(ctx, request, response);
    case wire::Request::kMediaUpload:
    case wire::Request::kMediaLocation:
      HandleMedia(s.device.account, request, response);
      break;
    case wire::Request::kPublishDeviceList:
      return HandlePublishDeviceList(ctx, request, response);
    case wire::Request::kUnlinkDevice:
      return HandleUnlink(ctx, request, response);
    case wire::Request::kLinkToken:
    case wire::Request::kGetDeviceList:
      HandleDeviceRequest(ctx, request, response);
      break;
    case wire::Request::kProvisionOpen:  // HandleLinkingRequest answered these
    case wire::Request::kProvisionSend:
    case wire::Request::kLinkDevice:
    case wire::Request::kCreateGroup:
    case wire::Request::kModifyGroup:
    case wire::Request::kGetGroup:
    case wire::Request::kGetGroupDevices:
    case wire::Request::kGroupSend:
    case wire::Request::kSetGroupAdds:
      return HandleGroupRequest(ctx, request, response);
    case wire::Request::kRequestCode:
    case wire::Request::kRegister:
    case wire::Request::kEcho:
    case wire::Request::kWhoami:
    case wire::Request::BODY_NOT_SET:
      break;
  }
  return true;
}

void ServerCore::HandleSubscribe(SessionContext& ctx, const wire::SubscribePresenceRequest& r,
                                 wire::Response& response) {
  internal::SessionState& s = ctx.state;
  internal::DeviceSession& ds = *s.messaging;
  AccountId target{};
  if (!ToAccountId(r.account_id(), target)) {
    Fail(response, wire::STATUS_BAD_REQUEST, "account_id must be 16 bytes");
    return;
  }
  auto& subs = ds.presence_subscriptions;
  if (r.unsubscribe()) {
    presence_.Unsubscribe(target, ds.link.get());
    subs.erase(std::remove(subs.begin(), subs.end(), target), subs.end());
    response.mutable_empty();
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
  auto visible = presence_.Visible(target, s.device.account);
  if (!visible) {
    FailFromError(response, visible.error());
    return;
  }
  if (!*visible) {
    Fail(response, wire::STATUS_PERMISSION_DENIED, "this account's presence is not visible to you");
    return;
  }
  if (std::find(subs.begin(), subs.end(), target) == subs.end()) {
    if (subs.size() >= kMaxPresenceSubscriptions) {
      Fail(response, wire::STATUS_TOO_LARGE,
           "too many presence subscriptions on this connection (kMaxPresenceSubscriptions)");
      return;
    }
    subs.push_back(target);
    presence_.Subscribe(target, s.device.account, ds.link);
  }
  const PresenceState state = presence_.Get(target);
  auto* out = response.mutable_presence();
  out->set_account_id(target.data(), target.size());
  out->set_online(state.online);
  out->set_last_seen_ms(state.last_seen_ms);
}

void ServerCore::HandleSend(SessionContext& ctx, const wire::Request& request,
                            wire::Response& response, bool& deferred) {
  internal::SessionState& s = ctx.state;
  const wire::SendRequest& send = request.send();
  metrics_.sends.fetch_add(1, std::memory_order_relaxed);
  if (send.message_id().empty() || send.message_id().size() > kMaxMessageIdBytes) {
    Fail(response, wire::STATUS_BAD_REQUEST, "message_id must be 1..32 bytes (kMaxMessageIdBytes)");
    return;
  }
  AccountId recipient{};
  if (!ToAccountId(send.recipient(), recipient)) {
    Fail(response, wire::STATUS_BAD_REQUEST, "recipient must be a 16-byte account id");
    return;
  }
  if (send.messages_size() == 0 ||
      static_cast<uint32_t>(send.messages_size()) > options_.max_devices_per_account) {
    Fail(response, wire::STATUS_BAD_REQUEST, "a Send carries 1..5 device messages (max devices per account)");
    return;
  }
  auto record_or = accounts_.Get(recipient);
  if (!record_or) {
    FailFromError(response, record_or.error());
    return;
  }
  const std::shared_ptr<const store::AccountRecord> record = *record_or;
  if (record == nullptr) {
    Fail(response, wire::STATUS_NOT_FOUND, "no such account");
    return;
  }
  const bool to_self = recipient == s.device.account;
  wire::SendResponse stale;
  for (int i = 0; i < send.messages_size(); ++i) {
    const wire::DeviceMessage& m = send.messages(i);
    for (int j = 0; j < i; ++j) {
      if (send.messages(j).device_id() == m.device_id()) {
        Fail(response, wire::STATUS_BAD_REQUEST, "a device appears twice in one Send");
        return;
      }
    }
    const store::DeviceRecord* d = record->FindActiveDevice(m.device_id());
    if (d == nullptr || (to_self && m.device_id() == s.device.device_id)) {
      stale.add_extra_devices(m.device_id());
    } else if (d->registration_id != m.registration_id()) {
      stale.add_stale_devices(m.device_id());
    }
  }
  for (const store::DeviceRecord* d : record->ActiveDevices()) {
    if (to_self && d->device_id == s.device.device_id) continue;
    bool present = false;
    for (const wire::DeviceMessage& m : send.messages()) present |= m.device_id() == d->device_id;
    if (!present) stale.add_missing_devices(d->device_id);
  }
  if (stale.missing_devices_size() + stale.extra_devices_size() + stale.stale_devices_size() > 0) {
    metrics_.sends_stale.fetch_add(1, std::memory_order_relaxed);
    *response.mutable_send() = std::move(stale);
    Fail(response, wire::STATUS_STALE_DEVICES, "the device list is out of date; nothing was queued");
    return;
  }

  const uint64_t now = store::SystemClockMs();
  wire::Envelope envelope;
  envelope.set_type(wire::ENVELOPE_MESSAGE);
  envelope.set_source_account(s.device.account.data(), s.device.account.size());
  envelope.set_source_device(s.device.device_id);
  envelope.set_message_id(send.message_id());
  envelope.set_server_time_ms(now);

  if (send.online_only()) {
    metrics_.sends_online_only.fetch_add(1, std::memory_order_relaxed);
    envelope.set_online_only(true);
    for (const wire::DeviceMessage& m : send.messages()) {
      auto link = router_.Find({recipient, m.device_id()});
      if (!link) continue;
      envelope.set_ciphertext_type(m.type());
      envelope.set_ciphertext(m.ciphertext());
      wire::Frame frame;
      *frame.mutable_envelope() = envelope;
      link->Post([this, frame = std::move(frame)](SessionContext& c) { SendOnlineOnly(c, frame); });
    }
    response.mutable_send();
    return;
  }

  store::WriteRequest write;
  write.max_depth = options_.store.max_queue_depth;
  write.max_per_sender = options_.store.max_queued_per_sender;
  write.appends.reserve(static_cast<size_t>(send.messages_size()));
  auto endpoints = std::make_shared<std::vector<std::string>>();
  std::string dedupe = "M";
  AppendDevice(dedupe, s.device);
  dedupe += send.message_id();
  for (const wire::DeviceMessage& m : send.messages()) {
    envelope.set_ciphertext_type(m.type());
    envelope.set_ciphertext(m.ciphertext());
    store::Append a;
    a.recipient = {recipient, m.device_id()};
    a.dedupe_id = dedupe;
    a.expires_ms = now + uint64_t{options_.store.message_ttl_s} * 1000;
    // The per-sender quota guards a device against other accounts; one's own devices
    // (sync messages) are bounded by max_queue_depth alone.
    if (!to_self) a.sender = s.device.account;
    envelope.SerializeToString(&a.payload);
    write.appends.push_back(std::move(a));
    endpoints->push_back(record->FindDevice(m.device_id())->push_endpoint);
  }
  deferred = true;
  const uint64_t request_id = request.id();
  queue_.Write(std::move(write), [this, link = s.messaging->link, request_id, endpoints](
                                     store::WriteRequest&& req, store::WriteResult&& result) {
    wire::StatusCode status = wire::STATUS_OK;
    const char* reason = "";
    if (!result.status) {
      if (result.status.error().detail == static_cast<uint16_t>(store::StoreErr::kQueueFull)) {
        metrics_.sends_queue_full.fetch_add(1, std::memory_order_relaxed);
        status = wire::STATUS_QUEUE_FULL;
        reason = "a recipient device's queue is full (store.max_queue_depth)";
      } else if (result.status.error().detail ==
                 static_cast<uint16_t>(store::StoreErr::kSenderQuota)) {
        metrics_.sends_sender_quota.fetch_add(1, std::memory_order_relaxed);
        status = wire::STATUS_QUEUE_FULL;
        reason =
            "a recipient device holds as many undelivered messages from this account as it "
            "may (store.max_queued_per_sender)";
      } else {
        status = wire::STATUS_INTERNAL;
        reason = "the message could not be stored";
      }
    } else {
      for (store::AppendOutcome o : result.outcomes) {
        if (o == store::AppendOutcome::kDuplicate) {
          metrics_.sends_duplicate.fetch_add(1, std::memory_order_relaxed);
          break;
        }
      }
    }
    link->Post([request_id, status, reason](SessionContext& c) {
      wire::Frame frame;
      wire::Response* r = frame.mutable_response();
      r->set_id(request_id);
      r->set_status(status);
      if (status == wire::STATUS_OK) {
        r->mutable_send();
      } else {
        r->set_reason(reason);
      }
      c.protocol.SendFrame(c.state, frame, c.out);
    });
    if (result.status) Fanout(req, result, endpoints.get());
  });
}

void ServerCore::Fanout(store::WriteRequest& request, const store::WriteResult& result,
                        const std::vector<std::string>* endpoints) {
  uint64_t stored = 0;
  for (size_t i = 0; i < request.appends.size(); ++i) {
    if (result.outcomes[i] != store::AppendOutcome::kStored) continue;
    ++stored;
    const store::Append& a = request.appends[i];
    // Connected here: its queue subscription delivers it (OnOnline).
    if (router_.Find(a.recipient) != nullptr) continue;
    if (push_ != nullptr && endpoints != nullptr && !(*endpoints)[i].empty()) {
      metrics_.pushes_requested.fetch_add(1, std::memory_order_relaxed);
      push_->Notify(DeviceHash(a.recipient), (*endpoints)[i]);
    }
  }
  metrics_.messages_queued.fetch_add(stored, std::memory_order_relaxed);
}

void ServerCore::DeliverNotified(SessionContext& ctx, uint64_t seq, const std::string& payload) {
  internal::DeviceSession* ds = ctx.state.messaging.get();
  if (ds == nullptr || seq <= ds->sent_up_to) return;
  ds->catch_up = ds->catch_up || seq != ds->sent_up_to + 1 ||
                 ds->in_flight.size() >= options_.store.delivery_window;
  if (!ds->catch_up && !ds->write_blocked && EnvelopeFitsOrBlock(ctx, payload.size())) {
    SendEnvelope(ctx, seq, payload);
    return;
  }
  ds->catch_up = true;  // the store has it (the commit came before this notification)
  Pump(ctx);
}

bool ServerCore::EnvelopeFitsOrBlock(SessionContext& ctx, size_t payload_bytes) {
  if (ctx.protocol.EnvelopeFits(ctx.out, payload_bytes + kEnvelopeFrameOverhead)) return true;
  ctx.state.messaging->write_blocked = true;
  metrics_.deliveries_held_back.fetch_add(1, std::memory_order_relaxed);
  return false;
}

void ServerCore::OnWriteQueueDrained(SessionContext& ctx) {
  internal::DeviceSession* ds = ctx.state.messaging.get();
  if (ds == nullptr) return;
  ds->write_blocked = false;
  Pump(ctx);
}

void ServerCore::SendOnlineOnly(SessionContext& ctx, const wire::Frame& frame) {
  // Best effort by definition: without room it is dropped rather than let a sender fill
  // the recipient's write queue and get it closed as a slow reader.
  if (!ctx.protocol.EnvelopeFits(ctx.out,
                                 frame.envelope().ByteSizeLong() + kEnvelopeFrameOverhead)) {
    metrics_.online_only_dropped.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  ctx.protocol.SendFrame(ctx.state, frame, ctx.out);
}

// Sends from the store what the delivery window and the write budget allow. Stops at the
// first envelope that does not fit the write budget; OnWriteQueueDrained resumes there.
void ServerCore::Pump(SessionContext& ctx) {
  internal::DeviceSession* ds = ctx.state.messaging.get();
  if (ds == nullptr || !ds->catch_up || ds->write_blocked) return;
  const size_t window = options_.store.delivery_window;
  while (ds->in_flight.size() < window) {  // else it resumes when acks come
    const size_t want = std::min(window - ds->in_flight.size(), kPumpReadBatch);
    auto batch = queue_.Read(ctx.state.device, ds->sent_up_to, want, store::SystemClockMs());
    if (!batch) {
      spdlog::warn("reading a device queue failed: {}", batch.error().ToString());
      return;
    }
    for (const store::StoredMessage& m : *batch) {
      if (!EnvelopeFitsOrBlock(ctx, m.payload.size())) return;
      SendEnvelope(ctx, m.seq, m.payload);
      if (ctx.state.messaging.get() != ds) return;  // the connection closed while writing
    }
    if (batch->size() < want) {
      ds->catch_up = false;
      if (!ds->queue_empty_sent) {
        ds->queue_empty_sent = true;
        wire::Frame frame;
        frame.mutable_queue_empty();
        ctx.protocol.SendFrame(ctx.state, frame, ctx.out);
      }
      return;
    }
  }
}

void ServerCore::SendEnvelope(SessionContext& ctx, uint64_t seq, const std::string& payload) {
  internal::DeviceSession& ds = *ctx.state.messaging;
  ds.sent_up_to = seq;
  // Reused per thread: parsing into it keeps the string capacity of earlier envelopes.
  thread_local wire::Frame frame;
  wire::Envelope* e = frame.mutable_envelope();
  if (!e->ParseFromString(payload)) {
    spdlog::error("a stored envelope does not parse; skipping it");
    return;
  }
  e->set_seq(seq);
  internal::InFlight f;
  f.seq = seq;
  f.wants_receipt = e->type() == wire::ENVELOPE_MESSAGE;
  if (f.wants_receipt) {
    ToAccountId(e->source_account(), f.source.account);
    f.source.device_id = e->source_device();
    f.message_id = e->message_id();
    f.group_id = e->group_id();
  }
  ds.in_flight.push_back(std::move(f));
  metrics_.envelopes_delivered.fetch_add(1, std::memory_order_relaxed);
  ctx.protocol.SendFrame(ctx.state, frame, ctx.out);
}

void ServerCore::OnDeliveryAck(SessionContext& ctx, const wire::DeliveryAck& ack) {
  internal::SessionState& s = ctx.state;
  internal::DeviceSession* ds = s.messaging.get();
  if (ds == nullptr) return;
  store::WriteRequest write;
  const uint64_t now = store::SystemClockMs();
  const size_t n = std::min<size_t>(static_cast<size_t>(ack.seqs_size()), kMaxAcksPerFrame);
  for (size_t i = 0; i < n; ++i) {
    const uint64_t seq = ack.seqs(static_cast<int>(i));
    write.removals.push_back({s.device, seq});
    auto it = std::lower_bound(ds->in_flight.begin(), ds->in_flight.end(), seq,
                               [](const internal::InFlight& f, uint64_t v) { return f.seq < v; });
    if (it == ds->in_flight.end() || it->seq != seq) continue;
    if (it->wants_receipt) {
      wire::Envelope receipt;
      receipt.set_type(wire::ENVELOPE_DELIVERED);
      receipt.set_source_account(s.device.account.data(), s.device.account.size());
      receipt.set_source_device(s.device.device_id);
      receipt.set_message_id(it->message_id);
      if (!it->group_id.empty()) receipt.set_group_id(it->group_id);
      receipt.set_server_time_ms(now);
      store::Append a;
      a.recipient = it->source;
      // No de-duplication id: a second receipt (a message acked twice, on two connections,
      // before the first ack committed) is harmless, and the id would cost a read and two
      // writes on every online message.
      a.expires_ms = now + uint64_t{options_.store.message_ttl_s} * 1000;
      receipt.SerializeToString(&a.payload);
      write.appends.push_back(std::move(a));
    }
    ds->in_flight.erase(it);
  }
  metrics_.envelopes_acked.fetch_add(n, std::memory_order_relaxed);
  metrics_.receipts_queued.fetch_add(write.appends.size(), std::memory_order_relaxed);
  if (!write.removals.empty()) {
    queue_.Write(std::move(write), [this](store::WriteRequest&& req, store::WriteResult&& result) {
      if (result.status) Fanout(req, result, nullptr);
    });
  }
  Pump(ctx);
}

std::string ServerCore::RenderPrometheus() const {
  std::string out;
  auto counter = [&](const char* name, const char* help, uint64_t value) {
    AppendPrometheusSeries(out, (std::string("sotto_") + name).c_str(), "counter", help, value);
  };
  auto v = [](const std::atomic<uint64_t>& c) { return c.load(std::memory_order_relaxed); };
  counter("sends_total", "Send requests", v(metrics_.sends));
  counter("sends_stale_total", "Sends refused for a stale device list", v(metrics_.sends_stale));
  counter("sends_queue_full_total", "Sends refused for a full queue", v(metrics_.sends_queue_full));
  counter("sends_duplicate_total", "Sends of a message id already stored", v(metrics_.sends_duplicate));
  counter("sends_online_only_total", "online-only Sends (not queued)", v(metrics_.sends_online_only));
  counter("messages_queued_total", "queue appends committed", v(metrics_.messages_queued));
  counter("envelopes_delivered_total", "envelopes sent to devices", v(metrics_.envelopes_delivered));
  counter("envelopes_acked_total", "envelopes acked by devices", v(metrics_.envelopes_acked));
  counter("receipts_queued_total", "delivery receipts queued", v(metrics_.receipts_queued));
  counter("queue_expired_total", "messages purged after their TTL", v(metrics_.messages_expired));
  counter("registrations_total", "new accounts", v(metrics_.registrations));
  counter("reregistrations_total", "handles registered on a new primary", v(metrics_.reregistrations));
  counter("codes_issued_total", "verification codes sent", v(metrics_.codes_issued));
  counter("codes_refused_total", "verification code requests refused", v(metrics_.codes_refused));
  counter("bundles_fetched_total", "prekey bundle fetches", v(metrics_.bundles_fetched));
  counter("bundles_rate_limited_total", "bundle fetches refused by prekeys.bundle_rate", v(metrics_.bundles_rate_limited));
  counter("prekeys_claimed_total", "one-time prekeys handed out", v(metrics_.prekeys_claimed));
  counter("presence_updates_total", "presence updates pushed", presence_.updates_sent());
  counter("pushes_requested_total", "push notifications requested", v(metrics_.pushes_requested));
  counter("devices_linked_total", "companion devices linked", v(metrics_.devices_linked));
  counter("devices_unlinked_total", "companion devices unlinked", v(metrics_.devices_unlinked));
  counter("device_lists_published_total", "signed device lists published",
          v(metrics_.device_lists_published));
  counter("device_lists_refused_total", "device lists refused (signature, entries, version)",
          v(metrics_.device_lists_refused));
  counter("provision_frames_relayed_total", "provisioning messages relayed",
          v(metrics_.provision_frames_relayed));
  counter("deliveries_held_back_total", "envelopes that waited for the write queue to drain",
          v(metrics_.deliveries_held_back));
  counter("sends_sender_quota_total",
          "Sends refused at the sender's quota in a recipient queue (store.max_queued_per_sender)",
          v(metrics_.sends_sender_quota));
  counter("online_only_dropped_total", "online-only envelopes dropped for a full write queue",
          v(metrics_.online_only_dropped));
  AppendGroupPrometheus(out);
  AppendLimitPrometheus(out);
  AppendBlockingPrometheus(out);
  const store::QueueStats q = queue_.stats();
  counter("store_commits_total", "group commits (one fsync each)", q.commits);
  counter("store_commit_requests_total", "write requests in those commits", q.requests);
  counter("store_commit_micros_total", "time spent writing and syncing", q.commit_micros);
  AppendPrometheusSeries(out, "sotto_devices_online", "gauge", "devices with a routed connection",
                         router_.online());
  {  // Disk full (docs/store.md): the gauge /ready also answers from.
    const store::StorageHealth h = store_.storage_health();
    AppendPrometheusSeries(out, "sotto_store_disk_full", "gauge",
                           "1 while the store refuses writes for lack of disk space",
                           h.disk_full ? uint64_t{1} : uint64_t{0});
    AppendPrometheusSeries(out, "sotto_store_disk_free_bytes", "gauge",
                           "free space on the store's filesystem", h.free_bytes);
    counter("store_writes_refused_no_space_total", "store writes that failed for lack of space",
            h.writes_refused);
    counter("store_disk_full_episodes_total", "times the store's disk turned full",
            h.full_episodes);
    counter("store_disk_recoveries_total", "times writes worked again after the disk was full",
            h.recoveries);
    counter("requests_refused_storage_full_total", "responses sent as STATUS_STORAGE_FULL",
            v(metrics_.storage_full_refusals));
  }
  if (push_ != nullptr) {
    const PushStats p = push_->stats();
    counter("push_sent_total", "push notifications delivered to endpoints", p.sent);
    counter("push_coalesced_total", "push notifications folded into another", p.coalesced);
    counter("push_failed_attempts_total", "push attempts that failed", p.failed_attempts);
    counter("push_dropped_total", "push notifications given up", p.dropped);
    counter("push_refused_total",
            "pushes refused at send time: the endpoint resolved to a non-public address",
            p.refused);
  }
  return out;
}

}  // namespace sotto::server
