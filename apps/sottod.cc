// sottod: the Sotto server. Today it runs the connection gateway (Noise Pipes over TCP
// and over WebSocket) with an in-memory device directory, and /metrics over HTTP. Reads a TOML
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
#include "server/device_directory.h"
#include "server/gateway.h"
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
  std::string data, listen, ws_listen, http_listen, log_level;
  uint32_t loops = 0;
  app.add_option("--config", config_path, "TOML config file")->check(CLI::ExistingFile);
  app.add_option("--data", data, "data directory (default sotto-data)");
  app.add_option("--listen", listen, "Noise over TCP, HOST:PORT (port 0 = any free port)");
  app.add_option("--ws-listen", ws_listen, "Noise over WebSocket, HOST:PORT");
  app.add_option("--http-listen", http_listen, "HTTP (/metrics), HOST:PORT");
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

  sotto::server::InMemoryDeviceDirectory directory;
  sotto::server::GatewayOptions options;
  options.limits = config.limits;
  options.loops = config.loops;
  options.listen = *tcp;
  options.server_static = *key;
  options.directory = &directory;
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
  auto metrics = sotto::net::HttpServer::Start(*http, [gw, wsg](const sotto::net::HttpRequest& r) {
    if (r.method == "GET" && r.target == "/metrics") {
      auto loops_metrics = gw->metrics();
      loops_metrics.push_back(&wsg->metrics());
      return sotto::net::HttpResponse{200, "text/plain; version=0.0.4; charset=utf-8",
                                      sotto::server::RenderPrometheus(loops_metrics)};
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
        << ", \"http_listen\": " << (*metrics)->port() << "}\n";
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
  wsg->Shutdown();
  gw->Shutdown();
  (*metrics)->Stop();
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
