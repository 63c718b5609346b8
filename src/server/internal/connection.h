// One client connection of the gateway: kept small because idle connections are what a
// gateway mostly holds. No read buffer unless a message is half-received, no write
// buffer unless the socket is full, no handshake state once the handshake is done, no
// timer object (the loop's activity list orders connections by last activity).
//
// Thread-safety: Loop-affine (its GatewayLoop's thread).
#pragma once

#include <cstdint>
#include <memory>

#include "base/bytes.h"
#include "net/event_loop.h"
#include "noise/cipher_state.h"
#include "noise/pipes.h"
#include "server/device_directory.h"
#include "server/rate_limiter.h"

namespace sotto::server::internal {

class GatewayLoop;

enum class ConnState : uint8_t { kHandshake, kOpen, kClosed };

// Bytes the socket did not take yet.
struct WriteQueue {
  Bytes data;
  size_t offset = 0;
  size_t size() const { return data.size() - offset; }
};

struct Connection final : net::IoHandler {
  Connection(GatewayLoop* owner_in, int fd_in) : owner(owner_in), fd(fd_in) {}
  void OnIo(uint32_t events) override;

  GatewayLoop* owner;
  int fd;
  ConnState state = ConnState::kHandshake;
  bool authenticated = false;
  bool ping_outstanding = false;
  bool want_write = false;
  uint32_t last_active_ms = 0;  // loop clock, truncated; list order follows it
  TokenBucket requests;
  Connection* prev = nullptr;   // in the loop's handshake or activity list
  Connection* next = nullptr;
  Bytes partial;                           // an incomplete incoming message only
  std::unique_ptr<WriteQueue> pending;     // only while the socket is full
  std::unique_ptr<noise::NoisePipe> handshake;  // only during the handshake
  noise::CipherState send;
  noise::CipherState receive;
  StaticKey remote_static{};
  DeviceAddress device;
};

// An intrusive doubly-linked list of connections, oldest first.
class ConnectionList {
 public:
  void PushBack(Connection* c);
  void Remove(Connection* c);
  void MoveToBack(Connection* c) {
    Remove(c);
    PushBack(c);
  }
  Connection* front() const { return head_; }
  size_t size() const { return size_; }

 private:
  Connection* head_ = nullptr;
  Connection* tail_ = nullptr;
  size_t size_ = 0;
};

}  // namespace sotto::server::internal
