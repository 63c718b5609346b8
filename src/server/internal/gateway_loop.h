// One gateway event loop: its listener, its connections, their lists and counters.
//
// Thread-safety: Loop-affine, except Start/Stop/Join and metrics(), which the Gateway
// calls from its own thread (Stop posts to the loop).
#pragma once

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "net/event_loop.h"
#include "server/internal/connection.h"
#include "server/metrics.h"
#include "wire/sotto_wire.pb.h"

namespace sotto::server {
class Gateway;
}

namespace sotto::server::internal {

enum class SendClose : uint8_t { kNo, kYes };

class GatewayLoop final : public net::IoHandler {
 public:
  GatewayLoop(Gateway& gateway, std::unique_ptr<net::EventLoop> loop, int listen_fd);
  ~GatewayLoop() override;

  void Start();
  // Posts a graceful shutdown to the loop (close every connection with a Close frame)
  // and stops it; Join() waits.
  void Stop();
  void Join();
  const LoopMetrics& metrics() const { return metrics_; }

  // Listener readiness.
  void OnIo(uint32_t events) override;
  // Connection readiness (called by Connection::OnIo).
  void OnConnectionIo(Connection* c, uint32_t events);

 private:
  void Accept();
  void ReadFrom(Connection* c);
  bool HandleMessage(Connection* c, ByteSpan message);
  bool HandleHandshake(Connection* c, ByteSpan message);
  bool HandleFrame(Connection* c, ByteSpan plaintext);
  void HandleRequest(Connection* c, const wire::Request& request);
  bool FinishHandshake(Connection* c);
  // Encrypts and sends a frame; false if the connection had to close.
  bool SendFrame(Connection* c, const wire::Frame& frame);
  bool SendRaw(Connection* c, ByteSpan framed);
  void Flush(Connection* c);
  void SetWriteInterest(Connection* c, bool on);
  void Close(Connection* c, CloseCause cause, SendClose send_close);
  void Tick();
  void CloseAll(CloseCause cause);
  void Reap();
  void Touch(Connection* c);
  void RefuseLogged(RefuseCause cause);

  Gateway& gateway_;
  std::unique_ptr<net::EventLoop> loop_;
  int listen_fd_;
  int reserve_fd_ = -1;  // spare fd released to shed a connection at the open-file limit
  std::thread thread_;
  LoopMetrics metrics_;
  ConnectionList handshaking_;  // by accept time
  ConnectionList active_;       // by last activity
  std::vector<Connection*> graveyard_;  // closed; deleted on a later loop turn
  bool reap_posted_ = false;
  bool stopping_ = false;
  uint64_t last_refuse_log_ms_ = 0;

  // Per-loop scratch: the frame being parsed or built, and encryption output.
  wire::Frame frame_;
  wire::Frame reply_;
  Bytes frame_bytes_;
  Bytes plaintext_;
  Bytes ciphertext_;
};

}  // namespace sotto::server::internal
