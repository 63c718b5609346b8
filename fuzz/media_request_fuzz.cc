// Fuzzes the media service's own request handling on parsed request heads, without
// sockets: Beast parses the head with the server's limits, then MediaService::Decide
// (paths, blob ids, methods, Content-Length, bearer tokens: single use, bound to the blob
// and its size) and PlanDownload (Range against a blob size taken from the input).
// "@ID@" and "@TOKEN@" in the input are replaced by a real grant's blob id and token, so
// seeds reach the accepted-upload path although grants are random.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include <boost/beast/http.hpp>

#include "net/http_server.h"
#include "server/media.h"

namespace {

void ReplaceAll(std::string& s, std::string_view from, const std::string& to) {
  for (size_t at = s.find(from); at != std::string::npos; at = s.find(from, at + to.size())) {
    s.replace(at, from.size(), to);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  namespace http = boost::beast::http;
  using sotto::server::MediaAction;
  if (size < 2) return 0;
  sotto::server::MediaConfig config;
  config.max_blob_bytes = 4096;
  auto service = sotto::server::MediaService::Offline(config, "/nonexistent");
  auto grant = service->IssueUpload(data[0] % 2 == 0 ? 10 : 4096);
  if (!grant) std::abort();
  std::string text(reinterpret_cast<const char*>(data + 2), size - 2);
  ReplaceAll(text, "@ID@", grant->blob_id);
  ReplaceAll(text, "@TOKEN@", grant->token);

  http::request_parser<http::empty_body> parser;
  parser.header_limit(sotto::net::kMaxHttpHeaderBytes);
  boost::beast::error_code ec;
  parser.put(boost::asio::buffer(text.data(), text.size()), ec);
  if (ec || !parser.is_header_done()) return 0;
  const auto& req = parser.get();
  const auto auth = req[http::field::authorization];
  sotto::server::MediaRequestHead head;
  head.method = std::string_view(req.method_string().data(), req.method_string().size());
  head.target = std::string_view(req.target().data(), req.target().size());
  head.authorization = std::string_view(auth.data(), auth.size());
  if (const auto length = parser.content_length()) head.content_length = *length;
  head.chunked = parser.chunked();

  const sotto::server::MediaDecision d = service->Decide(head);
  switch (d.action) {
    case MediaAction::kReply:
      if (d.status < 400 || d.status > 499) std::abort();
      break;
    case MediaAction::kUpload:
      // Only the grant's own token, blob and size get through, and only once.
      if (d.blob_id != grant->blob_id) std::abort();
      if (service->Decide(head).action == MediaAction::kUpload) std::abort();
      break;
    case MediaAction::kDownload:
      if (!sotto::server::IsBlobId(d.blob_id)) std::abort();
      break;
  }
  const auto range = req[http::field::range];
  const uint64_t blob_size = uint64_t{data[1]} * 37;  // 0 .. 9435, 0 included
  const sotto::server::MediaRangePlan plan =
      sotto::server::PlanDownload(std::string_view(range.data(), range.size()), blob_size);
  switch (plan.status) {
    case 200:
      if (plan.first != 0 || plan.length != blob_size || !plan.content_range.empty()) std::abort();
      break;
    case 206:
      if (plan.length == 0 || plan.first + plan.length > blob_size) std::abort();
      break;
    case 416:
      if (plan.length != 0 || plan.content_range.empty()) std::abort();
      break;
    default:
      std::abort();
  }
  return 0;
}
