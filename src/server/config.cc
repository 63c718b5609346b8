#include "server/config.h"

#include <set>
#include <string_view>

// Header-only (not Debian's shared library, which is built with exceptions) so that
// TOML_EXCEPTIONS=0 is consistent.
#define TOML_HEADER_ONLY 1
#define TOML_EXCEPTIONS 0
#include <toml++/toml.h>

namespace sotto::server {
namespace {

tl::unexpected<Error> ConfigError(ConfigErr detail, const char* message) {
  return MakeError(Code::kInvalidArgument, Module::kServer, static_cast<uint16_t>(detail), message);
}

// Reads one key of a table into `out`, recording it as known.
class TableReader {
 public:
  TableReader(const toml::table& table, std::string prefix, std::string& error)
      : table_(table), prefix_(std::move(prefix)), error_(error) {}

  bool String(std::string_view key, std::string& out) {
    known_.insert(std::string(key));
    const toml::node* n = table_.get(key);
    if (n == nullptr) return true;
    if (const auto* v = n->as_string()) {
      out = v->get();
      return true;
    }
    return Fail(key, "must be a string");
  }

  template <typename T>
  bool Unsigned(std::string_view key, T& out) {
    known_.insert(std::string(key));
    const toml::node* n = table_.get(key);
    if (n == nullptr) return true;
    const auto* v = n->as_integer();
    if (v == nullptr || v->get() < 0 || static_cast<uint64_t>(v->get()) > UINT32_MAX) {
      return Fail(key, "must be a non-negative integer below 2^32");
    }
    out = static_cast<T>(v->get());
    return true;
  }

  bool Unsigned64(std::string_view key, uint64_t& out) {
    known_.insert(std::string(key));
    const toml::node* n = table_.get(key);
    if (n == nullptr) return true;
    const auto* v = n->as_integer();
    if (v == nullptr || v->get() < 0) return Fail(key, "must be a non-negative integer");
    out = static_cast<uint64_t>(v->get());
    return true;
  }

  bool Bool(std::string_view key, bool& out) {
    known_.insert(std::string(key));
    const toml::node* n = table_.get(key);
    if (n == nullptr) return true;
    if (const auto* v = n->as_boolean()) {
      out = v->get();
      return true;
    }
    return Fail(key, "must be true or false");
  }

  bool Double(std::string_view key, double& out) {
    known_.insert(std::string(key));
    const toml::node* n = table_.get(key);
    if (n == nullptr) return true;
    if (const auto* i = n->as_integer(); i != nullptr && i->get() >= 0) {
      out = static_cast<double>(i->get());
      return true;
    }
    if (const auto* f = n->as_floating_point(); f != nullptr && f->get() >= 0) {
      out = f->get();
      return true;
    }
    return Fail(key, "must be a non-negative number");
  }

  // Fails on any key not read above.
  bool NoUnknownKeys() {
    for (const auto& [k, v] : table_) {
      if (!known_.contains(std::string(k.str()))) return Fail(k.str(), "is not a known key");
    }
    return true;
  }

 private:
  bool Fail(std::string_view key, const char* why) {
    error_ = prefix_ + std::string(key) + " " + why;
    return false;
  }
  const toml::table& table_;
  std::string prefix_;
  std::string& error_;
  std::set<std::string> known_;
};

}  // namespace

Status LoadConfigFile(const std::string& path, ServerConfig& config, std::string& error_detail) {
  toml::parse_result parsed = toml::parse_file(path);
  if (!parsed) {
    error_detail = std::string(parsed.error().description());
    return ConfigError(ConfigErr::kParse, "config file does not parse as TOML");
  }
  const toml::table& root = parsed.table();
  for (const auto& [k, v] : root) {
    if (k.str() != "server" && k.str() != "limits" && k.str() != "store" &&
        k.str() != "registration" && k.str() != "prekeys" && k.str() != "push" &&
        k.str() != "media" &&
        k.str() != "lookups" &&
        k.str() != "devices" &&
        k.str() != "groups") {
      error_detail = "[" + std::string(k.str()) + "] is not a known table";
      return ConfigError(ConfigErr::kUnknownKey, "unknown config table");
    }
    if (!v.is_table()) {
      error_detail = std::string(k.str()) + " must be a table";
      return ConfigError(ConfigErr::kBadValue, "config value has the wrong type");
    }
  }
  if (const toml::table* s = root["server"].as_table()) {
    TableReader r(*s, "server.", error_detail);
    if (!r.String("data", config.data_dir) || !r.String("listen", config.listen) ||
        !r.String("ws_listen", config.ws_listen) || !r.String("http_listen", config.http_listen) ||
        !r.Unsigned("loops", config.loops) || !r.String("log_level", config.log_level)) {
      return ConfigError(ConfigErr::kBadValue, "config value has the wrong type");
    }
    if (!r.NoUnknownKeys()) return ConfigError(ConfigErr::kUnknownKey, "unknown config key");
  }
  if (const toml::table* l = root["limits"].as_table()) {
    GatewayLimits& g = config.limits;
    TableReader r(*l, "limits.", error_detail);
    if (!r.Unsigned("max_connections", g.max_connections) ||
        !r.Unsigned("max_frame_bytes", g.max_frame_bytes) ||
        !r.Unsigned("handshake_timeout_ms", g.handshake_timeout_ms) ||
        !r.Unsigned("ping_interval_ms", g.ping_interval_ms) ||
        !r.Unsigned("ping_timeout_ms", g.ping_timeout_ms) ||
        !r.Unsigned("max_write_queue_bytes", g.max_write_queue_bytes) ||
        !r.Double("request_rate_per_s", g.request_rate.per_second) ||
        !r.Double("request_burst", g.request_rate.burst) ||
        !r.Double("handshake_rate_per_ip_per_s", g.handshake_rate_per_ip.per_second) ||
        !r.Double("handshake_burst_per_ip", g.handshake_rate_per_ip.burst) ||
        !r.Unsigned("partial_frame_timeout_ms", g.partial_frame_timeout_ms) ||
        !r.Unsigned("max_partial_input_bytes", g.max_partial_input_bytes) ||
        !r.Unsigned("max_connections_per_ip", g.max_connections_per_ip) ||
        !r.Unsigned("max_handshakes_per_ip", g.max_handshakes_per_ip) ||
        !r.Unsigned("reserved_fds", g.reserved_fds) ||
        !r.Unsigned("max_metrics_connections", g.max_metrics_connections)) {
      return ConfigError(ConfigErr::kBadValue, "config value has the wrong type");
    }
    if (!r.NoUnknownKeys()) return ConfigError(ConfigErr::kUnknownKey, "unknown config key");
  }
  auto table = [&](const char* name, auto&& read) -> Status {
    const toml::table* t = root[name].as_table();
    if (t == nullptr) return Ok();
    TableReader r(*t, std::string(name) + ".", error_detail);
    if (!read(r)) return ConfigError(ConfigErr::kBadValue, "config value has the wrong type");
    if (!r.NoUnknownKeys()) return ConfigError(ConfigErr::kUnknownKey, "unknown config key");
    return Ok();
  };
  SOTTO_RETURN_IF_ERROR(table("store", [&](TableReader& r) {
    StoreConfig& c = config.store;
    return r.Unsigned("message_ttl_s", c.message_ttl_s) &&
           r.Unsigned("max_queue_depth", c.max_queue_depth) &&
           r.Unsigned("purge_interval_ms", c.purge_interval_ms) &&
           r.Unsigned("delivery_window", c.delivery_window) && r.Bool("sync", c.sync) &&
           r.Unsigned("max_queued_per_sender", c.max_queued_per_sender) &&
           r.Unsigned("io_threads", c.io_threads) && r.Unsigned("io_queue_depth", c.io_queue_depth);
  }));
  SOTTO_RETURN_IF_ERROR(table("registration", [&](TableReader& r) {
    RegistrationConfig& c = config.registration;
    return r.String("code_sender", c.code_sender) && r.String("webhook_url", c.webhook_url) &&
           r.Unsigned("code_ttl_s", c.code_ttl_s) && r.Unsigned("code_attempts", c.code_attempts) &&
           r.Double("code_rate_per_s", c.code_rate.per_second) &&
           r.Double("code_burst", c.code_rate.burst) &&
           r.Unsigned("max_pending_codes", c.max_pending_codes) &&
           r.Double("ip_code_rate_per_s", c.ip_code_rate.per_second) &&
           r.Double("ip_code_burst", c.ip_code_rate.burst) &&
           r.Double("global_code_rate_per_s", c.global_code_rate.per_second) &&
           r.Double("global_code_burst", c.global_code_rate.burst) &&
           r.Double("ip_guess_rate_per_s", c.ip_guess_rate.per_second) &&
           r.Double("ip_guess_burst", c.ip_guess_rate.burst) &&
           r.Double("global_guess_rate_per_s", c.global_guess_rate.per_second) &&
           r.Double("global_guess_burst", c.global_guess_rate.burst);
  }));
  SOTTO_RETURN_IF_ERROR(table("lookups", [&](TableReader& r) {
    LookupConfig& c = config.lookups;
    return r.Double("account_rate_per_s", c.account_rate.per_second) &&
           r.Double("account_burst", c.account_rate.burst) &&
           r.Double("ip_rate_per_s", c.ip_rate.per_second) &&
           r.Double("ip_burst", c.ip_rate.burst) &&
           r.Double("global_rate_per_s", c.global_rate.per_second) &&
           r.Double("global_burst", c.global_rate.burst);
  }));
  SOTTO_RETURN_IF_ERROR(table("prekeys", [&](TableReader& r) {
    PreKeyConfig& c = config.prekeys;
    return r.Unsigned("low_watermark", c.low_watermark) &&
           r.Unsigned("max_one_time_prekeys", c.max_one_time_prekeys) &&
           r.Unsigned("max_upload", c.max_upload) &&
           r.Double("bundle_rate_per_s", c.bundle_rate.per_second) &&
           r.Double("bundle_burst", c.bundle_rate.burst) &&
           r.Double("target_rate_per_s", c.target_rate.per_second) &&
           r.Double("target_burst", c.target_rate.burst) &&
           r.Unsigned("new_account_age_s", c.new_account_age_s) &&
           r.Double("new_account_bundle_rate_per_s", c.new_account_bundle_rate.per_second) &&
           r.Double("new_account_bundle_burst", c.new_account_bundle_rate.burst);
  }));
  SOTTO_RETURN_IF_ERROR(table("push", [&](TableReader& r) {
    PushConfig& c = config.push;
    return r.Unsigned("coalesce_ms", c.coalesce_ms) && r.Unsigned("max_attempts", c.max_attempts) &&
           r.Unsigned("initial_backoff_ms", c.initial_backoff_ms) &&
           r.Unsigned("max_backoff_ms", c.max_backoff_ms) && r.Unsigned("timeout_ms", c.timeout_ms) &&
           r.Unsigned("max_endpoint_bytes", c.max_endpoint_bytes) &&
           r.Unsigned("max_pending", c.max_pending) &&
           r.Bool("allow_private_endpoints", c.allow_private_endpoints);
  }));
  SOTTO_RETURN_IF_ERROR(table("media", [&](TableReader& r) {
    MediaConfig& c = config.media;
    return r.String("listen", c.listen) && r.String("public_url", c.public_url) &&
           r.Unsigned64("max_blob_bytes", c.max_blob_bytes) &&
           r.Unsigned("blob_ttl_s", c.blob_ttl_s) &&
           r.Unsigned("upload_token_ttl_s", c.upload_token_ttl_s) &&
           r.Unsigned("sweep_interval_ms", c.sweep_interval_ms) &&
           r.Unsigned("max_transfers", c.max_transfers) &&
           r.Unsigned("idle_timeout_ms", c.idle_timeout_ms) &&
           r.Unsigned("max_pending_tokens", c.max_pending_tokens) &&
           r.Unsigned("max_tokens_per_account", c.max_tokens_per_account) &&
           r.Unsigned("header_timeout_ms", c.header_timeout_ms) &&
           r.Unsigned("min_transfer_bytes_per_s", c.min_transfer_bytes_per_s) &&
           r.Unsigned("max_transfers_per_ip", c.max_transfers_per_ip);
  }));
  SOTTO_RETURN_IF_ERROR(table("devices", [&](TableReader& r) {
    DevicesConfig& c = config.devices;
    return r.Unsigned("max_devices_per_account", c.max_devices_per_account) &&
           r.Unsigned("provision_ttl_s", c.provision_ttl_s) &&
           r.Unsigned("max_provision_ids", c.max_provision_ids) &&
           r.Unsigned("max_provision_body_bytes", c.max_provision_body_bytes) &&
           r.Unsigned("link_token_ttl_s", c.link_token_ttl_s) &&
           r.Unsigned("max_link_tokens", c.max_link_tokens) &&
           r.Unsigned("max_provision_ids_per_ip", c.max_provision_ids_per_ip) &&
           r.Unsigned("max_link_tokens_per_account", c.max_link_tokens_per_account);
  }));
  SOTTO_RETURN_IF_ERROR(table("groups", [&](TableReader& r) {
    GroupsConfig& c = config.groups;
    return r.Unsigned("max_members", c.max_members) &&
           r.Unsigned("max_request_accounts", c.max_request_accounts) &&
           r.Double("account_change_rate_per_s", c.account_change_rate.per_second) &&
           r.Double("account_change_burst", c.account_change_rate.burst) &&
           r.Double("group_change_rate_per_s", c.group_change_rate.per_second) &&
           r.Double("group_change_burst", c.group_change_rate.burst);
  }));
  return ValidateConfig(config, error_detail);
}

Status ValidateConfig(const ServerConfig& config, std::string& error_detail) {
  const GatewayLimits& g = config.limits;
  auto bad = [&](const char* what) {
    error_detail = what;
    return ConfigError(ConfigErr::kBadValue, "config value out of range");
  };
  if (g.max_frame_bytes < 64 || g.max_frame_bytes > 65'535) {
    return bad("limits.max_frame_bytes must be in 64..65535 (the Noise message limit)");
  }
  if (g.max_connections == 0) return bad("limits.max_connections must be at least 1");
  if (g.handshake_timeout_ms == 0) return bad("limits.handshake_timeout_ms must be at least 1");
  if (g.ping_interval_ms == 0 || g.ping_timeout_ms == 0) {
    return bad("limits.ping_interval_ms and limits.ping_timeout_ms must be at least 1");
  }
  if (g.max_write_queue_bytes < g.max_frame_bytes + 2) {
    return bad("limits.max_write_queue_bytes must hold at least one frame (max_frame_bytes + 2)");
  }
  if (g.request_rate.per_second > 0 && g.request_rate.burst < 1) {
    return bad("limits.request_burst must be at least 1 when a request rate is set");
  }
  if (g.handshake_rate_per_ip.per_second > 0 && g.handshake_rate_per_ip.burst < 1) {
    return bad("limits.handshake_burst_per_ip must be at least 1 when a handshake rate is set");
  }
  if (g.partial_frame_timeout_ms == 0) {
    return bad("limits.partial_frame_timeout_ms must be at least 1");
  }
  if (g.max_partial_input_bytes < g.max_frame_bytes + 2) {
    return bad("limits.max_partial_input_bytes must hold at least one frame (max_frame_bytes + 2)");
  }
  if (g.max_connections_per_ip == 0 || g.max_handshakes_per_ip == 0) {
    return bad("limits.max_connections_per_ip and limits.max_handshakes_per_ip must be at least 1");
  }
  if (g.max_metrics_connections == 0) {
    return bad("limits.max_metrics_connections must be at least 1");
  }
  if (config.loops > 256) return bad("server.loops must be at most 256");
  const StoreConfig& st = config.store;
  if (st.message_ttl_s == 0) return bad("store.message_ttl_s must be at least 1");
  if (st.max_queue_depth == 0) return bad("store.max_queue_depth must be at least 1");
  if (st.purge_interval_ms == 0) return bad("store.purge_interval_ms must be at least 1");
  if (st.delivery_window == 0 || st.delivery_window > 4'096) {
    return bad("store.delivery_window must be in 1..4096");
  }
  if (st.max_queued_per_sender == 0 || st.max_queued_per_sender > st.max_queue_depth) {
    return bad("store.max_queued_per_sender must be in 1..store.max_queue_depth");
  }
  if (st.io_threads == 0 || st.io_threads > kMaxIoThreads) {
    return bad("store.io_threads must be in 1..256");
  }
  if (st.io_queue_depth == 0 || st.io_queue_depth > kMaxIoQueueDepth) {
    return bad("store.io_queue_depth must be in 1..1000000");
  }
  const RegistrationConfig& reg = config.registration;
  if (reg.code_sender != "log" && reg.code_sender != "webhook") {
    return bad("registration.code_sender must be \"log\" or \"webhook\"");
  }
  if (reg.code_sender == "webhook" && reg.webhook_url.empty()) {
    return bad("registration.webhook_url is required with code_sender = \"webhook\"");
  }
  if (reg.code_ttl_s == 0) return bad("registration.code_ttl_s must be at least 1");
  if (reg.code_attempts == 0) return bad("registration.code_attempts must be at least 1");
  if (reg.code_rate.per_second > 0 && reg.code_rate.burst < 1) {
    return bad("registration.code_burst must be at least 1 when a code rate is set");
  }
  if (reg.max_pending_codes == 0) return bad("registration.max_pending_codes must be at least 1");
  // Per-source and server-wide limits (issue 12): a rate of 0 turns one off.
  struct NamedRate {
    const RateLimit& rate;
    const char* error;
  };
  const NamedRate rates[] = {
      {reg.ip_code_rate, "registration.ip_code_burst must be at least 1 when its rate is set"},
      {reg.global_code_rate,
       "registration.global_code_burst must be at least 1 when its rate is set"},
      {reg.ip_guess_rate, "registration.ip_guess_burst must be at least 1 when its rate is set"},
      {reg.global_guess_rate,
       "registration.global_guess_burst must be at least 1 when its rate is set"},
      {config.lookups.account_rate,
       "lookups.account_burst must be at least 1 when its rate is set"},
      {config.lookups.ip_rate, "lookups.ip_burst must be at least 1 when its rate is set"},
      {config.lookups.global_rate, "lookups.global_burst must be at least 1 when its rate is set"},
      {config.prekeys.target_rate, "prekeys.target_burst must be at least 1 when its rate is set"},
      {config.prekeys.new_account_bundle_rate,
       "prekeys.new_account_bundle_burst must be at least 1 when its rate is set"},
  };
  for (const NamedRate& r : rates) {
    if (r.rate.per_second > 0 && r.rate.burst < 1) return bad(r.error);
  }
  if (config.media.max_tokens_per_account == 0) {
    return bad("media.max_tokens_per_account must be at least 1");
  }
  if (config.devices.max_provision_ids_per_ip == 0 ||
      config.devices.max_link_tokens_per_account == 0) {
    return bad(
        "devices.max_provision_ids_per_ip and devices.max_link_tokens_per_account must be at least "
        "1");
  }
  const PreKeyConfig& pk = config.prekeys;
  if (pk.max_one_time_prekeys == 0 || pk.max_upload == 0) {
    return bad("prekeys.max_one_time_prekeys and prekeys.max_upload must be at least 1");
  }
  if (pk.low_watermark > pk.max_one_time_prekeys) {
    return bad("prekeys.low_watermark must not exceed prekeys.max_one_time_prekeys");
  }
  if (pk.bundle_rate.per_second > 0 && pk.bundle_rate.burst < 1) {
    return bad("prekeys.bundle_burst must be at least 1 when a bundle rate is set");
  }
  const DevicesConfig& dv = config.devices;
  if (dv.max_devices_per_account == 0 || dv.max_devices_per_account > kMaxDevicesPerAccountLimit) {
    return bad("devices.max_devices_per_account must be in 1..16");
  }
  if (dv.provision_ttl_s == 0 || dv.link_token_ttl_s == 0 || dv.max_provision_ids == 0 ||
      dv.max_link_tokens == 0) {
    return bad(
        "devices.*_ttl_s, devices.max_provision_ids and devices.max_link_tokens must be at least "
        "1");
  }
  if (dv.max_provision_body_bytes < 256 || dv.max_provision_body_bytes > 32'768) {
    return bad("devices.max_provision_body_bytes must be in 256..32768");
  }
  const PushConfig& pu = config.push;
  if (pu.max_attempts == 0 || pu.timeout_ms == 0 || pu.max_pending == 0) {
    return bad("push.max_attempts, push.timeout_ms and push.max_pending must be at least 1");
  }
  if (pu.initial_backoff_ms == 0 || pu.max_backoff_ms < pu.initial_backoff_ms) {
    return bad("push.initial_backoff_ms must be at least 1 and at most push.max_backoff_ms");
  }
  const MediaConfig& me = config.media;
  if (me.max_blob_bytes == 0) return bad("media.max_blob_bytes must be at least 1");
  if (me.blob_ttl_s == 0 || me.upload_token_ttl_s == 0 || me.sweep_interval_ms == 0) {
    return bad("media.blob_ttl_s, media.upload_token_ttl_s and media.sweep_interval_ms must be at least 1");
  }
  if (me.max_transfers == 0 || me.max_transfers > 10'000) {
    return bad("media.max_transfers must be in 1..10000");
  }
  if (me.idle_timeout_ms == 0) return bad("media.idle_timeout_ms must be at least 1");
  if (me.max_pending_tokens == 0) return bad("media.max_pending_tokens must be at least 1");
  if (me.header_timeout_ms == 0) return bad("media.header_timeout_ms must be at least 1");
  if (me.max_transfers_per_ip == 0 || me.max_transfers_per_ip > me.max_transfers) {
    return bad("media.max_transfers_per_ip must be in 1..media.max_transfers");
  }
  if (!me.public_url.empty() && me.public_url.rfind("http://", 0) != 0 &&
      me.public_url.rfind("https://", 0) != 0) {
    return bad("media.public_url must start with http:// or https://");
  }
  const GroupsConfig& gr = config.groups;
  if (gr.max_members == 0 || gr.max_members > kMaxGroupMembersLimit) {
    return bad("groups.max_members must be in 1..1024");
  }
  if (gr.max_request_accounts == 0 || gr.max_request_accounts > kMaxGroupMembersLimit) {
    return bad("groups.max_request_accounts must be in 1..1024");
  }
  if (gr.account_change_rate.per_second > 0 && gr.account_change_rate.burst < 1) {
    return bad("groups.account_change_burst must be at least 1 when an account change rate is set");
  }
  if (gr.group_change_rate.per_second > 0 && gr.group_change_rate.burst < 1) {
    return bad("groups.group_change_burst must be at least 1 when a group change rate is set");
  }
  return Ok();
}

uint64_t ListenerFdBudget(const ServerConfig& config) {
  const uint64_t media =
      config.media.listen.empty() ? 0 : uint64_t{config.media.max_transfers} * kFdsPerMediaTransfer;
  return uint64_t{config.limits.max_connections} + config.limits.max_metrics_connections + media;
}

Status CheckDescriptorBudget(const ServerConfig& config, uint64_t open_file_limit,
                             std::string& error_detail) {
  const uint64_t listeners = ListenerFdBudget(config);
  const uint64_t needed = listeners + config.limits.reserved_fds;
  if (needed <= open_file_limit) return Ok();
  error_detail = "descriptor budget exceeds the open-file limit (RLIMIT_NOFILE " +
                 std::to_string(open_file_limit) + "): limits.max_connections (" +
                 std::to_string(config.limits.max_connections) +
                 ") + limits.max_metrics_connections (" +
                 std::to_string(config.limits.max_metrics_connections) + ")" +
                 (config.media.listen.empty()
                      ? std::string()
                      : " + " + std::to_string(kFdsPerMediaTransfer) + " x media.max_transfers (" +
                            std::to_string(config.media.max_transfers) + ")") +
                 " + limits.reserved_fds (" + std::to_string(config.limits.reserved_fds) +
                 ") = " + std::to_string(needed);
  return ConfigError(ConfigErr::kBadValue, "descriptor budget exceeds the open-file limit");
}

}  // namespace sotto::server
