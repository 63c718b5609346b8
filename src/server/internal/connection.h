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
#include "server/internal/session.h"

namespace sotto::server::internal {

class GatewayLoop;

// kClosing lasts only inside GatewayLoop::Close (while the Close frame is written).
enum class ConnState : uint8_t { kHandshake, kOpen, kClosing, kClosed };

// Bytes the socket did not take yet.
struct WriteQueue {
  Bytes data;
  size_t offset = 0;
  size_t size() const { return data.size() - offset; }
};

struct Connection;

// The thread-safe handle on a TCP connection (see SessionLink). `conn` is read and
// cleared only on the loop's thread.
class TcpLink final : public SessionLink, public std::enable_shared_from_this<TcpLink> {
 public:
  TcpLink(GatewayLoop* owner_in, Connection* conn_in) : owner(owner_in), conn(conn_in) {}
  void Post(std::function<void(SessionContext&)> fn) override;

  GatewayLoop* owner;
  Connection* conn;  // nullptr once the connection closed
};

struct Connection final : net::IoHandler, SessionOutput {
  Connection(GatewayLoop* owner_in, int fd_in) : owner(owner_in), fd(fd_in) {}
  void OnIo(uint32_t events) override;
  // Sends one Noise message with its 2-byte length prefix.
  bool WriteMessage(ByteSpan noise_message) override;
  size_t QueuedBytes() const override { return pending ? pending->size() : 0; }
  std::shared_ptr<SessionLink> MakeLink() override;
  void CloseFromSession(CloseCause cause) override;

  GatewayLoop* owner;
  int fd;
  ConnState state = ConnState::kHandshake;
  bool want_write = false;
  bool corked = false;  // writes collect in `pending` until the loop's uncork task
  uint32_t last_active_ms = 0;  // loop clock, truncated; list order follows it
  Connection* prev = nullptr;   // in the loop's handshake or activity list
  Connection* next = nullptr;
  // While `partial` holds an incomplete message: in the loop's partial list, ordered by
  // when that message's first byte arrived (limits.partial_frame_timeout_ms).
  uint32_t partial_since_ms = 0;
  uint32_t partial_counted = 0;  // partial.capacity() as counted in the gateway's total
  Connection* partial_prev = nullptr;
  Connection* partial_next = nullptr;
  Bytes partial;                        // an incomplete incoming message only
  std::unique_ptr<WriteQueue> pending;  // only while the socket is full
  SessionState session;
};

// An intrusive doubly-linked list of connections through their `Prev`/`Next` members,
// oldest first.
template <Connection* Connection::*Prev, Connection* Connection::*Next>
class IntrusiveList {
 public:
  void PushBack(Connection* c) {
    c->*Prev = tail_;
    c->*Next = nullptr;
    if (tail_ != nullptr) {
      tail_->*Next = c;
    } else {
      head_ = c;
    }
    tail_ = c;
    ++size_;
  }
  // Does nothing if `c` is not in this list.
  void Remove(Connection* c) {
    if (c->*Prev != nullptr) {
      (c->*Prev)->*Next = c->*Next;
    } else if (head_ == c) {
      head_ = c->*Next;
    } else {
      return;  // not in this list
    }
    if (c->*Next != nullptr) {
      (c->*Next)->*Prev = c->*Prev;
    } else {
      tail_ = c->*Prev;
    }
    c->*Prev = c->*Next = nullptr;
    --size_;
  }
  void MoveToBack(Connection* c) {
    Remove(c);
    PushBack(c);
  }
  bool Contains(const Connection* c) const { return c->*Prev != nullptr || head_ == c; }
  Connection* front() const { return head_; }
  size_t size() const { return size_; }

 private:
  Connection* head_ = nullptr;
  Connection* tail_ = nullptr;
  size_t size_ = 0;
};

using ConnectionList = IntrusiveList<&Connection::prev, &Connection::next>;
using PartialList = IntrusiveList<&Connection::partial_prev, &Connection::partial_next>;

}  // namespace sotto::server::internal
