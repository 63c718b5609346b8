// `sotto daemon`: serves the JSON-RPC protocol of json_rpc.h on a Unix stream socket
// and forwards the SDK's events to every socket client as notifications. One thread and
// one poll() loop over the listening socket, the socket clients, the Client's socket and
// a signalfd for SIGINT/SIGTERM; the Client's timers set poll's timeout. A method call
// runs to completion before the loop goes on, so a send that waits for the server's ack
// delays the other socket clients by as much (at most the request timeout).
//
// The socket is created with mode 0600 (only this user may talk to the account). A
// stale socket file is removed at start; a live one (another daemon answers) is an
// error. Limits: kMaxRpcClients connections, kMaxRpcLineBytes per request line (past
// it: an error response, then the connection is closed), kMaxRpcPendingBytes of unread
// output per client (past it the client is dropped).
//
// Thread-safety: runs on the calling thread until stopped.
#pragma once

#include <filesystem>

#include "apps/sotto/commands.h"
#include "apps/sotto/exit_code.h"

namespace sotto::cli {

struct DaemonArgs {
  std::filesystem::path socket;
};

// Runs until SIGINT or SIGTERM (exit code 0) or a local failure (store: 3, socket: 1).
ExitCode RunDaemon(const GlobalOptions& global, const DaemonArgs& args);

}  // namespace sotto::cli
