#include "client/gateway_client.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "wire/wire.h"

namespace sotto::client {
namespace {

tl::unexpected<Error> ClientError(Code code, ClientErr detail, const char* message) {
  return MakeError(code, Module::kClient, static_cast<uint16_t>(detail), message);
}

// A blocking socket connected to `to` from `source`.
Result<int> ConnectFrom(const net::SocketAddress& to, const net::SocketAddress& source,
                        std::chrono::milliseconds timeout) {
  SOTTO_ASSIGN_OR_RETURN(const int fd, net::ConnectNonBlocking(to, &source));
  pollfd p{fd, POLLOUT, 0};
  int ready = 0;
  do {
    ready = poll(&p, 1, static_cast<int>(timeout.count()));
  } while (ready < 0 && errno == EINTR);
  const int flags = fcntl(fd, F_GETFL);
  if (ready != 1 || net::SocketError(fd) != 0 || flags < 0 ||
      fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) != 0) {
    close(fd);
    return ClientError(Code::kFailedPrecondition, ClientErr::kConnect, "connect failed");
  }
  return fd;
}

}  // namespace

GatewayClient::~GatewayClient() {
  if (fd_ >= 0) close(fd_);
}

Status GatewayClient::WriteAll(ByteSpan bytes) {
  size_t off = 0;
  while (off < bytes.size()) {
    const ssize_t n = send(fd_, bytes.data() + off, bytes.size() - off, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return ClientError(Code::kFailedPrecondition, ClientErr::kClosed, "send failed");
    off += static_cast<size_t>(n);
  }
  return Ok();
}

Result<Bytes> GatewayClient::ReadMessage(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  bool polled = false;
  for (;;) {
    if (inbox_.size() >= wire::kLengthPrefixSize) {
      const size_t len = (size_t{inbox_[0]} << 8) | inbox_[1];
      if (inbox_.size() >= wire::kLengthPrefixSize + len) {
        Bytes message(inbox_.begin() + 2, inbox_.begin() + 2 + static_cast<std::ptrdiff_t>(len));
        inbox_.erase(inbox_.begin(), inbox_.begin() + 2 + static_cast<std::ptrdiff_t>(len));
        return message;
      }
    }
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    // Polls once even when the time is up, so a zero timeout still reads what is there.
    if (left.count() <= 0 && polled) {
      return ClientError(Code::kOutOfRange, ClientErr::kTimeout,
                         "timed out waiting for the server");
    }
    polled = true;
    pollfd p{fd_, POLLIN, 0};
    const int r = poll(&p, 1, static_cast<int>(std::max<int64_t>(0, left.count())));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0)
      return ClientError(Code::kOutOfRange, ClientErr::kTimeout,
                         "timed out waiting for the server");
    uint8_t buf[16384];
    const ssize_t n = recv(fd_, buf, sizeof buf, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0)
      return ClientError(Code::kFailedPrecondition, ClientErr::kClosed,
                         "server closed the connection");
    inbox_.insert(inbox_.end(), buf, buf + n);
  }
}

Result<std::unique_ptr<GatewayClient>> GatewayClient::Connect(ClientOptions options) {
  auto fd = options.source ? ConnectFrom(options.server, *options.source, options.timeout)
                           : net::ConnectBlocking(options.server);
  if (!fd) return ClientError(Code::kFailedPrecondition, ClientErr::kConnect, "connect failed");
  std::unique_ptr<GatewayClient> client(new GatewayClient(*fd, options.timeout));
  noise::NoisePipe pipe = noise::NoisePipe::Client(options.device_static, options.server_static,
                                                   crypto::SystemRandom());
  wire::ClientHello hello;
  hello.set_wire_version(wire::kWireVersion);
  hello.set_user_agent(options.user_agent);
  const std::string hello_bytes = hello.SerializeAsString();
  // IK carries the hello in message 1; XX in message 3 (message 1 must be empty).
  const bool ik = options.server_static.has_value();
  while (!pipe.IsFinished()) {
    if (pipe.NextAction() == noise::HandshakeAction::kWriteMessage) {
      const bool first_xx = !ik && pipe.pattern() == noise::HandshakePattern::kXX &&
                            pipe.RemoteStatic() == std::nullopt;
      auto msg = pipe.WriteMessage(first_xx ? ByteSpan() : AsBytes(hello_bytes));
      if (!msg)
        return ClientError(Code::kInternal, ClientErr::kHandshake, "handshake write failed");
      Bytes framed;
      wire::AppendLengthPrefix(framed, msg->size());
      Append(framed, *msg);
      SOTTO_RETURN_IF_ERROR(client->WriteAll(framed));
    } else if (pipe.NextAction() == noise::HandshakeAction::kReadMessage) {
      SOTTO_ASSIGN_OR_RETURN(Bytes msg, client->ReadMessage(client->timeout_));
      auto payload = pipe.ReadMessage(msg);
      if (!payload) {
        return ClientError(Code::kUnauthenticated, ClientErr::kHandshake, "handshake failed");
      }
    } else {
      return ClientError(Code::kInternal, ClientErr::kHandshake, "handshake failed");
    }
  }
  auto remote = pipe.RemoteStatic();
  if (!remote) return ClientError(Code::kInternal, ClientErr::kHandshake, "no server key");
  if (options.server_static && *remote != *options.server_static) {
    return ClientError(Code::kUnauthenticated, ClientErr::kServerKeyMismatch,
                       "server key differs from the pinned key");
  }
  client->server_static_ = *remote;
  client->pattern_ = *pipe.pattern();
  auto ciphers = pipe.Split();
  if (!ciphers) return ClientError(Code::kInternal, ClientErr::kHandshake, "split failed");
  client->send_ = std::move(ciphers->send);
  client->receive_ = std::move(ciphers->receive);
  return client;
}

Status GatewayClient::SendPlaintext(ByteSpan plaintext) {
  Bytes out(wire::kLengthPrefixSize + plaintext.size() + noise::kTagSize);
  auto n = send_.EncryptWithAd({}, plaintext, MutableByteSpan(out).subspan(2));
  if (!n) return tl::unexpected(n.error());
  out[0] = static_cast<uint8_t>(*n >> 8);
  out[1] = static_cast<uint8_t>(*n);
  out.resize(2 + *n);
  return WriteAll(out);
}

Status GatewayClient::SendRawBytes(ByteSpan bytes) { return WriteAll(bytes); }

Status GatewayClient::Send(const wire::Frame& frame) {
  Bytes plain;
  wire::SerializeFrame(frame, plain);
  return SendPlaintext(plain);
}

Result<wire::Frame> GatewayClient::Receive() { return Receive(timeout_); }

Result<wire::Frame> GatewayClient::Receive(std::chrono::milliseconds timeout) {
  if (!backlog_.empty()) {
    wire::Frame frame = std::move(backlog_.front());
    backlog_.pop_front();
    return frame;
  }
  return ReceiveFromSocket(timeout);
}

bool GatewayClient::HasBufferedFrame() const {
  if (!backlog_.empty()) return true;
  if (inbox_.size() < wire::kLengthPrefixSize) return false;
  const size_t len = (size_t{inbox_[0]} << 8) | inbox_[1];
  return inbox_.size() >= wire::kLengthPrefixSize + len;
}

Result<wire::Frame> GatewayClient::ReceiveFromSocket(std::chrono::milliseconds timeout) {
  SOTTO_ASSIGN_OR_RETURN(Bytes message, ReadMessage(timeout));
  Bytes plain(message.size());
  auto n = receive_.DecryptWithAd({}, message, plain);
  if (!n)
    return ClientError(Code::kUnauthenticated, ClientErr::kProtocol, "frame does not decrypt");
  wire::Frame frame;
  SOTTO_RETURN_IF_ERROR(wire::ParseFrame(ByteSpan(plain.data(), *n), frame));
  return frame;
}

Result<wire::Response> GatewayClient::Call(wire::Request request) {
  const uint64_t id = next_id_++;
  request.set_id(id);
  wire::Frame frame;
  *frame.mutable_request() = std::move(request);
  SOTTO_RETURN_IF_ERROR(Send(frame));
  for (;;) {
    SOTTO_ASSIGN_OR_RETURN(wire::Frame in, ReceiveFromSocket(timeout_));
    if (in.has_response() && in.response().id() == id) return in.response();
    if (in.has_ping()) {
      wire::Frame pong;
      pong.mutable_pong()->set_nonce(in.ping().nonce());
      SOTTO_RETURN_IF_ERROR(Send(pong));
      continue;
    }
    if (in.has_close()) {
      backlog_.push_back(std::move(in));
      return ClientError(Code::kFailedPrecondition, ClientErr::kClosed, "server sent Close");
    }
    if (backlog_.size() >= kMaxBacklogFrames) {
      return ClientError(
          Code::kResourceExhausted, ClientErr::kProtocol,
          "too many frames arrived while waiting for a response (kMaxBacklogFrames)");
    }
    backlog_.push_back(std::move(in));  // envelopes, receipts, presence: for Receive()
  }
}

}  // namespace sotto::client
