// Fuzzes the operational HTTP port's own handling: a request parsed exactly as
// net::HttpServer parses it (net::ParseHttpRequest), header lookups, then
// server::HandleMetricsRequest. The answer must be 200 (GET /metrics, or GET /ready while
// storage is fine), 503 (GET /ready while it is full), 404 or 405, and must never echo the
// request back.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "net/http_server.h"
#include "server/metrics_http.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  auto request = sotto::net::ParseHttpRequest(bytes, /*max_body_bytes=*/0);
  if (!request) return 0;
  (void)request->Header("host");
  (void)request->Header("");
  bool rendered = false;
  // The first input byte decides whether storage is full, so both answers are reached.
  const bool storage_ok = size == 0 || (data[0] & 1) == 0;
  const sotto::net::HttpResponse r = sotto::server::HandleMetricsRequest(
      *request,
      [&rendered] {
        rendered = true;
        return std::string("sotto_up 1\n");
      },
      [storage_ok] { return storage_ok; });
  const bool is_metrics = request->target == "/metrics" && request->method == "GET";
  const bool is_ready = request->target == "/ready" && request->method == "GET";
  if (rendered != is_metrics) std::abort();
  if ((is_metrics || (is_ready && storage_ok)) != (r.status == 200)) std::abort();
  if ((is_ready && !storage_ok) != (r.status == 503)) std::abort();
  if (r.status != 200 && r.status != 503 && r.status != 404 && r.status != 405) std::abort();
  if (!is_metrics && request->target.size() > 12 &&
      r.body.find(request->target) != std::string::npos) {
    std::abort();  // never reflect the request
  }
  return 0;
}
