// The send-online / send-offline workload: LoadClient's members that pair connections,
// send messages, take envelopes and receipts, ack them, and drain offline queues. Byte
// layout and counters: messaging.h.
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <system_error>

#include "apps/load/load_client.h"

namespace sotto::load {
namespace {

void PutLe(char* out, uint64_t v, size_t bytes) {
  for (size_t i = 0; i < bytes; ++i) out[i] = static_cast<char>(static_cast<uint8_t>(v >> (8 * i)));
}

uint64_t GetLe(const char* in, size_t bytes) {
  uint64_t v = 0;
  for (size_t i = bytes; i-- > 0;) v = (v << 8) | static_cast<uint8_t>(in[i]);
  return v;
}

}  // namespace

void EncodeMessage(const Stamp& stamp, size_t size, std::string& payload, std::string& message_id) {
  if (payload.size() != size) payload.assign(size, '.');  // the filler stays between calls
  PutLe(payload.data(), stamp.sent_ns, 8);
  PutLe(payload.data() + 8, stamp.seq, 8);
  PutLe(payload.data() + 16, stamp.pair, 4);
  message_id.resize(kMessageIdSize);
  PutLe(message_id.data(), stamp.sent_ns, 8);
  PutLe(message_id.data() + 8, stamp.seq, 8);
}

std::optional<Stamp> DecodePayload(std::string_view payload, size_t size) {
  if (payload.size() != size || size < kStampSize) return std::nullopt;
  return Stamp{GetLe(payload.data(), 8), GetLe(payload.data() + 8, 8),
               static_cast<uint32_t>(GetLe(payload.data() + 16, 4))};
}

std::optional<Stamp> DecodeMessageId(std::string_view message_id) {
  if (message_id.size() != kMessageIdSize) return std::nullopt;
  return Stamp{GetLe(message_id.data(), 8), GetLe(message_id.data() + 8, 8), 0};
}

double ProcessCpuSeconds(int pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat;
  if (!std::getline(in, stat)) return -1;
  // Fields 14 and 15 (utime, stime) counted from the one after the ")" ending the name,
  // which is field 3.
  const size_t paren = stat.rfind(')');
  if (paren == std::string::npos) return -1;
  std::istringstream fields(stat.substr(paren + 1));
  std::string skip;
  for (int i = 3; i < 14; ++i) fields >> skip;
  uint64_t utime = 0;
  uint64_t stime = 0;
  if (!(fields >> utime >> stime)) return -1;
  return static_cast<double>(utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

double RunQueueWaitSeconds(int pid) {
  const std::string dir =
      "/proc/" + (pid > 0 ? std::to_string(pid) : std::string("self")) + "/task";
  std::error_code ec;
  uint64_t total_ns = 0;
  bool any = false;
  for (const auto& task : std::filesystem::directory_iterator(dir, ec)) {
    std::ifstream in(task.path() / "schedstat");
    uint64_t run_ns = 0;
    uint64_t wait_ns = 0;
    if (in >> run_ns >> wait_ns) {
      total_ns += wait_ns;
      any = true;
    }
  }
  return any && !ec ? static_cast<double>(total_ns) / 1e9 : -1;
}

void LoadClient::PairUp() {
  // Any split works; live_ is not in creation order anyway (Close swap-removes).
  std::vector<Connection*> ready;
  ready.reserve(live_.size());
  for (const auto& c : live_) ready.push_back(c.get());
  const size_t n = ready.size() / 2;
  pairs_.resize(n);
  for (size_t i = 0; i < ready.size(); ++i) {
    Connection& c = *ready[i];
    if (i >= 2 * n) {  // the odd one out
      Close(c, EndCause::kShutdown);
      continue;
    }
    Pair& pair = pairs_[i % n];
    c.peer->pair = static_cast<uint32_t>(i % n);
    if (i < n) {
      c.peer->role = Role::kSender;
      pair.sender = &c;
      ++live_senders_;
    } else {
      c.peer->role = Role::kReceiver;
      pair.receiver = &c;
      pair.receiver_account = c.peer->account;
      pair.receiver_key = c.peer->key;
    }
  }
  if (options_.mode != Mode::kSendOffline) return;
  for (Pair& pair : pairs_) Close(*pair.receiver, EndCause::kCompleted);
}

Connection* LoadClient::NextSender() {
  if (live_senders_ == 0) return nullptr;
  for (size_t tries = 0; tries < pairs_.size(); ++tries) {
    Pair& pair = pairs_[round_robin_++ % pairs_.size()];
    if (pair.sender != nullptr) return pair.sender;
  }
  return nullptr;
}

void LoadClient::SendMessage(Connection& c, uint64_t planned_ns) {
  Peer& peer = *c.peer;
  if (peer.in_flight >= options_.max_in_flight) {
    ++m_.skipped_in_flight;
    return;
  }
  if (c.pending && c.pending->size() > kMaxPendingBytes) {
    ++n_.sends_skipped;
    return;
  }
  // Stamped with the planned send time: every latency of this message counts from there.
  EncodeMessage(Stamp{planned_ns, ++message_seq_, peer.pair}, options_.payload_bytes, payload_,
                message_id_);
  wire::Request* request = send_frame_.mutable_request();
  request->set_id(planned_ns);  // the response brings the planned send time back
  wire::SendRequest* send = request->mutable_send();
  send->set_message_id(message_id_);
  send->set_recipient(pairs_[peer.pair].receiver_account.data(), kAccountIdSize);
  wire::DeviceMessage* m =
      send->messages_size() == 0 ? send->add_messages() : send->mutable_messages(0);
  m->set_device_id(kReceiverDevice);
  m->set_registration_id(kReceiverRegistrationId);
  m->set_type(wire::CIPHERTEXT_PLAINTEXT);
  m->set_ciphertext(payload_);
  ++peer.in_flight;
  ++peer.unanswered;
  ++outstanding_;
  ++m_.sends;
  ++n_.requests_sent;
  SendFrame(c, send_frame_);  // on failure Close() takes the in-flight count back
}

void LoadClient::HandleSendResponse(Connection& c, const wire::Response& response) {
  Peer& peer = *c.peer;
  if (peer.role != Role::kSender || peer.unanswered == 0) {
    ++n_.protocol_errors;  // an answer to nothing we asked
    return;
  }
  const uint64_t now = NowNs();
  --peer.unanswered;
  --outstanding_;
  // Online, a message is finished when its receipt arrives; a refused one never gets one.
  if ((options_.mode == Mode::kSendOffline || response.status() != wire::STATUS_OK) &&
      peer.in_flight > 0) {
    --peer.in_flight;
  }
  if (response.status() != wire::STATUS_OK) {
    ++m_.send_errors;
    const auto slot = std::min<size_t>(static_cast<size_t>(response.status()), kStatusSlots - 1);
    ++m_.errors_by_status[slot];
    return;
  }
  ++m_.acked;
  if (phase_ == Phase::kRun) ++m_.acked_in_window;
  if (response.id() <= now) latency_.ack.Record(now - response.id());
}

bool LoadClient::HandleEnvelope(Connection& c, const wire::Envelope& envelope) {
  Peer& peer = *c.peer;
  const uint64_t now = NowNs();
  const bool in_window = phase_ == Phase::kRun;
  peer.acks.push_back(envelope.seq());  // even a bad one: the queue must drain
  switch (envelope.type()) {
    case wire::ENVELOPE_MESSAGE: {
      const auto stamp = DecodePayload(envelope.ciphertext(), options_.payload_bytes);
      if (!stamp || peer.role != Role::kReceiver || stamp->pair != peer.pair ||
          stamp->sent_ns > now || envelope.ciphertext_type() != wire::CIPHERTEXT_PLAINTEXT) {
        ++m_.bad_envelopes;
        break;
      }
      if (phase_ == Phase::kQueueDrain) {
        ++m_.drain_deliveries;
        break;
      }
      ++m_.deliveries;
      if (in_window) ++m_.deliveries_in_window;
      latency_.delivery.Record(now - stamp->sent_ns);
      break;
    }
    case wire::ENVELOPE_DELIVERED: {
      const auto stamp = DecodeMessageId(envelope.message_id());
      if (!stamp || peer.role != Role::kSender || stamp->sent_ns > now) {
        ++m_.bad_envelopes;
        break;
      }
      ++m_.receipts;
      if (in_window) ++m_.receipts_in_window;
      if (options_.mode == Mode::kSendOnline && peer.in_flight > 0) --peer.in_flight;
      latency_.receipt.Record(now - stamp->sent_ns);
      break;
    }
    default:
      ++m_.bad_envelopes;
      break;
  }
  if (peer.acks.size() >= options_.ack_batch) FlushAcks(c);
  return c.state != ConnState::kClosed;
}

void LoadClient::FlushAcks(Connection& c) {
  std::vector<uint64_t>& acks = c.peer->acks;
  auto* ack = ack_frame_.mutable_delivery_ack();
  ack->clear_seqs();
  for (uint64_t seq : acks) ack->add_seqs(seq);
  ++m_.acks_sent;
  m_.seqs_acked += acks.size();
  acks.clear();
  SendFrame(c, ack_frame_);
}

void LoadClient::OnQueueEmpty(Connection& c) {
  // Only the QueueEmpty after a drain reconnect counts; the one after registering is noise.
  if (phase_ != Phase::kQueueDrain || c.peer->role != Role::kReceiver) return;
  Pair& pair = pairs_[c.peer->pair];
  if (pair.caught_up) return;
  pair.caught_up = true;
  ++caught_up_;
  clock_.queue_drain_end_ns = NowNs();
}

void LoadClient::ForgetPeer(Connection& c) {
  Peer& peer = *c.peer;
  if (peer.role == Role::kUnassigned || pairs_.empty()) return;
  Pair& pair = pairs_[peer.pair];
  if (peer.role == Role::kSender && pair.sender == &c) {
    pair.sender = nullptr;
    --live_senders_;
    outstanding_ -= peer.unanswered;
    peer.unanswered = 0;
    return;
  }
  if (pair.receiver == &c) pair.receiver = nullptr;
  if (phase_ == Phase::kQueueDrain && !pair.caught_up && !pair.lost) {
    pair.lost = true;
    ++m_.drain_lost;
  }
}

bool LoadClient::AnswersOutstanding() const {
  if (outstanding_ > 0) return true;
  // Online: every acked message should also have reached its receiver, and its receipt
  // the sender, so the span's server CPU covers whole cycles.
  return options_.mode == Mode::kSendOnline && (m_.deliveries < m_.acked || m_.receipts < m_.acked);
}

void LoadClient::EnterQueueDrain() {
  phase_ = Phase::kQueueDrain;
  clock_.queue_drain_start_ns = NowNs();
  clock_.queue_drain_end_ns = clock_.queue_drain_start_ns;
  queue_drain_client_cpu_start_ = CpuSeconds();
  if (options_.server_pid > 0) {
    queue_drain_server_cpu_start_ = ProcessCpuSeconds(options_.server_pid);
  }
  StartReconnects();
}

void LoadClient::StartReconnects() {
  while (in_flight_ < options_.concurrency && next_reconnect_ < pairs_.size()) {
    if (!StartOne(static_cast<uint32_t>(next_reconnect_))) return;  // again on the next tick
    ++next_reconnect_;
  }
}

void LoadClient::CheckQueueDrained() {
  if (phase_ != Phase::kQueueDrain) return;
  const uint64_t now = NowNs();
  const bool timed_out = now >= clock_.queue_drain_start_ns + kQueueDrainTimeoutMs * 1'000'000;
  if (caught_up_ + m_.drain_lost < pairs_.size() && !timed_out) return;
  if (timed_out) clock_.queue_drain_end_ns = now;
  clock_.queue_drain_client_cpu = CpuSeconds() - queue_drain_client_cpu_start_;
  if (options_.server_pid > 0 && queue_drain_server_cpu_start_ >= 0) {
    clock_.queue_drain_server_cpu =
        ProcessCpuSeconds(options_.server_pid) - queue_drain_server_cpu_start_;
  }
  // Ack what is still held, so the queues end empty. Backwards: a failed send closes.
  for (size_t i = live_.size(); i-- > 0;) {
    if (i < live_.size() && live_[i]->peer && !live_[i]->peer->acks.empty()) {
      FlushAcks(*live_[i]);
    }
  }
  Finish();
}

}  // namespace sotto::load
