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

namespace sotto::server {
class Gateway;
}

namespace sotto::server::internal {

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

  // Runs `fn` on this loop for the connection behind `link`, if it is still open.
  void PostTo(std::shared_ptr<TcpLink> link, std::function<void(SessionContext&)> fn);
  void Close(Connection* c, CloseCause cause, SendClose send_close);

  // Sends a framed Noise message, queueing what the socket does not take; false if the
  // connection had to close (slow reader or I/O error).
  bool WriteFramed(Connection* c, ByteSpan noise_message);

 private:
  void Accept();
  void ReadFrom(Connection* c);
  void ReadMessages(Connection* c);
  // After a read: keeps `c` in partial_ while it holds an incomplete message (restarting
  // its clock when `new_frame`) and its buffer counted in the gateway's total; closes it
  // (false) if the total passes limits.max_partial_input_bytes.
  bool AccountPartial(Connection* c, bool new_frame);
  bool HandleMessage(Connection* c, ByteSpan message);
  void Flush(Connection* c);
  void SetWriteInterest(Connection* c, bool on);
  void Tick();
  void CloseAll(CloseCause cause);
  void Reap();
  void RefuseLogged(RefuseCause cause);
  // Sends what corked connections collected: one write each, after a run of posted tasks.
  void Uncork();
  // Ends one connection's cork: writes what it collected, or waits for EPOLLOUT.
  void Uncork(Connection* c);

  Gateway& gateway_;
  std::unique_ptr<net::EventLoop> loop_;
  int listen_fd_;
  int reserve_fd_ = -1;  // spare fd released to shed a connection at the open-file limit
  std::thread thread_;
  LoopMetrics metrics_;
  ConnectionList handshaking_;  // by accept time
  ConnectionList active_;       // by last activity
  PartialList partial_;         // holding an incomplete message, by its first byte
  std::vector<Connection*> graveyard_;  // closed; deleted on a later loop turn
  bool reap_posted_ = false;
  std::vector<Connection*> corked_;  // nullptr once closed
  bool uncork_posted_ = false;
  bool stopping_ = false;
  uint64_t last_refuse_log_ms_ = 0;

  SessionProtocol protocol_;  // per-loop scratch buffers live here
};

}  // namespace sotto::server::internal
