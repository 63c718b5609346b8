#include "server/metrics.h"

namespace sotto::server {

const char* Name(HandshakePattern p) {
  switch (p) {
    case HandshakePattern::kXX: return "XX";
    case HandshakePattern::kIK: return "IK";
    case HandshakePattern::kXXfallback: return "XXfallback";
    case HandshakePattern::kCount: break;
  }
  return "unknown";
}

const char* Name(CloseCause c) {
  switch (c) {
    case CloseCause::kPeerClosed: return "peer_closed";
    case CloseCause::kMalformedFrame: return "malformed_frame";
    case CloseCause::kUnknownFrame: return "unknown_frame";
    case CloseCause::kFrameTooLarge: return "frame_too_large";
    case CloseCause::kPingTimeout: return "ping_timeout";
    case CloseCause::kSlowReader: return "slow_reader";
    case CloseCause::kShutdown: return "shutdown";
    case CloseCause::kUnsupportedVersion: return "unsupported_version";
    case CloseCause::kDecryptFailed: return "decrypt_failed";
    case CloseCause::kHandshakeFailed: return "handshake_failed";
    case CloseCause::kHandshakeTimeout: return "handshake_timeout";
    case CloseCause::kUnauthenticated: return "unauthenticated";
    case CloseCause::kIoError: return "io_error";
    case CloseCause::kReplaced: return "replaced";
    case CloseCause::kPartialFrameTimeout: return "partial_frame_timeout";
    case CloseCause::kInputBudget: return "input_budget";
    case CloseCause::kCount: break;
  }
  return "unknown";
}

const char* Name(RefuseCause c) {
  switch (c) {
    case RefuseCause::kMaxConnections: return "max_connections";
    case RefuseCause::kOpenFiles: return "open_files";
    case RefuseCause::kHandshakeRate: return "handshake_rate";
    case RefuseCause::kPerIpConnections: return "per_ip_connections";
    case RefuseCause::kPerIpHandshakes: return "per_ip_handshakes";
    case RefuseCause::kFdBudget: return "fd_budget";
    case RefuseCause::kCount: break;
  }
  return "unknown";
}

namespace {

uint64_t Sum(const std::vector<const LoopMetrics*>& loops,
             const std::atomic<uint64_t> LoopMetrics::*field) {
  uint64_t total = 0;
  for (const LoopMetrics* m : loops) total += (m->*field).load(std::memory_order_relaxed);
  return total;
}

template <size_t N>
uint64_t SumAt(const std::vector<const LoopMetrics*>& loops,
               const std::array<std::atomic<uint64_t>, N> LoopMetrics::*field, size_t i) {
  uint64_t total = 0;
  for (const LoopMetrics* m : loops) total += (m->*field)[i].load(std::memory_order_relaxed);
  return total;
}

void Line(std::string& out, const char* name, const char* type, const char* help) {
  out += "# HELP ";
  out += name;
  out += ' ';
  out += help;
  out += "\n# TYPE ";
  out += name;
  out += ' ';
  out += type;
  out += '\n';
}

void Value(std::string& out, const std::string& series, uint64_t v) {
  out += series;
  out += ' ';
  out += std::to_string(v);
  out += '\n';
}

}  // namespace

void AppendPrometheusSeries(std::string& out, const char* name, const char* type,
                            const char* help, uint64_t value) {
  Line(out, name, type, help);
  Value(out, name, value);
}

std::string RenderPrometheus(const std::vector<const LoopMetrics*>& loops) {
  std::string out;
  out.reserve(4096);
  struct Simple {
    const char* name;
    const char* type;
    const char* help;
    const std::atomic<uint64_t> LoopMetrics::*field;
  };
  const Simple simple[] = {
      {"sotto_connections_open", "gauge", "Open client connections.", &LoopMetrics::connections_open},
      {"sotto_connections_accepted_total", "counter", "Accepted connections.",
       &LoopMetrics::connections_accepted},
      {"sotto_frames_in_total", "counter", "Frames received.", &LoopMetrics::frames_in},
      {"sotto_frames_out_total", "counter", "Frames sent.", &LoopMetrics::frames_out},
      {"sotto_bytes_in_total", "counter", "Bytes received.", &LoopMetrics::bytes_in},
      {"sotto_bytes_out_total", "counter", "Bytes sent.", &LoopMetrics::bytes_out},
      {"sotto_requests_rate_limited_total", "counter", "Requests refused by the rate limit.",
       &LoopMetrics::requests_rate_limited},
      {"sotto_handshakes_failed_total", "counter", "Handshakes that failed.",
       &LoopMetrics::handshakes_failed},
  };
  for (const Simple& s : simple) {
    AppendPrometheusSeries(out, s.name, s.type, s.help, Sum(loops, s.field));
  }
  Line(out, "sotto_handshakes_total", "counter", "Completed handshakes by Noise pattern.");
  for (size_t i = 0; i < static_cast<size_t>(HandshakePattern::kCount); ++i) {
    Value(out, std::string("sotto_handshakes_total{pattern=\"") +
                   Name(static_cast<HandshakePattern>(i)) + "\"}",
          SumAt(loops, &LoopMetrics::handshakes, i));
  }
  Line(out, "sotto_connections_closed_total", "counter", "Connections closed, by reason.");
  for (size_t i = 0; i < static_cast<size_t>(CloseCause::kCount); ++i) {
    Value(out, std::string("sotto_connections_closed_total{reason=\"") +
                   Name(static_cast<CloseCause>(i)) + "\"}",
          SumAt(loops, &LoopMetrics::closes, i));
  }
  Line(out, "sotto_connections_refused_total", "counter", "Connections refused, by reason.");
  for (size_t i = 0; i < static_cast<size_t>(RefuseCause::kCount); ++i) {
    Value(out, std::string("sotto_connections_refused_total{reason=\"") +
                   Name(static_cast<RefuseCause>(i)) + "\"}",
          SumAt(loops, &LoopMetrics::refused, i));
  }
  return out;
}

}  // namespace sotto::server
