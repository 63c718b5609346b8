#include "server/metrics_http.h"

namespace sotto::server {

net::HttpResponse HandleMetricsRequest(const net::HttpRequest& request,
                                       const std::function<std::string()>& render,
                                       const std::function<bool()>& storage_ok) {
  const bool metrics = request.target == "/metrics";
  if (!metrics && request.target != "/ready") {
    return net::HttpResponse{404, "text/plain; charset=utf-8", "not found\n"};
  }
  if (request.method != "GET") {
    return net::HttpResponse{405, "text/plain; charset=utf-8", "only GET\n"};
  }
  if (metrics) return net::HttpResponse{200, "text/plain; version=0.0.4; charset=utf-8", render()};
  if (!storage_ok()) {
    return net::HttpResponse{503, "text/plain; charset=utf-8", "not ready: server storage full\n"};
  }
  return net::HttpResponse{200, "text/plain; charset=utf-8", "ready\n"};
}

}  // namespace sotto::server
