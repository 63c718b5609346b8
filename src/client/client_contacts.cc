// Contacts, identity trust, safety numbers, presence, and reading the local history.
#include <algorithm>

#include "client/internal/client_impl.h"
#include "signal/fingerprint.h"

namespace sotto::client {
namespace {

constexpr uint32_t kPrimaryDevice = 1;

}  // namespace

std::string Client::Impl::HandleOf(const std::string& peer) {
  auto contact = store->ContactByAccount(peer);
  if (contact && *contact) return (*contact)->handle;
  return "";
}

std::string Client::Impl::NameOf(const std::string& peer) {
  auto contact = store->ContactByAccount(peer);
  if (contact && *contact) return (*contact)->name;
  return "";
}

// After a changed key was accepted: held messages go back to the outbox.
Status Client::Impl::ReleaseHeld(const std::string& peer) {
  SOTTO_ASSIGN_OR_RETURN(std::vector<OutboxItem> items,
                         store->ListOutbox(100000, LocalStore::OutboxFilter::kIncludeBlocked));
  LocalStore::Transaction tx(*store);
  for (const OutboxItem& item : items) {
    if (item.recipient != peer || !item.blocked) continue;
    SOTTO_RETURN_IF_ERROR(store->AdvanceTick(peer, item.message_id, Tick::kPending));
  }
  SOTTO_RETURN_IF_ERROR(store->UnblockOutbox(peer));
  SOTTO_RETURN_IF_ERROR(tx.Commit());
  next_outbox_at = std::chrono::steady_clock::now();
  if (conn) return FlushOutbox(Due::kAll);
  return Ok();
}

Result<Contact> Client::AddContact(std::string_view handle, std::string_view name) {
  Impl& d = *impl_;
  SOTTO_RETURN_IF_ERROR(d.RequireRegistered());
  SOTTO_ASSIGN_OR_RETURN(Contact contact, d.ResolveContact(handle));
  if (!name.empty()) contact.name = std::string(name);
  SOTTO_RETURN_IF_ERROR(d.store->PutContact(contact));
  // The server's contact list decides who sees our presence ("contacts" visibility).
  if (!d.conn) SOTTO_RETURN_IF_ERROR(d.TryConnect());
  wire::Request request;
  const Bytes id = FromHex(contact.account_id);
  request.mutable_contact()->set_account_id(id.data(), id.size());
  SOTTO_ASSIGN_OR_RETURN(wire::Response response, d.Call(std::move(request)));
  if (response.status() != wire::STATUS_OK) {
    return SdkError(Code::kUnavailable, SdkErr::kServerRefused,
                    "the server refused to add the contact");
  }
  return contact;
}

Result<std::vector<Contact>> Client::Contacts() { return impl_->store->ListContacts(); }

Result<SafetyNumber> Client::GetSafetyNumber(std::string_view handle) {
  Impl& d = *impl_;
  SOTTO_RETURN_IF_ERROR(d.RequireRegistered());
  SOTTO_ASSIGN_OR_RETURN(Contact contact, d.ResolveContact(handle));
  const signal::ProtocolAddress address{contact.account_id, kPrimaryDevice};
  SOTTO_ASSIGN_OR_RETURN(std::optional<IdentityInfo> info, d.store->GetIdentityInfo(address));
  if (!info) {
    // No key known yet: fetch the bundles (this sets up the sessions a first message
    // would need anyway).
    if (!d.conn) SOTTO_RETURN_IF_ERROR(d.TryConnect());
    SOTTO_RETURN_IF_ERROR(d.FetchSessions(contact.account_id, 0));
    SOTTO_ASSIGN_OR_RETURN(info, d.store->GetIdentityInfo(address));
    if (!info) {
      return SdkError(Code::kNotFound, SdkErr::kUnknownUser,
                      "the contact has no primary device keys on the server");
    }
  }
  const signal::IdentityKey& theirs = info->pending ? *info->pending : info->key;
  SOTTO_ASSIGN_OR_RETURN(
      signal::Fingerprint fingerprint,
      signal::ComputeFingerprint(signal::kFingerprintIterations, d.account->handle,
                                 d.account->identity.public_key, contact.handle, theirs));
  SafetyNumber out;
  out.displayable = std::move(fingerprint.displayable);
  out.scannable = std::move(fingerprint.scannable);
  out.verified = info->verified && !info->pending;
  out.pending_change = info->pending.has_value();
  return out;
}

Status Client::TrustIdentity(std::string_view handle) {
  Impl& d = *impl_;
  SOTTO_ASSIGN_OR_RETURN(Contact contact, d.ResolveContact(handle));
  SOTTO_ASSIGN_OR_RETURN(std::vector<signal::ProtocolAddress> pending,
                         d.store->PendingIdentities(contact.account_id));
  for (const signal::ProtocolAddress& address : pending) {
    SOTTO_RETURN_IF_ERROR(d.store->AcceptIdentity(address));
  }
  return d.ReleaseHeld(contact.account_id);
}

Status Client::VerifyContact(std::string_view handle, std::optional<std::string_view> expected) {
  Impl& d = *impl_;
  SOTTO_ASSIGN_OR_RETURN(SafetyNumber number, GetSafetyNumber(handle));
  if (expected) {
    std::string digits;
    std::copy_if(expected->begin(), expected->end(), std::back_inserter(digits),
                 [](char c) { return c != ' ' && c != '-'; });
    if (digits != number.displayable) {
      return SdkError(Code::kFailedPrecondition, SdkErr::kMismatch,
                      "the safety number does not match: do not trust this contact's key");
    }
  }
  SOTTO_RETURN_IF_ERROR(TrustIdentity(handle));
  SOTTO_ASSIGN_OR_RETURN(Contact contact, d.ResolveContact(handle));
  return d.store->SetVerified(contact.account_id, LocalStore::Verification::kVerified);
}

Result<Presence> Client::GetPresence(std::string_view handle) {
  Impl& d = *impl_;
  SOTTO_ASSIGN_OR_RETURN(Contact contact, d.ResolveContact(handle));
  if (!d.conn) SOTTO_RETURN_IF_ERROR(d.TryConnect());
  wire::Request request;
  const Bytes id = FromHex(contact.account_id);
  request.mutable_subscribe_presence()->set_account_id(id.data(), id.size());
  SOTTO_ASSIGN_OR_RETURN(wire::Response response, d.Call(std::move(request)));
  if (response.status() == wire::STATUS_PERMISSION_DENIED) {
    return SdkError(Code::kPermissionDenied, SdkErr::kServerRefused,
                    "this contact does not share presence with you");
  }
  if (response.status() != wire::STATUS_OK) {
    return SdkError(Code::kUnavailable, SdkErr::kServerRefused,
                    "the server refused the presence request");
  }
  return Presence{response.presence().online(), response.presence().last_seen_ms()};
}

Status Client::SetPresenceVisibility(std::string_view visibility) {
  Impl& d = *impl_;
  wire::PresenceVisibility value = wire::PRESENCE_CONTACTS;
  if (visibility == "everyone") {
    value = wire::PRESENCE_EVERYONE;
  } else if (visibility == "nobody") {
    value = wire::PRESENCE_NOBODY;
  } else if (visibility != "contacts") {
    return SdkError(Code::kInvalidArgument, SdkErr::kServerRefused,
                    "visibility must be everyone, contacts or nobody");
  }
  if (!d.conn) SOTTO_RETURN_IF_ERROR(Connect());
  wire::Request request;
  request.mutable_set_presence_visibility()->set_visibility(value);
  SOTTO_ASSIGN_OR_RETURN(wire::Response response, d.Call(std::move(request)));
  if (response.status() != wire::STATUS_OK) {
    return SdkError(Code::kUnavailable, SdkErr::kServerRefused,
                    "the server refused the visibility change");
  }
  return d.store->PutSetting("presence_visibility", visibility);
}

Result<std::vector<StoredMessage>> Client::Conversation(std::string_view handle, size_t limit) {
  SOTTO_ASSIGN_OR_RETURN(Contact contact, impl_->ResolveContact(handle));
  SOTTO_ASSIGN_OR_RETURN(std::vector<StoredMessage> messages,
                         impl_->store->Conversation(contact.account_id, limit));
  for (StoredMessage& m : messages) {
    SOTTO_ASSIGN_OR_RETURN(std::optional<LocalStore::Attachment> a, impl_->store->GetAttachment(m.rowid));
    if (a) m.attachment = a->info;
  }
  return messages;
}

Result<std::vector<SearchHit>> Client::Search(std::string_view words, size_t limit) {
  return impl_->store->Search(words, limit);
}

}  // namespace sotto::client
