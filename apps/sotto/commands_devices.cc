#include "apps/sotto/commands_devices.h"

#include <chrono>
#include <iostream>

#include "apps/sotto/command_util.h"
#include "apps/sotto/json_rpc.h"
#include "apps/sotto/output.h"
#include "base/bytes.h"
#include "client/client.h"

namespace sotto::cli {
namespace {

using client::Client;
using std::chrono::milliseconds;

milliseconds Seconds(uint32_t s) { return milliseconds(uint64_t{s} * 1000); }

}  // namespace

ExitCode Link(const GlobalOptions& global, const LinkArgs& args) {
  auto server_key = OptionalServerKey(args.server_key);
  if (!server_key) return Fail(server_key.error(), "--server-key");
  auto client = OpenClient(global);
  if (!client) return Fail(client.error(), "link");
  auto code = (*client)->StartLink(args.server, *server_key);
  if (!code) return Fail(code.error(), "link");
  std::cout << "On your primary device run:\n  sotto link-approve " << *code << "\n";
  if (const auto matrix = EncodeQr(AsBytes(*code))) {
    std::cout << "\n" << RenderQr(*matrix, kQrQuietZone, args.palette);
  }
  std::cout << "waiting up to " << args.timeout_s << " s for the primary...\n" << std::flush;
  if (auto s = (*client)->FinishLink(Seconds(args.timeout_s)); !s) return Fail(s.error(), "link");
  const auto& account = (*client)->account();
  std::cout << "linked as device " << account->device_id << " of " << account->handle << "\n";
  return ExitCode::kOk;
}

ExitCode LinkApprove(const GlobalOptions& global, const LinkApproveArgs& args) {
  auto client = OpenClient(global);
  if (!client) return Fail(client.error(), "link-approve");
  auto device = (*client)->ApproveLink(args.code, Seconds(args.timeout_s));
  if (!device) return Fail(device.error(), "link-approve");
  std::cout << "linked device " << *device << "; the signed device list now names it\n";
  return ExitCode::kOk;
}

ExitCode ListDevices(const GlobalOptions& global, OutputFormat format) {
  auto client = OpenClient(global);
  if (!client) return Fail(client.error(), "devices");
  auto devices = (*client)->Devices();
  if (!devices) return Fail(devices.error(), "devices");
  for (const client::LinkedDevice& d : *devices) {
    if (format == OutputFormat::kJson) {
      std::cout << JsonLine(DeviceJson(d));
    } else {
      std::cout << DeviceText(d) << "\n";
    }
  }
  std::cout << std::flush;
  return ExitCode::kOk;
}

ExitCode UnlinkDevice(const GlobalOptions& global, uint32_t device_id) {
  auto client = OpenClient(global);
  if (!client) return Fail(client.error(), "unlink");
  if (auto s = (*client)->Unlink(device_id); !s) return Fail(s.error(), "unlink");
  std::cout << "unlinked device " << device_id << "\n";
  return ExitCode::kOk;
}

}  // namespace sotto::cli
