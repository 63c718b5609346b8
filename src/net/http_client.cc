#include "net/http_client.h"

#include <arpa/inet.h>

#include <cctype>
#include <cstring>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <exception>
#include <memory>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

namespace sotto::net {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;

namespace {

constexpr uint16_t kHttpDefaultPort = 80;
constexpr uint16_t kHttpsDefaultPort = 443;
constexpr unsigned kHttpVersion11 = 11;
constexpr std::string_view kUserAgent = "sotto";

tl::unexpected<Error> ClientError(Code code, HttpClientErr detail, const char* message) {
  return MakeError(code, Module::kNet, static_cast<uint16_t>(detail), message);
}

tl::unexpected<Error> BadUrl(const char* message) {
  return ClientError(Code::kInvalidArgument, HttpClientErr::kBadUrl, message);
}

char ToLower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (ToLower(a[i]) != ToLower(b[i])) return false;
  }
  return true;
}

bool IsDigit(char c) { return c >= '0' && c <= '9'; }
bool IsAlpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

// Host names: letters, digits, '-', '.', and '_' (seen in the wild in service names).
bool IsHostNameChar(char c) { return IsAlpha(c) || IsDigit(c) || c == '-' || c == '.' || c == '_'; }

// RFC 9110 token characters, for header names.
bool IsTokenChar(char c) {
  if (IsAlpha(c) || IsDigit(c)) return true;
  return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

Result<uint16_t> ParsePort(std::string_view text) {
  constexpr size_t kMaxPortDigits = 5;
  constexpr uint32_t kMaxPort = 65535;
  if (text.empty() || text.size() > kMaxPortDigits) return BadUrl("URL port must be 1-65535");
  uint32_t port = 0;
  for (char c : text) {
    if (!IsDigit(c)) return BadUrl("URL port must be 1-65535");
    port = port * 10 + static_cast<uint32_t>(c - '0');
  }
  if (port == 0 || port > kMaxPort) return BadUrl("URL port must be 1-65535");
  return static_cast<uint16_t>(port);
}

Status CheckHeaders(std::span<const HttpHeader> headers) {
  constexpr std::string_view kReserved[] = {"host", "content-type", "content-length", "connection",
                                            "transfer-encoding"};
  for (const HttpHeader& h : headers) {
    if (h.name.empty()) {
      return ClientError(Code::kInvalidArgument, HttpClientErr::kBadHeader, "empty header name");
    }
    for (char c : h.name) {
      if (!IsTokenChar(c)) {
        return ClientError(Code::kInvalidArgument, HttpClientErr::kBadHeader,
                           "header name is not a token");
      }
    }
    for (std::string_view reserved : kReserved) {
      if (EqualsIgnoreCase(h.name, reserved)) {
        return ClientError(Code::kInvalidArgument, HttpClientErr::kBadHeader,
                           "header is set by the client itself");
      }
    }
    for (char c : h.value) {
      const auto u = static_cast<unsigned char>(c);
      if ((u < 0x20 && c != '\t') || u == 0x7f) {
        return ClientError(Code::kInvalidArgument, HttpClientErr::kBadHeader,
                           "header value has a control character");
      }
    }
  }
  return Ok();
}

// --- Name resolution bounded by the deadline -------------------------------------

// Shared by HttpPost and its lookup thread, which may outlive the call (getaddrinfo
// cannot be cancelled).
struct Lookup {
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;                     // GUARDED_BY(mu)
  boost::system::error_code ec;          // GUARDED_BY(mu)
  std::vector<tcp::endpoint> endpoints;  // GUARDED_BY(mu)
};

std::atomic<uint32_t> g_pending_lookups{0};

void RunLookup(const std::shared_ptr<Lookup>& lookup, const std::string& host,
               const std::string& port) {
  boost::system::error_code ec;
  std::vector<tcp::endpoint> endpoints;
  try {
    asio::io_context io{1};
    tcp::resolver resolver(io);
    const auto results = resolver.resolve(host, port, tcp::resolver::numeric_service, ec);
    if (!ec) {
      for (const auto& entry : results) endpoints.push_back(entry.endpoint());
    }
  } catch (const std::exception&) {
    ec = asio::error::no_memory;
  }
  {
    std::lock_guard lock(lookup->mu);
    lookup->ec = ec;
    lookup->endpoints = std::move(endpoints);
    lookup->done = true;
  }
  lookup->cv.notify_all();
}

tl::unexpected<Error> ForbiddenAddress() {
  return ClientError(Code::kPermissionDenied, HttpClientErr::kForbiddenAddress,
                     "the host is or resolves to a local or private address");
}

bool IsPublicEndpoint(const tcp::endpoint& endpoint) {
  const asio::ip::address address = endpoint.address();
  if (address.is_v4()) {
    const auto bytes = address.to_v4().to_bytes();
    return IsPublicAddressBytes(bytes);
  }
  const auto bytes = address.to_v6().to_bytes();
  return IsPublicAddressBytes(bytes);
}

// Every address must pass: a name with one public and one private record is refused,
// since the connection could go to either.
Status CheckEndpoints(const std::vector<tcp::endpoint>& endpoints, AddressPolicy policy) {
  switch (policy) {
    case AddressPolicy::kAny:
      return Ok();
    case AddressPolicy::kPublicOnly:
      for (const tcp::endpoint& endpoint : endpoints) {
        if (!IsPublicEndpoint(endpoint)) return ForbiddenAddress();
      }
      return Ok();
  }
  return ForbiddenAddress();
}

Result<std::vector<tcp::endpoint>> Resolve(const ParsedUrl& url, Clock::time_point deadline) {
  boost::system::error_code ec;
  const asio::ip::address literal = asio::ip::make_address(url.host, ec);
  if (!ec) return std::vector<tcp::endpoint>{tcp::endpoint(literal, url.port)};

  if (g_pending_lookups.fetch_add(1) >= kMaxPendingLookups) {
    g_pending_lookups.fetch_sub(1);
    return ClientError(Code::kResourceExhausted, HttpClientErr::kBusy,
                       "too many host-name lookups outstanding");
  }
  auto lookup = std::make_shared<Lookup>();
  try {
    std::thread([lookup, host = url.host, port = std::to_string(url.port)] {
      RunLookup(lookup, host, port);
      g_pending_lookups.fetch_sub(1);
    }).detach();
  } catch (const std::exception&) {
    g_pending_lookups.fetch_sub(1);
    return ClientError(Code::kInternal, HttpClientErr::kInternal, "cannot start a lookup thread");
  }
  std::unique_lock lock(lookup->mu);
  if (!lookup->cv.wait_until(lock, deadline, [&] { return lookup->done; })) {
    return ClientError(Code::kOutOfRange, HttpClientErr::kTimeout, "HTTP request timed out");
  }
  if (lookup->ec || lookup->endpoints.empty()) {
    return ClientError(Code::kFailedPrecondition, HttpClientErr::kResolve,
                       "host name did not resolve");
  }
  return std::move(lookup->endpoints);
}

// --- TLS -----------------------------------------------------------------------------

// Built once; lives forever (shared by every HTTPS request; an SSL_CTX is safe to share
// once configured). nullptr if the system CA store could not be loaded.
ssl::context* MakeTlsContext() {
  try {
    auto ctx = std::make_unique<ssl::context>(ssl::context::tls_client);
    ctx->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                     ssl::context::no_sslv3 | ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1);
    boost::system::error_code ec;
    ctx->set_default_verify_paths(ec);
    if (ec) return nullptr;
    ctx->set_verify_mode(ssl::verify_peer, ec);
    if (ec) return nullptr;
    return ctx.release();
  } catch (const std::exception&) {
    return nullptr;
  }
}

ssl::context* SharedTlsContext() {
  static ssl::context* const ctx = MakeTlsContext();
  return ctx;
}

// --- The exchange ----------------------------------------------------------------------

// Runs the io_context until the one pending operation (and its timer) completed.
void RunOne(asio::io_context& io) {
  io.restart();
  io.run();
}

// Beast 1.74 takes boost::string_view.
beast::string_view Bsv(std::string_view s) { return {s.data(), s.size()}; }

bool IsTimeout(const boost::system::error_code& ec) { return ec == beast::error::timeout; }

tl::unexpected<Error> TimeoutError() {
  return ClientError(Code::kOutOfRange, HttpClientErr::kTimeout, "HTTP request timed out");
}

Status Connect(asio::io_context& io, beast::tcp_stream& stream,
               const std::vector<tcp::endpoint>& endpoints) {
  boost::system::error_code ec;
  stream.async_connect(endpoints,
                       [&ec](const boost::system::error_code& e, const tcp::endpoint&) { ec = e; });
  RunOne(io);
  if (IsTimeout(ec)) return TimeoutError();
  if (ec)
    return ClientError(Code::kFailedPrecondition, HttpClientErr::kConnect, "HTTP connect failed");
  return Ok();
}

template <typename Stream>
Result<HttpClientResponse> WriteAndRead(asio::io_context& io, Stream& stream,
                                        const http::request<http::string_body>& request) {
  boost::system::error_code ec;
  http::async_write(stream, request, [&ec](const boost::system::error_code& e, size_t) { ec = e; });
  RunOne(io);
  if (IsTimeout(ec)) return TimeoutError();
  if (ec) return ClientError(Code::kFailedPrecondition, HttpClientErr::kIo, "HTTP write failed");

  beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
  parser.header_limit(kMaxResponseHeaderBytes);
  parser.body_limit(kMaxResponseBodyBytes);
  // The head first: Beast 1.74's eager parse (async_read) forgets a Content-Length past
  // the body limit when head and body arrive in one segment; read_header reports it.
  http::async_read_header(stream, buffer, parser,
                          [&ec](const boost::system::error_code& e, size_t) { ec = e; });
  RunOne(io);
  if (!ec && !parser.is_done()) {
    http::async_read(stream, buffer, parser,
                     [&ec](const boost::system::error_code& e, size_t) { ec = e; });
    RunOne(io);
  }
  // A TLS peer that closes without close_notify after a complete response is harmless.
  if (ec == ssl::error::stream_truncated && parser.is_done()) ec = {};
  if (IsTimeout(ec)) return TimeoutError();
  if (ec == http::error::body_limit || ec == http::error::header_limit ||
      ec == http::error::buffer_overflow) {
    return ClientError(Code::kResourceExhausted, HttpClientErr::kTooLarge,
                       "HTTP response too large");
  }
  if (ec) return ClientError(Code::kFailedPrecondition, HttpClientErr::kIo, "HTTP read failed");
  auto& response = parser.get();
  if (response.body().size() > kMaxResponseBodyBytes) {
    return ClientError(Code::kResourceExhausted, HttpClientErr::kTooLarge,
                       "HTTP response too large");
  }
  return HttpClientResponse{response.result_int(), std::move(response.body())};
}

Result<HttpClientResponse> Exchange(const ParsedUrl& url, std::string_view content_type,
                                    std::string_view body, std::span<const HttpHeader> headers,
                                    Clock::time_point deadline, AddressPolicy policy) {
  // The connection below goes to exactly these checked addresses (no second lookup).
  SOTTO_ASSIGN_OR_RETURN(std::vector<tcp::endpoint> endpoints, Resolve(url, deadline));
  SOTTO_RETURN_IF_ERROR(CheckEndpoints(endpoints, policy));

  http::request<http::string_body> request{http::verb::post, url.target, kHttpVersion11};
  const bool ipv6_literal = url.host.find(':') != std::string::npos;
  std::string host_field;
  if (ipv6_literal) host_field += '[';
  host_field += url.host;
  if (ipv6_literal) host_field += ']';
  const uint16_t default_port = url.scheme == Scheme::kHttps ? kHttpsDefaultPort : kHttpDefaultPort;
  if (url.port != default_port) {
    host_field += ':';
    host_field += std::to_string(url.port);
  }
  request.set(http::field::host, host_field);
  request.set(http::field::user_agent, Bsv(kUserAgent));
  request.set(http::field::content_type, Bsv(content_type));
  for (const HttpHeader& h : headers) request.set(Bsv(h.name), Bsv(h.value));
  request.keep_alive(false);
  request.body() = std::string(body);
  request.prepare_payload();

  asio::io_context io{1};
  if (url.scheme == Scheme::kHttp) {
    beast::tcp_stream stream(io);
    stream.expires_at(deadline);
    SOTTO_RETURN_IF_ERROR(Connect(io, stream, endpoints));
    return WriteAndRead(io, stream, request);
  }

  ssl::context* ctx = SharedTlsContext();
  if (ctx == nullptr) {
    return ClientError(Code::kInternal, HttpClientErr::kTls, "TLS setup failed (CA store)");
  }
  beast::ssl_stream<beast::tcp_stream> stream(io, *ctx);
  boost::system::error_code ec;
  boost::system::error_code literal_ec;
  asio::ip::make_address(url.host, literal_ec);
  // SNI carries names only (RFC 6066); certificates for literals are checked by address.
  // SSL_ctrl rather than the SSL_set_tlsext_host_name macro, whose C cast -Werror rejects;
  // OpenSSL copies the name.
  std::string sni = url.host;
  if (literal_ec && SSL_ctrl(stream.native_handle(), SSL_CTRL_SET_TLSEXT_HOSTNAME,
                             TLSEXT_NAMETYPE_host_name, sni.data()) != 1) {
    return ClientError(Code::kInternal, HttpClientErr::kTls, "TLS SNI setup failed");
  }
  stream.set_verify_mode(ssl::verify_peer, ec);
  if (!ec) stream.set_verify_callback(ssl::host_name_verification(url.host), ec);
  if (ec) return ClientError(Code::kInternal, HttpClientErr::kTls, "TLS verification setup failed");
  beast::get_lowest_layer(stream).expires_at(deadline);
  SOTTO_RETURN_IF_ERROR(Connect(io, beast::get_lowest_layer(stream), endpoints));
  stream.async_handshake(ssl::stream_base::client,
                         [&ec](const boost::system::error_code& e) { ec = e; });
  RunOne(io);
  if (IsTimeout(ec)) return TimeoutError();
  if (ec)
    return ClientError(Code::kFailedPrecondition, HttpClientErr::kTls, "TLS handshake failed");
  return WriteAndRead(io, stream, request);
}

}  // namespace

Result<ParsedUrl> ParseUrl(std::string_view url) {
  if (url.size() > kMaxUrlBytes) return BadUrl("URL too long");
  for (char c : url) {
    const auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u >= 0x7f) return BadUrl("URL has a space, control or non-ASCII character");
  }
  constexpr std::string_view kSchemeEnd = "://";
  const size_t scheme_end = url.find(kSchemeEnd);
  if (scheme_end == std::string_view::npos) return BadUrl("URL has no scheme");
  ParsedUrl parsed;
  const std::string_view scheme = url.substr(0, scheme_end);
  if (EqualsIgnoreCase(scheme, "http")) {
    parsed.scheme = Scheme::kHttp;
    parsed.port = kHttpDefaultPort;
  } else if (EqualsIgnoreCase(scheme, "https")) {
    parsed.scheme = Scheme::kHttps;
    parsed.port = kHttpsDefaultPort;
  } else {
    return BadUrl("URL scheme must be http or https");
  }

  const std::string_view rest = url.substr(scheme_end + kSchemeEnd.size());
  const size_t authority_end = std::min(rest.find_first_of("/?#"), rest.size());
  const std::string_view authority = rest.substr(0, authority_end);
  std::string_view tail = rest.substr(authority_end);
  if (authority.find('@') != std::string_view::npos) return BadUrl("URL must not carry user info");
  if (authority.empty()) return BadUrl("URL has no host");

  std::string_view port_text;
  bool has_port = false;
  if (authority.front() == '[') {
    const size_t close = authority.find(']');
    if (close == std::string_view::npos) return BadUrl("URL IPv6 literal lacks ']'");
    const std::string_view literal = authority.substr(1, close - 1);
    boost::system::error_code ec;
    asio::ip::make_address_v6(literal, ec);
    if (ec || literal.find('%') != std::string_view::npos) {
      return BadUrl("URL has a malformed IPv6 literal");
    }
    parsed.host = std::string(literal);
    const std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return BadUrl("URL has text after the IPv6 literal");
      port_text = after.substr(1);
      has_port = true;
    }
  } else {
    const size_t colon = authority.find(':');
    const std::string_view host = authority.substr(0, colon);
    if (host.empty()) return BadUrl("URL has no host");
    for (char c : host) {
      if (!IsHostNameChar(c)) return BadUrl("URL host has a character not allowed in a host");
    }
    if (IsNonCanonicalNumericHost(host)) {
      return BadUrl("URL host is a numeric address not written as a dotted quad (a.b.c.d)");
    }
    parsed.host = std::string(host);
    if (colon != std::string_view::npos) {
      port_text = authority.substr(colon + 1);
      has_port = true;
    }
  }
  if (has_port) {
    SOTTO_ASSIGN_OR_RETURN(parsed.port, ParsePort(port_text));
  }

  tail = tail.substr(0, tail.find('#'));
  if (tail.empty()) {
    parsed.target = "/";
  } else if (tail.front() == '?') {
    parsed.target = "/";
    parsed.target += tail;
  } else {
    parsed.target = std::string(tail);
  }
  return parsed;
}

Result<HttpClientResponse> HttpPost(std::string_view url, std::string_view content_type,
                                    std::string_view body, std::chrono::milliseconds timeout,
                                    std::span<const HttpHeader> headers, AddressPolicy policy) {
  const Clock::time_point deadline = Clock::now() + timeout;
  SOTTO_ASSIGN_OR_RETURN(ParsedUrl parsed, ParseUrl(url));
  SOTTO_RETURN_IF_ERROR(CheckHeaders(headers));
  for (char c : content_type) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) {
      return ClientError(Code::kInvalidArgument, HttpClientErr::kBadHeader,
                         "content type has a control character");
    }
  }
  try {
    return Exchange(parsed, content_type, body, headers, deadline, policy);
  } catch (const std::exception&) {
    // Allocation failure, or a Boost call without an error_code overload.
    return ClientError(Code::kInternal, HttpClientErr::kInternal, "HTTP client failed");
  }
}

namespace {

bool IsLocalOrPrivateV4(const uint8_t a[4]) {
  return a[0] == 0 || a[0] == 10 || a[0] == 127 ||
         (a[0] == 100 && (a[1] & 0xc0) == 64) ||     // 100.64.0.0/10
         (a[0] == 169 && a[1] == 254) ||             // link-local, cloud metadata
         (a[0] == 172 && (a[1] & 0xf0) == 16) ||     // 172.16.0.0/12
         (a[0] == 192 && a[1] == 0 && a[2] == 0) ||  // 192.0.0.0/24, IETF assignments
         (a[0] == 192 && a[1] == 168) ||             // 192.168.0.0/16
         (a[0] == 198 && (a[1] & 0xfe) == 18) ||     // 198.18.0.0/15, benchmarking
         a[0] >= 224;                                // multicast, reserved, broadcast
}

bool IsLocalOrPrivateV6(const uint8_t v6[16]) {
  const auto zeros = [&](int from, int to) {
    for (int i = from; i < to; ++i) {
      if (v6[i] != 0) return false;
    }
    return true;
  };
  // ::ffff:a.b.c.d (mapped): the IPv4 address decides.
  if (zeros(0, 10) && v6[10] == 0xff && v6[11] == 0xff) return IsLocalOrPrivateV4(v6 + 12);
  // ::/96: ::, ::1 and the deprecated IPv4-compatible form (::a.b.c.d), never public.
  if (zeros(0, 12)) return true;
  // 64:ff9b::/96 (NAT64, RFC 6052): reaches the embedded IPv4 address.
  if (v6[0] == 0x00 && v6[1] == 0x64 && v6[2] == 0xff && v6[3] == 0x9b && zeros(4, 12)) {
    return IsLocalOrPrivateV4(v6 + 12);
  }
  // 64:ff9b:1::/48 (local-use NAT64, RFC 8215).
  if (v6[0] == 0x00 && v6[1] == 0x64 && v6[2] == 0xff && v6[3] == 0x9b && v6[4] == 0 &&
      v6[5] == 1) {
    return true;
  }
  // 2002::/16 (6to4): the next 32 bits are an IPv4 address.
  if (v6[0] == 0x20 && v6[1] == 0x02) return IsLocalOrPrivateV4(v6 + 2);
  // 2001::/32 (Teredo): tunnels to an obfuscated IPv4 address; refused.
  if (v6[0] == 0x20 && v6[1] == 0x01 && v6[2] == 0 && v6[3] == 0) return true;
  // 100::/64 (discard-only).
  if (v6[0] == 0x01 && v6[1] == 0x00 && zeros(2, 8)) return true;
  if ((v6[0] & 0xfe) == 0xfc) return true;                   // fc00::/7, unique local
  if (v6[0] == 0xfe && (v6[1] & 0xc0) == 0x80) return true;  // fe80::/10, link-local
  if (v6[0] == 0xfe && (v6[1] & 0xc0) == 0xc0) return true;  // fec0::/10, site-local
  return v6[0] == 0xff;                                      // multicast
}

bool IsAllDigits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return IsDigit(c); });
}

bool IsHexNumber(std::string_view s) {
  if (s.size() < 2 || s[0] != '0' || (s[1] != 'x' && s[1] != 'X')) return false;
  return std::all_of(s.begin() + 2, s.end(), [](char c) {
    return IsDigit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
  });
}

}  // namespace

bool IsNonCanonicalNumericHost(std::string_view host) {
  if (host.empty() || host.find(':') != std::string_view::npos) return false;
  const std::string h(host);
  uint8_t v4[4];
  if (inet_pton(AF_INET, h.c_str(), v4) == 1) return false;  // a.b.c.d, no leading zeros
  in_addr any{};
  if (inet_aton(h.c_str(), &any) != 0) return true;  // 127.1, 0x7f000001, 0177.0.0.1, 0, ...
  // A numeric last label is what makes URL parsers (WHATWG) read a host as IPv4; no
  // real name ends in one.
  std::string_view name = host;
  if (name.back() == '.') name.remove_suffix(1);
  const size_t dot = name.rfind('.');
  const std::string_view last = dot == std::string_view::npos ? name : name.substr(dot + 1);
  return IsAllDigits(last) || IsHexNumber(last);
}

bool IsPublicAddressBytes(std::span<const uint8_t> address) {
  if (address.size() == 4) return !IsLocalOrPrivateV4(address.data());
  if (address.size() == 16) return !IsLocalOrPrivateV6(address.data());
  return false;
}

bool IsLocalOrPrivateHost(std::string_view host) {
  std::string h(host);
  for (char& ch : h) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  while (!h.empty() && h.back() == '.') h.pop_back();
  if (h == "localhost" || (h.size() > 10 && h.compare(h.size() - 10, 10, ".localhost") == 0)) {
    return true;
  }
  uint8_t v4[4];
  if (inet_pton(AF_INET, h.c_str(), v4) == 1) return IsLocalOrPrivateV4(v4);
  uint8_t v6[16];
  if (inet_pton(AF_INET6, h.c_str(), v6) != 1) return false;  // a name
  return IsLocalOrPrivateV6(v6);
}

}  // namespace sotto::net
