// `sotto group ...`: the group commands (docs/cli.md "Groups"), wired into the command line
// by AddGroupCommands. GROUP arguments are a group id (hex), a unique prefix of one, or a
// unique exact group name.
//
// Thread-safety: run once by main's thread.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "apps/sotto/commands.h"

namespace sotto::cli {

// Our recent group messages `group info` shows with their per-member receipts.
inline constexpr size_t kGroupInfoMessages = 10;

// Adds `group create|add|remove|leave|admin|rename|send|list|info|messages` to `app`; the
// chosen one sets `action`.
void AddGroupCommands(CLI::App& app, std::function<ExitCode(const GlobalOptions&)>& action);

// `sotto messages GROUP` (a `with` that is not a +E164 number): the group's conversation,
// marked read unless told not to.
ExitCode GroupMessages(const GlobalOptions& global, const MessagesArgs& args);

}  // namespace sotto::cli
