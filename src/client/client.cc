#include "client/client.h"

#include <poll.h>

#include <algorithm>
#include <chrono>
#include <thread>

#include <spdlog/spdlog.h>

#include "client/internal/client_impl.h"
#include "net/socket.h"

namespace sotto::client {

using std::chrono::milliseconds;
using std::chrono::steady_clock;

tl::unexpected<Error> SdkError(Code code, SdkErr detail, const char* message) {
  return MakeError(code, Module::kClient, static_cast<uint16_t>(detail), message);
}

uint64_t WallMs() {
  return static_cast<uint64_t>(
      std::chrono::duration_cast<milliseconds>(std::chrono::system_clock::now().time_since_epoch())
          .count());
}

bool IsOffline(const Error& error) {
  return error.module == Module::kClient && error.detail == static_cast<uint16_t>(SdkErr::kOffline);
}

bool IsStoreError(const Error& error) {
  return error.module == Module::kClient &&
         error.detail >= static_cast<uint16_t>(StoreErr::kOpen) &&
         error.detail <= static_cast<uint16_t>(StoreErr::kBusy);
}

Status Client::Impl::RequireRegistered() const {
  if (registered()) return Ok();
  return SdkError(Code::kFailedPrecondition, SdkErr::kNotRegistered,
                  "not registered: run sotto register and sotto verify first");
}

std::string Client::Impl::NewMessageId() {
  Bytes id(16);
  random.Fill(id);
  return ToHex(id);
}

std::string Hex(std::string_view bytes) {
  return ToHex(ByteSpan(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()));
}

Result<crypto::X25519Public> ParseServerKey(std::string_view hex) {
  crypto::X25519Public key{};
  const Bytes raw = FromHex(hex);
  if (hex.size() != 2 * key.size() || raw.size() != key.size()) {
    return SdkError(Code::kInvalidArgument, SdkErr::kBadServerKey,
                    "server key must be 64 hex digits");
  }
  std::copy(raw.begin(), raw.end(), key.begin());
  return key;
}

Client::Client(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Client::~Client() = default;

Result<std::unique_ptr<Client>> Client::Open(ClientConfig config) {
  auto impl = std::make_unique<Impl>();
  SOTTO_ASSIGN_OR_RETURN(impl->store, LocalStore::Open(config.home));
  SOTTO_ASSIGN_OR_RETURN(impl->account, impl->store->LoadAccount());
  impl->config = std::move(config);
  SOTTO_ASSIGN_OR_RETURN(std::vector<OutboxItem> waiting,
                         impl->store->ListOutbox(1, LocalStore::OutboxFilter::kReady));
  if (!waiting.empty()) impl->next_outbox_at = steady_clock::now();
  return std::unique_ptr<Client>(new Client(std::move(impl)));
}

void Client::SetEventSink(EventSink sink) { impl_->sink = std::move(sink); }
bool Client::registered() const { return impl_->registered(); }
const std::optional<LocalAccount>& Client::account() const { return impl_->account; }
bool Client::connected() const { return impl_->conn != nullptr; }
int Client::fd() const { return impl_->conn ? impl_->conn->fd() : -1; }
const ClientStats& Client::stats() const { return impl_->stats; }
LocalStore& Client::store() { return *impl_->store; }
void Client::Disconnect() { impl_->DropConnection(); }

void Client::Impl::Emit(const Event& event) {
  if (!sink) return;
  // The contact's display name, for every event about one contact (client.h).
  Event named = event;
  std::visit(
      [this](auto& e) {
        if constexpr (requires {
                        e.name;
                        e.peer;
                      }) {
          if (e.name.empty()) e.name = NameOf(e.peer);
        } else if constexpr (requires {
                               e.name;
                               e.message;
                             }) {
          if (e.name.empty()) {
            e.name = NameOf(e.message.group_id.empty() ? e.message.peer : e.message.group_sender);
          }
        }
      },
      named);
  sink(named);
}

// --- Registration ----------------------------------------------------------------------

Status Client::StartRegistration(std::string_view server,
                                 std::optional<crypto::X25519Public> server_key,
                                 std::string_view handle) {
  Impl& d = *impl_;
  if (d.registered()) {
    return SdkError(Code::kAlreadyExists, SdkErr::kAlreadyRegistered,
                    "this home already has a registered account; use another --home");
  }
  if (!IsE164(handle)) {
    return SdkError(Code::kInvalidArgument, SdkErr::kBadHandle,
                    "the number must be E.164: + and 8 to 15 digits");
  }
  SOTTO_RETURN_IF_ERROR(net::ResolveHostPort(server));
  LocalAccount account;
  account.handle = std::string(handle);
  account.server = std::string(server);
  account.server_key = server_key;
  account.noise_static = noise::KeyPair::Generate(d.random);
  account.identity = signal::IdentityKeyPair::Generate(d.random);
  account.registration_id = signal::GenerateRegistrationId(d.random);
  SOTTO_RETURN_IF_ERROR(d.store->SaveAccount(account));
  d.account = std::move(account);
  d.DropConnection();
  SOTTO_RETURN_IF_ERROR(d.TryConnect());
  wire::Request request;
  request.mutable_request_code()->set_handle(std::string(handle));
  SOTTO_ASSIGN_OR_RETURN(wire::Response response, d.Call(std::move(request)));
  if (response.status() == wire::STATUS_RATE_LIMITED) {
    return SdkError(Code::kResourceExhausted, SdkErr::kServerRefused,
                    "the server refused: too many codes requested for this number; wait");
  }
  if (response.status() != wire::STATUS_OK) {
    return SdkError(Code::kFailedPrecondition, SdkErr::kServerRefused,
                    "the server refused to send a code");
  }
  return Ok();
}

Status Client::FinishRegistration(std::string_view code) {
  Impl& d = *impl_;
  if (!d.account) {
    return SdkError(Code::kFailedPrecondition, SdkErr::kNotRegistered,
                    "no registration in progress: run register first");
  }
  if (d.registered()) {
    return SdkError(Code::kAlreadyExists, SdkErr::kAlreadyRegistered,
                    "this home is already registered");
  }
  SOTTO_RETURN_IF_ERROR(d.TryConnect());
  wire::Request request;
  request.mutable_register_()->set_handle(d.account->handle);
  request.mutable_register_()->set_code(std::string(code));
  SOTTO_ASSIGN_OR_RETURN(wire::Response response, d.Call(std::move(request)));
  if (response.status() == wire::STATUS_BAD_CODE) {
    return SdkError(Code::kPermissionDenied, SdkErr::kServerRefused,
                    "wrong, expired or already used verification code");
  }
  if (response.status() != wire::STATUS_OK || !response.has_register_()) {
    return SdkError(Code::kFailedPrecondition, SdkErr::kServerRefused,
                    "the server refused the registration");
  }
  const std::string& id = response.register_().account_id();
  d.account->account_id.assign(id.begin(), id.end());
  d.account->device_id = response.register_().device_id();
  SOTTO_RETURN_IF_ERROR(d.store->SaveAccount(*d.account));
  SOTTO_RETURN_IF_ERROR(d.store->PutSetting("keys_published", "0"));
  return d.PublishKeys();
}

// Uploads identity, a new signed prekey and a batch of one-time prekeys in one request
// (first upload, or a retry after a registration whose upload did not complete), so the
// server never sees the device with an empty pool.
Status Client::Impl::PublishKeys() {
  const uint64_t now = WallMs();
  const uint32_t signed_id = account->signed_prekey_id + 1;
  const signal::SignedPreKeyRecord signed_prekey =
      signal::GenerateSignedPreKey(account->identity, signed_id, now, random);
  wire::Request request;
  wire::UploadKeysRequest* upload = request.mutable_upload_keys();
  {
    LocalStore::Transaction tx(*store);
    SOTTO_RETURN_IF_ERROR(store->StoreSignedPreKey(signed_prekey));
    account->signed_prekey_id = signed_id;
    account->signed_prekey_ms = now;
    SOTTO_RETURN_IF_ERROR(AddOneTimePreKeys(kOneTimePreKeyBatch, *upload));
    SOTTO_RETURN_IF_ERROR(tx.Commit());
  }
  const signal::SerializedPublicKey identity = account->identity.public_key.Serialize();
  upload->set_identity_key(identity.data(), identity.size());
  upload->set_registration_id(account->registration_id);
  const signal::SerializedPublicKey spk = signed_prekey.key_pair.public_key.Serialize();
  upload->mutable_signed_prekey()->set_id(signed_id);
  upload->mutable_signed_prekey()->set_public_key(spk.data(), spk.size());
  upload->mutable_signed_prekey()->set_signature(signed_prekey.signature.data(),
                                                 signed_prekey.signature.size());
  SOTTO_ASSIGN_OR_RETURN(wire::Response response, Call(std::move(request)));
  if (response.status() != wire::STATUS_OK) {
    return SdkError(Code::kFailedPrecondition, SdkErr::kServerRefused,
                    "the server refused this device's keys");
  }
  return store->PutSetting("keys_published", "1");
}

// Generates `count` one-time prekeys, stores them and the next id (inside the caller's
// transaction) and adds their public halves to `upload`.
Status Client::Impl::AddOneTimePreKeys(size_t count, wire::UploadKeysRequest& upload) {
  const std::vector<signal::PreKeyRecord> keys =
      signal::GeneratePreKeys(account->next_prekey_id, static_cast<uint32_t>(count), random);
  for (const signal::PreKeyRecord& key : keys) {
    SOTTO_RETURN_IF_ERROR(store->StorePreKey(key));
    wire::OneTimePreKey* k = upload.add_one_time_prekeys();
    k->set_id(key.id);
    const signal::SerializedPublicKey pub = key.key_pair.public_key.Serialize();
    k->set_public_key(pub.data(), pub.size());
  }
  account->next_prekey_id = keys.back().id % (signal::kLastResortPreKeyId - 1) + 1;
  return store->SaveAccount(*account);
}

Status Client::Impl::UploadPreKeys(size_t count) {
  wire::Request request;
  {
    LocalStore::Transaction tx(*store);
    SOTTO_RETURN_IF_ERROR(AddOneTimePreKeys(count, *request.mutable_upload_keys()));
    SOTTO_RETURN_IF_ERROR(tx.Commit());
  }
  SOTTO_ASSIGN_OR_RETURN(wire::Response response, Call(std::move(request)));
  if (response.status() != wire::STATUS_OK) {
    return SdkError(Code::kFailedPrecondition, SdkErr::kServerRefused,
                    "the server refused one-time prekeys");
  }
  return Ok();
}

// A new signed prekey every kSignedPreKeyRotationMs; old ones are kept
// kSignedPreKeyKeepMs for messages still in flight that name them.
Status Client::Impl::MaybeRotateSignedPreKey() {
  const uint64_t now = WallMs();
  if (now - account->signed_prekey_ms < kSignedPreKeyRotationMs) return Ok();
  SOTTO_RETURN_IF_ERROR(PublishKeys());
  SOTTO_ASSIGN_OR_RETURN(std::vector<uint32_t> ids, store->ListSignedPreKeys());
  for (uint32_t id : ids) {
    if (id == account->signed_prekey_id) continue;
    SOTTO_ASSIGN_OR_RETURN(std::optional<signal::SignedPreKeyRecord> old,
                           store->LoadSignedPreKey(id));
    if (old && now - old->timestamp_ms > kSignedPreKeyKeepMs) {
      SOTTO_RETURN_IF_ERROR(store->RemoveSignedPreKey(id));
    }
  }
  return Ok();
}

// --- Connection ------------------------------------------------------------------------

Status Client::Impl::TryConnect() {
  if (conn) return Ok();
  if (!account) {
    return SdkError(Code::kFailedPrecondition, SdkErr::kNotRegistered,
                    "not registered: run sotto register first");
  }
  if (replaced) {
    return SdkError(Code::kFailedPrecondition, SdkErr::kNotRegistered,
                    "this device was replaced: the number was registered again elsewhere");
  }
  auto address = net::ResolveHostPort(account->server);
  if (!address) {
    ScheduleReconnect();
    return SdkError(Code::kUnavailable, SdkErr::kOffline, "the server address does not resolve");
  }
  ClientOptions options;
  options.server = *address;
  options.device_static = account->noise_static;
  options.server_static = account->server_key;
  options.user_agent = config.user_agent;
  options.timeout = config.request_timeout;
  auto connected = GatewayClient::Connect(std::move(options));
  if (!connected) {
    ScheduleReconnect();
    if (connected.error().module == Module::kClient &&
        connected.error().detail == static_cast<uint16_t>(ClientErr::kServerKeyMismatch)) {
      return tl::unexpected(connected.error());
    }
    return SdkError(Code::kUnavailable, SdkErr::kOffline, "cannot reach the server");
  }
  conn = std::move(*connected);
  if (!account->server_key) {
    account->server_key = conn->server_static();  // trust on first use, then pinned
    SOTTO_RETURN_IF_ERROR(store->SaveAccount(*account));
  }
  if (ever_connected) ++stats.reconnects;
  ever_connected = true;
  backoff = milliseconds(0);
  last_receive = steady_clock::now();
  ping_sent_at.reset();
  queue_empty_seen = false;
  Emit(ConnectionEvent{true});
  if (registered()) return AfterConnect();
  return Ok();
}

Status Client::Impl::AfterConnect() {
  SOTTO_ASSIGN_OR_RETURN(std::optional<std::string> published, store->GetSetting("keys_published"));
  if (published && *published == "0") {
    if (auto st = PublishKeys(); !st) return st;
  } else if (auto st = MaybeRotateSignedPreKey(); !st) {
    return st;
  }
  SOTTO_RETURN_IF_ERROR(store->PruneReceived(WallMs()));
  next_outbox_at = steady_clock::now();
  return Ok();
}

void Client::Impl::DropConnection() {
  if (!conn) return;
  conn.reset();
  Emit(ConnectionEvent{false});
  ScheduleReconnect();
}

// Exponential backoff with full jitter: the next attempt in [backoff/2, backoff].
void Client::Impl::ScheduleReconnect() {
  backoff =
      backoff.count() == 0 ? config.reconnect_initial : std::min(config.reconnect_max, backoff * 2);
  const auto half = static_cast<uint32_t>(backoff.count() / 2);
  const milliseconds wait(half + random.Uniform(half + 1));
  next_connect_at = steady_clock::now() + wait;
}

Status Client::Connect() {
  SOTTO_RETURN_IF_ERROR(impl_->RequireRegistered());
  return impl_->TryConnect();
}

Result<wire::Response> Client::Impl::Call(wire::Request request) {
  if (!conn) return SdkError(Code::kUnavailable, SdkErr::kOffline, "not connected to the server");
  auto response = conn->Call(std::move(request));
  if (!response) {
    DropConnection();
    return SdkError(Code::kUnavailable, SdkErr::kOffline, "lost the connection to the server");
  }
  last_receive = steady_clock::now();
  if (response->status() == wire::STATUS_STORAGE_FULL) {
    // Every request that writes can get it; one error for all (outbox items stay queued).
    return SdkError(Code::kUnavailable, SdkErr::kServerStorageFull,
                    "server storage full: the server stored nothing; try again later");
  }
  if (response->status() == wire::STATUS_UNAUTHENTICATED && registered()) {
    return SdkError(Code::kFailedPrecondition, SdkErr::kNotRegistered,
                    "the server no longer knows this device (registered elsewhere?)");
  }
  return response;
}

Status Client::Impl::SendFrame(const wire::Frame& frame) {
  if (!conn) return SdkError(Code::kUnavailable, SdkErr::kOffline, "not connected to the server");
  if (!conn->Send(frame)) {
    DropConnection();
    return SdkError(Code::kUnavailable, SdkErr::kOffline, "lost the connection to the server");
  }
  return Ok();
}

void Client::Impl::HandleFrame(wire::Frame& frame, std::vector<wire::Envelope>& envelopes) {
  last_receive = steady_clock::now();
  ping_sent_at.reset();
  switch (frame.body_case()) {
    case wire::Frame::kEnvelope:
      envelopes.push_back(std::move(*frame.mutable_envelope()));
      break;
    case wire::Frame::kPing: {
      wire::Frame pong;
      pong.mutable_pong()->set_nonce(frame.ping().nonce());
      (void)SendFrame(pong);
      break;
    }
    case wire::Frame::kQueueEmpty:
      queue_empty_seen = true;
      break;
    case wire::Frame::kPrekeysLow:
      if (registered()) RefillPreKeys(frame.prekeys_low().count());
      break;
    case wire::Frame::kPresence: {
      const std::string peer = Hex(frame.presence().account_id());
      Emit(PresenceEvent{peer, HandleOf(peer), frame.presence().online(),
                         frame.presence().last_seen_ms()});
      break;
    }
    case wire::Frame::kClose:
      if (frame.close().reason() == wire::CLOSE_REPLACED) {
        replaced = true;
        spdlog::warn("the server replaced this device (the number was registered again)");
      }
      DropConnection();
      break;
    case wire::Frame::kProvision:
      if (provision_inbox.size() < kMaxProvisionInbox) {
        provision_inbox.push_back(std::move(*frame.mutable_provision()));
      }
      break;
    case wire::Frame::kPong:
    case wire::Frame::kResponse:
    case wire::Frame::kRequest:
    case wire::Frame::kDeliveryAck:
    case wire::Frame::BODY_NOT_SET:
      break;
  }
}

// PreKeysLow may be stale: the server also sends it when a device comes online with an
// empty pool, which is the case right after `register` and before the keys' upload.
// The pool is refilled only if it has not grown since the server counted it.
void Client::Impl::RefillPreKeys(uint32_t reported) {
  wire::Request request;
  request.mutable_prekey_count();
  auto response = Call(std::move(request));
  if (!response || response->status() != wire::STATUS_OK ||
      response->prekey_count().count() > reported) {
    return;
  }
  if (auto st = UploadPreKeys(kOneTimePreKeyBatch); !st) {
    spdlog::warn("one-time prekey refill failed: {}", st.error().ToString());
    return;
  }
  ++stats.prekey_refills;
}

std::chrono::milliseconds Client::NextTimer() const {
  const Impl& d = *impl_;
  const auto now = steady_clock::now();
  SteadyTime next = SteadyTime::max();
  if (!d.conn && d.registered() && !d.replaced) next = d.next_connect_at;
  if (d.conn) {
    next = std::min(next, d.next_outbox_at);
    next = std::min(next, d.ping_sent_at ? *d.ping_sent_at + d.config.keepalive_timeout
                                         : d.last_receive + d.config.keepalive_interval);
    if (d.conn->HasBufferedFrame()) next = now;
  }
  if (next == SteadyTime::max()) return milliseconds(24 * 3600 * 1000);
  return std::max(milliseconds(0), std::chrono::duration_cast<milliseconds>(next - now));
}

Status Client::Poll(milliseconds timeout, const std::function<bool()>& until) {
  Impl& d = *impl_;
  SOTTO_RETURN_IF_ERROR(d.RequireRegistered());
  const auto deadline = steady_clock::now() + timeout;
  for (;;) {
    auto now = steady_clock::now();
    if (!d.conn && !d.replaced && now >= d.next_connect_at) {
      if (auto st = d.TryConnect(); !st && IsStoreError(st.error())) {
        return st;  // the store failed, not the network
      }
    }
    if (d.conn && steady_clock::now() >= d.next_outbox_at) {
      SOTTO_RETURN_IF_ERROR(d.FlushOutbox(Impl::Due::kDueOnly));
    }
    if (until && until()) return Ok();
    now = steady_clock::now();
    const auto left =
        std::max(milliseconds(0), std::chrono::duration_cast<milliseconds>(deadline - now));
    const milliseconds wait = std::min(left, NextTimer());
    if (d.conn) {
      std::vector<wire::Envelope> envelopes;
      auto frame = d.conn->Receive(wait);
      while (frame) {
        d.HandleFrame(*frame, envelopes);
        if (!d.conn || envelopes.size() >= kMaxEnvelopesPerCommit || !d.conn->HasBufferedFrame()) {
          break;
        }
        frame = d.conn->Receive(milliseconds(0));
      }
      if (!frame && frame.error().detail != static_cast<uint16_t>(ClientErr::kTimeout)) {
        d.DropConnection();
      }
      if (!envelopes.empty()) SOTTO_RETURN_IF_ERROR(d.ProcessEnvelopes(envelopes));
      // Keepalive: ping when idle; no answer in time means the connection is dead.
      now = steady_clock::now();
      if (d.conn && d.ping_sent_at && now - *d.ping_sent_at >= d.config.keepalive_timeout) {
        d.DropConnection();
      } else if (d.conn && !d.ping_sent_at && now - d.last_receive >= d.config.keepalive_interval) {
        wire::Frame ping;
        ping.mutable_ping()->set_nonce(++d.ping_nonce);
        if (d.SendFrame(ping)) {
          d.ping_sent_at = now;
          ++d.stats.pings_sent;
        }
      }
    } else if (wait.count() > 0) {
      // Offline: wait for the reconnect timer or the deadline, whichever is first.
      std::this_thread::sleep_for(wait);
    }
    if (until && until()) return Ok();
    if (steady_clock::now() >= deadline) return Ok();
  }
}

Status Client::Sync(milliseconds timeout) {
  const bool was_connected = impl_->conn != nullptr;
  if (auto st = Connect(); !st) return st;
  // The server says QueueEmpty once per connection, after the drain that follows the
  // handshake; on a connection that was already up it may be long stale. So: handle what
  // has arrived, then start a fresh connection and wait for its QueueEmpty.
  if (was_connected) {
    SOTTO_RETURN_IF_ERROR(Poll(milliseconds(0)));
    impl_->DropConnection();
    if (auto st = impl_->TryConnect(); !st) return st;
  }
  auto drained = [this] { return impl_->queue_empty_seen && impl_->conn != nullptr; };
  SOTTO_RETURN_IF_ERROR(Poll(timeout, drained));
  if (!drained()) {
    return SdkError(Code::kUnavailable, SdkErr::kOffline,
                    "the server did not finish sending queued messages in time");
  }
  return Ok();
}

}  // namespace sotto::client
