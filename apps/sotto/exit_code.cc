#include "apps/sotto/exit_code.h"

#include "client/client.h"
#include "client/gateway_client.h"
#include "client/local_store.h"
#include "client/media.h"

namespace sotto::cli {
namespace {

// Client module details share one number space (client.h): < 8100 the connection's,
// 8100..8199 the store's, 8200.. the SDK's.
constexpr uint16_t kFirstStoreDetail = 8100;
constexpr uint16_t kFirstSdkDetail = 8200;

ExitCode ForConnection(client::ClientErr detail) {
  switch (detail) {
    case client::ClientErr::kConnect:
    case client::ClientErr::kHandshake:
    case client::ClientErr::kClosed:
    case client::ClientErr::kTimeout:
      return ExitCode::kOffline;
    case client::ClientErr::kServerKeyMismatch:
    case client::ClientErr::kProtocol:
      return ExitCode::kError;
  }
  return ExitCode::kError;
}

ExitCode ForStore(client::StoreErr detail) {
  switch (detail) {
    case client::StoreErr::kOpen:
    case client::StoreErr::kKeyFile:
    case client::StoreErr::kSchema:
    case client::StoreErr::kSql:
    case client::StoreErr::kCorrupt:
    case client::StoreErr::kNoAccount:
    case client::StoreErr::kBusy:
      return ExitCode::kStore;
    case client::StoreErr::kNotFound:
      return ExitCode::kError;
  }
  return ExitCode::kStore;
}

ExitCode ForSdk(client::SdkErr detail) {
  switch (detail) {
    case client::SdkErr::kNotRegistered:
      return ExitCode::kStore;
    case client::SdkErr::kAlreadyRegistered:
      return ExitCode::kError;
    case client::SdkErr::kTooLarge:  // a text, caption or file past its limit: a bad argument
      return ExitCode::kUsage;
    case client::SdkErr::kBadHandle:
    case client::SdkErr::kUnknownUser:
      return ExitCode::kUnknownUser;
    case client::SdkErr::kIdentityChanged:
      return ExitCode::kIdentityChanged;
    case client::SdkErr::kServerRefused:
      return ExitCode::kServerRefused;
    case client::SdkErr::kOffline:
      return ExitCode::kOffline;
    case client::SdkErr::kMismatch:
      return ExitCode::kMismatch;
    case client::SdkErr::kBadServerKey:
    case client::SdkErr::kBadLinkCode:
    case client::SdkErr::kNotPrimary:
      return ExitCode::kUsage;
    case client::SdkErr::kBadProvisioning:
    case client::SdkErr::kBadDeviceList:
      return ExitCode::kError;
    case client::SdkErr::kTooManyDevices:
      return ExitCode::kTooManyDevices;
    case client::SdkErr::kUnknownGroup:     // GROUP names no group: a bad argument
    case client::SdkErr::kAmbiguousGroup:
      return ExitCode::kUsage;
    case client::SdkErr::kNotMember:        // the server (or our record of it) refused
    case client::SdkErr::kNotAdmin:
    case client::SdkErr::kRateLimited:
    case client::SdkErr::kNotRefused:
    case client::SdkErr::kServerStorageFull:  // refused for now; queued messages stay queued
      return ExitCode::kServerRefused;
  }
  return ExitCode::kError;
}

}  // namespace

ExitCode ExitCodeFor(const Error& error) {
  switch (error.module) {
    case Module::kClient:
      if (error.detail < kFirstStoreDetail) {
        return ForConnection(static_cast<client::ClientErr>(error.detail));
      }
      if (error.detail < kFirstSdkDetail)
        return ForStore(static_cast<client::StoreErr>(error.detail));
      // A media transfer that broke off is retried like an unreachable server.
      if (error.detail == static_cast<uint16_t>(client::MediaErr::kTransfer)) return ExitCode::kOffline;
      return ForSdk(static_cast<client::SdkErr>(error.detail));
    case Module::kNet:
      return ExitCode::kOffline;
    case Module::kStore:
      return ExitCode::kStore;
    case Module::kBase:
    case Module::kCrypto:
    case Module::kSignal:
    case Module::kNoise:
    case Module::kWire:
    case Module::kServer:
    case Module::kNats:  // the client never talks to NATS; listed so the switch is whole
      return ExitCode::kError;
  }
  return ExitCode::kError;
}

std::string UserMessage(const Error& error) {
  if (error.module == Module::kClient) {
    switch (error.detail) {
      case static_cast<uint16_t>(client::StoreErr::kBusy):
        return "another sotto process (the daemon?) uses this home";
      case static_cast<uint16_t>(client::StoreErr::kNoAccount):
      case static_cast<uint16_t>(client::SdkErr::kNotRegistered):
        return "not registered: run `sotto register` and `sotto verify` first";
      case static_cast<uint16_t>(client::SdkErr::kServerStorageFull):
        return "server storage full: the server cannot store anything right now; a message "
               "stays queued here and is sent again later (`sotto receive` or the daemon)";
      case static_cast<uint16_t>(client::SdkErr::kAlreadyRegistered):
        return "this home already has an account (a new device needs its own --home)";
      case static_cast<uint16_t>(client::SdkErr::kBadHandle):
        return "not a phone number in E.164 form (+ and 8..15 digits)";
      case static_cast<uint16_t>(client::ClientErr::kServerKeyMismatch):
        return "the server proved a different key than the pinned one (refusing to talk to it)";
      default:
        break;
    }
  }
  return error.message != nullptr ? std::string(error.message) : std::string(CodeName(error.code));
}

std::string_view ExitCodeHelp() {
  return "Exit codes:\n"
         "  0  ok\n"
         "  1  other error\n"
         "  2  usage error\n"
         "  3  not registered, or the local store cannot be used (another sotto process?)\n"
         "  4  server unreachable (messages stay queued and are retried)\n"
         "  5  the contact's identity changed: message held until `sotto trust`\n"
         "  6  unknown user or not an E.164 number\n"
         "  7  the server refused (e.g. a wrong verification code, or its storage is full)\n"
         "  8  safety number mismatch\n"
         "  9  the account already has a primary and 4 companion devices\n";
}

}  // namespace sotto::cli
