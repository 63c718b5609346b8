// Linked devices: linking (companion and primary sides of the provisioning channel), the
// signed device list, unlinking, sent-message sync. docs/devices.md.
#include <algorithm>

#include <spdlog/spdlog.h>

#include "client/internal/client_impl.h"
#include "net/socket.h"

namespace sotto::client {
namespace {

using std::chrono::milliseconds;
using std::chrono::steady_clock;

constexpr std::string_view kDeviceListSettingPrefix = "device_list:";

std::string SettingKey(const std::string& peer) {
  return std::string(kDeviceListSettingPrefix) + peer;
}

tl::unexpected<Error> Refused(const char* message) {
  return SdkError(Code::kFailedPrecondition, SdkErr::kServerRefused, message);
}

}  // namespace

std::string Client::Impl::OwnAccount() const { return account ? ToHex(account->account_id) : ""; }

Result<std::optional<wire::DeviceList>> Client::Impl::KnownDeviceList(const std::string& peer) {
  SOTTO_ASSIGN_OR_RETURN(std::optional<std::string> stored, store->GetSetting(SettingKey(peer)));
  if (!stored) return std::optional<wire::DeviceList>();
  const Bytes raw = FromHex(*stored);
  wire::SignedDeviceList signed_list;
  wire::DeviceList list;
  // Verified before it was stored; parsed again because the store is on disk.
  if (!signed_list.ParseFromArray(raw.data(), static_cast<int>(raw.size())) ||
      !wire::ParseDeviceList(signed_list.list(), list)) {
    return std::optional<wire::DeviceList>();
  }
  return std::optional<wire::DeviceList>(std::move(list));
}

Result<signal::IdentityKey> Client::Impl::PrimaryIdentity(const std::string& peer) {
  if (peer == OwnAccount() && account->device_id == kPrimaryDeviceId) {
    return account->identity.public_key;
  }
  SOTTO_ASSIGN_OR_RETURN(std::optional<signal::IdentityKey> key,
                         store->GetIdentity({peer, kPrimaryDeviceId}));
  if (!key) {
    return SdkError(Code::kPermissionDenied, SdkErr::kBadDeviceList,
                    "the account's primary identity is not known yet");
  }
  return *key;
}

Result<wire::DeviceList> Client::Impl::AcceptDeviceList(const std::string& peer,
                                                        const wire::SignedDeviceList& signed_list) {
  SOTTO_ASSIGN_OR_RETURN(std::optional<wire::DeviceList> known, KnownDeviceList(peer));
  SOTTO_ASSIGN_OR_RETURN(signal::IdentityKey primary, PrimaryIdentity(peer));
  const Bytes account_id = FromHex(peer);
  SOTTO_ASSIGN_OR_RETURN(
      wire::DeviceList list,
      VerifyDeviceList(
          signed_list,
          std::string_view(reinterpret_cast<const char*>(account_id.data()), account_id.size()),
          primary, known ? known->version() : 0));
  if (!known || list.version() > known->version()) {
    const std::string bytes = signed_list.SerializeAsString();
    SOTTO_RETURN_IF_ERROR(store->PutSetting(SettingKey(peer), Hex(bytes)));
  }
  return list;
}

Status Client::Impl::RefreshDeviceList(const std::string& peer) {
  // A companion can be heard from before its account's primary (e.g. in a group): its
  // list is checked against the primary's identity, so learn that first, as any first
  // contact does, from its bundle (the session is wanted anyway to answer that account).
  SOTTO_ASSIGN_OR_RETURN(std::optional<signal::IdentityKey> primary,
                         store->GetIdentity({peer, kPrimaryDeviceId}));
  if (!primary && peer != OwnAccount()) {
    SOTTO_RETURN_IF_ERROR(FetchSessions(peer, kPrimaryDeviceId));
  }
  wire::Request request;
  const Bytes account_id = FromHex(peer);
  request.mutable_get_device_list()->set_account_id(account_id.data(), account_id.size());
  SOTTO_ASSIGN_OR_RETURN(wire::Response response, Call(std::move(request)));
  if (response.status() != wire::STATUS_OK) return Refused("the server refused the device list");
  if (!response.device_list().has_list()) {
    return SdkError(Code::kPermissionDenied, SdkErr::kBadDeviceList,
                    "the account has no signed device list");
  }
  return AcceptDeviceList(peer, response.device_list().list()).map([](auto&&) {});
}

Result<bool> Client::Impl::DeviceIsListed(const std::string& source, uint32_t device,
                                          const std::optional<signal::IdentityKey>& identity) {
  if (device == kPrimaryDeviceId) return true;
  if (!identity) return false;
  SOTTO_ASSIGN_OR_RETURN(std::optional<wire::DeviceList> list, KnownDeviceList(source));
  if (!list) return false;
  const std::optional<signal::IdentityKey> listed = ListedIdentity(*list, device);
  return listed && *listed == *identity;
}

Result<bool> Client::Impl::QueueSentSync(const std::string& destination,
                                         const std::string& message_id,
                                         const content::DataMessage& data) {
  // A companion always has the primary to tell; the primary, the companions it listed.
  if (account->device_id == kPrimaryDeviceId) {
    SOTTO_ASSIGN_OR_RETURN(std::optional<wire::DeviceList> own, KnownDeviceList(OwnAccount()));
    if (!own || own->devices_size() < 2) return false;
  }
  content::Content content = NewContent();
  content::SentMessage* sent = content.mutable_sent();
  const Bytes to = FromHex(destination);
  const Bytes id = FromHex(message_id);
  sent->set_destination(to.data(), to.size());
  sent->set_message_id(id.data(), id.size());
  *sent->mutable_data() = data;
  SOTTO_RETURN_IF_ERROR(QueueContent(OwnAccount(), content, false));
  return true;
}

Status Client::Impl::PublishDeviceList(std::vector<DeviceListEntryInput> entries) {
  wire::Request get;
  get.mutable_get_device_list();
  SOTTO_ASSIGN_OR_RETURN(wire::Response current, Call(std::move(get)));
  if (current.status() != wire::STATUS_OK) return Refused("the server refused the device list");
  SOTTO_ASSIGN_OR_RETURN(std::optional<wire::DeviceList> known, KnownDeviceList(OwnAccount()));
  const uint64_t version =
      std::max<uint64_t>(current.device_list().version(), known ? known->version() : 0) + 1;
  const std::string account_id(account->account_id.begin(), account->account_id.end());
  wire::Request request;
  *request.mutable_publish_device_list()->mutable_list() =
      SignDeviceList(account_id, version, WallMs(), std::move(entries), account->identity, random);
  const wire::SignedDeviceList signed_list = request.publish_device_list().list();
  SOTTO_ASSIGN_OR_RETURN(wire::Response response, Call(std::move(request)));
  if (response.status() == wire::STATUS_TOO_MANY_DEVICES) {
    return SdkError(Code::kResourceExhausted, SdkErr::kTooManyDevices,
                    "the account already has the most devices it may have");
  }
  if (response.status() != wire::STATUS_OK) {
    return Refused("the server refused the signed device list");
  }
  return AcceptDeviceList(OwnAccount(), signed_list).map([](auto&&) {});
}

Result<wire::ProvisionFrame> Client::Impl::AwaitProvision(const std::string& provision_id,
                                                          milliseconds timeout) {
  const auto deadline = steady_clock::now() + timeout;
  auto take = [&]() -> std::optional<wire::ProvisionFrame> {
    for (auto it = provision_inbox.begin(); it != provision_inbox.end(); ++it) {
      if (it->provision_id() != provision_id) continue;
      wire::ProvisionFrame frame = std::move(*it);
      provision_inbox.erase(it);
      return frame;
    }
    return std::nullopt;
  };
  for (;;) {
    if (auto frame = take()) return *frame;
    const auto now = steady_clock::now();
    if (now >= deadline || !conn) {
      return SdkError(Code::kUnavailable, SdkErr::kOffline,
                      "the other device did not answer in time (or the connection broke)");
    }
    const auto left = std::chrono::duration_cast<milliseconds>(deadline - now);
    std::vector<wire::Envelope> envelopes;
    auto frame = conn->Receive(left);
    if (!frame) {
      if (frame.error().detail != static_cast<uint16_t>(ClientErr::kTimeout)) DropConnection();
      continue;
    }
    HandleFrame(*frame, envelopes);
    // Messages keep flowing while the primary waits: handle them as Poll would.
    if (!envelopes.empty() && registered()) SOTTO_RETURN_IF_ERROR(ProcessEnvelopes(envelopes));
  }
}

// --- Companion ----------------------------------------------------------------------------

Result<std::string> Client::StartLink(std::string_view server,
                                      std::optional<crypto::X25519Public> server_key) {
  Impl& d = *impl_;
  if (d.registered()) {
    return SdkError(Code::kAlreadyExists, SdkErr::kAlreadyRegistered,
                    "this home already has an account; link a new --home");
  }
  SOTTO_RETURN_IF_ERROR(net::ResolveHostPort(server));
  LocalAccount account;
  account.server = std::string(server);
  account.server_key = server_key;
  account.noise_static = noise::KeyPair::Generate(d.random);
  account.identity = signal::IdentityKeyPair::Generate(d.random);
  account.registration_id = signal::GenerateRegistrationId(d.random);
  SOTTO_RETURN_IF_ERROR(d.store->SaveAccount(account));
  d.account = std::move(account);
  d.DropConnection();
  d.replaced = false;
  d.provision_inbox.clear();
  SOTTO_RETURN_IF_ERROR(d.TryConnect());
  wire::Request request;
  request.mutable_provision_open();
  SOTTO_ASSIGN_OR_RETURN(wire::Response response, d.Call(std::move(request)));
  if (response.status() != wire::STATUS_OK ||
      response.provision_open().provision_id().size() != kProvisionIdSize) {
    return Refused("the server refused a provisioning id");
  }
  Impl::PendingLink link;
  link.provision_id = response.provision_open().provision_id();
  link.ephemeral = crypto::GeneratePrivateKey(d.random);
  LinkCode code;
  code.provision_id = link.provision_id;
  code.companion_key = crypto::PublicKeyOf(link.ephemeral);
  d.pending_link = std::move(link);
  return FormatLinkCode(code);
}

Status Client::FinishLink(milliseconds timeout) {
  Impl& d = *impl_;
  if (!d.pending_link || !d.account) {
    return SdkError(Code::kFailedPrecondition, SdkErr::kNotRegistered,
                    "no link in progress: StartLink first (in this process)");
  }
  const Impl::PendingLink link = *d.pending_link;
  SOTTO_ASSIGN_OR_RETURN(wire::ProvisionFrame frame, d.AwaitProvision(link.provision_id, timeout));
  ProvisionKeys keys;
  SOTTO_ASSIGN_OR_RETURN(
      content::ProvisionMessage message,
      OpenProvisionMessage(frame.body(), link.ephemeral, link.provision_id, keys));
  wire::Request request;
  request.mutable_link_device()->set_token(message.link_token());
  SOTTO_ASSIGN_OR_RETURN(wire::Response response, d.Call(std::move(request)));
  if (response.status() == wire::STATUS_TOO_MANY_DEVICES) {
    return SdkError(Code::kResourceExhausted, SdkErr::kTooManyDevices,
                    "the account already has a primary and 4 companions "
                    "(devices.max_devices_per_account): unlink one first");
  }
  if (response.status() != wire::STATUS_OK ||
      response.link_device().account_id() != message.account_id()) {
    return Refused("the server refused to link this device (token expired or used?)");
  }
  d.pending_link.reset();
  d.account->account_id.assign(message.account_id().begin(), message.account_id().end());
  d.account->device_id = response.link_device().device_id();
  d.account->handle = message.handle();
  SOTTO_ASSIGN_OR_RETURN(signal::IdentityKey primary,
                         signal::PublicKey::Deserialize(AsBytes(message.primary_identity())));
  {
    LocalStore::Transaction tx(*d.store);
    SOTTO_RETURN_IF_ERROR(d.store->SaveAccount(*d.account));
    SOTTO_RETURN_IF_ERROR(d.store->PutSetting("keys_published", "0"));
    SOTTO_RETURN_IF_ERROR(d.store->SaveIdentity({d.OwnAccount(), kPrimaryDeviceId}, primary));
    SOTTO_RETURN_IF_ERROR(tx.Commit());
  }
  SOTTO_RETURN_IF_ERROR(d.PublishKeys());
  content::ProvisionReply reply;
  reply.set_device_id(d.account->device_id);
  const signal::SerializedPublicKey identity = d.account->identity.public_key.Serialize();
  reply.set_identity_key(identity.data(), identity.size());
  SOTTO_ASSIGN_OR_RETURN(std::string body,
                         SealProvisionReply(reply, keys, message.reply_provision_id()));
  wire::Request send;
  send.mutable_provision_send()->set_provision_id(message.reply_provision_id());
  send.mutable_provision_send()->set_body(std::move(body));
  SOTTO_ASSIGN_OR_RETURN(wire::Response sent, d.Call(std::move(send)));
  if (sent.status() != wire::STATUS_OK) {
    return Refused("the primary's provisioning connection is gone; unlink and link again");
  }
  return d.AfterConnect();
}

// --- Primary -------------------------------------------------------------------------------

Result<uint32_t> Client::ApproveLink(std::string_view text, milliseconds timeout) {
  Impl& d = *impl_;
  SOTTO_RETURN_IF_ERROR(d.RequireRegistered());
  SOTTO_ASSIGN_OR_RETURN(LinkCode code, ParseLinkCode(text));
  if (d.account->device_id != kPrimaryDeviceId) {
    return SdkError(Code::kPermissionDenied, SdkErr::kNotPrimary,
                    "only the primary device approves new devices");
  }
  if (!d.conn) SOTTO_RETURN_IF_ERROR(d.TryConnect());
  d.provision_inbox.clear();  // left over from an earlier attempt: never useful again
  wire::Request token_request;
  token_request.mutable_link_token();
  SOTTO_ASSIGN_OR_RETURN(wire::Response token, d.Call(std::move(token_request)));
  if (token.status() == wire::STATUS_TOO_MANY_DEVICES) {
    return SdkError(Code::kResourceExhausted, SdkErr::kTooManyDevices,
                    "the account already has a primary and 4 companions "
                    "(devices.max_devices_per_account): unlink one first");
  }
  if (token.status() != wire::STATUS_OK) return Refused("the server refused a link token");
  wire::Request open;
  open.mutable_provision_open();
  SOTTO_ASSIGN_OR_RETURN(wire::Response opened, d.Call(std::move(open)));
  if (opened.status() != wire::STATUS_OK) return Refused("the server refused a provisioning id");
  const std::string own_provision = opened.provision_open().provision_id();

  content::ProvisionMessage message;
  message.set_account_id(d.account->account_id.data(), d.account->account_id.size());
  message.set_handle(d.account->handle);
  const signal::SerializedPublicKey identity = d.account->identity.public_key.Serialize();
  message.set_primary_identity(identity.data(), identity.size());
  message.set_link_token(token.link_token().token());
  message.set_reply_provision_id(own_provision);
  ProvisionKeys keys;
  SOTTO_ASSIGN_OR_RETURN(std::string body, SealProvisionMessage(code, message, d.random, keys));
  wire::Request send;
  send.mutable_provision_send()->set_provision_id(code.provision_id);
  send.mutable_provision_send()->set_body(std::move(body));
  SOTTO_ASSIGN_OR_RETURN(wire::Response sent, d.Call(std::move(send)));
  if (sent.status() == wire::STATUS_NOT_FOUND) {
    return SdkError(Code::kNotFound, SdkErr::kBadLinkCode,
                    "no device is waiting with this link code (expired, or `sotto link` ended)");
  }
  if (sent.status() != wire::STATUS_OK) return Refused("the server refused to relay");

  SOTTO_ASSIGN_OR_RETURN(wire::ProvisionFrame frame, d.AwaitProvision(own_provision, timeout));
  SOTTO_ASSIGN_OR_RETURN(content::ProvisionReply reply,
                         OpenProvisionReply(frame.body(), keys, own_provision));
  SOTTO_ASSIGN_OR_RETURN(signal::IdentityKey companion,
                         signal::PublicKey::Deserialize(AsBytes(reply.identity_key())));
  // The server must know the same device with the same key (it checks it again on publish).
  wire::Request get;
  get.mutable_get_device_list();
  SOTTO_ASSIGN_OR_RETURN(wire::Response devices, d.Call(std::move(get)));
  if (devices.status() != wire::STATUS_OK) return Refused("the server refused the device list");
  bool known = false;
  for (const wire::DeviceInfo& info : devices.device_list().devices()) {
    known |= info.device_id() == reply.device_id() && info.identity_key() == reply.identity_key();
  }
  if (!known) {
    return SdkError(Code::kPermissionDenied, SdkErr::kBadProvisioning,
                    "the server does not list the new device with the key it told us");
  }
  // The new list: this device, the companions of the newest list this device signed that
  // the server still has, and the new one. Keys come from our own signed list, never from
  // the server.
  std::vector<DeviceListEntryInput> entries{{kPrimaryDeviceId, d.account->identity.public_key}};
  SOTTO_ASSIGN_OR_RETURN(std::optional<wire::DeviceList> own, d.KnownDeviceList(d.OwnAccount()));
  if (own) {
    for (const wire::DeviceListEntry& e : own->devices()) {
      if (e.device_id() == kPrimaryDeviceId || e.device_id() == reply.device_id()) {
        continue;
      }
      const bool still = std::any_of(
          devices.device_list().devices().begin(), devices.device_list().devices().end(),
          [&](const wire::DeviceInfo& i) { return i.device_id() == e.device_id(); });
      auto key = signal::PublicKey::Deserialize(AsBytes(e.identity_key()));
      if (still && key) entries.push_back({e.device_id(), *key});
    }
  }
  entries.push_back({reply.device_id(), companion});
  SOTTO_RETURN_IF_ERROR(d.PublishDeviceList(std::move(entries)));
  return reply.device_id();
}

Result<std::vector<LinkedDevice>> Client::Devices() {
  Impl& d = *impl_;
  SOTTO_RETURN_IF_ERROR(d.RequireRegistered());
  if (!d.conn) SOTTO_RETURN_IF_ERROR(d.TryConnect());
  wire::Request get;
  get.mutable_get_device_list();
  SOTTO_ASSIGN_OR_RETURN(wire::Response response, d.Call(std::move(get)));
  if (response.status() != wire::STATUS_OK) return Refused("the server refused the device list");
  if (response.device_list().has_list()) {
    if (auto accepted = d.AcceptDeviceList(d.OwnAccount(), response.device_list().list());
        !accepted) {
      spdlog::warn("this account's published device list does not verify");
    }
  }
  SOTTO_ASSIGN_OR_RETURN(std::optional<wire::DeviceList> own, d.KnownDeviceList(d.OwnAccount()));
  std::vector<LinkedDevice> out;
  for (const wire::DeviceInfo& info : response.device_list().devices()) {
    LinkedDevice device;
    device.device_id = info.device_id();
    device.pending = info.pending();
    device.created_ms = info.created_ms();
    device.this_device = info.device_id() == d.account->device_id;
    if (own) {
      auto listed = ListedIdentity(*own, info.device_id());
      auto key = signal::PublicKey::Deserialize(AsBytes(info.identity_key()));
      device.listed = listed && key && *listed == *key;
    }
    device.listed |= info.device_id() == kPrimaryDeviceId;
    out.push_back(device);
  }
  // The primary republishes a list that still names devices the server no longer has
  // (a companion unlinked itself).
  if (own && d.account->device_id == kPrimaryDeviceId) {
    std::vector<DeviceListEntryInput> entries;
    bool stale = false;
    for (const wire::DeviceListEntry& e : own->devices()) {
      const bool still = std::any_of(out.begin(), out.end(), [&](const LinkedDevice& l) {
        return l.device_id == e.device_id();
      });
      auto key = signal::PublicKey::Deserialize(AsBytes(e.identity_key()));
      if (still && key) entries.push_back({e.device_id(), *key});
      stale |= !still;
    }
    if (stale) SOTTO_RETURN_IF_ERROR(d.PublishDeviceList(std::move(entries)));
  }
  return out;
}

Status Client::Unlink(uint32_t device_id) {
  Impl& d = *impl_;
  SOTTO_RETURN_IF_ERROR(d.RequireRegistered());
  const bool primary = d.account->device_id == kPrimaryDeviceId;
  if (!primary && device_id != d.account->device_id) {
    return SdkError(Code::kPermissionDenied, SdkErr::kNotPrimary,
                    "a companion can only unlink itself; unlink others from the primary");
  }
  if (primary && device_id == kPrimaryDeviceId) {
    return SdkError(Code::kInvalidArgument, SdkErr::kNotPrimary,
                    "the primary cannot unlink itself");
  }
  if (!d.conn) SOTTO_RETURN_IF_ERROR(d.TryConnect());
  wire::Request request;
  request.mutable_unlink_device()->set_device_id(device_id);
  SOTTO_ASSIGN_OR_RETURN(wire::Response response, d.Call(std::move(request)));
  if (response.status() == wire::STATUS_NOT_FOUND) {
    return SdkError(Code::kNotFound, SdkErr::kServerRefused, "this account has no such device");
  }
  if (response.status() != wire::STATUS_OK) return Refused("the server refused to unlink");
  SOTTO_RETURN_IF_ERROR(d.store->DeleteSession({d.OwnAccount(), device_id}));
  if (!primary) {
    d.replaced = true;  // the server closes this connection; this home is no longer a device
    d.DropConnection();
    return Ok();
  }
  SOTTO_ASSIGN_OR_RETURN(std::optional<wire::DeviceList> own, d.KnownDeviceList(d.OwnAccount()));
  if (!own) return Ok();
  std::vector<DeviceListEntryInput> entries;
  for (const wire::DeviceListEntry& e : own->devices()) {
    if (e.device_id() == device_id) continue;
    auto key = signal::PublicKey::Deserialize(AsBytes(e.identity_key()));
    if (key) entries.push_back({e.device_id(), *key});
  }
  return d.PublishDeviceList(std::move(entries));
}

}  // namespace sotto::client
