// sottod: the Sotto server. It runs the connection gateway (Noise Pipes over TCP and over
// WebSocket), the server core (accounts, prekeys, router, durable queues, receipts,
// presence, push) on the embedded RocksDB store in DIR/store, and /metrics over HTTP. Reads a TOML
// config (--config) and flags that override it; writes DIR/server.key (0600),
// DIR/server.pub and DIR/ports.json; stops gracefully on SIGTERM or SIGINT.
#include <sys/resource.h>
#include <sys/stat.h>

#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>
#include <thread>

#include <CLI/CLI.hpp>
#include <spdlog/spdlog.h>

#include "base/version.h"
#include "net/http_server.h"
#include "server/config.h"
#include "server/core.h"
#include "server/gateway.h"
#include "server/media.h"
#include "server/push.h"
#include "server/metrics_http.h"
#include "server/server_key.h"
#include "server/verification.h"
#include "server/ws_gateway.h"
#include "store/rocksdb/rocksdb_store.h"
#include "wire/protobuf_log.h"
#include "wire/wire.h"

namespace {

using sotto::server::ServerConfig;

// libprotobuf's own log lines (wire/protobuf_log.h): counted, at most a few written.
std::string ProtobufLogPrometheus() {
  return "# TYPE sotto_protobuf_log_lines_total counter\nsotto_protobuf_log_lines_total " +
         std::to_string(sotto::wire::ProtobufLogLines()) +
         "\n# TYPE sotto_protobuf_log_lines_dropped_total counter\n"
         "sotto_protobuf_log_lines_dropped_total " +
         std::to_string(sotto::wire::ProtobufLogLinesDropped()) + "\n";
}

// Raises the soft open-file limit to the hard one; returns the limit now in force.
uint64_t RaiseOpenFileLimit() {
  rlimit lim{};
  if (getrlimit(RLIMIT_NOFILE, &lim) != 0) return 0;
  const rlim_t before = lim.rlim_cur;
  lim.rlim_cur = lim.rlim_max;
  if (setrlimit(RLIMIT_NOFILE, &lim) != 0) lim.rlim_cur = before;
  spdlog::info("open files: soft limit {} -> {}, hard limit {}", before, lim.rlim_cur, lim.rlim_max);
  return lim.rlim_cur == RLIM_INFINITY ? UINT64_MAX : static_cast<uint64_t>(lim.rlim_cur);
}

int Run(int argc, char** argv) {
  CLI::App app{"sottod: the Sotto messaging server"};
  app.set_version_flag("--version", "sottod " + std::string(sotto::kVersion) + " (wire version " +
                                        std::to_string(sotto::wire::kWireVersion) + ")");
  std::string config_path;
  ServerConfig config;
  std::string data, listen, ws_listen, http_listen, media_listen, log_level;
  uint32_t loops = 0;
  app.add_option("--config", config_path, "TOML config file")->check(CLI::ExistingFile);
  app.add_option("--data", data, "data directory (default sotto-data)");
  app.add_option("--listen", listen, "Noise over TCP, HOST:PORT (port 0 = any free port)");
  app.add_option("--ws-listen", ws_listen, "Noise over WebSocket, HOST:PORT");
  app.add_option("--http-listen", http_listen, "HTTP (/metrics), HOST:PORT");
  app.add_option("--media-listen", media_listen,
                 "media blob service over HTTP, HOST:PORT (enables [media])");
  app.add_option("--loops", loops, "event loops (default: one per core)");
  app.add_option("--log-level", log_level, "trace|debug|info|warn|error");
  CLI11_PARSE(app, argc, argv);

  std::string detail;
  if (!config_path.empty()) {
    if (auto s = sotto::server::LoadConfigFile(config_path, config, detail); !s) {
      std::cerr << "sottod: " << config_path << ": " << detail << "\n";
      return 2;
    }
  }
  if (!data.empty()) config.data_dir = data;
  if (!listen.empty()) config.listen = listen;
  if (!ws_listen.empty()) config.ws_listen = ws_listen;
  if (!http_listen.empty()) config.http_listen = http_listen;
  if (!log_level.empty()) config.log_level = log_level;
  if (!media_listen.empty()) config.media.listen = media_listen;
  if (loops != 0) config.loops = loops;
  if (config.loops == 0) config.loops = std::max(1u, std::thread::hardware_concurrency());
  if (auto s = sotto::server::ValidateConfig(config, detail); !s) {
    std::cerr << "sottod: " << detail << "\n";
    return 2;
  }
  spdlog::set_level(spdlog::level::from_str(config.log_level));
  sotto::wire::InstallProtobufLogHandler();  // before any thread parses a protobuf
  auto tcp = sotto::net::ParseHostPort(config.listen);
  auto ws = sotto::net::ParseHostPort(config.ws_listen);
  auto http = sotto::net::ParseHostPort(config.http_listen);
  if (!tcp || !ws || !http) {
    std::cerr << "sottod: listen addresses must be IPv4:PORT or [IPv6]:PORT\n";
    return 2;
  }

  // Signals are handled by sigwait below; block them before any thread starts.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  (void)std::signal(SIGPIPE, SIG_IGN);

  const uint64_t open_file_limit = RaiseOpenFileLimit();
  if (auto s = sotto::server::CheckDescriptorBudget(config, open_file_limit, detail); !s) {
    std::cerr << "sottod: " << detail << "\n";
    return 2;
  }
  // Every listener takes its connections' descriptors from this one budget.
  sotto::net::FdBudget fd_budget(open_file_limit - config.limits.reserved_fds);
  std::error_code ec;
  std::filesystem::create_directories(config.data_dir, ec);
  auto key = sotto::server::LoadOrCreateServerKey(config.data_dir);
  if (!key) {
    std::cerr << "sottod: server key in " << config.data_dir << ": " << key.error().ToString() << "\n";
    return 1;
  }

  sotto::store::RocksDbOptions store_options;
  store_options.path = (std::filesystem::path(config.data_dir) / "store").string();
  store_options.sync = config.store.sync;
  auto store = sotto::store::OpenRocksDbStore(store_options);
  if (!store) {
    std::cerr << "sottod: cannot open the store in " << store_options.path << ": "
              << store.error().ToString() << "\n";
    return 1;
  }
  std::unique_ptr<sotto::server::CodeSender> code_sender;
  if (config.registration.code_sender == "webhook") {
    auto sender = sotto::server::WebhookCodeSender::Create(config.registration.webhook_url);
    if (!sender) {
      std::cerr << "sottod: registration.webhook_url: " << sender.error().ToString() << "\n";
      return 2;
    }
    code_sender = std::move(*sender);
  } else {
    auto sender = sotto::server::LogCodeSender::Create(
        (std::filesystem::path(config.data_dir) / "verification-codes.log").string());
    if (!sender) {
      std::cerr << "sottod: verification-codes.log: " << sender.error().ToString() << "\n";
      return 1;
    }
    code_sender = std::move(*sender);
  }
  sotto::server::PushOptions push_options;
  push_options.coalesce_ms = config.push.coalesce_ms;
  push_options.max_attempts = config.push.max_attempts;
  push_options.initial_backoff_ms = config.push.initial_backoff_ms;
  push_options.max_backoff_ms = config.push.max_backoff_ms;
  push_options.timeout_ms = config.push.timeout_ms;
  push_options.max_pending = config.push.max_pending;
  push_options.endpoint_addresses = config.push.allow_private_endpoints
                                        ? sotto::net::AddressPolicy::kAny
                                        : sotto::net::AddressPolicy::kPublicOnly;
  auto push = sotto::server::PushNotifier::Create(push_options);
  if (!push) {
    std::cerr << "sottod: push: " << push.error().ToString() << "\n";
    return 1;
  }
  sotto::server::CodeOptions code_options;
  code_options.code_ttl_s = config.registration.code_ttl_s;
  code_options.code_attempts = config.registration.code_attempts;
  code_options.code_rate_per_s = config.registration.code_rate.per_second;
  code_options.code_burst = config.registration.code_rate.burst;
  code_options.max_pending_codes = config.registration.max_pending_codes;
  code_options.ip_code_rate = config.registration.ip_code_rate;
  code_options.global_code_rate = config.registration.global_code_rate;
  code_options.ip_guess_rate = config.registration.ip_guess_rate;
  code_options.global_guess_rate = config.registration.global_guess_rate;
  auto codes = sotto::server::VerificationCodes::Create(code_options);
  if (!codes) {
    std::cerr << "sottod: [registration]: " << codes.error().ToString() << "\n";
    return 2;
  }
  sotto::server::CoreOptions core_options;
  core_options.store = config.store;
  core_options.code_ttl_s = config.registration.code_ttl_s;
  core_options.prekeys = config.prekeys;
  core_options.groups = config.groups;
  core_options.max_push_endpoint_bytes = config.push.max_endpoint_bytes;
  core_options.allow_private_push_endpoints = config.push.allow_private_endpoints;
  core_options.max_devices_per_account = config.devices.max_devices_per_account;
  core_options.devices = config.devices;
  core_options.lookups = config.lookups;
  std::unique_ptr<sotto::server::MediaService> media;  // outlives the core that points to it
  if (!config.media.listen.empty()) {
    auto started = sotto::server::MediaService::Start(
        config.media, (std::filesystem::path(config.data_dir) / "media").string(), {},
        &fd_budget);
    if (!started) {
      std::cerr << "sottod: media service on " << config.media.listen << ": "
                << started.error().ToString() << "\n";
      return 1;
    }
    media = std::move(*started);
  }
  sotto::server::ServerCore core(core_options, **store, **codes, *code_sender, push->get());
  core.AttachMedia(media.get());
  core.Start();

  sotto::server::GatewayOptions options;
  options.limits = config.limits;
  options.loops = config.loops;
  options.listen = *tcp;
  options.server_static = *key;
  options.core = &core;
  options.fd_budget = &fd_budget;
  auto gateway = sotto::server::Gateway::Start(options);
  if (!gateway) {
    std::cerr << "sottod: cannot listen on " << config.listen << ": " << gateway.error().ToString() << "\n";
    return 1;
  }
  sotto::server::Gateway* gw = gateway->get();
  auto ws_gateway = sotto::server::WsGateway::Start(*ws, *gw);
  if (!ws_gateway) {
    std::cerr << "sottod: cannot listen on " << config.ws_listen << ": "
              << ws_gateway.error().ToString() << "\n";
    return 1;
  }
  sotto::server::WsGateway* wsg = ws_gateway->get();
  sotto::server::MediaService* media_raw = media.get();
  sotto::net::HttpServerLimits metrics_limits;
  metrics_limits.max_connections = config.limits.max_metrics_connections;
  metrics_limits.fd_budget = &fd_budget;
  auto metrics = sotto::net::HttpServer::Start(
      *http,
      [gw, wsg, &core, media_raw](const sotto::net::HttpRequest& r) {
        return sotto::server::HandleMetricsRequest(
            r,
            [&] {
          auto loops_metrics = gw->metrics();
          loops_metrics.push_back(&wsg->metrics());
          std::string out = sotto::server::RenderPrometheus(loops_metrics);
          sotto::server::AppendPrometheusSeries(
              out, "sotto_partial_input_bytes", "gauge",
              "Bytes buffered for incomplete frames (limits.max_partial_input_bytes).",
              gw->partial_input_bytes().load(std::memory_order_relaxed));
          return out + core.RenderPrometheus() +
                 (media_raw ? media_raw->RenderPrometheus() : "") + ProtobufLogPrometheus();
            },
            [&core] { return !core.StorageFull(); });
      },
      metrics_limits);
  if (!metrics) {
    std::cerr << "sottod: cannot listen on " << config.http_listen << ": " << metrics.error().ToString() << "\n";
    return 1;
  }

  const std::string pub = sotto::server::ServerKeyText(key->public_key);
  {
    const auto ports = std::filesystem::path(config.data_dir) / "ports.json";
    std::ofstream(ports.string() + ".tmp")
        << "{\"listen\": " << gw->port() << ", \"ws_listen\": " << wsg->port()
        << ", \"http_listen\": " << (*metrics)->port()
        << ", \"media_listen\": " << (media ? media->port() : 0) << "}\n";
    std::filesystem::rename(ports.string() + ".tmp", ports, ec);
  }
  auto host_of = [](const std::string& hp) { return hp.substr(0, hp.rfind(':')); };
  // One line per listener, so a person sees every port it opened (also in ports.json).
  std::printf("sottod: noise over tcp        on %s:%u\n", host_of(config.listen).c_str(),
              gw->port());
  std::printf("sottod: noise over websocket  on ws://%s:%u/\n", host_of(config.ws_listen).c_str(),
              wsg->port());
  std::printf("sottod: metrics               on http://%s:%u/metrics\n",
              host_of(config.http_listen).c_str(), (*metrics)->port());
  if (media) {
    std::printf("sottod: media blob service    on http://%s:%u/\n",
                host_of(config.media.listen).c_str(), media->port());
  } else {
    std::printf("sottod: media blob service    off (no --media-listen or [media] listen)\n");
  }
  std::printf("sottod: server key %s (also in %s/server.pub)\n", pub.c_str(), config.data_dir.c_str());
  std::printf("sottod: data in %s; %u event loops; stop with Ctrl-C or SIGTERM\n",
              config.data_dir.c_str(), config.loops);
  (void)std::fflush(stdout);
  spdlog::info("started: {} loops, max {} connections", config.loops, config.limits.max_connections);

  int sig = 0;
  sigwait(&signals, &sig);
  spdlog::info("signal {}: shutting down", sig);
  // Order matters: connections close first (they unroute themselves), then the queue
  // finishes its pending commits (their callbacks only post to stopped loops), and only
  // then are the loops and the store destroyed.
  wsg->Shutdown();
  gw->Shutdown();
  (*metrics)->Stop();
  if (media) media->Stop();
  core.Stop();
  (*push)->Stop();
  (*store)->Close();
  spdlog::info("stopped");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return Run(argc, argv);
  } catch (const std::exception& e) {
    std::cerr << "sottod: fatal: " << e.what() << "\n";
    return 1;
  }
}
