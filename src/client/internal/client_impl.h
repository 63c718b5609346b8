// Client's private state, shared by client.cc (lifecycle, connection, polling),
// client_send.cc (outbox, sessions), client_receive.cc (envelopes) and
// client_contacts.cc (contacts, identities, presence).
//
// Thread-safety: externally synchronized, as Client.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "client/client.h"
#include "client/content.h"
#include "client/device_list.h"
#include "client/gateway_client.h"
#include "client/media.h"
#include "client/provisioning.h"
#include "signal/store.h"
#include "wire/sotto_wire.pb.h"

namespace sotto::client {

using SteadyTime = std::chrono::steady_clock::time_point;
inline constexpr uint32_t kPrimaryDeviceId = 1;  // device 1 of every account is its primary
// Error messages are static (they carry no data), so these name kMaxBodyBytes's value.
inline constexpr const char* kTextTooLong =
    "the text is longer than 8192 bytes, the most one message holds";
inline constexpr const char* kCaptionTooLong =
    "the caption is longer than 8192 bytes, the most one message holds, or not UTF-8";
static_assert(kMaxBodyBytes == 8192, "kTextTooLong and kCaptionTooLong name the limit");

tl::unexpected<Error> SdkError(Code code, SdkErr detail, const char* message);
// The server could not be reached (the work stays queued).
bool IsOffline(const Error& error);
// The local store failed (StoreErr): not something a retry over the network fixes.
bool IsStoreError(const Error& error);
uint64_t WallMs();
std::string Hex(std::string_view bytes);

struct Client::Impl {
  ClientConfig config;
  std::unique_ptr<LocalStore> store;
  std::optional<LocalAccount> account;
  std::unique_ptr<GatewayClient> conn;
  EventSink sink;
  ClientStats stats;
  crypto::Random& random = crypto::SystemRandom();

  // Connection timers.
  SteadyTime next_connect_at{};
  std::chrono::milliseconds backoff{0};
  SteadyTime last_receive{};
  std::optional<SteadyTime> ping_sent_at;
  uint64_t ping_nonce = 0;
  bool queue_empty_seen = false;
  bool ever_connected = false;  // for stats.reconnects
  bool replaced = false;        // the server closed us with CLOSE_REPLACED: stop reconnecting
  // Outbox timer: when the earliest waiting item is due (none: max()).
  SteadyTime next_outbox_at = SteadyTime::max();
  // Linked devices (client_devices.cc): the companion's link in progress, and the
  // provisioning frames received (kMaxProvisionInbox at most).
  struct PendingLink {
    std::string provision_id;
    crypto::X25519Private ephemeral;
  };
  std::optional<PendingLink> pending_link;
  std::vector<wire::ProvisionFrame> provision_inbox;

  signal::ProtocolStores stores() { return signal::ProtocolStores{*store, *store, *store, *store}; }
  bool registered() const { return account && account->device_id != 0; }
  // kNotRegistered unless the code was verified.
  Status RequireRegistered() const;
  // A fresh random message id (16 bytes, hex).
  std::string NewMessageId();

  // --- client.cc ---
  Status TryConnect();
  void DropConnection();
  void ScheduleReconnect();
  // A request over the connection; kOffline when not connected or the connection
  // breaks (it is dropped and a reconnect scheduled).
  Result<wire::Response> Call(wire::Request request);
  Status SendFrame(const wire::Frame& frame);
  void Emit(const Event& event);
  void HandleFrame(wire::Frame& frame, std::vector<wire::Envelope>& envelopes);
  Status AfterConnect();
  Status UploadPreKeys(size_t count);
  void RefillPreKeys(uint32_t reported);
  Status AddOneTimePreKeys(size_t count, wire::UploadKeysRequest& upload);
  Status PublishKeys();
  Status MaybeRotateSignedPreKey();

  // --- client_send.cc ---
  // Sends every due outbox item (all when `force`). Network trouble leaves items queued.
  enum class Due : uint8_t { kDueOnly, kAll };
  Status FlushOutbox(Due due);
  enum class Prepared : uint8_t { kReady, kBlocked, kNoDevices };
  Result<Prepared> PrepareSend(OutboxItem& item, wire::Request& request);
  // Sends one item (with `prepared` from PrepareSend, or preparing it here); returns the
  // resulting tick of its message.
  Result<Tick> SendItem(OutboxItem& item, std::optional<wire::Request> prepared = std::nullopt);
  Status FetchSessions(const std::string& peer, uint32_t device_id);
  Status BlockItem(OutboxItem& item);
  Result<std::string> QueueContent(const std::string& peer, const content::Content& content,
                                   bool online_only);
  Result<Contact> ResolveContact(std::string_view handle);
  content::Content NewContent() const;

  // --- client_devices.cc ---
  std::string OwnAccount() const;  // hex
  // The newest verified device list of `peer` this device accepted, if any.
  Result<std::optional<wire::DeviceList>> KnownDeviceList(const std::string& peer);
  // The identity key `peer`'s device lists must be signed with (this device's own key on
  // the primary; else the accepted identity of (peer, 1)). kBadDeviceList if unknown.
  Result<signal::IdentityKey> PrimaryIdentity(const std::string& peer);
  // Verifies `signed_list` for `peer` (not older than the known one) and stores it.
  Result<wire::DeviceList> AcceptDeviceList(const std::string& peer,
                                            const wire::SignedDeviceList& signed_list);
  // Fetches `peer`'s published list from the server and accepts it.
  Status RefreshDeviceList(const std::string& peer);
  // Whether `source`'s `device` may be believed: device 1, or listed with `identity`.
  Result<bool> DeviceIsListed(const std::string& source, uint32_t device,
                              const std::optional<signal::IdentityKey>& identity);
  // Queues a sent-message sync of `data` (sent to `destination` as `message_id`) to this
  // account's other devices, if the verified own device list has any.
  Result<bool> QueueSentSync(const std::string& destination, const std::string& message_id,
                             const content::DataMessage& data);
  // Primary: signs and publishes a list of `entries`; stores it as the known own list.
  Status PublishDeviceList(std::vector<DeviceListEntryInput> entries);
  // Waits for a provisioning frame for `provision_id` (Poll when registered).
  Result<wire::ProvisionFrame> AwaitProvision(const std::string& provision_id,
                                              std::chrono::milliseconds timeout);

  // --- client_receive.cc ---
  Status ProcessEnvelopes(std::vector<wire::Envelope>& envelopes);

  // --- client_media.cc ---
  // Encrypts and uploads the file; the pointer to send (blob id, key, digests, type).
  // The internal half of SendFile, for any target (1:1 or a group's QueueGroupContent).
  Result<content::AttachmentPointer> UploadAttachment(const std::filesystem::path& path,
                                                      std::string_view content_type);
  // Stores a received pointer for `message` (inside the receive transaction).
  Status StoreIncomingAttachment(StoredMessage& message, const content::AttachmentPointer& pointer);
  // After the ack: downloads the attachments of the MessageEvents in `events` (if
  // config.attachment_download says so) and updates their info.
  void FetchReceivedAttachments(std::vector<Event>& events);
  Result<AttachmentInfo> FetchAttachment(int64_t rowid);
  Result<MediaEndpoint> GetMediaEndpoint();
  std::optional<MediaEndpoint> media_endpoint;  // cached from media_location

  // --- client_contacts.cc ---
  Status ReleaseHeld(const std::string& peer);
  std::string HandleOf(const std::string& peer);
  std::string NameOf(const std::string& peer);  // the contact's display name, or ""

  // --- client_groups.cc ---
  // A group's member devices as the server listed them (our own device left out), sorted
  // by account and device, with the server's digest over them. Cached per group until
  // the group's version changes or a group send comes back STALE_DEVICES.
  struct GroupDevices {
    uint64_t version = 0;
    std::vector<GroupKeyHolder> devices;
    std::string digest;
  };
  std::map<std::string, GroupDevices, std::less<>> group_devices;
  // Outbox items for a group have recipient kGroupRecipientPrefix + group id hex.
  static bool IsGroupRecipient(std::string_view recipient);
  // Queues `content` for the whole group (with `message` stored as our group message, and
  // a receipt row per member, when given) under a new message id. The generic group send
  // path: text, renames and (later) attachments all go through it.
  // With `message`, it is stored as ours and its rowid set.
  Result<OutboxItem> QueueGroupContent(const std::string& group_id, const content::Content& content,
                                       StoredMessage* message);
  // Sends `data` (body and timestamp set; an attachment optional, described for the
  // local copy by `attachment`) to the group as our outgoing message: the message, its
  // attachment row and the outbox entry are committed together, then what is due is sent.
  Result<SendOutcome> SendGroupData(const std::string& group_id, content::DataMessage data,
                                    std::optional<AttachmentInfo> attachment);
  Result<Tick> SendGroupItem(OutboxItem& item);
  Result<GroupDevices> FetchGroupDevices(const std::string& group_id, bool force);
  // Rotates our sender key if flagged, then sends it pairwise to every member device that
  // lacks it. kPending: some member could not be reached yet (retry later).
  Result<Tick> DistributeSenderKey(const std::string& group_id, const GroupDevices& devices);
  signal::SenderKeyName OwnSenderKeyName(const std::string& group_id) const;
  // Applies the server's view of a group (newer versions only); returns whether it did.
  Result<bool> ApplyGroupInfo(const wire::GroupInfo& info, wire::GroupAction action,
                              const std::string& actor, const std::vector<std::string>& accounts,
                              std::vector<Event>& events);
  Result<std::string> ResolveGroupId(std::string_view ref);
  // A membership change; returns the handles of named accounts that refused it (adds).
  Result<std::vector<std::string>> ModifyGroup(std::string_view ref, wire::GroupAction action,
                                               const std::vector<std::string>& handles);
  // A GroupEvent with the actor's and the accounts' numbers and contact names filled in.
  GroupEvent NewGroupEvent(const std::string& group_id, std::string action,
                           const std::string& actor, const std::vector<std::string>& accounts,
                           uint64_t version, bool member);
  // Receive pipeline hooks (inside ProcessEnvelopes' transaction).
  Status HandleGroupUpdate(const wire::Envelope& env, std::vector<Event>& events);
  Status ReceiveGroupMessage(const wire::Envelope& env, uint64_t now, std::vector<Event>& events,
                             std::vector<std::pair<std::string, std::string>>& to_verify);
  Status HandleSenderKeyDistribution(const signal::ProtocolAddress& from,
                                     const content::Content& content);
  // Groups we got a sender key for but do not know (a re-registered or new device): looked
  // up with get_group after the receive transaction (FetchUnknownGroups).
  struct UnknownGroup {
    std::string group_id;
    std::string name;
    std::string description;
  };
  std::vector<UnknownGroup> unknown_groups;
  Status FetchUnknownGroups();
  // A GroupDelta announcement this device could not apply (it does not know the group,
  // or missed a version): the group is fetched with get_group after the receive
  // transaction (FetchStaleGroups), and the change reported then.
  struct StaleGroup {
    std::string group_id;
    wire::GroupAction action = wire::GROUP_CREATE;
    std::string actor;
    std::vector<std::string> accounts;
    uint64_t version = 0;
  };
  std::vector<StaleGroup> stale_groups;
  Status FetchStaleGroups();
  // Before the receive transaction: the groups whose announcements in `envelopes` cannot
  // be applied as deltas are fetched now, so that the messages of the same batch (a
  // rename, a new member's first message) are checked against the membership.
  Status PrefetchGroups(const std::vector<wire::Envelope>& envelopes);
  std::map<std::string, wire::GroupInfo> prefetched_groups;  // by group id hex
  std::set<std::string> applied_prefetched;  // groups of this batch applied from a prefetch
  // A member's delivered/read receipt of one of our group messages (no-op otherwise).
  Status HandleGroupReceipt(const std::string& member, const std::string& message_id, Tick tick,
                            uint64_t now, std::vector<Event>& events);
};

inline constexpr std::string_view kGroupRecipientPrefix = "group:";

}  // namespace sotto::client
