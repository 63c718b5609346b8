// A handle on one gateway connection that other threads may hold (the router, presence
// subscriptions, the queue's commit callbacks), and what a posted function receives.
//
// Thread-safety: SessionLink is thread-safe; SessionContext is Loop-affine.
#pragma once

#include <functional>

namespace sotto::server::internal {

class SessionProtocol;
struct SessionState;
class SessionOutput;

// Everything a function posted to a connection needs to send it frames.
struct SessionContext {
  SessionProtocol& protocol;
  SessionState& state;
  SessionOutput& out;
};

class SessionLink {
 public:
  virtual ~SessionLink() = default;
  // Runs `fn` on the connection's own thread if the connection is still open then;
  // otherwise drops it.
  virtual void Post(std::function<void(SessionContext&)> fn) = 0;
};

}  // namespace sotto::server::internal
