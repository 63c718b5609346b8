// sottod's configuration: a TOML file, overridden by command-line flags. Every limit
// the gateway enforces is here, named, with its default. Reference: docs/config.md.
//
// Thread-safety: value type.
#pragma once

#include <cstdint>
#include <string>

#include "base/result.h"
#include "server/rate_limiter.h"

namespace sotto::server {

struct GatewayLimits {
  uint32_t max_connections = 19'000;          // across all loops
  uint32_t max_frame_bytes = 65'535;          // Noise message incl. tag; <= 65535
  uint32_t handshake_timeout_ms = 10'000;     // accept -> handshake complete
  uint32_t ping_interval_ms = 60'000;         // idle time before the server pings
  uint32_t ping_timeout_ms = 20'000;          // time to answer a ping
  uint32_t max_write_queue_bytes = 256 * 1024;  // per connection; past it: slow reader
  RateLimit request_rate{50, 100};            // per device: requests/s, burst
  RateLimit handshake_rate_per_ip{100, 200};  // per source IP: handshakes/s, burst
  // Input memory, sources and descriptors (issue 12; docs/gateway.md "Budgets").
  uint32_t partial_frame_timeout_ms = 20'000;     // a frame's first byte -> its last
  uint32_t max_partial_input_bytes = 64u << 20;   // incomplete frames buffered, whole server
  uint32_t max_connections_per_ip = 200;          // per source (IPv4 address, IPv6 /64)
  uint32_t max_handshakes_per_ip = 20;            // of those, still in the Noise handshake
  uint32_t reserved_fds = 640;  // store (512 table files), logs, loops; the rest: listeners
  uint32_t max_metrics_connections = 16;          // concurrent /metrics connections
};

// [store]: the embedded store and the per-device message queues.
struct StoreConfig {
  uint32_t message_ttl_s = 30 * 86'400;   // queued messages expire after this (30 days)
  uint32_t max_queue_depth = 10'000;      // per device; a Send past it gets STATUS_QUEUE_FULL
  uint32_t purge_interval_ms = 60'000;    // how often expired messages are deleted
  uint32_t delivery_window = 256;         // unacked envelopes in flight per connection
  bool sync = true;                       // fsync each group commit (false: tests/benchmarks only)
  // Undelivered entries one sending account may hold in one device's queue; past it that
  // sender's Send gets STATUS_QUEUE_FULL while others still reach the device. 1..max_queue_depth.
  uint32_t max_queued_per_sender = 1'000;
  // Blocking store work off the event loops (docs/server.md "Threads"): threads of the
  // pool that runs store-writing requests (1..256), and the requests waiting for one of
  // them (1..1'000'000); past it a request gets STATUS_BUSY.
  uint32_t io_threads = 4;
  uint32_t io_queue_depth = 4'096;
};

// The edges of store.io_threads and store.io_queue_depth.
inline constexpr uint32_t kMaxIoThreads = 256;
inline constexpr uint32_t kMaxIoQueueDepth = 1'000'000;

// [registration]: one-time codes proving a handle (E.164).
struct RegistrationConfig {
  std::string code_sender = "log";        // "log" (DATA/verification-codes.log) or "webhook"
  std::string webhook_url;                // with code_sender = "webhook": POSTed JSON
  uint32_t code_ttl_s = 600;              // a code expires after this
  uint32_t code_attempts = 5;             // wrong guesses before a code is void
  RateLimit code_rate{1.0 / 60, 3};       // codes per handle: 1 per minute, burst 3
  uint32_t max_pending_codes = 100'000;   // outstanding codes kept in memory
  // Per source (IPv4 address or IPv6 /64) and server-wide; docs/server.md "Registration
  // limits" computes the account takeovers they allow.
  RateLimit ip_code_rate{1.0 / 300, 10};   // codes per source: 12 an hour, burst 10
  RateLimit global_code_rate{0.5, 100};    // codes, whole server (SMS spend)
  RateLimit ip_guess_rate{1.0 / 60, 10};   // wrong codes per source: 1 a minute, burst 10
  RateLimit global_guess_rate{0.05, 100};  // wrong codes, whole server: 3 a minute
};

// [lookups]: finding an account by handle (number enumeration).
struct LookupConfig {
  RateLimit account_rate{0.1, 100};   // per requesting account: 6 a minute, burst 100
  RateLimit ip_rate{0.5, 200};        // per source (IPv4 address or IPv6 /64)
  RateLimit global_rate{100, 1'000};  // whole server
};

// [prekeys]: the prekey directory.
struct PreKeyConfig {
  uint32_t low_watermark = 10;            // below this many one-time prekeys the device is told
  uint32_t max_one_time_prekeys = 1'000;  // per device pool
  uint32_t max_upload = 200;              // one-time prekeys per UploadKeys request
  RateLimit bundle_rate{10, 100};         // bundle fetches per requesting account: per s, burst
  // One-time prekeys handed out per target device; past it bundles carry the signed
  // prekey only (X3DH works without a one-time prekey).
  RateLimit target_rate{1.0 / 60, 50};
  // Accounts younger than new_account_age_s (since their primary registered) also pass
  // this lower bundle rate: Sybil accounts must age before they fetch at full speed.
  uint32_t new_account_age_s = 86'400;
  RateLimit new_account_bundle_rate{0.1, 10};
};

// [push]: content-free push to UnifiedPush-style endpoints.
struct PushConfig {
  uint32_t coalesce_ms = 2'000;           // at most one push per device in this window
  uint32_t max_attempts = 6;              // per notification, then it is dropped
  uint32_t initial_backoff_ms = 500;      // doubled after each failure
  uint32_t max_backoff_ms = 60'000;
  uint32_t timeout_ms = 5'000;            // per HTTP POST
  uint32_t max_endpoint_bytes = 512;      // longest endpoint URL accepted
  uint32_t max_pending = 100'000;         // devices with a push waiting; past it new ones drop
  // Endpoints on loopback, private or link-local addresses are refused unless this is on
  // (a client must not make the server POST into its own network). Tests turn it on.
  bool allow_private_endpoints = false;
};

// [media]: the encrypted-attachment blob service (HTTP). docs/media.md.
struct MediaConfig {
  std::string listen;                          // HOST:PORT (port 0 = any); empty = no media service
  std::string public_url;                      // told to clients instead of host:port, e.g. behind a proxy
  uint64_t max_blob_bytes = 1ull << 30;        // largest blob (ciphertext) accepted: 1 GiB
  uint32_t blob_ttl_s = 30 * 86'400;           // a blob is deleted this long after its upload
  uint32_t upload_token_ttl_s = 600;           // an unused upload token expires after this
  uint32_t sweep_interval_ms = 60'000;         // how often expired blobs and stale temp files go
  uint32_t max_transfers = 64;                 // concurrent HTTP connections; more get 503
  uint32_t idle_timeout_ms = 30'000;           // a transfer that moves no byte this long is closed
  uint32_t max_pending_tokens = 10'000;        // unused upload tokens kept in memory
  uint32_t max_tokens_per_account = 50;        // unused upload tokens of one account
  // Slow clients (issue 12): deadlines a dribbling peer cannot extend.
  uint32_t header_timeout_ms = 10'000;         // accept -> complete request head, in total
  uint32_t min_transfer_bytes_per_s = 4'096;   // body rate owed after idle_timeout_ms of grace
  uint32_t max_transfers_per_ip = 8;           // per source (IPv4 address, IPv6 /64)
};

// Descriptors one media transfer may hold: its socket, its stream's wake pipe (2) and the
// blob file.
inline constexpr uint32_t kFdsPerMediaTransfer = 4;

// [devices]: linked devices (docs/devices.md).
// The most devices.max_devices_per_account may say (wire::kMaxDeviceListEntries).
inline constexpr uint32_t kMaxDevicesPerAccountLimit = 16;
struct DevicesConfig {
  uint32_t max_devices_per_account = 5;       // the primary and 4 companions
  uint32_t provision_ttl_s = 600;             // a provisioning id reaches its connection this long
  uint32_t max_provision_ids = 10'000;        // open provisioning ids, whole server
  uint32_t max_provision_body_bytes = 8'192;  // one relayed provisioning message
  uint32_t link_token_ttl_s = 300;            // a link token is redeemable this long
  uint32_t max_link_tokens = 10'000;          // unexpired link tokens, whole server
  uint32_t max_provision_ids_per_ip = 16;     // open provisioning ids per source (IPv4, IPv6 /64)
  uint32_t max_link_tokens_per_account = 4;   // unexpired link tokens of one account
};

// The largest groups.max_members (and max_request_accounts) accepted: a GroupUpdate
// announcing a full group must fit in one frame (~22 bytes a member; docs/server.md).
inline constexpr uint32_t kMaxGroupMembersLimit = 1'024;

// [groups]: server-side groups (membership for fan-out).
struct GroupsConfig {
  uint32_t max_members = 1'024;           // per group, the creator included; 1..1024
  uint32_t max_request_accounts = 1'024;  // accounts one create/modify request may name; 1..1024
  // Group changes (create_group, modify_group): token buckets per acting account and per
  // group (leaving is never held back by the group's bucket). The group's is twice the
  // account's so that one admin alone cannot use it all up.
  RateLimit account_change_rate{1, 30};  // per account: changes/s, burst
  RateLimit group_change_rate{2, 60};    // per group: changes/s, burst
};

struct ServerConfig {
  std::string data_dir = "sotto-data";
  std::string listen = "127.0.0.1:5222";       // Noise over TCP
  std::string ws_listen = "127.0.0.1:5280";    // Noise over WebSocket
  std::string http_listen = "127.0.0.1:5281";  // /metrics
  uint32_t loops = 0;                          // 0 = one per core
  std::string log_level = "info";
  GatewayLimits limits;
  StoreConfig store;
  RegistrationConfig registration;
  LookupConfig lookups;
  PreKeyConfig prekeys;
  PushConfig push;
  MediaConfig media;
  DevicesConfig devices;
  GroupsConfig groups;
};

enum class ConfigErr : uint16_t { kParse = 7001, kUnknownKey = 7002, kBadValue = 7003 };

// Reads `path` over the defaults in `config`. Errors name the offending key; unknown
// keys are errors (a typo must not silently fall back to a default).
Status LoadConfigFile(const std::string& path, ServerConfig& config, std::string& error_detail);
// Checks ranges (e.g. max_frame_bytes <= 65535); names the first bad value.
Status ValidateConfig(const ServerConfig& config, std::string& error_detail);

// Descriptors the listeners may hold at most: the gateway's max_connections (TCP and
// WebSocket share it), max_metrics_connections, and kFdsPerMediaTransfer per media
// transfer if [media] is on. Refuses (naming the keys and the limit) a config whose
// budgets plus limits.reserved_fds exceed `open_file_limit` (RLIMIT_NOFILE).
uint64_t ListenerFdBudget(const ServerConfig& config);
Status CheckDescriptorBudget(const ServerConfig& config, uint64_t open_file_limit,
                             std::string& error_detail);

}  // namespace sotto::server
