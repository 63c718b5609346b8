// The Sotto client SDK: one device's account on one server. It keeps everything in a
// LocalStore under its home directory, connects with Noise Pipes (IK with the pinned
// server key after the first contact), reconnects with exponential backoff and jitter,
// answers and sends keepalive pings, and runs the two pipelines:
//  - send: a message is stored with its outbox entry first (tick: pending), then for each
//    device of the recipient a session is set up from a fetched bundle if missing (X3DH),
//    the content is encrypted per device and sent in one Send; the server's ack makes it
//    "sent"; a stale-device reply fixes the sessions and retries with the same message id;
//    a changed identity holds the message (tick: blocked) until the user accepts the key;
//  - receive: envelopes are de-duplicated by (sender, message id), decrypted, stored with
//    the session state in one transaction, and only then acked; receipts move ticks.
// Events (messages, receipts, typing, presence, identity changes) go to an EventSink.
// Design and flows: docs/client.md.
//
// Thread-safety: externally synchronized (a Client is used from one thread; the daemon
// polls fd() and calls Poll()).
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "base/result.h"
#include "base/version.h"
#include "client/local_store.h"
#include "crypto/x25519.h"
#include "wire/wire.h"

namespace sotto::client {

// SDK errors (Module::kClient, details 8000..8999 as base/result.h assigns). 8001..8099
// are the connection's (gateway_client.h ClientErr), 8100..8199 the store's (StoreErr).
enum class SdkErr : uint16_t {
  kNotRegistered = 8200,      // no account, or the code was not verified yet
  kAlreadyRegistered = 8201,  // this home already has a verified account
  kBadHandle = 8202,          // not an E.164 number (+ and 8..15 digits)
  kUnknownUser = 8203,        // the server knows no account with this handle
  kIdentityChanged = 8204,    // the contact's identity key changed and was not accepted
  kServerRefused = 8205,      // the server answered with an error status (see message)
  kTooLarge = 8206,           // text longer than kMaxBodyBytes
  kOffline = 8207,            // could not reach the server (message kept in the outbox)
  kMismatch = 8208,           // a safety number given to verify does not match
  kBadServerKey = 8209,       // --server-key is not 64 hex digits
  // Linked devices (docs/devices.md).
  kBadLinkCode = 8210,      // not a link code as `sotto link` shows it
  kBadProvisioning = 8211,  // a provisioning message did not open or is malformed
  kBadDeviceList = 8212,    // a device list is unsigned, forged, stale or malformed
  kTooManyDevices = 8213,   // the account has the most devices it may have
  kNotPrimary = 8214,       // only the primary device may do this
  // 8220..8229 groups.
  kUnknownGroup = 8220,    // no group with this id, id prefix or name
  kAmbiguousGroup = 8221,  // the prefix or name matches more than one group
  kNotMember = 8222,       // this account is not (or no longer) a member of the group
  kNotAdmin = 8223,        // only admins may change the membership
  kRateLimited = 8224,     // past the server's group change rate (groups.*_change_rate_per_s)
  kNotRefused = 8225,      // AllowGroupReadd: this account does not refuse the group
  // 8230.. the server's state.
  kServerStorageFull = 8230,  // STATUS_STORAGE_FULL: the server's disk is full (retry later)
};

// Linked devices: how long ApproveLink / FinishLink wait for the other device by default.
inline constexpr std::chrono::milliseconds kDefaultLinkTimeout{120'000};
// Provisioning frames kept while nobody waits for them (the rest are dropped).
inline constexpr size_t kMaxProvisionInbox = 8;

inline constexpr size_t kOneTimePreKeyBatch = 100;  // generated per upload
inline constexpr uint64_t kSignedPreKeyRotationMs = 7ull * 24 * 3600 * 1000;
inline constexpr uint64_t kSignedPreKeyKeepMs = 30ull * 24 * 3600 * 1000;  // old ones kept
inline constexpr int kMaxStaleRetries = 3;             // stale-device fixes per send attempt
inline constexpr size_t kMaxEnvelopesPerCommit = 256;  // received envelopes per transaction
// Groups (client_groups.cc).
inline constexpr int kMaxGroupStaleRetries = 3;  // device-list refetches per group send attempt
inline constexpr int kMaxGroupDevicePages = 1024;  // get_group_devices pages per fetch

struct ClientConfig {
  std::filesystem::path home;
  std::string user_agent = "sotto/" + std::string(kVersion);
  std::chrono::milliseconds request_timeout{10'000};
  std::chrono::milliseconds keepalive_interval{30'000};  // ping when idle this long
  std::chrono::milliseconds keepalive_timeout{20'000};   // no frame after our ping: reconnect
  std::chrono::milliseconds reconnect_initial{250};
  std::chrono::milliseconds reconnect_max{30'000};
  std::chrono::milliseconds outbox_retry_initial{1'000};
  std::chrono::milliseconds outbox_retry_max{60'000};
  // When a received attachment is downloaded: at once, inside the call that receives it,
  // or only when DownloadAttachment() asks (docs/media.md).
  enum class AttachmentDownload : uint8_t { kOnReceive, kManual };
  AttachmentDownload attachment_download = AttachmentDownload::kOnReceive;
};

// --- Events ------------------------------------------------------------------------
// Events about one contact carry its `handle` (+E164, empty if not known yet) and the
// `name` the user gave it (AddContact; empty if none), both looked up when emitted.
//
// A message: one that arrived (message.direction kIncoming), or, on a linked device, one
// this account sent from another of its devices (kOutgoing: sent-message sync, or a group
// message the server fans out to the sender's other devices). `handle` and `name` are the
// contact's: the sender of an incoming message, the recipient of an outgoing one; for a
// group message the author (message.group_sender).
struct MessageEvent {
  StoredMessage message;
  std::string handle;
  std::string name{};
};
struct ReceiptEvent {
  std::string peer;  // account id hex
  std::string handle;
  std::string message_id;
  Tick tick = Tick::kDelivered;  // kSent, kDelivered or kRead
  // A group message: the group id hex. `peer` is then the member whose receipt this is
  // (the group id itself for kSent), and `all` says every member has reached `tick`.
  std::string group_id{};
  bool all = false;
  std::string name{};
};
struct TypingEvent {
  std::string peer;
  std::string handle;
  bool typing = false;
  std::string name{};
};
struct PresenceEvent {
  std::string peer;
  std::string handle;
  bool online = false;
  uint64_t last_seen_ms = 0;
  std::string name{};
};
struct IdentityChangedEvent {
  std::string peer;
  std::string handle;
  std::string name{};
};
struct ConnectionEvent {
  bool connected = false;
};
// A message arrived that can never be read (corrupt, or for a session this device no
// longer has). It was acked so it cannot block the queue; the user may ask for it again.
struct DecryptionFailedEvent {
  std::string peer;
  std::string handle;
  uint32_t device = 0;
  std::string name{};
};
// A group's membership or metadata changed (the server's announcement, or a rename by an
// admin). `action`: create, add, remove, leave, promote, demote, rename.
// A person a GroupEvent names: the account id, and what this device knows of it.
struct GroupPerson {
  std::string account;  // id hex (stable)
  std::string handle;   // the number, if known, else empty
  std::string name;     // the contact name (AddContact), if set, else empty
  bool self = false;    // this account
};
struct GroupEvent {
  std::string group_id;  // hex
  std::string action;
  std::string actor;                  // account id hex
  std::vector<std::string> accounts;  // whom it concerned (account ids hex)
  uint64_t version = 0;
  bool member = true;  // whether this account is still a member
  GroupPerson by;      // the actor
  std::vector<GroupPerson> people;  // one per `accounts`, in order
};
using Event = std::variant<MessageEvent, ReceiptEvent, TypingEvent, PresenceEvent,
                           IdentityChangedEvent, ConnectionEvent, DecryptionFailedEvent,
                           GroupEvent>;
using EventSink = std::function<void(const Event&)>;

struct SafetyNumber {
  std::string displayable;  // 60 digits
  Bytes scannable;          // the QR payload
  bool verified = false;
  bool pending_change = false;  // computed with a new key the user has not accepted
};

// One device of this account (Client::Devices).
struct LinkedDevice {
  uint32_t device_id = 0;
  bool pending = false;  // linked but not yet in a published device list
  bool listed = false;   // in the newest device list this device verified
  bool this_device = false;
  uint64_t created_ms = 0;
};

struct Presence {
  bool online = false;
  uint64_t last_seen_ms = 0;
};

struct SendOutcome {
  std::string message_id;      // hex
  Tick tick = Tick::kPending;  // kSent if the server acked; kPending if offline; kBlocked
};

// A group as this device knows it (GroupInfo, Groups).
struct GroupMemberInfo {
  std::string account_id;  // hex
  std::string handle;      // if known, else empty
  bool admin = false;
  bool identity_changed = false;  // a changed key not accepted: gets no sender key from us
  bool has_our_key = false;       // at least one of its devices holds our current sender key
};
struct GroupDetails {
  std::string id;  // hex
  std::string name;
  std::string description;
  uint64_t version = 0;
  bool member = false;  // this account is still a member
  bool admin = false;   // this account is an admin
  std::vector<GroupMemberInfo> members;
  // CreateGroup only: the numbers named that were not added because they refuse it.
  std::vector<std::string> refused;
};
// LeaveGroup: whether the group's admins may add this account again.
enum class ReAdds : uint8_t { kAllow, kRefuse };
// One member's receipt of one of our group messages (0: not yet).
struct GroupReceipt {
  std::string account_id;
  std::string handle;
  uint64_t delivered_ms = 0;
  uint64_t read_ms = 0;
};

// Counters for benchmarks and `sotto status`.
struct ClientStats {
  uint64_t sent = 0;
  uint64_t received = 0;
  uint64_t duplicates = 0;
  uint64_t decrypt_failures = 0;
  uint64_t reconnects = 0;  // successful connections after the first
  uint64_t bundles_fetched = 0;
  uint64_t pings_sent = 0;      // keepalive pings (idle connection)
  uint64_t prekey_refills = 0;  // one-time prekey batches uploaded after PreKeysLow
};

class Client {
 public:
  // Opens (or creates) the store under options.home. Does not connect.
  static Result<std::unique_ptr<Client>> Open(ClientConfig config);
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  void SetEventSink(EventSink sink);

  // --- Registration ---
  // Creates this device's keys, connects to `server` (host:port; IK when `server_key` is
  // given, else XX and the key it proves is pinned) and asks for a code for `handle`.
  // kAlreadyRegistered if this home is registered (a new home is a new device).
  Status StartRegistration(std::string_view server, std::optional<crypto::X25519Public> server_key,
                           std::string_view handle);
  // Registers with the code, then uploads the identity, a signed prekey and
  // kOneTimePreKeyBatch one-time prekeys. BAD_CODE is kServerRefused.
  Status FinishRegistration(std::string_view code);
  bool registered() const;
  const std::optional<LocalAccount>& account() const;

  // --- Connection ---
  // Connects now if not connected (kNotRegistered without an account).
  Status Connect();
  bool connected() const;
  int fd() const;  // the socket to poll for input, or -1
  // Processes what arrives for up to `timeout` (0: only what is already here), retries
  // the outbox when due, keeps the connection alive and reconnects with backoff. Returns
  // early once `until` (if given) returns true. Errors only for local failures (store);
  // network trouble is handled by reconnecting.
  Status Poll(std::chrono::milliseconds timeout, const std::function<bool()>& until = nullptr);
  // Receives everything queued for this device until now: handles what has arrived,
  // then polls a fresh connection until the server says its queue is drained
  // (QueueEmpty). kOffline if not connected or not drained within `timeout`.
  Status Sync(std::chrono::milliseconds timeout);
  // When the next timer (reconnect, keepalive, outbox retry) is due, from now.
  std::chrono::milliseconds NextTimer() const;
  void Disconnect();

  // Calls that need the server (SendText, SendTyping, MarkRead, AddContact,
  // GetSafetyNumber without a known key, GetPresence, SetPresenceVisibility, TrustIdentity
  // and a first contact's lookup) connect by themselves; events may be emitted from
  // inside any call.
  // --- Messaging ---
  // Stores the message, then tries to send it now. Offline is not an error: the outcome
  // says kPending and the outbox retries; a held message (the recipient's identity
  // changed) says kBlocked. Errors: kNotRegistered, kBadHandle, kUnknownUser, kTooLarge,
  // kOffline only when an unknown handle cannot be looked up.
  Result<SendOutcome> SendText(std::string_view handle, std::string_view text);
  enum class Typing : uint8_t { kStarted, kStopped };
  // Typing indicator (online only, never queued).
  Status SendTyping(std::string_view handle, Typing typing);
  // Marks the conversation read and sends read receipts. Returns how many were read.
  Result<size_t> MarkRead(std::string_view handle);
  Result<std::vector<StoredMessage>> Conversation(std::string_view handle, size_t limit);
  Result<std::vector<SearchHit>> Search(std::string_view words, size_t limit);

  // --- Media (client_media.cc, docs/media.md) ---
  // Encrypts the file at `path` with a fresh media key and uploads it to the server's
  // blob service (streaming: memory does not grow with the file), then sends the pointer
  // with `caption` as the message body through the outbox like SendText. `content_type`
  // empty: from the extension. The upload needs the server now (kOffline otherwise); the
  // message that follows is queued as usual. Errors: those of SendText, kTooLarge (past
  // kMaxAttachmentBytes or the server's media.max_blob_bytes), MediaErr::kFile,
  // MediaErr::kTransfer, kServerRefused (the server has no media service).
  Result<SendOutcome> SendFile(std::string_view handle, const std::filesystem::path& path,
                               std::string_view caption, std::string_view content_type = {});
  // Downloads, verifies and saves the attachment of the message at `message_rowid` under
  // HOME/media/ (resuming a partial download), unless it is already saved. Errors:
  // kNotFound (no attachment), MediaErr::kRejected (verification failed: nothing saved),
  // MediaErr::kTransfer (try again later).
  Result<AttachmentInfo> DownloadAttachment(int64_t message_rowid);
  // SendFile to a group (`group` as for SendGroupText): one upload, one group message.
  Result<SendOutcome> SendGroupFile(std::string_view group, const std::filesystem::path& path,
                                    std::string_view caption, std::string_view content_type = {});
  // Messages still waiting for the server.
  Result<size_t> PendingCount();

  // --- Contacts and identities ---
  // Looks `handle` up on the server (kUnknownUser), stores it locally and on the server
  // (presence visibility "contacts").
  Result<Contact> AddContact(std::string_view handle, std::string_view name);
  Result<std::vector<Contact>> Contacts();
  // The safety number with `handle` (fetching its keys first if none are known).
  Result<SafetyNumber> GetSafetyNumber(std::string_view handle);
  // Accepts a changed identity key and releases held messages.
  Status TrustIdentity(std::string_view handle);
  // Marks the contact verified (accepting a pending key). With `expected` (digits, spaces
  // ignored) the safety number must match it (kMismatch otherwise).
  Status VerifyContact(std::string_view handle, std::optional<std::string_view> expected);
  // Current presence (kServerRefused with PERMISSION_DENIED if not visible to us);
  // updates follow as PresenceEvents while connected.
  Result<Presence> GetPresence(std::string_view handle);
  Status SetPresenceVisibility(std::string_view visibility);  // everyone|contacts|nobody

  // --- Linked devices (docs/devices.md) ---
  // Companion, step 1: creates this device's keys, connects to `server` (as
  // StartRegistration), opens a provisioning id and returns the link code to show
  // (kLinkCodePrefix + hex; show it as text and as a QR code). The code's secret half
  // lives only in this Client: FinishLink must follow on the same object.
  // kAlreadyRegistered if this home has an account.
  Result<std::string> StartLink(std::string_view server,
                                std::optional<crypto::X25519Public> server_key);
  // Companion, step 2: waits up to `timeout` for the primary's approval, joins the
  // account (a pending device), uploads its keys and answers the primary over the
  // channel. Errors: kOffline (timed out or disconnected), kBadProvisioning,
  // kTooManyDevices (the account is full), kServerRefused.
  Status FinishLink(std::chrono::milliseconds timeout);
  // Primary: approves the companion that shows `code`: sends it the account and a link
  // token over the end-to-end encrypted provisioning channel, waits up to `timeout` for
  // its answer, checks that its identity key is the one it uploaded, then signs and
  // publishes the new device list. Returns the new device id. Errors: kBadLinkCode,
  // kNotPrimary, kTooManyDevices, kOffline, kBadProvisioning, kServerRefused.
  Result<uint32_t> ApproveLink(std::string_view code, std::chrono::milliseconds timeout);
  // This account's devices as the server knows them, checked against the newest verified
  // device list. On the primary, a list that still names unlinked devices is republished.
  Result<std::vector<LinkedDevice>> Devices();
  // Unlinks `device_id`: the primary any companion, a companion only itself. The primary
  // then publishes a list without it. kNotPrimary, kServerRefused (no such device).
  Status Unlink(uint32_t device_id);
  // --- Groups (client_groups.cc, docs/client.md "Groups") ---
  // `group` is a group id (hex), a unique prefix of one, or a unique exact name
  // (kUnknownGroup, kAmbiguousGroup). Membership changes need the server; names and
  // descriptions travel only end to end (in sender-key distributions and renames).
  // Creates a group with this account as admin and `handles` as members, and hands our
  // sender key (with the name) to every member device.
  // Numbers that refuse being added (docs/client.md "Consent") are left out, named in
  // GroupDetails::refused.
  Result<GroupDetails> CreateGroup(std::string_view name, const std::vector<std::string>& handles);
  // Adds members (admins only). Returns the numbers that were not added because they
  // refuse it; the others were. kRateLimited past the server's change rate.
  Result<std::vector<std::string>> AddMembers(std::string_view group,
                                              const std::vector<std::string>& handles);
  // Removes members (admins only); our sender key rotates before our next group message.
  Status RemoveMembers(std::string_view group, const std::vector<std::string>& handles);
  // Leaves; with ReAdds::kRefuse the server refuses any later add of this account to
  // this group until AllowGroupReadd.
  Status LeaveGroup(std::string_view group, ReAdds re_adds = ReAdds::kAllow);
  // Lifts a LeaveGroup(kRefuse). kNotRefused if there was none.
  Status AllowGroupReadd(std::string_view group);
  // Who may add this account to groups: "everyone" (the default), "contacts" (accounts
  // this account added with AddContact) or "nobody". Kept on the server.
  Status SetGroupAdds(std::string_view who);
  Status SetAdmin(std::string_view group, std::string_view handle, bool admin);
  // Renames (admins only): sent to the members through the group, never to the server.
  Status RenameGroup(std::string_view group, std::string_view name, std::string_view description);
  // Stores the message and sends it through the outbox like SendText: one Sender Key
  // ciphertext for the whole group. The tick is kSent once the server stored it for every
  // member device; ReceiptEvents with group_id follow per member.
  Result<SendOutcome> SendGroupText(std::string_view group, std::string_view text);
  Result<std::vector<GroupDetails>> Groups();
  Result<GroupDetails> GroupInfo(std::string_view group);
  // The group id (hex) that `group` names.
  Result<std::string> ResolveGroup(std::string_view group);
  Result<std::vector<StoredMessage>> GroupConversation(std::string_view group, size_t limit);
  // Per-member receipts of one of our group messages (empty if it is not one in `group`).
  Result<std::vector<GroupReceipt>> GroupReceipts(std::string_view group,
                                                  std::string_view message_id);
  // Marks the group read and sends read receipts pairwise to each message's author.
  Result<size_t> MarkGroupRead(std::string_view group);

  const ClientStats& stats() const;
  LocalStore& store();

 private:
  struct Impl;
  explicit Client(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// E.164 check: '+' then 8..15 digits, no leading 0.
using wire::IsE164;
// Parses 64 hex digits (kBadServerKey).
Result<crypto::X25519Public> ParseServerKey(std::string_view hex);

}  // namespace sotto::client
