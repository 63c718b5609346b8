// Gateway counters, exported at /metrics in the Prometheus text format. Counts and
// timings only: never keys, identifiers or content. Each event loop owns one
// LoopMetrics and is its only writer (relaxed atomics, no contention); the exporter
// sums them.
//
// Thread-safety: thread-safe.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

namespace sotto::server {

enum class HandshakePattern : uint8_t { kXX, kIK, kXXfallback, kCount };
// Reasons a connection was closed by the server (mirrors wire::CloseReason plus local ones).
enum class CloseCause : uint8_t {
  kPeerClosed, kMalformedFrame, kUnknownFrame, kFrameTooLarge, kPingTimeout, kSlowReader,
  kShutdown, kUnsupportedVersion, kDecryptFailed, kHandshakeFailed, kHandshakeTimeout,
  kUnauthenticated, kIoError, kReplaced,
  kPartialFrameTimeout, kInputBudget,  // issue 12: incomplete input held too long / too much
  kCount
};
enum class RefuseCause : uint8_t {
  kMaxConnections, kOpenFiles, kHandshakeRate,
  kPerIpConnections, kPerIpHandshakes, kFdBudget,  // issue 12: per-source and descriptor budgets
  kCount
};

const char* Name(HandshakePattern p);
const char* Name(CloseCause c);
const char* Name(RefuseCause c);

struct LoopMetrics {
  using Counter = std::atomic<uint64_t>;
  Counter connections_open{0};  // gauge
  Counter connections_accepted{0};
  Counter frames_in{0};
  Counter frames_out{0};
  Counter bytes_in{0};
  Counter bytes_out{0};
  Counter requests_rate_limited{0};
  Counter handshakes_failed{0};
  std::array<Counter, static_cast<size_t>(HandshakePattern::kCount)> handshakes{};
  std::array<Counter, static_cast<size_t>(CloseCause::kCount)> closes{};
  std::array<Counter, static_cast<size_t>(RefuseCause::kCount)> refused{};

  static void Inc(Counter& c, uint64_t n = 1) { c.fetch_add(n, std::memory_order_relaxed); }
  static void Dec(Counter& c) { c.fetch_sub(1, std::memory_order_relaxed); }
};

// Appends one unlabelled series (# HELP, # TYPE and its value) in the Prometheus text
// exposition format; `type` is "counter" or "gauge".
void AppendPrometheusSeries(std::string& out, const char* name, const char* type,
                            const char* help, uint64_t value);

// Renders all loops' metrics (summed) in the Prometheus text exposition format.
std::string RenderPrometheus(const std::vector<const LoopMetrics*>& loops);

}  // namespace sotto::server
