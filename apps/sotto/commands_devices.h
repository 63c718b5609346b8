// The linked-device commands of `sotto` (docs/cli.md "Linked devices", docs/devices.md):
// link (on the new companion), link-approve (on the primary), devices, unlink.
//
// Thread-safety: each function is run once by main's thread.
#pragma once

#include <cstdint>
#include <string>

#include "apps/sotto/commands.h"

namespace sotto::cli {

inline constexpr uint32_t kDefaultLinkTimeoutS = 120;
inline constexpr uint32_t kMaxLinkTimeoutS = 3'600;

struct LinkArgs {
  std::string server;      // host:port
  std::string server_key;  // 64 hex digits or empty (trust on first use)
  uint32_t timeout_s = kDefaultLinkTimeoutS;
  QrPalette palette = QrPalette::kDarkBackground;
};
// Shows the link code (text and QR), then waits for `link-approve` on the primary.
ExitCode Link(const GlobalOptions& global, const LinkArgs& args);

struct LinkApproveArgs {
  std::string code;
  uint32_t timeout_s = kDefaultLinkTimeoutS;
};
ExitCode LinkApprove(const GlobalOptions& global, const LinkApproveArgs& args);

ExitCode ListDevices(const GlobalOptions& global, OutputFormat format);
ExitCode UnlinkDevice(const GlobalOptions& global, uint32_t device_id);

}  // namespace sotto::cli
