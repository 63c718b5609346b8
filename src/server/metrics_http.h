// The operational HTTP port's request handling (apps/sottod.cc serves it with
// net::HttpServer): GET /metrics answers the Prometheus text, anything else 404. Split
// from the server so that it can be called on a parsed request (fuzz/metrics_http_fuzz.cc).
//
// Thread-safety: stateless; `render` is called on the caller's thread.
#pragma once

#include <functional>
#include <string>

#include "net/http_server.h"

namespace sotto::server {

// Answers one request: `render` (the metrics text) for GET /metrics, 405 for another
// method on /metrics, 404 for any other target. Never echoes the request.
net::HttpResponse HandleMetricsRequest(const net::HttpRequest& request,
                                       const std::function<std::string()>& render);

}  // namespace sotto::server
