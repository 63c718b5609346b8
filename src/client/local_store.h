// The client's local store: one SQLite database (WAL mode, synchronous=FULL) under the
// client's home directory holding this device's account and keys, the Signal stores
// (identities, prekeys, signed prekeys, sessions, sender keys), contacts, messages with
// their tick state and an FTS5 index over their text, the pending outbox, and the ids of
// received messages for de-duplication. Schema, migrations and the at-rest protection of
// keys: docs/client-store.md.
//
// Keys at rest: a random 32-byte storage key lives in HOME/storage.key (mode 0600, HOME
// 0700); every secret column (private keys, session and sender-key records, outbox
// payloads) is sealed with ChaCha20-Poly1305 under that key, a random nonce per write and
// the table and row as associated data, so a row copied elsewhere does not open.
//
// Thread-safety: externally synchronized (one thread uses a LocalStore at a time; the
// SDK's Client owns one). The Signal interfaces below read and write inside whatever
// transaction is open.
#pragma once

#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "crypto/random.h"
#include "crypto/x25519.h"
#include "noise/handshake_state.h"
#include "signal/group.h"
#include "signal/keys.h"
#include "signal/store.h"

namespace sotto::client {

enum class StoreErr : uint16_t {
  kOpen = 8100,     // cannot create HOME, open the database or read the key file
  kKeyFile = 8101,  // storage.key missing, wrong size or too open (not 0600)
  kSchema = 8102,   // the database is newer than this program, or a migration failed
  kSql = 8103,      // a statement failed (disk full, I/O error)
  kCorrupt = 8104,  // a sealed column does not open or a row does not parse
  kNotFound = 8105,
  kNoAccount = 8106,  // no account row yet (not registered)
  kBusy = 8107,       // another process holds the database (sotto daemon running?)
};

// The current schema version; Open() migrates older databases up to it.
inline constexpr int kSchemaVersion = 3;
// Received-message ids are kept this long for de-duplication (past the server's TTL).
inline constexpr uint64_t kReceivedIdRetentionMs = 31ull * 24 * 3600 * 1000;
// Search results returned at most.
inline constexpr size_t kMaxSearchResults = 1000;

// This device's account. Written at `register` (account_id empty, device_id 0 until the
// code is verified), updated at `verify` and when keys rotate.
struct LocalAccount {
  std::string handle;                              // +E164
  std::string server;                              // host:port
  std::optional<crypto::X25519Public> server_key;  // pinned Noise key of the server
  noise::KeyPair noise_static;                     // sealed at rest
  signal::IdentityKeyPair identity;                // private half sealed at rest
  uint32_t registration_id = 0;
  Bytes account_id;               // 16 bytes once registered
  uint32_t device_id = 0;         // 0 until registered
  uint32_t next_prekey_id = 1;    // next one-time prekey id to generate
  uint32_t signed_prekey_id = 0;  // the current signed prekey
  uint64_t signed_prekey_ms = 0;  // when it was made (rotation)
};

// What the store knows of a remote identity key (per Signal address).
struct IdentityInfo {
  signal::IdentityKey key;                     // the accepted key
  bool verified = false;                       // the user compared safety numbers
  std::optional<signal::IdentityKey> pending;  // a different key seen, not yet accepted
  uint64_t changed_ms = 0;                     // when `pending` was first seen
};

struct Contact {
  std::string handle;      // +E164
  std::string account_id;  // lowercase hex of the 16-byte id; the Signal address name
  std::string name;        // local display name, may be empty
  uint64_t added_ms = 0;
};

enum class MessageDirection : uint8_t { kIncoming = 0, kOutgoing = 1 };

// Tick state. Outgoing: kPending (clock) -> kSent (server stored it: one tick) ->
// kDelivered (a recipient device acked it: two ticks) -> kRead (blue ticks). Incoming:
// kDelivered (unread) or kRead. Ticks only move forward. kBlocked: outgoing and held
// because the recipient's identity changed and was not accepted yet.
enum class Tick : uint8_t {
  kPending = 0,
  kSent = 1,
  kDelivered = 2,
  kRead = 3,
  kBlocked = 4,
};
std::string_view TickName(Tick tick);  // "pending", "sent", "delivered", "read", "blocked"

// The state of a message's attachment on this device (docs/media.md).
enum class AttachmentState : uint8_t {
  kPending = 0,   // not downloaded yet (or a retryable failure): DownloadAttachment retries
  kSaved = 1,     // verified, decrypted and saved at local_path
  kRejected = 2,  // the blob failed verification (MAC, digest, size): never saved
  kSent = 3,      // outgoing: uploaded from local_path
};
std::string_view AttachmentStateName(AttachmentState state);  // "pending", "saved", ...

// What a message's attachment is, as the user sees it (the media key stays in the store).
struct AttachmentInfo {
  std::string content_type;
  uint64_t size = 0;
  std::string file_name;   // the sender's name for it (a hint; sanitized when saved)
  std::string local_path;  // where it is saved (incoming, kSaved) or was read (outgoing)
  AttachmentState state = AttachmentState::kPending;
};

struct StoredMessage {
  int64_t rowid = 0;       // local order of arrival/creation
  std::string message_id;  // lowercase hex, 2..64 chars; unique per (peer, direction)
  std::string peer;        // the other side's account id (hex)
  MessageDirection direction = MessageDirection::kIncoming;
  uint32_t peer_device = 0;  // incoming: the sending device
  std::string body;
  uint64_t sent_ms = 0;    // the sender's clock (from the message)
  uint64_t stored_ms = 0;  // local clock when stored
  Tick tick = Tick::kPending;
  bool untrusted_identity = false;  // incoming: the sender's key had changed and was not accepted
  std::optional<AttachmentInfo> attachment;  // filled by the SDK's media calls (not AddMessage)
  // Group messages (peer is then the group id): the group id hex and the author's
  // account id hex (ours for outgoing). Empty for 1:1 messages. Filled by the group
  // calls (GroupConversation, MarkGroupRead) and in MessageEvents.
  std::string group_id{};
  std::string group_sender{};
};

struct SearchHit {
  StoredMessage message;
  std::string snippet;  // the matching words marked with [ ]
};

// A message waiting for the server's ack. `content` is the serialized plaintext the SDK
// encrypts per device at each attempt; `message_id` stays the same across attempts.
struct OutboxItem {
  int64_t rowid = 0;
  std::string message_id;    // hex
  std::string recipient;     // account id hex
  Bytes content;             // sealed at rest
  bool online_only = false;  // typing indicators: dropped instead of retried when offline
  uint32_t attempts = 0;
  uint64_t next_attempt_ms = 0;
  bool blocked = false;  // held: the recipient's identity changed
};

// --- Groups (local_store_groups.cc) ---------------------------------------------------
struct StoredGroupMember {
  std::string account;  // account id hex
  bool admin = false;
};
struct StoredGroup {
  std::string group_id;  // hex
  std::string name;
  std::string description;
  uint64_t version = 0;
  bool member = false;  // this account is (still) a member
  bool rotate = false;  // our sender key must be rotated before the next group send
  uint64_t created_ms = 0;
  std::vector<StoredGroupMember> members;  // by account id
};
// A member device that has our current sender key for a group.
struct GroupKeyHolder {
  std::string account;
  uint32_t device_id = 0;
  uint32_t registration_id = 0;
  friend bool operator==(const GroupKeyHolder&, const GroupKeyHolder&) = default;
};
// One member's receipt of one of our group messages (0: not yet).
struct GroupReceiptRow {
  std::string member;
  uint64_t delivered_ms = 0;
  uint64_t read_ms = 0;
};
// What MarkGroupReceipt changed.
struct GroupReceiptUpdate {
  bool changed = false;   // this member's state moved forward
  std::string group_id;   // the message's group (empty: not one of our group messages)
  bool all = false;       // every member has now reached this state
};

class LocalStore final : public signal::IdentityKeyStore,
                         public signal::PreKeyStore,
                         public signal::SignedPreKeyStore,
                         public signal::SessionStore,
                         public signal::SenderKeyStore {
 public:
  // Opens HOME/sotto.db (creating HOME with mode 0700, the database, and a new random
  // HOME/storage.key with mode 0600 if absent), takes an exclusive lock on HOME/lock
  // (kBusy if another process holds it), sets WAL mode and synchronous=FULL and migrates
  // the schema to kSchemaVersion. kKeyFile if the key file is absent while the database
  // exists, has the wrong size, or can be read by group or others. `random` must outlive
  // the store.
  static Result<std::unique_ptr<LocalStore>> Open(const std::filesystem::path& home,
                                                  crypto::Random& random = crypto::SystemRandom());
  ~LocalStore() override;
  LocalStore(const LocalStore&) = delete;
  LocalStore& operator=(const LocalStore&) = delete;

  int schema_version() const;

  // How an outermost transaction's COMMIT reaches the disk. kRelaxed (synchronous=NORMAL
  // for this commit) survives a crash of the process but may be lost, with everything
  // after it, on power loss; later kFull commits make it durable too (WAL order). Only for
  // writes that are safe to redo, e.g. removing an outbox entry the server acked (a
  // retry carries the same message id). Nested transactions take the outermost's.
  enum class Durability : uint8_t { kFull, kRelaxed };

  // BEGIN IMMEDIATE ... COMMIT. Nested Begin() calls count; only the outermost commits.
  // A Transaction that is destroyed without Commit() rolls back.
  class Transaction {
   public:
    explicit Transaction(LocalStore& store, Durability durability = Durability::kFull);
    ~Transaction();
    Transaction(const Transaction&) = delete;
    Transaction& operator=(const Transaction&) = delete;
    Status Commit();

   private:
    LocalStore* store_;
    bool done_ = false;
  };

  // --- Account -----------------------------------------------------------------------
  Result<std::optional<LocalAccount>> LoadAccount();
  Status SaveAccount(const LocalAccount& account);
  // Key-value settings (e.g. presence visibility), plain text.
  Result<std::optional<std::string>> GetSetting(std::string_view key);
  Status PutSetting(std::string_view key, std::string_view value);

  // --- Signal stores (the interfaces' contracts, plus the trust policy below) ---------
  // Trust policy: a remote identity is accepted on first use. A different key seen later
  // is recorded as `pending` and never replaces the accepted one by itself: receiving
  // from it is allowed (messages are flagged untrusted), sending to it is refused until
  // AcceptIdentity(). SaveIdentity returns kReplacedExisting when it records a pending key.
  Result<signal::IdentityKeyPair> GetIdentityKeyPair() override;
  Result<uint32_t> GetLocalRegistrationId() override;
  Result<signal::IdentityChange> SaveIdentity(const signal::ProtocolAddress& address,
                                              const signal::IdentityKey& key) override;
  Result<bool> IsTrustedIdentity(const signal::ProtocolAddress& address,
                                 const signal::IdentityKey& key,
                                 signal::Direction direction) override;
  Result<std::optional<signal::IdentityKey>> GetIdentity(
      const signal::ProtocolAddress& address) override;

  Result<std::optional<signal::PreKeyRecord>> LoadPreKey(uint32_t id) override;
  Status StorePreKey(const signal::PreKeyRecord& record) override;
  Status RemovePreKey(uint32_t id) override;
  Result<uint32_t> CountPreKeys();

  Result<std::optional<signal::SignedPreKeyRecord>> LoadSignedPreKey(uint32_t id) override;
  Status StoreSignedPreKey(const signal::SignedPreKeyRecord& record) override;
  Status RemoveSignedPreKey(uint32_t id) override;
  // Ids of stored signed prekeys, oldest first (to drop old ones after rotation).
  Result<std::vector<uint32_t>> ListSignedPreKeys();

  Result<std::optional<signal::SessionRecord>> LoadSession(
      const signal::ProtocolAddress& address) override;
  Status StoreSession(const signal::ProtocolAddress& address,
                      const signal::SessionRecord& record) override;
  Status DeleteSession(const signal::ProtocolAddress& address) override;
  Result<std::vector<uint32_t>> GetDeviceSessions(std::string_view name) override;

  Result<std::optional<signal::SenderKeyRecord>> LoadSenderKey(
      const signal::SenderKeyName& name) override;
  Status StoreSenderKey(const signal::SenderKeyName& name,
                        const signal::SenderKeyRecord& record) override;

  // --- Identity trust ----------------------------------------------------------------
  Result<std::optional<IdentityInfo>> GetIdentityInfo(const signal::ProtocolAddress& address);
  // Records `key` as pending for `address` if it differs from the accepted key (the SDK
  // calls this when a bundle shows a new key). No-op if equal or no key is known.
  Status RecordPendingIdentity(const signal::ProtocolAddress& address,
                               const signal::IdentityKey& key, uint64_t now_ms);
  // Every address of account `name` (hex) with a pending key.
  Result<std::vector<signal::ProtocolAddress>> PendingIdentities(std::string_view name);
  // The pending key becomes the accepted one (verified = false). kNotFound if none.
  Status AcceptIdentity(const signal::ProtocolAddress& address);
  enum class Verification : uint8_t { kUnverified, kVerified };
  // Marks every accepted key of account `name` verified (or not). kNotFound if none.
  Status SetVerified(std::string_view name, Verification verification);

  // --- Contacts ----------------------------------------------------------------------
  // Inserts or updates (by handle; an account id change replaces the old one).
  Status PutContact(const Contact& contact);
  Result<std::optional<Contact>> ContactByHandle(std::string_view handle);
  Result<std::optional<Contact>> ContactByAccount(std::string_view account_id);
  Result<std::vector<Contact>> ListContacts();  // by handle

  // --- Messages ----------------------------------------------------------------------
  // Inserts a message and indexes its body. kAlreadyExists (Code) if (peer, direction,
  // message_id) is already stored; the row is left as it was.
  Result<int64_t> AddMessage(const StoredMessage& message);
  Result<std::optional<StoredMessage>> GetMessage(std::string_view peer, MessageDirection direction,
                                                  std::string_view message_id);
  // Moves an outgoing message's tick forward (never back; kBlocked may move to kPending
  // and anything but kRead to kBlocked). Returns whether it changed; false if unknown.
  Result<bool> AdvanceTick(std::string_view peer, std::string_view message_id, Tick tick);
  // The conversation with `peer`, oldest first; at most `limit` newest messages.
  Result<std::vector<StoredMessage>> Conversation(std::string_view peer, size_t limit);
  // Marks every unread incoming message from `peer` read; returns them (for read receipts).
  Result<std::vector<StoredMessage>> MarkRead(std::string_view peer);
  // Full-text search over the bodies of all messages (FTS5). `words` is what the user
  // typed: each word is matched as a token prefix, all words must occur; FTS5 syntax in
  // it is not interpreted. Newest first, at most min(limit, kMaxSearchResults).
  Result<std::vector<SearchHit>> Search(std::string_view words, size_t limit);

  // --- Received ids (de-duplication of at-least-once delivery) -------------------------
  Result<bool> HasReceived(std::string_view source, std::string_view message_id);
  Status MarkReceived(std::string_view source, std::string_view message_id, uint64_t now_ms);
  // Forgets ids older than kReceivedIdRetentionMs. Returns how many.
  Result<size_t> PruneReceived(uint64_t now_ms);

  // --- Outbox ------------------------------------------------------------------------
  Result<int64_t> AddOutbox(const OutboxItem& item);
  enum class OutboxFilter : uint8_t { kReady, kIncludeBlocked };
  // Items in insertion order; blocked ones only with kIncludeBlocked.
  Result<std::vector<OutboxItem>> ListOutbox(size_t limit, OutboxFilter filter);
  Status UpdateOutbox(const OutboxItem& item);  // attempts, next_attempt_ms, blocked
  Status RemoveOutbox(std::string_view message_id);
  // Items waiting (for `recipient`), blocked ones included.
  Result<size_t> CountOutbox();
  Result<size_t> CountOutbox(std::string_view recipient);
  // Unblocks every item for `recipient`; returns how many.
  Result<size_t> UnblockOutbox(std::string_view recipient);

  // --- Attachments (local_store_media.cc) -----------------------------------------------
  // `pointer` is the serialized AttachmentPointer (it holds the media key: sealed at rest).
  Status PutAttachment(int64_t message_rowid, ByteSpan pointer, const AttachmentInfo& info);
  struct Attachment {
    int64_t message_rowid = 0;
    crypto::SecretBytes pointer;
    AttachmentInfo info;
    uint32_t attempts = 0;
  };
  Result<std::optional<Attachment>> GetAttachment(int64_t message_rowid);
  Status UpdateAttachment(int64_t message_rowid, AttachmentState state,
                          std::string_view local_path, uint32_t attempts);
  // Incoming attachments still kPending, oldest first.
  Result<std::vector<int64_t>> PendingAttachments(size_t limit);
  // The message at `rowid`, if any.
  Result<std::optional<StoredMessage>> GetMessageByRowid(int64_t rowid);
  // --- Groups (local_store_groups.cc) -------------------------------------------------
  // Inserts or replaces the group row and its member list.
  Status PutGroup(const StoredGroup& group);
  Result<std::optional<StoredGroup>> GetGroup(std::string_view group_id);
  Result<std::vector<StoredGroup>> ListGroups();  // by name, then id
  Status SetGroupRotate(std::string_view group_id, bool rotate);
  // The holders of our current sender key; cleared when it rotates.
  Result<std::vector<GroupKeyHolder>> GroupKeyHolders(std::string_view group_id);
  Status AddGroupKeyHolders(std::string_view group_id, const std::vector<GroupKeyHolder>& holders);
  Status ClearGroupKeyHolders(std::string_view group_id);
  // Stores a group message (peer = group id, group_sender = its author) and its author row.
  // kAlreadyExists as AddMessage.
  Result<int64_t> AddGroupMessage(const StoredMessage& message);
  // The group's conversation, oldest first, at most `limit` newest, with group fields.
  Result<std::vector<StoredMessage>> GroupConversation(std::string_view group_id, size_t limit);
  // Marks every unread incoming message of the group read; returns them (group fields set).
  Result<std::vector<StoredMessage>> MarkGroupRead(std::string_view group_id);
  // Records that our group message `message_id` went to `members` (no receipt yet).
  Status AddGroupReceipts(std::string_view group_id, std::string_view message_id,
                          const std::vector<std::string>& members);
  enum class GroupReceiptKind : uint8_t { kDelivered, kRead };
  // A member's delivered (first device) or read receipt of our group message; read
  // implies delivered. Unknown (message, member) pairs change nothing.
  Result<GroupReceiptUpdate> MarkGroupReceipt(std::string_view message_id, std::string_view member,
                                              GroupReceiptKind kind, uint64_t now_ms);
  Result<std::vector<GroupReceiptRow>> GroupReceipts(std::string_view message_id);

 private:
  struct Impl;
  explicit LocalStore(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace sotto::client
