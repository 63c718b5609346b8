// libsodium initialisation, shared by crypto/ sources. Private to crypto/.
#pragma once

namespace sotto::crypto::internal {
// Calls sodium_init() once per process (it picks the fastest implementations).
void EnsureSodium();
}  // namespace sotto::crypto::internal
