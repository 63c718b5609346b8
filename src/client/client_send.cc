// The send pipeline: outbox, sessions from bundles, per-device encryption, stale-device
// fixes, retries with backoff. docs/client.md "Sending".
#include <algorithm>
#include <set>

#include <spdlog/spdlog.h>

#include "client/internal/client_impl.h"
#include "signal/error.h"
#include "signal/session_builder.h"
#include "signal/session_cipher.h"

namespace sotto::client {
namespace {

using std::chrono::milliseconds;
using std::chrono::steady_clock;

constexpr size_t kOutboxBatch = 64;  // items read per flush pass

bool IsUntrusted(const Error& error) {
  return error.module == Module::kSignal &&
         error.detail == static_cast<uint16_t>(signal::Err::kUntrustedIdentity);
}

wire::CiphertextType WireType(signal::MessageType type) {
  switch (type) {
    case signal::MessageType::kPreKey:
      return wire::CIPHERTEXT_PREKEY;
    case signal::MessageType::kSignal:
      return wire::CIPHERTEXT_SIGNAL;
    case signal::MessageType::kSenderKey:
    case signal::MessageType::kSenderKeyDistribution:
      break;
  }
  return wire::CIPHERTEXT_UNKNOWN;
}

Result<signal::PreKeyBundle> ToBundle(const wire::DeviceBundle& b) {
  signal::PreKeyBundle bundle;
  bundle.device_id = b.device_id();
  bundle.registration_id = b.registration_id();
  SOTTO_ASSIGN_OR_RETURN(bundle.identity_key,
                         signal::PublicKey::Deserialize(AsBytes(b.identity_key())));
  bundle.signed_prekey_id = b.signed_prekey().id();
  SOTTO_ASSIGN_OR_RETURN(bundle.signed_prekey,
                         signal::PublicKey::Deserialize(AsBytes(b.signed_prekey().public_key())));
  const std::string& sig = b.signed_prekey().signature();
  if (sig.size() != bundle.signed_prekey_signature.size()) {
    return SdkError(Code::kInvalidArgument, SdkErr::kServerRefused, "bundle signature size");
  }
  std::copy(sig.begin(), sig.end(), bundle.signed_prekey_signature.begin());
  if (b.has_one_time_prekey()) {
    bundle.prekey_id = b.one_time_prekey().id();
    SOTTO_ASSIGN_OR_RETURN(
        bundle.prekey, signal::PublicKey::Deserialize(AsBytes(b.one_time_prekey().public_key())));
  }
  return bundle;
}

}  // namespace

content::Content Client::Impl::NewContent() const {
  content::Content content;
  content.set_sender_handle(account->handle);
  return content;
}

// Fetches bundles for `device_id` of `peer` (0: every device) and sets up sessions. A
// bundle whose identity differs from the accepted one is recorded as pending and
// answered with kIdentityChanged; the other devices still get their sessions.
Status Client::Impl::FetchSessions(const std::string& peer, uint32_t device_id) {
  wire::Request request;
  const Bytes account_id = FromHex(peer);
  request.mutable_get_bundle()->set_account_id(account_id.data(), account_id.size());
  request.mutable_get_bundle()->set_device_id(device_id);
  SOTTO_ASSIGN_OR_RETURN(wire::Response response, Call(std::move(request)));
  if (response.status() == wire::STATUS_NOT_FOUND) {
    return SdkError(Code::kNotFound, SdkErr::kUnknownUser, "the server has no such account");
  }
  if (response.status() != wire::STATUS_OK) {
    return SdkError(Code::kUnavailable, SdkErr::kServerRefused,
                    "the server refused the key bundle request");
  }
  ++stats.bundles_fetched;
  bool changed = false;
  std::optional<Error> refused;  // a companion not in a verified device list
  std::optional<wire::DeviceList> list;
  const bool own = peer == OwnAccount();
  LocalStore::Transaction tx(*store);
  for (const wire::DeviceBundle& b : response.get_bundle().bundles()) {
    if (own && b.device_id() == account->device_id) continue;  // not to ourselves
    SOTTO_ASSIGN_OR_RETURN(signal::PreKeyBundle bundle, ToBundle(b));
    const signal::ProtocolAddress address{peer, bundle.device_id};
    // A companion is believed only through the primary's signed list (docs/devices.md).
    if (bundle.device_id != kPrimaryDeviceId) {
      if (!list) {
        auto accepted = AcceptDeviceList(peer, response.get_bundle().device_list());
        if (!accepted) {
          if (IsStoreError(accepted.error())) return tl::unexpected(accepted.error());
          refused = accepted.error();
          continue;
        }
        list = std::move(*accepted);
      }
      const std::optional<signal::IdentityKey> listed = ListedIdentity(*list, bundle.device_id);
      if (!listed || *listed != bundle.identity_key) {
        refused = SdkError(Code::kPermissionDenied, SdkErr::kBadDeviceList,
                           "a device is not in the account's signed device list")
                      .value();
        continue;
      }
    }
    auto processed = signal::ProcessPreKeyBundle(stores(), address, bundle, random);
    if (!processed && IsUntrusted(processed.error())) {
      SOTTO_RETURN_IF_ERROR(store->RecordPendingIdentity(address, bundle.identity_key, WallMs()));
      changed = true;
      continue;
    }
    SOTTO_RETURN_IF_ERROR(processed);
  }
  SOTTO_RETURN_IF_ERROR(tx.Commit());
  if (changed) {
    return SdkError(Code::kPermissionDenied, SdkErr::kIdentityChanged,
                    "the contact's safety number changed; accept it before sending");
  }
  if (refused) {
    spdlog::warn("refused a device not in a verified device list");
    return tl::unexpected(*refused);
  }
  return Ok();
}

Status Client::Impl::BlockItem(OutboxItem& item) {
  item.blocked = true;
  LocalStore::Transaction tx(*store);
  // Items not in the outbox (typing indicators, sender key distributions) have rowid 0.
  if (item.rowid != 0) SOTTO_RETURN_IF_ERROR(store->UpdateOutbox(item));
  SOTTO_RETURN_IF_ERROR(store->AdvanceTick(item.recipient, item.message_id, Tick::kBlocked));
  SOTTO_RETURN_IF_ERROR(tx.Commit());
  Emit(IdentityChangedEvent{item.recipient, HandleOf(item.recipient)});
  return Ok();
}

// Everything before the network: sessions for every device (bundles fetched for those
// without one), then the content encrypted per device with the advanced ratchet state
// committed (inside the caller's transaction, if any) before anything leaves, so a
// message key is never reused even if this process dies mid-send.
Result<Client::Impl::Prepared> Client::Impl::PrepareSend(OutboxItem& item, wire::Request& request) {
  SOTTO_ASSIGN_OR_RETURN(std::vector<signal::ProtocolAddress> pending,
                         store->PendingIdentities(item.recipient));
  if (!pending.empty()) {
    SOTTO_RETURN_IF_ERROR(BlockItem(item));
    return Prepared::kBlocked;
  }
  SOTTO_ASSIGN_OR_RETURN(std::vector<uint32_t> devices, store->GetDeviceSessions(item.recipient));
  if (devices.empty()) {
    auto fetched = FetchSessions(item.recipient, 0);
    if (!fetched && fetched.error().detail == static_cast<uint16_t>(SdkErr::kIdentityChanged)) {
      SOTTO_RETURN_IF_ERROR(BlockItem(item));
      return Prepared::kBlocked;
    }
    SOTTO_RETURN_IF_ERROR(fetched);
    SOTTO_ASSIGN_OR_RETURN(devices, store->GetDeviceSessions(item.recipient));
  }
  if (item.recipient == OwnAccount()) {
    std::erase(devices, account->device_id);
    if (devices.empty()) return Prepared::kNoDevices;  // a sync with no other device
  }
  const Bytes message_id = FromHex(item.message_id);
  const Bytes recipient = FromHex(item.recipient);
  request.Clear();
  wire::SendRequest* send = request.mutable_send();
  send->set_message_id(message_id.data(), message_id.size());
  send->set_recipient(recipient.data(), recipient.size());
  send->set_online_only(item.online_only);
  LocalStore::Transaction tx(*store);
  for (uint32_t device : devices) {
    signal::SessionCipher cipher(stores(), {item.recipient, device}, random);
    auto encrypted = cipher.Encrypt(item.content);
    if (!encrypted && IsUntrusted(encrypted.error())) {
      SOTTO_RETURN_IF_ERROR(tx.Commit());
      SOTTO_RETURN_IF_ERROR(BlockItem(item));
      return Prepared::kBlocked;
    }
    SOTTO_RETURN_IF_ERROR(encrypted);
    SOTTO_ASSIGN_OR_RETURN(uint32_t registration_id, cipher.RemoteRegistrationId());
    wire::DeviceMessage* m = send->add_messages();
    m->set_device_id(device);
    m->set_registration_id(registration_id);
    m->set_type(WireType(encrypted->type));
    m->set_ciphertext(encrypted->bytes.data(), encrypted->bytes.size());
  }
  SOTTO_RETURN_IF_ERROR(tx.Commit());
  return Prepared::kReady;
}

Result<Tick> Client::Impl::SendItem(OutboxItem& item, std::optional<wire::Request> prepared) {
  for (int attempt = 0; attempt <= kMaxStaleRetries; ++attempt) {
    wire::Request request;
    if (attempt == 0 && prepared) {
      request = std::move(*prepared);
    } else {
      SOTTO_ASSIGN_OR_RETURN(Prepared ready, PrepareSend(item, request));
      if (ready == Prepared::kBlocked) return Tick::kBlocked;
      if (ready == Prepared::kNoDevices) {
        if (item.rowid != 0) SOTTO_RETURN_IF_ERROR(store->RemoveOutbox(item.message_id));
        return Tick::kSent;
      }
    }
    SOTTO_ASSIGN_OR_RETURN(wire::Response response, Call(std::move(request)));
    if (response.status() == wire::STATUS_OK) {
      // Relaxed: if power loss undoes this, the retry carries the same message id and the
      // server drops it as a duplicate.
      LocalStore::Transaction tx(*store, LocalStore::Durability::kRelaxed);
      SOTTO_RETURN_IF_ERROR(store->RemoveOutbox(item.message_id));
      SOTTO_ASSIGN_OR_RETURN(bool advanced,
                             store->AdvanceTick(item.recipient, item.message_id, Tick::kSent));
      SOTTO_RETURN_IF_ERROR(tx.Commit());
      ++stats.sent;
      if (advanced) {
        Emit(ReceiptEvent{item.recipient, HandleOf(item.recipient), item.message_id, Tick::kSent});
      }
      return Tick::kSent;
    }
    if (response.status() != wire::STATUS_STALE_DEVICES) {
      // Queue full, rate limit, shutting down...: retry later with backoff.
      const uint64_t delay =
          std::min<uint64_t>(static_cast<uint64_t>(config.outbox_retry_max.count()),
                             static_cast<uint64_t>(config.outbox_retry_initial.count())
                                 << std::min(item.attempts, 16u));
      ++item.attempts;
      item.next_attempt_ms = WallMs() + delay;
      // Typing indicators are not in the outbox: they are simply not sent.
      if (item.rowid != 0) SOTTO_RETURN_IF_ERROR(store->UpdateOutbox(item));
      return Tick::kPending;
    }
    // The device list changed: drop sessions of removed and re-registered devices,
    // fetch bundles for new and re-registered ones, and try again.
    const wire::SendResponse& stale = response.send();
    for (uint32_t device : stale.extra_devices()) {
      SOTTO_RETURN_IF_ERROR(store->DeleteSession({item.recipient, device}));
    }
    for (uint32_t device : stale.stale_devices()) {
      SOTTO_RETURN_IF_ERROR(store->DeleteSession({item.recipient, device}));
    }
    std::vector<uint32_t> fetch(stale.stale_devices().begin(), stale.stale_devices().end());
    fetch.insert(fetch.end(), stale.missing_devices().begin(), stale.missing_devices().end());
    for (uint32_t device : fetch) {
      auto fetched = FetchSessions(item.recipient, device);
      if (!fetched && fetched.error().detail == static_cast<uint16_t>(SdkErr::kIdentityChanged)) {
        SOTTO_RETURN_IF_ERROR(BlockItem(item));
        return Tick::kBlocked;
      }
      SOTTO_RETURN_IF_ERROR(fetched);
    }
  }
  return SdkError(Code::kUnavailable, SdkErr::kServerRefused,
                  "the recipient's device list kept changing (kMaxStaleRetries)");
}

// Sends due items in outbox order. An item that is not due, or not sent, holds back
// every later item to the same recipient, so each conversation keeps its order.
Status Client::Impl::FlushOutbox(Due due) {
  next_outbox_at = SteadyTime::max();
  std::set<std::string, std::less<>> held;
  for (;;) {
    SOTTO_ASSIGN_OR_RETURN(std::vector<OutboxItem> items,
                           store->ListOutbox(kOutboxBatch, LocalStore::OutboxFilter::kReady));
    const uint64_t now = WallMs();
    size_t attempted = 0;
    for (OutboxItem& item : items) {
      if (held.contains(item.recipient)) continue;
      if (due == Due::kDueOnly && item.next_attempt_ms > now) {
        const auto at = steady_clock::now() + milliseconds(item.next_attempt_ms - now);
        next_outbox_at = std::min(next_outbox_at, at);
        held.insert(item.recipient);
        continue;
      }
      if (!conn) {
        next_outbox_at = SteadyTime::max();  // reconnecting resets it
        return Ok();
      }
      ++attempted;
      auto tick = IsGroupRecipient(item.recipient) ? SendGroupItem(item) : SendItem(item);
      if (!tick) {
        if (IsOffline(tick.error())) return Ok();  // stays queued; the reconnect flushes again
        if (IsStoreError(tick.error())) {
          return tl::unexpected(tick.error());  // the store failed
        }
        // Anything else (unknown account, bad bundle): retry later, do not spin.
        spdlog::warn("outbox: send failed, will retry: {}", tick.error().ToString());
        ++item.attempts;
        item.next_attempt_ms = now + static_cast<uint64_t>(config.outbox_retry_max.count());
        SOTTO_RETURN_IF_ERROR(store->UpdateOutbox(item));
        next_outbox_at = std::min(next_outbox_at, steady_clock::now() + config.outbox_retry_max);
        held.insert(item.recipient);
        continue;
      }
      if (*tick == Tick::kPending) {
        next_outbox_at = std::min(next_outbox_at,
                                  steady_clock::now() + milliseconds(item.next_attempt_ms - now));
      }
      if (*tick != Tick::kSent) held.insert(item.recipient);
    }
    if (attempted == 0 || items.size() < kOutboxBatch) return Ok();
  }
}

Result<Contact> Client::Impl::ResolveContact(std::string_view handle) {
  if (!IsE164(handle)) {
    return SdkError(Code::kInvalidArgument, SdkErr::kBadHandle,
                    "the number must be E.164: + and 8 to 15 digits");
  }
  if (account && handle == account->handle) {
    return SdkError(Code::kInvalidArgument, SdkErr::kBadHandle,
                    "that is this account's own number");
  }
  SOTTO_ASSIGN_OR_RETURN(std::optional<Contact> known, store->ContactByHandle(handle));
  if (known) return *known;
  if (!conn) SOTTO_RETURN_IF_ERROR(TryConnect());
  wire::Request request;
  request.mutable_lookup()->set_handle(std::string(handle));
  SOTTO_ASSIGN_OR_RETURN(wire::Response response, Call(std::move(request)));
  if (response.status() == wire::STATUS_NOT_FOUND) {
    return SdkError(Code::kNotFound, SdkErr::kUnknownUser, "no Sotto account has this number");
  }
  if (response.status() != wire::STATUS_OK) {
    return SdkError(Code::kUnavailable, SdkErr::kServerRefused, "the server refused the lookup");
  }
  Contact contact;
  contact.handle = std::string(handle);
  contact.account_id = Hex(response.lookup().account_id());
  contact.added_ms = WallMs();
  SOTTO_RETURN_IF_ERROR(store->PutContact(contact));
  return contact;
}

// Stores `content` for `peer` in the outbox under a new message id.
Result<std::string> Client::Impl::QueueContent(const std::string& peer,
                                               const content::Content& content, bool online_only) {
  OutboxItem item;
  item.message_id = NewMessageId();
  item.recipient = peer;
  item.content = EncodeContent(content);
  item.online_only = online_only;
  SOTTO_RETURN_IF_ERROR(store->AddOutbox(item));
  next_outbox_at = std::chrono::steady_clock::now();
  return item.message_id;
}

Result<SendOutcome> Client::SendText(std::string_view handle, std::string_view text) {
  Impl& d = *impl_;
  SOTTO_RETURN_IF_ERROR(d.RequireRegistered());
  if (text.size() > kMaxBodyBytes) {
    return SdkError(Code::kInvalidArgument, SdkErr::kTooLarge, kTextTooLong);
  }
  if (!IsUtf8(text)) {
    return SdkError(Code::kInvalidArgument, SdkErr::kTooLarge, "the text is not UTF-8");
  }
  SOTTO_ASSIGN_OR_RETURN(Contact contact, d.ResolveContact(handle));
  content::Content content = d.NewContent();
  content.mutable_data()->set_body(std::string(text));
  content.mutable_data()->set_timestamp_ms(WallMs());
  OutboxItem item;
  item.message_id = d.NewMessageId();
  item.recipient = contact.account_id;
  item.content = EncodeContent(content);
  StoredMessage message;
  message.message_id = item.message_id;
  message.peer = contact.account_id;
  message.direction = MessageDirection::kOutgoing;
  message.body = std::string(text);
  message.sent_ms = content.data().timestamp_ms();
  message.stored_ms = message.sent_ms;
  message.tick = Tick::kPending;
  if (!d.conn) (void)d.TryConnect();
  // The account's other devices file it too (sent-message sync), queued after it.
  SOTTO_ASSIGN_OR_RETURN(const bool synced,
                         d.QueueSentSync(contact.account_id, item.message_id, content.data()));
  SendOutcome outcome{item.message_id, Tick::kPending};
  // Older messages to this recipient still waiting: queue behind them and flush in order.
  SOTTO_ASSIGN_OR_RETURN(const size_t earlier, d.store->CountOutbox(contact.account_id));
  if (earlier > 0) {
    {
      LocalStore::Transaction tx(*d.store);
      SOTTO_RETURN_IF_ERROR(d.store->AddMessage(message));
      SOTTO_ASSIGN_OR_RETURN(item.rowid, d.store->AddOutbox(item));
      SOTTO_RETURN_IF_ERROR(tx.Commit());
    }
    if (d.conn) SOTTO_RETURN_IF_ERROR(d.FlushOutbox(Impl::Due::kAll));
    SOTTO_ASSIGN_OR_RETURN(
        std::optional<StoredMessage> stored,
        d.store->GetMessage(contact.account_id, MessageDirection::kOutgoing, item.message_id));
    if (stored) outcome.tick = stored->tick;
    return outcome;
  }
  // One commit for the message, its outbox entry and (when the server is reachable) the
  // ratchet state of its encryption.
  std::optional<wire::Request> request;
  {
    LocalStore::Transaction tx(*d.store);
    SOTTO_RETURN_IF_ERROR(d.store->AddMessage(message));
    SOTTO_ASSIGN_OR_RETURN(item.rowid, d.store->AddOutbox(item));
    if (d.conn) {
      request.emplace();
      auto prepared = d.PrepareSend(item, *request);
      if (!prepared || *prepared == Impl::Prepared::kBlocked) request.reset();
      if (prepared && *prepared == Impl::Prepared::kBlocked) outcome.tick = Tick::kBlocked;
      if (!prepared && !IsOffline(prepared.error())) {
        SOTTO_RETURN_IF_ERROR(tx.Commit());  // the message stays queued for a retry
        return tl::unexpected(prepared.error());
      }
    }
    SOTTO_RETURN_IF_ERROR(tx.Commit());
  }
  if (!request) return outcome;
  auto tick = d.SendItem(item, std::move(request));
  if (!tick) {
    if (IsOffline(tick.error())) return outcome;
    return tl::unexpected(tick.error());
  }
  outcome.tick = *tick;
  if (synced && d.conn) SOTTO_RETURN_IF_ERROR(d.FlushOutbox(Impl::Due::kDueOnly));
  return outcome;
}

Status Client::SendTyping(std::string_view handle, Typing typing) {
  Impl& d = *impl_;
  SOTTO_ASSIGN_OR_RETURN(Contact contact, d.ResolveContact(handle));
  content::Content content = d.NewContent();
  content.mutable_typing()->set_action(typing == Typing::kStarted
                                           ? content::TypingMessage::STARTED
                                           : content::TypingMessage::STOPPED);
  content.mutable_typing()->set_timestamp_ms(WallMs());
  OutboxItem item;
  item.message_id = d.NewMessageId();
  item.recipient = contact.account_id;
  item.content = EncodeContent(content);
  item.online_only = true;
  // Never queued locally: a typing indicator is worthless later.
  if (!d.conn) SOTTO_RETURN_IF_ERROR(d.TryConnect());
  SOTTO_ASSIGN_OR_RETURN(Tick tick, d.SendItem(item));
  if (tick == Tick::kBlocked) {
    return SdkError(Code::kPermissionDenied, SdkErr::kIdentityChanged,
                    "the contact's safety number changed; accept it first");
  }
  return Ok();
}

Result<size_t> Client::MarkRead(std::string_view handle) {
  Impl& d = *impl_;
  SOTTO_ASSIGN_OR_RETURN(Contact contact, d.ResolveContact(handle));
  std::vector<StoredMessage> read;
  {
    LocalStore::Transaction tx(*d.store);
    SOTTO_ASSIGN_OR_RETURN(read, d.store->MarkRead(contact.account_id));
    for (size_t i = 0; i < read.size(); i += kMaxReceiptIds) {
      content::Content content = d.NewContent();
      content.mutable_receipt()->set_type(content::ReceiptMessage::READ);
      for (size_t k = i; k < std::min(read.size(), i + kMaxReceiptIds); ++k) {
        const Bytes id = FromHex(read[k].message_id);
        content.mutable_receipt()->add_message_ids(id.data(), id.size());
      }
      SOTTO_RETURN_IF_ERROR(d.QueueContent(contact.account_id, content, false));
    }
    SOTTO_RETURN_IF_ERROR(tx.Commit());
  }
  if (!read.empty() && !d.conn) (void)d.TryConnect();  // offline: they wait in the outbox
  if (!read.empty() && d.conn) SOTTO_RETURN_IF_ERROR(d.FlushOutbox(Impl::Due::kAll));
  return read.size();
}

Result<size_t> Client::PendingCount() { return impl_->store->CountOutbox(); }

}  // namespace sotto::client
