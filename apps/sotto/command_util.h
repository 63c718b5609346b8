// What every `sotto` command does the same way: report an error and map it to the exit
// code, open the home's client, connect when it can, and read --server-key.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "apps/sotto/commands.h"
#include "apps/sotto/exit_code.h"
#include "base/result.h"
#include "client/client.h"
#include "crypto/x25519.h"
#include "nlohmann/json.hpp"

namespace sotto::cli {

// Prints "sotto: CONTEXT: message" (no context: "sotto: message") to stderr and returns
// the error's exit code.
ExitCode Fail(const Error& error, std::string_view context);
Result<std::unique_ptr<client::Client>> OpenClient(const GlobalOptions& global);
// Connects when it can. Network trouble is not an error here (the command decides what
// being offline means for it); anything else (not registered, store) is.
Status ConnectIfPossible(client::Client& client);
// One JSON value as one line on stdout, flushed (the --json output of a command).
void PrintJsonLine(const nlohmann::json& value);
// The display name the user gave the contact `handle` (`contacts add --name`), or "" (none,
// not a contact, or the store could not say: a name is only decoration).
std::string ContactName(client::Client& client, std::string_view handle);
// --server-key: empty = none (trust on first use), else 64 hex digits (kBadServerKey).
Result<std::optional<crypto::X25519Public>> OptionalServerKey(std::string_view hex);

}  // namespace sotto::cli
