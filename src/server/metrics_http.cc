#include "server/metrics_http.h"

namespace sotto::server {

net::HttpResponse HandleMetricsRequest(const net::HttpRequest& request,
                                       const std::function<std::string()>& render) {
  if (request.target != "/metrics") {
    return net::HttpResponse{404, "text/plain; charset=utf-8", "not found\n"};
  }
  if (request.method != "GET") {
    return net::HttpResponse{405, "text/plain; charset=utf-8", "only GET\n"};
  }
  return net::HttpResponse{200, "text/plain; version=0.0.4; charset=utf-8", render()};
}

}  // namespace sotto::server
