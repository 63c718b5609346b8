// The operational HTTP port's request handling (apps/sottod.cc serves it with
// net::HttpServer): GET /metrics answers the Prometheus text, GET /ready the readiness,
// anything else 404. Split from the server so that it can be called on a parsed request (fuzz/metrics_http_fuzz.cc).
//
// Thread-safety: stateless; `render` is called on the caller's thread.
#pragma once

#include <functional>
#include <string>

#include "net/http_server.h"

namespace sotto::server {

// Answers one request: `render` (the metrics text) for GET /metrics; for GET /ready 200
// "ready" while `storage_ok` says so and 503 "not ready: server storage full" otherwise
// (docs/server.md, "Disk full and readiness"); 405 for another method on either; 404 for
// any other target. Never echoes the request.
net::HttpResponse HandleMetricsRequest(const net::HttpRequest& request,
                                       const std::function<std::string()>& render,
                                       const std::function<bool()>& storage_ok);

}  // namespace sotto::server
