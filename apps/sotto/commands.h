// The `sotto` commands, one function each: open the Client on the home directory, call
// the SDK, print the outcome (output.h) and return the exit code (exit_code.h). main.cc
// only parses the command line into these argument structs. docs/cli.md is the manual.
//
// Errors are printed to stderr as "sotto: <message>"; results go to stdout.
//
// Thread-safety: each function is run once by main's thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>

#include "apps/sotto/exit_code.h"
#include "apps/sotto/json_rpc.h"
#include "apps/sotto/qr.h"

namespace sotto::cli {

enum class OutputFormat : uint8_t { kText, kJson };

// --verbose: connection changes (and the SDK's debug log) on stderr. Quiet by default:
// a short run prints only its result and real errors.
enum class Verbosity : uint8_t { kQuiet, kVerbose };

struct GlobalOptions {
  std::filesystem::path home;
  Verbosity verbosity = Verbosity::kQuiet;
};

struct RegisterArgs {
  std::string server;      // host:port
  std::string server_key;  // 64 hex digits or empty (trust on first use)
  std::string number;      // +E164
};
ExitCode Register(const GlobalOptions& global, const RegisterArgs& args);
ExitCode Verify(const GlobalOptions& global, const std::string& code);

// kArgument: the text is the command-line word (which may be ""), kStdin: standard input.
enum class TextSource : uint8_t { kArgument, kStdin };
struct SendArgs {
  std::string to;
  std::string text;
  TextSource source = TextSource::kArgument;
  OutputFormat format = OutputFormat::kText;
};
ExitCode Send(const GlobalOptions& global, const SendArgs& args);

// `sotto send-file +E164|GROUP PATH [--caption TEXT] [--mime TYPE]` (docs/media.md).
struct SendFileArgs {
  std::string to;
  std::filesystem::path path;
  std::string caption;
  std::string mime;  // empty: from the extension
  OutputFormat format = OutputFormat::kText;
};
ExitCode SendFile(const GlobalOptions& global, const SendFileArgs& args);

// How long `receive` listens: until the server says this device's queue is drained
// (QueueEmpty; the default, and `--timeout 0`), `--timeout` seconds, or until interrupted
// (`--follow`).
enum class ReceiveMode : uint8_t { kUntilDrained, kForTimeout, kFollow };
struct ReceiveArgs {
  ReceiveMode mode = ReceiveMode::kUntilDrained;
  uint32_t timeout_s = 0;  // kForTimeout: seconds to listen
  OutputFormat format = OutputFormat::kText;
};
ExitCode Receive(const GlobalOptions& global, const ReceiveArgs& args);

struct MessagesArgs {
  std::string with;
  size_t limit = kDefaultConversationLimit;
  OutputFormat format = OutputFormat::kText;
  MarkReadPolicy mark_read = MarkReadPolicy::kMarkRead;
};
ExitCode Messages(const GlobalOptions& global, const MessagesArgs& args);

struct SearchArgs {
  std::string words;
  size_t limit = kDefaultSearchLimit;
  OutputFormat format = OutputFormat::kText;
};
ExitCode Search(const GlobalOptions& global, const SearchArgs& args);

enum class QrDisplay : uint8_t { kNone, kShow };
struct SafetyNumberArgs {
  std::string with;
  QrDisplay qr = QrDisplay::kNone;
  QrPalette palette = QrPalette::kDarkBackground;
  OutputFormat format = OutputFormat::kText;
};
ExitCode ShowSafetyNumber(const GlobalOptions& global, const SafetyNumberArgs& args);

struct VerifyContactArgs {
  std::string with;
  std::optional<std::string> safety_number;  // digits; spaces are ignored
};
ExitCode VerifyContact(const GlobalOptions& global, const VerifyContactArgs& args);
ExitCode Trust(const GlobalOptions& global, const std::string& with);

struct ContactsAddArgs {
  std::string number;
  std::string name;
};
ExitCode ContactsAdd(const GlobalOptions& global, const ContactsAddArgs& args);
ExitCode ContactsList(const GlobalOptions& global, OutputFormat format);

struct PresenceArgs {
  std::string with;
  OutputFormat format = OutputFormat::kText;
};
ExitCode ShowPresence(const GlobalOptions& global, const PresenceArgs& args);
// `sotto privacy --presence everyone|contacts|nobody`.
ExitCode SetPresenceVisibility(const GlobalOptions& global, const std::string& visibility);

struct TypingArgs {
  std::string with;
  TypingState typing = TypingState::kStarted;
};
ExitCode SendTyping(const GlobalOptions& global, const TypingArgs& args);
ExitCode ShowStatus(const GlobalOptions& global, OutputFormat format);

}  // namespace sotto::cli
