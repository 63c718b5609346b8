// The receive pipeline: de-duplicate, decrypt, store with the session state in one
// transaction, then ack. docs/client.md "Receiving".
#include <algorithm>

#include <spdlog/spdlog.h>

#include "client/internal/client_impl.h"
#include "signal/error.h"
#include "signal/session_cipher.h"

namespace sotto::client {
namespace {

bool IsSignalErr(const Error& error, signal::Err err) {
  return error.module == Module::kSignal && error.detail == static_cast<uint16_t>(err);
}

}  // namespace

Status Client::Impl::ProcessEnvelopes(std::vector<wire::Envelope>& envelopes) {
  std::vector<Event> events;
  wire::Frame ack;
  // Senders whose claimed handle needs a lookup, checked after the commit.
  std::vector<std::pair<std::string, std::string>> to_verify;
  // A companion we have no verified list entry for: fetch its account's list first (the
  // check itself is below, after decryption tells us the device's identity key).
  std::vector<std::string> refreshed;
  for (const wire::Envelope& env : envelopes) {
    if (env.type() != wire::ENVELOPE_MESSAGE || env.source_device() == kPrimaryDeviceId) continue;
    const std::string source = Hex(env.source_account());
    if (std::find(refreshed.begin(), refreshed.end(), source) != refreshed.end()) continue;
    SOTTO_ASSIGN_OR_RETURN(std::optional<wire::DeviceList> list, KnownDeviceList(source));
    if (list && ListedIdentity(*list, env.source_device())) continue;
    refreshed.push_back(source);
    if (auto st = RefreshDeviceList(source); !st) {
      if (IsStoreError(st.error())) return st;
      spdlog::warn("a sender's device list could not be verified: {}", st.error().ToString());
    }
  }
  SOTTO_RETURN_IF_ERROR(PrefetchGroups(envelopes));
  {
    LocalStore::Transaction tx(*store);
    const uint64_t now = WallMs();
    for (wire::Envelope& env : envelopes) {
      ack.mutable_delivery_ack()->add_seqs(env.seq());
      const std::string source = Hex(env.source_account());
      const std::string message_id = Hex(env.message_id());
      if (env.type() == wire::ENVELOPE_DELIVERED && !env.group_id().empty()) {
        SOTTO_RETURN_IF_ERROR(HandleGroupReceipt(source, message_id, Tick::kDelivered, now, events));
        continue;
      }
      if (env.type() == wire::ENVELOPE_GROUP_UPDATE) {
        SOTTO_RETURN_IF_ERROR(HandleGroupUpdate(env, events));
        continue;
      }
      if (env.type() == wire::ENVELOPE_DELIVERED) {
        SOTTO_ASSIGN_OR_RETURN(bool advanced,
                               store->AdvanceTick(source, message_id, Tick::kDelivered));
        if (advanced) events.emplace_back(ReceiptEvent{source, "", message_id, Tick::kDelivered});
        continue;
      }
      if (env.type() != wire::ENVELOPE_MESSAGE) continue;
      SOTTO_ASSIGN_OR_RETURN(bool seen, store->HasReceived(source, message_id));
      if (seen) {
        ++stats.duplicates;
        continue;
      }
      if (env.ciphertext_type() == wire::CIPHERTEXT_SENDER_KEY) {
        SOTTO_RETURN_IF_ERROR(ReceiveGroupMessage(env, now, events, to_verify));
        continue;
      }
      signal::MessageType type = signal::MessageType::kSignal;
      if (env.ciphertext_type() == wire::CIPHERTEXT_PREKEY) {
        type = signal::MessageType::kPreKey;
      } else if (env.ciphertext_type() != wire::CIPHERTEXT_SIGNAL) {
        ++stats.decrypt_failures;
        events.emplace_back(DecryptionFailedEvent{source, "", env.source_device()});
        SOTTO_RETURN_IF_ERROR(store->MarkReceived(source, message_id, now));
        continue;
      }
      const signal::ProtocolAddress address{source, env.source_device()};
      signal::SessionCipher cipher(stores(), address, random);
      auto plaintext = cipher.Decrypt(AsBytes(env.ciphertext()), type);
      if (!plaintext) {
        if (IsSignalErr(plaintext.error(), signal::Err::kDuplicateMessage)) {
          ++stats.duplicates;
        } else {
          // Undecryptable (corrupt, or a session we no longer have): it can never be
          // read, so it is acked and counted rather than retried forever.
          ++stats.decrypt_failures;
          events.emplace_back(DecryptionFailedEvent{source, "", env.source_device()});
          spdlog::warn("dropped a message that does not decrypt: {}", plaintext.error().ToString());
        }
        SOTTO_RETURN_IF_ERROR(store->MarkReceived(source, message_id, now));
        continue;
      }
      SOTTO_RETURN_IF_ERROR(store->MarkReceived(source, message_id, now));
      if (env.source_device() != kPrimaryDeviceId) {
        SOTTO_ASSIGN_OR_RETURN(std::optional<signal::IdentityKey> key, store->GetIdentity(address));
        SOTTO_ASSIGN_OR_RETURN(bool listed, DeviceIsListed(source, env.source_device(), key));
        if (!listed) {
          // Not a device the account's primary signed for: refused (docs/devices.md).
          SOTTO_RETURN_IF_ERROR(store->DeleteSession(address));
          ++stats.decrypt_failures;
          events.emplace_back(DecryptionFailedEvent{source, "", env.source_device()});
          spdlog::warn("refused a message from a device not in its account's signed list");
          continue;
        }
      }
      auto content = DecodeContent(*plaintext);
      if (!content) {
        ++stats.decrypt_failures;
        events.emplace_back(DecryptionFailedEvent{source, "", env.source_device()});
        continue;
      }
      std::string handle = HandleOf(source);
      if (handle.empty() && IsE164(content->sender_handle())) {
        to_verify.emplace_back(source, content->sender_handle());
      }
      SOTTO_ASSIGN_OR_RETURN(std::optional<IdentityInfo> identity, store->GetIdentityInfo(address));
      const bool untrusted = identity && identity->pending.has_value();
      if (untrusted) events.emplace_back(IdentityChangedEvent{source, handle});
      switch (content->body_case()) {
        case content::Content::kData: {
          StoredMessage message;
          message.message_id = message_id;
          message.peer = source;
          message.direction = MessageDirection::kIncoming;
          message.peer_device = env.source_device();
          message.body = content->data().body();
          message.sent_ms = content->data().timestamp_ms();
          message.stored_ms = now;
          message.tick = Tick::kDelivered;
          message.untrusted_identity = untrusted;
          auto rowid = store->AddMessage(message);
          if (!rowid && rowid.error().code == Code::kAlreadyExists) break;
          SOTTO_RETURN_IF_ERROR(rowid);
          message.rowid = *rowid;
          if (content->data().has_attachment()) {
            SOTTO_RETURN_IF_ERROR(StoreIncomingAttachment(message, content->data().attachment()));
          }
          ++stats.received;
          events.emplace_back(MessageEvent{std::move(message), handle});
          break;
        }
        case content::Content::kReceipt:
          for (const std::string& id : content->receipt().message_ids()) {
            SOTTO_ASSIGN_OR_RETURN(bool advanced, store->AdvanceTick(source, Hex(id), Tick::kRead));
            if (advanced) events.emplace_back(ReceiptEvent{source, handle, Hex(id), Tick::kRead});
            if (!advanced) {
              SOTTO_RETURN_IF_ERROR(HandleGroupReceipt(source, Hex(id), Tick::kRead, now, events));
            }
          }
          break;
        case content::Content::kSenderKey:
          SOTTO_RETURN_IF_ERROR(HandleSenderKeyDistribution(address, *content));
          break;
        case content::Content::kGroupMetadata:  // only valid inside the group (sender key)
          break;
        case content::Content::kTyping:
          events.emplace_back(TypingEvent{
              source, handle, content->typing().action() == content::TypingMessage::STARTED});
          break;
        case content::Content::kSent: {
          // Sent-message sync: only our own account's devices may tell us what we sent.
          const content::SentMessage& sent = content->sent();
          if (source != OwnAccount() || sent.destination().size() != 16 ||
              sent.message_id().empty() || sent.message_id().size() > 32) {
            break;
          }
          StoredMessage message;
          message.message_id = Hex(sent.message_id());
          message.peer = Hex(sent.destination());
          message.direction = MessageDirection::kOutgoing;
          message.peer_device = 0;
          message.body = sent.data().body();
          message.sent_ms = sent.data().timestamp_ms();
          message.stored_ms = now;
          message.tick = Tick::kSent;
          auto rowid = store->AddMessage(message);
          if (!rowid && rowid.error().code == Code::kAlreadyExists) break;
          SOTTO_RETURN_IF_ERROR(rowid);
          message.rowid = *rowid;
          events.emplace_back(MessageEvent{std::move(message), ""});
          break;
        }
        case content::Content::BODY_NOT_SET:
          break;
      }
    }
    SOTTO_RETURN_IF_ERROR(tx.Commit());
  }
  // Only now, with everything durable, may the server forget these envelopes.
  (void)SendFrame(ack);
  envelopes.clear();
  // A sender we do not know claims a handle: believe it only if the server's lookup
  // of that handle names the same account.
  for (const auto& [source, claimed] : to_verify) {
    if (!HandleOf(source).empty()) continue;
    wire::Request request;
    request.mutable_lookup()->set_handle(claimed);
    auto response = Call(std::move(request));
    if (response && response->status() == wire::STATUS_OK &&
        Hex(response->lookup().account_id()) == source) {
      Contact contact;
      contact.handle = claimed;
      contact.account_id = source;
      contact.added_ms = WallMs();
      SOTTO_RETURN_IF_ERROR(store->PutContact(contact));
    }
  }
  SOTTO_RETURN_IF_ERROR(FetchStaleGroups());  // first: it reports the announced change
  SOTTO_RETURN_IF_ERROR(FetchUnknownGroups());
  FetchReceivedAttachments(events);
  for (Event& event : events) {
    std::visit(
        [this](auto& e) {
          if constexpr (requires {
                          e.handle;
                          e.peer;
                        }) {
            if (e.handle.empty()) e.handle = HandleOf(e.peer);
          } else if constexpr (requires {
                                 e.handle;
                                 e.message.peer;
                               }) {
            if (e.handle.empty()) e.handle = HandleOf(e.message.peer);
          }
        },
        event);
    Emit(event);
  }
  return Ok();
}

}  // namespace sotto::client
