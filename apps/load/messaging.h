// sotto-load's messaging workload (--mode send-online / send-offline): the state it keeps
// per connection and per sender/receiver pair, its counters, and the byte layout of the
// messages it sends. The LoadClient members that drive it are in messaging.cc.
//
// Each message is a Send (docs/wire.md) of one CIPHERTEXT_PLAINTEXT DeviceMessage to
// device 1 of the pair's receiver, registration id 0 (an account that never uploaded keys):
//   message_id (16 bytes)  send time (steady ns, 8, little-endian), sequence number (8)
//   ciphertext (--payload) send time (8), sequence number (8), pair index (4), filler
// The Send's request id is its send time too, so a response alone gives send -> ack and
// an Envelope send -> delivery, in this process's steady clock.
//
// Thread-safety: externally synchronized (loop-affine in LoadClient).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/histogram.h"
#include "noise/handshake_state.h"

namespace sotto::load {

inline constexpr size_t kAccountIdSize = 16;
inline constexpr size_t kMessageIdSize = 16;
inline constexpr size_t kStampSize = 20;  // what the ciphertext carries before its filler
inline constexpr size_t kMinPayload = kStampSize;
inline constexpr size_t kMaxPayload = size_t{16} * 1024;
inline constexpr uint32_t kReceiverDevice = 1;
inline constexpr uint32_t kReceiverRegistrationId = 0;  // no keys uploaded
inline constexpr size_t kStatusSlots = 16;  // wire::StatusCode values counted one by one

using AccountId = std::array<uint8_t, kAccountIdSize>;

enum class Role : uint8_t { kUnassigned, kSender, kReceiver };

// What a connection carries in a messaging mode (absent in the others, so idle ones stay
// small).
struct Peer {
  noise::KeyPair key;  // receivers reconnect with it (send-offline --drain)
  AccountId account{};
  Role role = Role::kUnassigned;
  uint32_t pair = 0;        // index in LoadClient::pairs_
  uint32_t unanswered = 0;  // senders: sends without a response yet
  // Senders: messages not finished: unanswered (send-offline) or without their delivered
  // receipt (send-online), so an overload probe runs at the rate of whole cycles.
  uint32_t in_flight = 0;
  std::vector<uint64_t> acks;  // envelope seqs received and not acked yet
};

struct Connection;

// A sender, its receiver and what the sender needs to address it.
struct Pair {
  Connection* sender = nullptr;    // null once closed
  Connection* receiver = nullptr;  // null while offline
  AccountId receiver_account{};
  std::optional<noise::KeyPair> receiver_key;
  bool caught_up = false;  // send-offline --drain: QueueEmpty seen after reconnecting
  bool lost = false;       // send-offline --drain: the reconnect failed
};

// The stamp a message carries (ciphertext and message id).
struct Stamp {
  uint64_t sent_ns = 0;
  uint64_t seq = 0;
  uint32_t pair = 0;
};

// Fills `payload` (resized to `size` >= kMinPayload) and `message_id` with `stamp`.
void EncodeMessage(const Stamp& stamp, size_t size, std::string& payload, std::string& message_id);
// The stamp of a received ciphertext; nullopt unless it is `size` bytes long.
std::optional<Stamp> DecodePayload(std::string_view payload, size_t size);
// Send time and sequence number of one of our message ids (the pair is not in it).
std::optional<Stamp> DecodeMessageId(std::string_view message_id);

struct MessagingCounters {
  uint64_t sends = 0;  // Send requests written
  uint64_t acked = 0;  // STATUS_OK responses
  uint64_t acked_in_window = 0;
  uint64_t send_errors = 0;                               // any other status
  std::array<uint64_t, kStatusSlots> errors_by_status{};  // the last slot: larger codes
  uint64_t deliveries = 0;  // ENVELOPE_MESSAGE received (live, not the drain)
  uint64_t deliveries_in_window = 0;
  uint64_t receipts = 0;  // ENVELOPE_DELIVERED received by senders
  uint64_t receipts_in_window = 0;
  uint64_t bad_envelopes = 0;      // wrong size, unknown stamp, or another pair's message
  uint64_t acks_sent = 0;          // DeliveryAck frames
  uint64_t seqs_acked = 0;         // envelopes acknowledged in them
  uint64_t skipped_in_flight = 0;  // a sender had --max-in-flight messages unfinished
  uint64_t drain_deliveries = 0;   // send-offline --drain
  uint64_t drain_reconnects = 0;
  uint64_t drain_lost = 0;  // receivers that did not come back
};

// Latencies in ns (steady clock of this process).
struct MessagingLatency {
  Histogram ack;       // send -> STATUS_OK response
  Histogram delivery;  // send -> Envelope at the receiver (live only)
  Histogram receipt;   // send -> delivered receipt at the sender
};

// Windows and CPU of a messaging run. *_ns are steady ns; cpu in seconds (server: from
// /proc/PID/stat of --server-pid, negative when unknown).
struct MessagingClock {
  uint64_t settled_ns = 0;  // every response in (or the drain timeout)
  double server_cpu_start = -1;
  double server_cpu_settled = -1;
  double client_cpu_settled = 0;  // window start -> settled
  // Run-queue waits (RunQueueWaitSeconds) at the window's start and when settled: time
  // runnable but not running, i.e. how much the machine's other work delayed us.
  double client_wait_start = -1;
  double client_wait_settled = -1;
  double server_wait_start = -1;
  double server_wait_settled = -1;
  uint64_t queue_drain_start_ns = 0;
  uint64_t queue_drain_end_ns = 0;
  double queue_drain_server_cpu = -1;
  double queue_drain_client_cpu = 0;
};

// utime + stime of process `pid` in seconds from /proc/PID/stat; negative if unreadable.
double ProcessCpuSeconds(int pid);
// Seconds the threads of process `pid` (0: this one) spent runnable but waiting for a CPU
// (/proc/PID/task/*/schedstat, second field), summed; negative if unreadable. Threads of
// one process pinned to one core also wait for each other.
double RunQueueWaitSeconds(int pid);

}  // namespace sotto::load
