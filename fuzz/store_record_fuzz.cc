// Fuzzes the RocksDB backend's decoders of stored keys and values (a damaged or hostile
// data directory must give kCorrupt, never a crash). The first byte picks the decoder;
// whatever decodes must survive an encode/decode round trip unchanged. Decoder 6 is the
// group record (server-side groups).
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "store/rocksdb/internal/schema.h"

namespace {

using namespace sotto::store;            // NOLINT(google-build-using-namespace)
using namespace sotto::store::internal;  // NOLINT(google-build-using-namespace)

void Check(bool ok) {
  if (!ok) __builtin_trap();
}

bool SameAccount(const AccountRecord& a, const AccountRecord& b) {
  if (a.id != b.id || a.revision != b.revision || a.handle != b.handle ||
      a.presence != b.presence || a.devices.size() != b.devices.size()) {
    return false;
  }
  for (size_t i = 0; i < a.devices.size(); ++i) {
    const DeviceRecord& x = a.devices[i];
    const DeviceRecord& y = b.devices[i];
    if (x.device_id != y.device_id || x.noise_key != y.noise_key ||
        x.registration_id != y.registration_id || x.push_endpoint != y.push_endpoint ||
        x.created_ms != y.created_ms) {
      return false;
    }
  }
  return true;
}

bool SameGroup(const GroupRecord& a, const GroupRecord& b) {
  if (a.id != b.id || a.revision != b.revision || a.version != b.version ||
      a.created_ms != b.created_ms || a.members.size() != b.members.size() ||
      a.refused != b.refused) {
    return false;
  }
  for (size_t i = 0; i < a.members.size(); ++i) {
    const GroupMemberRecord& x = a.members[i];
    const GroupMemberRecord& y = b.members[i];
    if (x.account != y.account || x.admin != y.admin || x.joined_version != y.joined_version) {
      return false;
    }
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string_view in(reinterpret_cast<const char*>(data + 1), size - 1);
  const AccountId id{};
  switch (data[0] % 8) {
    case 0:
      if (auto a = DecodeAccount(id, in)) {
        auto again = DecodeAccount(id, EncodeAccount(*a));
        Check(again && SameAccount(*a, *again));
      }
      break;
    case 1:
      if (auto k = DecodeDeviceKeys(in)) {
        auto again = DecodeDeviceKeys(EncodeDeviceKeys(*k));
        Check(again && again->identity_key == k->identity_key &&
              again->registration_id == k->registration_id &&
              again->signed_prekey.id == k->signed_prekey.id &&
              again->signed_prekey.public_key == k->signed_prekey.public_key &&
              again->signed_prekey.signature == k->signed_prekey.signature);
      }
      break;
    case 2:
      if (auto q = DecodeQueueValue(in)) {
        const std::string encoded = EncodeQueueValue(q->expires_ms, q->payload, q->sender);
        auto again = DecodeQueueValue(encoded);
        Check(again && again->expires_ms == q->expires_ms && again->payload == q->payload &&
              again->sender == q->sender);
      }
      break;
    case 3:
      if (auto d = DecodeDedupeValue(in)) {
        auto again = DecodeDedupeValue(EncodeDedupeValue(*d));
        Check(again && again->seq == d->seq && again->expires_ms == d->expires_ms);
      }
      break;
    case 4:
      if (auto k = ParseQueueKey(in)) Check(QueueKey(k->device, k->seq) == in);
      break;
    case 5:
      // The purge Seeks past a device with it: every key under the prefix sorts below.
      if (auto next = PrefixSuccessor(in)) {
        Check(*next > in && !next->starts_with(in) && std::string(in) + '\xff' < *next);
      } else {
        Check(in.find_first_not_of('\xff') == std::string_view::npos);
      }
      break;
    case 6:
      if (auto g = DecodeGroup(GroupId{}, in)) {
        // A decoded record is one the store accepts (ordered, unique members).
        for (size_t i = 1; i < g->members.size(); ++i) {
          Check(g->members[i - 1].account < g->members[i].account);
        }
        auto again = DecodeGroup(GroupId{}, EncodeGroup(*g));
        Check(again && SameGroup(*g, *again));
      }
      break;
    case 7:
      (void)DecodeDeviceAddress(in);
      (void)DecodeAccountId(in);
      (void)DecodeSeq(in);
      (void)DecodePublicKey(in);
      (void)ParseOneTimePreKeyId(in);
      break;
    default:
      break;
  }
  return 0;
}
