// The `sotto` command's exit codes and the mapping from SDK errors to them and to the
// text shown to the user. The table is the contract documented in docs/cli.md; the
// daemon reports the same numbers in JSON-RPC error data.
//
// Thread-safety: pure functions.
#pragma once

#include <string>
#include <string_view>

#include "base/result.h"

namespace sotto::cli {

enum class ExitCode : int {
  kOk = 0,
  kError = 1,            // anything not below
  kUsage = 2,            // bad command line (CLI11 parse errors), bad argument value
  kStore = 3,            // not registered, or the local store cannot be used
  kOffline = 4,          // the server could not be reached (messages stay queued)
  kIdentityChanged = 5,  // the contact's identity key changed: message held
  kUnknownUser = 6,      // no such account on the server, or not an E.164 number
  kServerRefused = 7,    // the server answered with an error (e.g. a wrong code)
  kMismatch = 8,         // the safety number given does not match
  kTooManyDevices = 9,   // link: the account has a primary and 4 companions already
};

inline int ToInt(ExitCode code) { return static_cast<int>(code); }

// The exit code for an error from the SDK (client.h SdkErr, local_store.h StoreErr,
// gateway_client.h ClientErr, all Module::kClient) or from a lower module.
ExitCode ExitCodeFor(const Error& error);

// What to tell the user about `error`: the SDK's static message, replaced by a more
// helpful sentence where the bare message would leave them guessing (kBusy, ...).
std::string UserMessage(const Error& error);

// The text for `sotto --help`'s footer and docs/cli.md.
std::string_view ExitCodeHelp();

}  // namespace sotto::cli
