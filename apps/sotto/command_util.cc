#include "apps/sotto/command_util.h"

#include <iostream>

#include "apps/sotto/exit_code.h"
#include "apps/sotto/output.h"

namespace sotto::cli {

ExitCode Fail(const Error& error, std::string_view context) {
  std::cerr << "sotto: ";
  if (!context.empty()) std::cerr << context << ": ";
  std::cerr << UserMessage(error) << "\n";
  return ExitCodeFor(error);
}

Result<std::unique_ptr<client::Client>> OpenClient(const GlobalOptions& global) {
  client::ClientConfig config;
  config.home = global.home;
  return client::Client::Open(std::move(config));
}

Status ConnectIfPossible(client::Client& client) {
  auto connected = client.Connect();
  if (!connected && ExitCodeFor(connected.error()) != ExitCode::kOffline) return connected;
  return Ok();
}

void PrintJsonLine(const nlohmann::json& value) { std::cout << JsonLine(value) << std::flush; }

std::string ContactName(client::Client& client, std::string_view handle) {
  auto contact = client.store().ContactByHandle(handle);
  if (!contact || !*contact) return "";
  return (*contact)->name;
}

Result<std::optional<crypto::X25519Public>> OptionalServerKey(std::string_view hex) {
  if (hex.empty()) return std::optional<crypto::X25519Public>();
  SOTTO_ASSIGN_OR_RETURN(crypto::X25519Public key, client::ParseServerKey(hex));
  return std::optional<crypto::X25519Public>(key);
}

}  // namespace sotto::cli
