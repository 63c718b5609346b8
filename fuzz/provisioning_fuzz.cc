// Fuzzes the provisioning channel's readers (docs/devices.md): the first byte picks the
// entry point: 0 = ParseLinkCode (what a user pastes), 1 = the companion opening the
// primary's envelope, 2 = the primary opening the companion's reply, both with the
// fixture's keys. Whatever opens must satisfy the documented shape.
#include <cstddef>
#include <cstdint>

#include "client/provisioning.h"
#include "fuzz/devices_fuzz_fixture.h"
#include "wire/wire.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace sotto;  // NOLINT(google-build-using-namespace)
  if (size == 0) return 0;
  const std::string_view rest(reinterpret_cast<const char*>(data + 1), size - 1);
  switch (data[0]) {
    case 0: {
      auto code = client::ParseLinkCode(rest);
      if (code && (code->provision_id.size() != client::kProvisionIdSize ||
                   client::FormatLinkCode(*code).size() != client::kLinkCodeSize)) {
        __builtin_trap();
      }
      break;
    }
    case 1: {
      client::ProvisionKeys keys;
      auto message = client::OpenProvisionMessage(rest, fuzz::ProvisionCompanionKey(),
                                                  fuzz::kCompanionProvisionId, keys);
      if (message && (message->account_id().size() != 16 || !wire::IsE164(message->handle()) ||
                      message->reply_provision_id().size() != client::kProvisionIdSize)) {
        __builtin_trap();
      }
      break;
    }
    default: {
      static const client::ProvisionKeys keys = fuzz::FixedProvisionKeys();
      auto reply = client::OpenProvisionReply(rest, keys, fuzz::kPrimaryProvisionId);
      if (reply && (reply->device_id() <= 1 || reply->identity_key().size() != 33))
        __builtin_trap();
      break;
    }
  }
  return 0;
}
