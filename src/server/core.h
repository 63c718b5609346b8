// The server core behind the gateway: accounts and registration, the prekey directory,
// the router with its durable per-device queues, delivery receipts, presence and
// content-free push. The gateway's sessions hand it every request a device makes; it
// answers at once or, for Send, when the message is durable. It never sees plaintext:
// ciphertexts are opaque bytes to it. Design and byte formats: docs/server.md, docs/wire.md.
//
// Threads: the gateway loops call it (from any loop); requests that write to the store run
// on its blocking-work pool (store.io_threads) and answer through the connection's link;
// the queue's writer thread runs commit callbacks, which only post to connections. A
// maintenance thread purges expired messages and codes (docs/server.md "Threads").
//
// Thread-safety: thread-safe.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <unordered_map>

#include "base/result.h"
#include "net/socket.h"
#include "server/accounts.h"
#include "server/config.h"
#include "server/groups.h"
#include "server/keyed_rate_limiter.h"
#include "server/presence.h"
#include "server/push.h"
#include "server/router.h"
#include "server/verification.h"
#include "store/store.h"
#include "wire/sotto_wire.pb.h"

namespace sotto::server {

class MediaService;

namespace internal {
struct SessionContext;
struct SessionState;
class Linking;
class BlockingPool;
}  // namespace internal

inline constexpr size_t kMaxMessageIdBytes = 32;
inline constexpr size_t kMaxPresenceSubscriptions = 1'000;  // per connection

// Counters of the core, exported at /metrics. Counts only.
struct CoreMetrics {
  using Counter = std::atomic<uint64_t>;
  Counter sends{0};
  Counter sends_stale{0};
  Counter sends_queue_full{0};
  Counter sends_duplicate{0};
  Counter sends_online_only{0};
  Counter messages_queued{0};
  Counter envelopes_delivered{0};  // sent to a device
  Counter envelopes_acked{0};
  Counter receipts_queued{0};
  Counter messages_expired{0};
  Counter registrations{0};
  Counter reregistrations{0};
  Counter codes_issued{0};
  Counter codes_refused{0};
  Counter bundles_fetched{0};
  Counter bundles_rate_limited{0};
  Counter prekeys_claimed{0};
  Counter presence_updates{0};
  Counter pushes_requested{0};
  Counter devices_linked{0};
  Counter devices_unlinked{0};
  Counter device_lists_published{0};
  Counter device_lists_refused{0};
  Counter provision_frames_relayed{0};
  // Groups (core_groups.cc).
  Counter group_sends{0};
  Counter group_sends_stale{0};
  Counter group_copies_queued{0};
  Counter group_copies_skipped_full{0};  // a member device's queue was at max_queue_depth
  Counter group_changes{0};
  // Delivery within the connection's write budget (docs/server.md, "Write budget").
  Counter deliveries_held_back{0};  // an envelope waited for the write queue to drain
  Counter online_only_dropped{0};   // an online-only envelope found no room: dropped
  Counter group_update_bytes_queued{0};  // GroupUpdate payload bytes stored, all copies
  Counter group_changes_rate_limited{0};
  Counter group_adds_refused{0};  // accounts a create/add skipped: they refuse (consent)
  // Per-source, per-account and per-target limits (issue 12; core_limits.cc).
  Counter guesses_refused{0};              // registration.ip_guess_rate / global_guess_rate
  Counter lookups_refused{0};              // lookups.*
  Counter bundles_new_account_limited{0};  // prekeys.new_account_bundle_rate
  Counter prekeys_withheld{0};       // bundles without a one-time prekey (prekeys.target_rate)
  Counter link_tokens_refused{0};    // devices.max_link_tokens(_per_account)
  Counter provision_ids_refused{0};  // devices.max_provision_ids(_per_ip)
  Counter media_tokens_refused{0};   // media.max_tokens_per_account / max_pending_tokens
  // The per-sender quota in a device's queue (store.max_queued_per_sender).
  Counter sends_sender_quota{0};                 // Sends refused at it
  Counter group_copies_skipped_sender_quota{0};  // group copies dropped at it
  // Disk full: responses sent as STATUS_STORAGE_FULL.
  Counter storage_full_refusals{0};
  // The blocking-work pool (core_blocking.cc): requests refused with STATUS_BUSY.
  Counter blocking_jobs_refused{0};
};

struct CoreOptions {
  StoreConfig store;
  PreKeyConfig prekeys;
  uint32_t max_devices_per_account = 5;
  uint32_t max_push_endpoint_bytes = 512;
  bool allow_private_push_endpoints = false;
  uint32_t code_ttl_s = 600;  // told to clients; VerificationCodes enforces it
  DevicesConfig devices;      // linking limits (its max_devices_per_account is the one above)
  GroupsConfig groups;
  LookupConfig lookups;
};

// Keys (accounts, sources, devices) each per-key limit of the core remembers at once.
inline constexpr size_t kMaxLimitedKeys = 100'000;

class ServerCore {
 public:
  // Everything passed must outlive the core. `push` may be null (no push).
  ServerCore(CoreOptions options, store::Store& store, VerificationCodes& codes,
             CodeSender& codes_out, PushNotifier* push);
  ~ServerCore();
  ServerCore(const ServerCore&) = delete;
  ServerCore& operator=(const ServerCore&) = delete;

  // Starts the maintenance thread (expiry purge). Stop() ends it and drains the
  // blocking-work pool (every job already queued runs; its answer reaches only connections
  // still open); idempotent. Call Stop after the gateways shut down and before they are
  // destroyed: a job's answer posts to their loops.
  void Start();
  void Stop();

  // --- Called by the gateway's sessions, on the connection's thread. ---
  // The device a Noise static key belongs to, if registered.
  std::optional<store::DeviceAddress> Authenticate(const store::StaticKey& key);
  // A session became authenticated: route to it, drain its queue, update presence.
  void OnOnline(internal::SessionContext& ctx);
  // The connection closed (after OnOnline).
  void OnOffline(internal::SessionState& s);
  // Handles a request. Returns true if `response` is complete now; false if the core
  // will send the response itself later (Send waits for durability; requests that write
  // to the store run on the blocking-work pool), possibly after responses to later
  // requests of the connection.
  bool HandleRequest(internal::SessionContext& ctx, const wire::Request& request,
                     wire::Response& response, uint64_t now_ms);
  void OnDeliveryAck(internal::SessionContext& ctx, const wire::DeliveryAck& ack);
  // The connection's write queue drained after delivery was held back for the write
  // budget (SessionProtocol::OnWriteQueueDrained): sends what fits now.
  void OnWriteQueueDrained(internal::SessionContext& ctx);

  // Serves media_upload/media_location with `media` (must outlive the core); without it
  // they get STATUS_MEDIA_DISABLED. Call before the gateway starts.
  void AttachMedia(MediaService* media) { media_ = media; }

  const CoreMetrics& metrics() const { return metrics_; }
  // Prometheus text of the core's counters and the queue's statistics.
  std::string RenderPrometheus() const;

  // Disk full (docs/store.md, "Disk full"): whether the store refuses writes for lack of
  // space right now. A response that failed with STATUS_INTERNAL meanwhile goes out as
  // STATUS_STORAGE_FULL (SessionProtocol::SendFrame), counted by CountStorageFullRefusal.
  bool StorageFull() const { return store_.storage_health().disk_full; }
  void CountStorageFullRefusal() {
    metrics_.storage_full_refusals.fetch_add(1, std::memory_order_relaxed);
  }

 private:
  // --- Blocking store work off the loops (core_blocking.cc; docs/server.md "Threads") ---
  // What runs on the connection's thread when a job's response is sent, in place of
  // sending it plainly: a session change around the response (registration).
  using BlockingFinish = std::function<void(internal::SessionContext&, const wire::Frame&)>;
  // Fills `response` on a pool thread (its id is set). Returns true to have it sent
  // (through `finish` if set), false if the job arranged to answer itself (a queue write).
  using BlockingJob = std::function<bool(wire::Response& response, BlockingFinish& finish)>;
  // Runs `job` on the blocking-work pool; its response goes out through the connection's
  // link. `admit`, if set, runs first on the loop once the pool has room (it may do what
  // cannot be undone) and returns false with `response` filled to refuse. Returns true if
  // `response` is complete now: the pool's queue is full (STATUS_BUSY, reason naming
  // store.io_queue_depth) or `admit` refused; false if the job will answer.
  bool RunBlocking(internal::SessionContext& ctx, const wire::Request& request,
                   wire::Response& response, BlockingJob job,
                   const std::function<bool(wire::Response&)>& admit = nullptr);
  // A registration's or link's answer: authenticates the connection as `device` (unless
  // it is already), sends `frame`, then starts its messaging.
  void AppendBlockingPrometheus(std::string& out) const;
  void FinishAuthentication(internal::SessionContext& ctx, const wire::Frame& frame,
                            const DeviceAddress& device);
  bool HandleSetPresenceVisibility(internal::SessionContext& ctx, const wire::Request& request,
                                   wire::Response& response);
  bool HandleContact(internal::SessionContext& ctx, const wire::Request& request,
                     wire::Response& response);
  bool HandleRegisterPush(internal::SessionContext& ctx, const wire::Request& request,
                          wire::Response& response);
  bool HandleLinkDevice(internal::SessionContext& ctx, const wire::Request& request,
                        wire::Response& response);

  bool HandleRegister(internal::SessionContext& ctx, const wire::Request& request,
                      wire::Response& response);
  void HandleSend(internal::SessionContext& ctx, const wire::Request& request,
                  wire::Response& response, bool& deferred);
  bool HandleUploadKeys(internal::SessionContext& ctx, const wire::Request& request,
                        wire::Response& response);
  // The store part of upload_keys, on the pool (the checks that need no store are done).
  void UploadKeys(const DeviceAddress& device, const wire::UploadKeysRequest& u,
                  wire::Response& response);
  bool HandleGetBundle(internal::SessionContext& ctx, const wire::Request& request,
                       wire::Response& response, uint64_t now_ms);
  // The store part of get_bundle, on the pool (rate limits and checks are done).
  void GetBundle(const AccountId& target, uint32_t device_id, wire::Response& response,
                 uint64_t now_ms);
  void HandleSubscribe(internal::SessionContext& ctx, const wire::SubscribePresenceRequest& r,
                       wire::Response& response);
  // After a commit: push each newly stored append whose device is not connected here
  // (a connected one gets it through its queue subscription, OnOnline).
  // `endpoints` (push URLs, one per append, empty = none) may be null: no push.
  void Fanout(store::WriteRequest& request, const store::WriteResult& result,
              const std::vector<std::string>* endpoints);
  // Sends what the connection may send now: from the store when catching up.
  void Pump(internal::SessionContext& ctx);
  void SendEnvelope(internal::SessionContext& ctx, uint64_t seq, const std::string& payload);
  void DeliverNotified(internal::SessionContext& ctx, uint64_t seq, const std::string& payload);
  // Whether a stored envelope of `payload_bytes` fits the connection's write budget now;
  // if not, marks the connection blocked until its write queue drains.
  bool EnvelopeFitsOrBlock(internal::SessionContext& ctx, size_t payload_bytes);
  // An online-only envelope (typing): sent if it fits the write budget, else dropped.
  void SendOnlineOnly(internal::SessionContext& ctx, const wire::Frame& frame);
  void NotifyPreKeysLow(const store::DeviceAddress& device, uint32_t count);
  // --- Linked devices (core_devices.cc, docs/devices.md) ---
  // Requests any connection may make (provisioning, linking); false if not one of them.
  bool HandleLinkingRequest(internal::SessionContext& ctx, const wire::Request& request,
                            wire::Response& response);
  // The device requests of an authenticated device; false if not one of them.
  bool HandleDeviceRequest(internal::SessionContext& ctx, const wire::Request& request,
                           wire::Response& response);
  bool HandlePublishDeviceList(internal::SessionContext& ctx, const wire::Request& request,
                               wire::Response& response);
  // The store part of publish_device_list, on the pool (the list parsed as `list`).
  void PublishDeviceList(const DeviceAddress& device, const wire::SignedDeviceList& signed_list,
                         const wire::DeviceList& list, wire::Response& response);
  void HandleGetDeviceList(internal::SessionContext& ctx, const wire::GetDeviceListRequest& r,
                           wire::Response& response);
  bool HandleUnlink(internal::SessionContext& ctx, const wire::Request& request,
                    wire::Response& response);
  // The connection's provisioning id is gone (closed connection).
  void CloseProvision(internal::SessionState& s);
  void MaintenanceLoop();
  // core_media.cc; `account` pays media.max_tokens_per_account.
  void HandleMedia(const store::AccountId& account, const wire::Request& request,
                   wire::Response& response);
  // Takes a lookup from the connection's account, source and the server (lookups.*);
  // false (and `response` is the refusal) if one of them is used up. core_limits.cc.
  bool LookupAllowed(internal::SessionContext& ctx, wire::Response& response, uint64_t now_ms);
  // Takes a bundle fetch from the requester (prekeys.bundle_rate, and for a young account
  // prekeys.new_account_bundle_rate); false (and `response` is the refusal) if used up.
  bool BundleAllowed(internal::SessionContext& ctx, wire::Response& response, uint64_t now_ms);
  void AppendLimitPrometheus(std::string& out) const;
  // Groups (core_groups.cc): create_group, modify_group, get_group, get_group_devices,
  // group_send. Returns true if `response` is complete now, false if it is sent later.
  bool HandleGroupRequest(internal::SessionContext& ctx, const wire::Request& request,
                          wire::Response& response);
  bool HandleGroupChange(internal::SessionContext& ctx, const wire::Request& request,
                         wire::Response& response);
  // The store part of create_group / modify_group, on the pool: the change, then its
  // announcement's queue write, whose callback answers through `link` (returns false),
  // unless the change is refused or changes nothing (true: `response` is the answer).
  bool ChangeGroup(const DeviceAddress& device, const std::shared_ptr<internal::SessionLink>& link,
                   bool create, const GroupId& id, GroupOp op,
                   const std::vector<AccountId>& accounts, wire::Response& response);
  void HandleGetGroupDevices(internal::SessionContext& ctx, const wire::GetGroupDevicesRequest& r,
                             wire::Response& response);
  bool HandleSetGroupAdds(internal::SessionContext& ctx, const wire::Request& request,
                          wire::Response& response);
  bool HandleGroupSend(internal::SessionContext& ctx, const wire::Request& request,
                       wire::Response& response);
  void AppendGroupPrometheus(std::string& out) const;

  CoreOptions options_;
  store::Store& store_;
  store::MessageQueue& queue_;
  Accounts accounts_;
  VerificationCodes& codes_;
  CodeSender& code_sender_;
  PushNotifier* push_;
  Router router_;
  Presence presence_;
  std::unique_ptr<internal::Linking> linking_;
  mutable CoreMetrics metrics_;
  Groups groups_;

  // Per-account, per-source and per-target limits (core_limits.cc, core_keys.cc).
  KeyedRateLimiter<store::AccountId, AccountIdHash> bundle_requesters_{kMaxLimitedKeys};
  KeyedRateLimiter<store::AccountId, AccountIdHash> bundle_new_accounts_{kMaxLimitedKeys};
  KeyedRateLimiter<store::DeviceAddress, store::DeviceAddressHash> prekey_targets_{kMaxLimitedKeys};
  KeyedRateLimiter<store::AccountId, AccountIdHash> lookup_accounts_{kMaxLimitedKeys};
  KeyedRateLimiter<net::IpKey, net::IpKeyHash> lookup_sources_{kMaxLimitedKeys};
  SharedTokenBucket lookup_global_;

  std::mutex maintenance_mu_;
  std::condition_variable maintenance_cv_;
  bool stopping_ = false;  // GUARDED_BY(maintenance_mu_)
  std::thread maintenance_;
  MediaService* media_ = nullptr;
  // Last: its jobs use everything above (Stop drains it before the rest goes).
  std::unique_ptr<internal::BlockingPool> pool_;
};

}  // namespace sotto::server
