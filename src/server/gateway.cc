#include "server/gateway.h"

#include <mutex>
#include <string>
#include <unordered_map>

#include <spdlog/spdlog.h>

#include "server/internal/gateway_loop.h"

namespace sotto::server {

// Token buckets per source IP, shared by the loops (taken once per accepted
// connection, never per frame). Idle entries are pruned so the map stays bounded by the
// number of recently active addresses.
struct Gateway::IpLimiter {
  static constexpr size_t kPruneAbove = 50'000;
  struct Entry {
    TokenBucket bucket;
    uint64_t last_ms = 0;
  };
  std::mutex mu;
  std::unordered_map<std::string, Entry> entries;  // GUARDED_BY(mu)
};

// Open connections and handshakes per source, shared by the loops and the WebSocket
// gateway (touched on accept, handshake completion and close, never per frame). An entry
// lives only while its source has a connection open.
struct Gateway::SourceSlots {
  struct Count {
    uint32_t connections = 0;
    uint32_t handshakes = 0;
  };
  std::mutex mu;
  std::unordered_map<net::IpKey, Count, net::IpKeyHash> counts;  // GUARDED_BY(mu)
};

Gateway::Gateway(GatewayOptions options)
    : options_(std::move(options)),
      ip_limiter_(std::make_unique<IpLimiter>()),
      sources_(std::make_unique<SourceSlots>()) {}

bool Gateway::AdmitSource(const net::IpKey& source, RefuseCause& why) {
  std::lock_guard<std::mutex> lock(sources_->mu);
  SourceSlots::Count& c = sources_->counts[source];
  if (c.connections >= options_.limits.max_connections_per_ip) {
    why = RefuseCause::kPerIpConnections;
  } else if (c.handshakes >= options_.limits.max_handshakes_per_ip) {
    why = RefuseCause::kPerIpHandshakes;
  } else {
    ++c.connections;
    ++c.handshakes;
    return true;
  }
  if (c.connections == 0) sources_->counts.erase(source);
  return false;
}

void Gateway::HandshakeDone(const net::IpKey& source) {
  std::lock_guard<std::mutex> lock(sources_->mu);
  auto it = sources_->counts.find(source);
  if (it != sources_->counts.end() && it->second.handshakes > 0) --it->second.handshakes;
}

void Gateway::ReleaseSource(const net::IpKey& source, bool in_handshake) {
  std::lock_guard<std::mutex> lock(sources_->mu);
  auto it = sources_->counts.find(source);
  if (it == sources_->counts.end()) return;
  if (in_handshake && it->second.handshakes > 0) --it->second.handshakes;
  if (it->second.connections > 0) --it->second.connections;
  if (it->second.connections == 0) sources_->counts.erase(it);
}

bool Gateway::AllowHandshakeFrom(const std::string& ip_key, uint64_t now_ms) {
  const RateLimit& limit = options_.limits.handshake_rate_per_ip;
  if (limit.per_second <= 0) return true;
  std::lock_guard<std::mutex> lock(ip_limiter_->mu);
  auto& entries = ip_limiter_->entries;
  if (entries.size() > IpLimiter::kPruneAbove) {
    // An entry idle long enough to have refilled completely carries no state.
    const auto refill_ms = static_cast<uint64_t>(limit.burst / limit.per_second * 1000.0) + 1;
    std::erase_if(entries, [&](const auto& e) { return now_ms - e.second.last_ms > refill_ms; });
  }
  IpLimiter::Entry& e = entries[ip_key];
  e.last_ms = now_ms;
  return e.bucket.Allow(now_ms, limit);
}

Result<std::unique_ptr<Gateway>> Gateway::Start(GatewayOptions options) {
  if (options.core == nullptr || options.loops == 0) {
    return MakeError(Code::kInvalidArgument, Module::kServer, 0,
                     "gateway needs a server core and at least one loop");
  }
  std::unique_ptr<Gateway> gateway(new Gateway(std::move(options)));
  net::SocketAddress address = gateway->options_.listen;
  for (uint32_t i = 0; i < gateway->options_.loops; ++i) {
    SOTTO_ASSIGN_OR_RETURN(int fd, net::Listen(address, 4096, net::ReusePort::kYes));
    if (i == 0) {
      // Port 0 picks a free port for the first listener; the others share it.
      SOTTO_ASSIGN_OR_RETURN(net::SocketAddress bound, net::LocalAddress(fd));
      address.set_port(bound.port());
      gateway->port_ = bound.port();
    }
    auto loop = net::EventLoop::Create();
    if (!loop) {
      close(fd);
      return tl::unexpected(loop.error());
    }
    gateway->loops_.push_back(
        std::make_unique<internal::GatewayLoop>(*gateway, std::move(*loop), fd));
  }
  for (auto& loop : gateway->loops_) loop->Start();
  return gateway;
}

std::unique_ptr<Gateway> Gateway::WithoutListeners(GatewayOptions options) {
  return std::unique_ptr<Gateway>(new Gateway(std::move(options)));
}

void Gateway::Shutdown() {
  if (shut_down_) return;
  shut_down_ = true;
  for (auto& loop : loops_) loop->Stop();
  for (auto& loop : loops_) loop->Join();
}

Gateway::~Gateway() { Shutdown(); }

std::vector<const LoopMetrics*> Gateway::metrics() const {
  std::vector<const LoopMetrics*> out;
  out.reserve(loops_.size());
  for (const auto& loop : loops_) out.push_back(&loop->metrics());
  return out;
}

}  // namespace sotto::server
