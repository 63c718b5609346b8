// sotto-load's summaries: a readable one and JSON (--json), per mode.
#include "apps/load/load_client.h"
#include "wire/sotto_wire.pb.h"

namespace sotto::load {

namespace {

double Us(uint64_t ns) { return static_cast<double>(ns) / 1e3; }

const char* ModeName(Mode mode) {
  switch (mode) {
    case Mode::kIdle:
      return "idle";
    case Mode::kPing:
      return "ping";
    case Mode::kHandshake:
      return "handshake";
    case Mode::kSendOnline:
      return "send-online";
    case Mode::kSendOffline:
      return "send-offline";
  }
  return "?";
}

// A figure, or null when it is unknown (negative).
std::string Num(double v) {
  if (v < 0) return "null";
  std::ostringstream out;
  out << std::fixed << std::setprecision(3) << v;
  return out.str();
}

double Ratio(double a, double b) { return b > 0 ? a / b : 0.0; }

// {"p50": .., "p90": .., ...} in microseconds.
std::string QuantilesUs(const Histogram& h) {
  std::ostringstream out;
  out << std::fixed << std::setprecision(1) << "{\"count\": " << h.count()
      << ", \"mean\": " << h.mean() / 1e3;
  for (const auto& [name, q] :
       {std::pair{"p50", 0.5}, {"p90", 0.9}, {"p99", 0.99}, {"p999", 0.999}}) {
    out << ", \"" << name << "\": " << Us(h.Quantile(q));
  }
  out << ", \"max\": " << Us(h.max()) << "}";
  return out.str();
}

}  // namespace

void LoadClient::Report(std::ostream& human, std::ostream& json) const {
  const char* mode = ModeName(options_.mode);
  const double setup_s = static_cast<double>(setup_end_ns_ - setup_start_ns_) / 1e9;
  const double window_s =
      static_cast<double>(window_end_ns_ - std::min(window_end_ns_, run_start_ns_)) / 1e9;
  auto per_s = [&](uint64_t count) {
    return window_s > 0 ? static_cast<double>(count) / window_s : 0.0;
  };
  const uint64_t answered =
      IsMessaging(options_.mode) ? m_.acked + m_.send_errors : n_.responses_ok + n_.response_errors;
  const uint64_t lost = n_.requests_sent - std::min(n_.requests_sent, answered);
  const bool ping = options_.mode == Mode::kPing;
  const bool hs = options_.mode == Mode::kHandshake;
  auto yes = [](bool b) { return b ? "true" : "false"; };
  json << std::fixed << std::setprecision(3) << "{\"mode\": \"" << mode << "\", \"server\": \""
       << options_.server.ToString()
       << "\", \"pinned_key\": " << yes(options_.server_key.has_value())
       << ",\n \"connections_requested\": " << options_.connections
       << ", \"connections_ready\": " << ready_at_setup_end_
       << ", \"setup_complete\": " << yes(setup_complete_)
       << ", \"interrupted\": " << yes(stop_requested_) << ", \"setup_s\": " << setup_s
       << ", \"window_s\": " << window_s << ", \"client_cpu_s\": " << run_cpu_s_
       << ",\n \"attempts\": " << n_.attempts << ", \"handshakes\": " << n_.handshakes
       << ", \"handshakes_ik\": " << n_.handshakes_ik << ", \"handshakes_xx\": " << n_.handshakes_xx
       << ", \"handshakes_xxfallback\": " << n_.handshakes_fallback
       << ", \"handshakes_per_s\": " << (hs ? per_s(n_.handshakes) : 0.0)
       << ",\n \"handshake_latency_us\": " << QuantilesUs(handshake_ns_)
       << ",\n \"failures\": {\"connect\": " << n_.connect_failures
       << ", \"handshake\": " << n_.handshake_failures << ", \"register\": " << n_.register_failures
       << ", \"timeout\": " << n_.timeouts << ", \"dropped\": " << n_.dropped
       << ", \"close_frames\": " << n_.close_frames << ", \"protocol\": " << n_.protocol_errors
       << ", \"key_mismatch\": " << n_.key_mismatches
       << ", \"aborted_at_end\": " << n_.aborted_at_end << "}"
       << ",\n \"pings_answered\": " << n_.pings_answered
       << ", \"rate_target\": " << (ping ? options_.rate : 0.0)
       << ", \"requests_sent\": " << n_.requests_sent << ", \"behind\": " << n_.behind
       << ", \"sends_skipped\": " << n_.sends_skipped << ", \"responses_ok\": " << n_.responses_ok
       << ", \"response_errors\": " << n_.response_errors << ", \"lost\": " << lost
       << ",\n \"sent_per_s\": " << per_s(n_.requests_in_window)
       << ", \"achieved_per_s\": " << per_s(n_.responses_in_window)
       << ", \"max_send_lag_us\": " << Us(max_send_lag_ns_)
       << ",\n \"latency_us\": " << QuantilesUs(latency_ns_)
       << ", \"code_refusals\": " << n_.code_refusals
       << ",\n \"latency_valid\": " << yes(LatencyValid())
       << ", \"dropped_sends\": {\"in_flight\": " << m_.skipped_in_flight
       << ", \"write_queue\": " << n_.sends_skipped << ", \"no_sender\": " << n_.dropped_no_sender
       << ", \"behind\": " << n_.behind << "}";
  std::ostringstream messaging;
  if (IsMessaging(options_.mode)) ReportMessaging(messaging, json);
  json << "}\n";

  human << std::fixed << std::setprecision(1) << "sotto-load: " << mode << " against "
        << options_.server.ToString() << " (" << (options_.server_key ? "IK" : "XX") << ")\n";
  if (!hs) {
    human << "  connections: " << ready_at_setup_end_ << "/" << options_.connections << " ready in "
          << setup_s << " s" << (setup_complete_ ? "" : " (INCOMPLETE)") << "\n";
  }
  human << "  handshakes: " << n_.handshakes << " (IK " << n_.handshakes_ik << ", XX "
        << n_.handshakes_xx << ", XXfallback " << n_.handshakes_fallback << ")";
  if (hs) human << ", " << per_s(n_.handshakes) << "/s over " << window_s << " s";
  human << "; latency us " << QuantilesUs(handshake_ns_) << "\n";
  if (ping) {
    human << "  requests: " << per_s(n_.requests_in_window) << "/s sent (target " << options_.rate
          << "), " << per_s(n_.responses_in_window) << "/s answered in the window; ok "
          << n_.responses_ok << ", errors " << n_.response_errors << ", lost " << lost
          << ", skipped " << n_.sends_skipped << ", behind " << n_.behind << "; max send lag "
          << Us(max_send_lag_ns_) << " us\n"
          << "  latency us: " << QuantilesUs(latency_ns_) << "\n";
  }
  human << messaging.str();
  if ((ping || IsMessaging(options_.mode)) && !LatencyValid()) {
    human << "  LATENCY NOT VALID: planned sends not sent (in-flight cap " << m_.skipped_in_flight
          << ", write queue " << n_.sends_skipped << ", no sender " << n_.dropped_no_sender
          << ", behind " << n_.behind << "); their latency is unknown, so no latency verdict\n";
  }
  if (options_.mode != Mode::kIdle && window_s >= 0.1) {
    human << "  client CPU: " << run_cpu_s_ << " s (" << 100 * run_cpu_s_ / window_s
          << "% of one core)\n";
  }
  human << "  failures: connect " << n_.connect_failures << ", handshake " << n_.handshake_failures
        << ", register " << n_.register_failures << ", timeout " << n_.timeouts << ", dropped "
        << n_.dropped << " (Close frames " << n_.close_frames << "), protocol "
        << n_.protocol_errors << ", key mismatch " << n_.key_mismatches << "; pings answered "
        << n_.pings_answered << "; code refusals " << n_.code_refusals << "\n";
}

void LoadClient::ReportMessaging(std::ostream& human, std::ostream& json) const {
  const bool online = options_.mode == Mode::kSendOnline;
  const double window_s =
      static_cast<double>(window_end_ns_ - std::min(window_end_ns_, run_start_ns_)) / 1e9;
  auto per_s = [&](uint64_t count) { return Ratio(static_cast<double>(count), window_s); };
  const bool settled = clock_.settled_ns >= run_start_ns_ && clock_.settled_ns > 0;
  const double span_s = settled ? static_cast<double>(clock_.settled_ns - run_start_ns_) / 1e9 : -1;
  const double server_cpu =
      settled && clock_.server_cpu_start >= 0 && clock_.server_cpu_settled >= 0
          ? clock_.server_cpu_settled - clock_.server_cpu_start
          : -1;
  // Per message: the whole span's server CPU over every message it handled.
  const double per_acked =
      server_cpu >= 0 && m_.acked > 0 ? server_cpu * 1e6 / static_cast<double>(m_.acked) : -1;
  const double per_delivery = server_cpu >= 0 && m_.deliveries > 0
                                  ? server_cpu * 1e6 / static_cast<double>(m_.deliveries)
                                  : -1;
  const uint64_t undelivered = online ? m_.acked - std::min(m_.acked, m_.deliveries) : 0;
  // Whole cycles (online: send, delivery, receipt; offline: send, durable ack) over the
  // whole span, window start -> the last of them: the rate the server sustains, where a
  // window-only count would leave out the in-flight tail.
  const uint64_t cycles = online ? std::min(m_.acked, m_.receipts) : m_.acked;
  const double cycles_per_s = span_s > 0 ? static_cast<double>(cycles) / span_s : 0.0;
  std::ostringstream errors;
  const char* sep = "";
  for (size_t i = 0; i < kStatusSlots; ++i) {
    if (m_.errors_by_status[i] == 0) continue;
    const auto code = static_cast<int>(i);
    const std::string name = i + 1 < kStatusSlots && wire::StatusCode_IsValid(code)
                                 ? wire::StatusCode_Name(static_cast<wire::StatusCode>(code))
                                 : "other";
    errors << sep << "\"" << name << "\": " << m_.errors_by_status[i];
    sep = ", ";
  }
  const double drain_s =
      static_cast<double>(clock_.queue_drain_end_ns - clock_.queue_drain_start_ns) / 1e9;
  const double drain_per_delivery =
      clock_.queue_drain_server_cpu >= 0 && m_.drain_deliveries > 0
          ? clock_.queue_drain_server_cpu * 1e6 / static_cast<double>(m_.drain_deliveries)
          : -1;
  const uint64_t missing = m_.acked - std::min(m_.acked, m_.drain_deliveries);
  auto delta = [&](double start, double end) {
    return settled && start >= 0 && end >= 0 ? end - start : -1;
  };
  const double client_wait = delta(clock_.client_wait_start, clock_.client_wait_settled);
  const double server_wait = delta(clock_.server_wait_start, clock_.server_wait_settled);
  json << std::fixed << std::setprecision(3) << ",\n \"messaging\": {\"pairs\": " << pairs_.size()
       << ", \"payload_bytes\": " << options_.payload_bytes
       << ", \"ack_batch\": " << options_.ack_batch
       << ", \"max_in_flight\": " << options_.max_in_flight
       << ", \"rate_target\": " << options_.rate << ", \"window_s\": " << window_s
       << ", \"span_s\": " << Num(span_s) << ", \"cycles\": " << cycles
       << ", \"cycles_per_s\": " << cycles_per_s << ",\n  \"sends\": " << m_.sends
       << ", \"scheduled_per_s\": " << per_s(n_.requests_in_window)
       << ", \"sent_per_s\": " << per_s(m_.sends)
       << ", \"skipped_in_flight\": " << m_.skipped_in_flight
       << ", \"skipped_write_queue\": " << n_.sends_skipped << ", \"behind\": " << n_.behind
       << ",\n  \"acked\": " << m_.acked << ", \"acked_in_window\": " << m_.acked_in_window
       << ", \"acked_per_s\": " << per_s(m_.acked_in_window)
       << ", \"send_errors\": " << m_.send_errors << ", \"errors\": {" << errors.str() << "}"
       << ",\n  \"deliveries\": " << m_.deliveries
       << ", \"deliveries_in_window\": " << m_.deliveries_in_window
       << ", \"deliveries_per_s\": " << per_s(m_.deliveries_in_window)
       << ", \"undelivered\": " << undelivered << ", \"receipts\": " << m_.receipts
       << ", \"receipts_in_window\": " << m_.receipts_in_window
       << ", \"receipts_per_s\": " << per_s(m_.receipts_in_window)
       << ", \"bad_envelopes\": " << m_.bad_envelopes << ", \"ack_frames\": " << m_.acks_sent
       << ", \"seqs_acked\": " << m_.seqs_acked
       << ",\n  \"ack_latency_us\": " << QuantilesUs(latency_.ack)
       << ",\n  \"delivery_latency_us\": " << QuantilesUs(latency_.delivery)
       << ",\n  \"receipt_latency_us\": " << QuantilesUs(latency_.receipt)
       << ",\n  \"client_cpu_window_s\": " << run_cpu_s_
       << ", \"client_cpu_span_s\": " << Num(settled ? clock_.client_cpu_settled : -1)
       << ", \"server_cpu_span_s\": " << Num(server_cpu)
       << ", \"server_cpu_us_per_acked\": " << Num(per_acked)
       << ", \"server_cpu_us_per_delivery\": " << Num(online ? per_delivery : -1)
       << ",\n  \"client_runqueue_wait_s\": " << Num(client_wait)
       << ", \"server_runqueue_wait_s\": " << Num(server_wait)
       << ",\n  \"drain\": {\"enabled\": " << (options_.drain ? "true" : "false")
       << ", \"reconnects\": " << m_.drain_reconnects << ", \"lost\": " << m_.drain_lost
       << ", \"caught_up\": " << caught_up_ << ", \"deliveries\": " << m_.drain_deliveries
       << ", \"missing\": " << (options_.drain ? missing : 0) << ", \"seconds\": " << drain_s
       << ", \"per_s\": " << Ratio(static_cast<double>(m_.drain_deliveries), drain_s)
       << ", \"client_cpu_s\": " << clock_.queue_drain_client_cpu
       << ", \"server_cpu_s\": " << Num(clock_.queue_drain_server_cpu)
       << ", \"server_cpu_us_per_delivery\": " << Num(drain_per_delivery) << "}}";

  human << std::fixed << std::setprecision(1) << "  messaging: " << pairs_.size()
        << " pairs, payload " << options_.payload_bytes << " B, ack batch " << options_.ack_batch
        << ", max in flight " << options_.max_in_flight << "\n"
        << "  sends: " << per_s(m_.sends) << "/s sent (target " << options_.rate << "), "
        << per_s(m_.acked_in_window) << "/s acked in the window; acked " << m_.acked << ", errors "
        << m_.send_errors << (m_.send_errors ? " {" + errors.str() + "}" : "")
        << ", skipped (in flight) " << m_.skipped_in_flight << ", behind " << n_.behind << "\n"
        << "  whole cycles: " << cycles << " in " << Num(span_s) << " s = " << cycles_per_s
        << "/s (window start -> the last " << (online ? "receipt" : "ack") << ")\n"
        << "  send -> ack us (from the planned send time): " << QuantilesUs(latency_.ack) << "\n";
  if (online) {
    human << "  deliveries: " << per_s(m_.deliveries_in_window) << "/s in the window ("
          << m_.deliveries << " in all, undelivered " << undelivered << "); receipts "
          << per_s(m_.receipts_in_window) << "/s; bad envelopes " << m_.bad_envelopes << "\n"
          << "  send -> delivery us: " << QuantilesUs(latency_.delivery) << "\n"
          << "  send -> receipt us: " << QuantilesUs(latency_.receipt) << "\n";
  }
  human << "  server CPU (window start -> all answered, " << Num(span_s)
        << " s): " << Num(server_cpu) << " s; us per acked " << Num(per_acked);
  if (online) human << ", per delivery " << Num(per_delivery);
  human << "; client CPU " << Num(settled ? clock_.client_cpu_settled : -1) << " s\n"
        << "  waiting for a CPU while runnable (run queue): client " << Num(client_wait)
        << " s, server threads " << Num(server_wait) << " s\n";
  if (options_.drain) {
    human << "  drain: " << m_.drain_deliveries << " delivered in " << drain_s << " s ("
          << Ratio(static_cast<double>(m_.drain_deliveries), drain_s) << "/s), missing " << missing
          << ", receivers caught up " << caught_up_ << "/" << pairs_.size() << ", lost "
          << m_.drain_lost << "; server CPU " << Num(clock_.queue_drain_server_cpu) << " s ("
          << Num(drain_per_delivery) << " us/delivery), client CPU "
          << clock_.queue_drain_client_cpu << " s\n";
  }
}

}  // namespace sotto::load
