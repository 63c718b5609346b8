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

#include "net/http_server.h"
#include "server/config.h"
#include "server/core.h"
#include "server/push.h"
#include "server/verification.h"
#include "store/rocksdb/rocksdb_store.h"
#include "server/gateway.h"
#include "server/media.h"
#include "server/server_key.h"
#include "server/ws_gateway.h"

namespace {

using sotto::server::ServerConfig;

void RaiseOpenFileLimit() {
  rlimit lim{};
  if (getrlimit(RLIMIT_NOFILE, &lim) != 0) return;
  const rlim_t before = lim.rlim_cur;
  lim.rlim_cur = lim.rlim_max;
  if (setrlimit(RLIMIT_NOFILE, &lim) != 0) lim.rlim_cur = before;
  spdlog::info("open files: soft limit {} -> {}, hard limit {}", before, lim.rlim_cur, lim.rlim_max);
}

int Run(int argc, char** argv) {
  CLI::App app{"sottod: the Sotto messaging server"};
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

  RaiseOpenFileLimit();
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
  std::unique_ptr<sotto::server::MediaService> media;  // outlives the core that points to it
  if (!config.media.listen.empty()) {
    auto started = sotto::server::MediaService::Start(
        config.media, (std::filesystem::path(config.data_dir) / "media").string());
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
  auto metrics = sotto::net::HttpServer::Start(*http, [gw, wsg, &core, media_raw](const sotto::net::HttpRequest& r) {
    if (r.method == "GET" && r.target == "/metrics") {
      auto loops_metrics = gw->metrics();
      loops_metrics.push_back(&wsg->metrics());
      return sotto::net::HttpResponse{200, "text/plain; version=0.0.4; charset=utf-8",
                                      sotto::server::RenderPrometheus(loops_metrics) +
                                          core.RenderPrometheus() +
                                          (media_raw ? media_raw->RenderPrometheus() : "")};
    }
    // docs/server.md, "Disk full and readiness": 503 while the store refuses writes.
    if (r.method == "GET" && r.target == "/ready") {
      if (core.StorageFull()) {
        return sotto::net::HttpResponse{503, "text/plain; charset=utf-8",
                                        "not ready: server storage full\n"};
      }
      return sotto::net::HttpResponse{200, "text/plain; charset=utf-8", "ready\n"};
    }
    return sotto::net::HttpResponse{404, "text/plain; charset=utf-8", "not found\n"};
  });
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
  std::printf("sottod: noise/tcp on %s:%u, noise/websocket on %s:%u, http on %s:%u (/metrics)\n",
              host_of(config.listen).c_str(), gw->port(), host_of(config.ws_listen).c_str(),
              wsg->port(), host_of(config.http_listen).c_str(), (*metrics)->port());
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
