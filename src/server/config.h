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
};

struct ServerConfig {
  std::string data_dir = "sotto-data";
  std::string listen = "127.0.0.1:5222";       // Noise over TCP
  std::string ws_listen = "127.0.0.1:5280";    // Noise over WebSocket
  std::string http_listen = "127.0.0.1:5281";  // /metrics
  uint32_t loops = 0;                          // 0 = one per core
  std::string log_level = "info";
  GatewayLimits limits;
};

enum class ConfigErr : uint16_t { kParse = 1, kUnknownKey = 2, kBadValue = 3 };

// Reads `path` over the defaults in `config`. Errors name the offending key; unknown
// keys are errors (a typo must not silently fall back to a default).
Status LoadConfigFile(const std::string& path, ServerConfig& config, std::string& error_detail);
// Checks ranges (e.g. max_frame_bytes <= 65535); names the first bad value.
Status ValidateConfig(const ServerConfig& config, std::string& error_detail);

}  // namespace sotto::server
