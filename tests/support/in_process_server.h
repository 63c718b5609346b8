// An in-process server for tests and fuzz targets: ServerCore on the in-memory store,
// and gateway sessions driven through the real SessionProtocol without sockets, loops or
// threads. A connection made with Connect() skips the Noise handshake: its cipher states
// are empty, which pass bytes through (Noise §5.1), so frames travel in clear and what the
// session writes can be parsed directly. Accept() starts a real handshake instead.
// Functions the core posts to a connection run in RunPosted() (the "next loop turn"), so a
// connection is never closed inside its own callback.
//
// Thread-safety: externally synchronized (one thread drives everything; the core gets no
// maintenance thread, runs its blocking work inline, and the in-memory store runs commit
// callbacks inline).
#pragma once

#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "crypto/x25519.h"
#include "server/core.h"
#include "server/gateway.h"
#include "server/internal/session.h"
#include "store/memory_store.h"
#include "wire/device_list.h"
#include "wire/wire.h"

namespace sotto::testing {

class InProcessServer;
struct InProcessConnection;

// Records codes instead of delivering them.
class RecordingCodeSender final : public server::CodeSender {
 public:
  Status Send(const std::string& /*handle*/, const std::string& code) override {
    last_code = code;
    return Ok();
  }
  std::string last_code;
};

// A message queue that runs a test's hooks right after Subscribe and after Read (to
// commit a message at the worst moment of a connection's start). Else passes through.
class HookedQueue final : public store::MessageQueue {
 public:
  explicit HookedQueue(store::MessageQueue& inner) : inner_(inner) {}
  void Write(store::WriteRequest request, Done done) override {
    inner_.Write(std::move(request), std::move(done));
  }
  std::unique_ptr<store::QueueSubscription> Subscribe(const store::DeviceAddress& device,
                                                      store::OnNewMessage on_new) override {
    auto subscription = inner_.Subscribe(device, std::move(on_new));
    if (after_subscribe) after_subscribe(device);
    return subscription;
  }
  Result<std::vector<store::StoredMessage>> Read(const store::DeviceAddress& device,
                                                 uint64_t after_seq, size_t max,
                                                 uint64_t now_ms) override {
    auto read = inner_.Read(device, after_seq, max, now_ms);
    if (after_read) after_read(device);
    return read;
  }
  Result<uint32_t> Depth(const store::DeviceAddress& device) override {
    return inner_.Depth(device);
  }
  Result<uint64_t> PurgeExpired(uint64_t now_ms, size_t max) override {
    return inner_.PurgeExpired(now_ms, max);
  }
  Status DeleteDevice(const store::DeviceAddress& device) override {
    return inner_.DeleteDevice(device);
  }
  store::QueueStats stats() const override { return inner_.stats(); }

  std::function<void(const store::DeviceAddress&)> after_subscribe;
  std::function<void(const store::DeviceAddress&)> after_read;

 private:
  store::MessageQueue& inner_;
};

// The in-memory store whose account reads fail while `fail_account_reads` is set (a
// broken disk, for the error mapping), with a HookedQueue. Everything else passes through.
class FaultInjectingStore final : public store::Store, public store::AccountStore {
 public:
  FaultInjectingStore() : inner_(store::NewMemoryStore()) {}
  store::AccountStore& accounts() override { return *this; }
  store::KeyStore& keys() override { return inner_->keys(); }
  store::MessageQueue& queue() override { return queue_; }
  HookedQueue& hooked_queue() { return queue_; }
  store::GroupStore& groups() override { return inner_->groups(); }
  void Close() override { inner_->Close(); }
  store::StorageHealth storage_health() const override { return inner_->storage_health(); }

  Result<std::optional<store::AccountRecord>> Get(const store::AccountId& id) override {
    if (fail_account_reads) return Broken();
    return inner_->accounts().Get(id);
  }
  Result<std::optional<store::AccountId>> FindByHandle(std::string_view handle) override {
    if (fail_account_reads) return Broken();
    return inner_->accounts().FindByHandle(handle);
  }
  Result<std::optional<store::DeviceAddress>> FindByNoiseKey(const store::StaticKey& key) override {
    if (fail_account_reads) return Broken();
    return inner_->accounts().FindByNoiseKey(key);
  }
  Result<uint64_t> Put(const store::AccountRecord& account) override {
    return inner_->accounts().Put(account);
  }
  Status AddContact(const store::AccountId& owner, const store::AccountId& contact) override {
    return inner_->accounts().AddContact(owner, contact);
  }
  Status RemoveContact(const store::AccountId& owner, const store::AccountId& contact) override {
    return inner_->accounts().RemoveContact(owner, contact);
  }
  Result<bool> HasContact(const store::AccountId& owner, const store::AccountId& contact) override {
    if (fail_account_reads) return Broken();
    return inner_->accounts().HasContact(owner, contact);
  }

  bool fail_account_reads = false;

 private:
  static tl::unexpected<Error> Broken() {
    return store::StoreError(Code::kInternal, store::StoreErr::kBackend, "injected read failure");
  }
  std::unique_ptr<store::Store> inner_;
  HookedQueue queue_{inner_->queue()};
};

class InProcessLink final : public server::internal::SessionLink,
                            public std::enable_shared_from_this<InProcessLink> {
 public:
  InProcessLink(InProcessServer* owner, InProcessConnection* connection)
      : server_(owner), conn(connection) {}
  void Post(std::function<void(server::internal::SessionContext&)> fn) override;

 private:
  InProcessServer* server_;

 public:
  InProcessConnection* conn;  // nullptr once the connection closed
};

struct InProcessConnection final : server::internal::SessionOutput {
  explicit InProcessConnection(InProcessServer* server) : owner(server) {}
  bool WriteMessage(ByteSpan noise_message) override {
    written.emplace_back(noise_message.begin(), noise_message.end());
    return true;
  }
  // Written frames are taken at once: nothing ever waits in a write queue.
  size_t QueuedBytes() const override { return 0; }
  std::shared_ptr<server::internal::SessionLink> MakeLink() override {
    links.push_back(std::make_shared<InProcessLink>(owner, this));
    return links.back();
  }
  void CloseFromSession(server::CloseCause cause) override { close_requested = cause; }

  // The frames written since the last call, parsed (only for clear connections).
  std::vector<wire::Frame> TakeFrames() {
    std::vector<wire::Frame> out;
    for (const Bytes& m : written) {
      wire::Frame f;
      if (wire::ParseFrame(m, f)) out.push_back(std::move(f));
    }
    written.clear();
    return out;
  }

  InProcessServer* owner;
  server::internal::SessionState state;
  std::vector<Bytes> written;  // Noise messages the session sent
  std::optional<server::CloseCause> closed;
  std::optional<server::CloseCause> close_requested;  // by the core; done in RunPosted
  std::vector<std::shared_ptr<InProcessLink>> links;
};

class InProcessServer {
 public:
  explicit InProcessServer(const server::CoreOptions& options = {},
                           const server::GatewayLimits& limits = {})
      : InProcessServer(std::make_shared<FaultInjectingStore>(), options, limits) {}
  // A server on `store`, which other servers of the test may share: nodes of one cluster.
  explicit InProcessServer(std::shared_ptr<FaultInjectingStore> store,
                           const server::CoreOptions& options = {},
                           const server::GatewayLimits& limits = {})
      : store_(std::move(store)),
        codes_(std::move(*server::VerificationCodes::Create(server::CodeOptions{}))),
        core_(std::make_unique<server::ServerCore>(Inline(options), *store_, *codes_, sender_,
                                                   nullptr)) {
    server::GatewayOptions g;
    g.limits = limits;
    g.server_static = noise::KeyPair::Generate(crypto::SystemRandom());
    g.core = core_.get();
    gateway_ = server::Gateway::WithoutListeners(std::move(g));
    protocol_ = std::make_unique<server::internal::SessionProtocol>(*gateway_, loop_metrics_);
  }
  ~InProcessServer() {
    for (auto& c : connections_) Close(*c, server::CloseCause::kShutdown);
  }
  InProcessServer(const InProcessServer&) = delete;
  InProcessServer& operator=(const InProcessServer&) = delete;

  // A connection whose handshake is taken as done with Noise static key `key`, in clear;
  // authenticated (and its queue drained) if `key` is a registered device's.
  InProcessConnection& Connect(const store::StaticKey& key) {
    InProcessConnection& c = NewConnection();
    c.state.peer = Loopback();
    c.state.open = true;
    c.state.remote_static = key;
    if (auto device = core_->Authenticate(key)) {
      protocol_->Authenticate(c.state, *device, c);
      server::internal::SessionContext ctx{*protocol_, c.state, c};
      core_->OnOnline(ctx);
    }
    RunPosted();
    return c;
  }
  // A connection at the start of a real Noise handshake (as the gateway accepts one).
  InProcessConnection& Accept() {
    InProcessConnection& c = NewConnection();
    protocol_->Begin(c.state, Loopback());
    return c;
  }

  // Hands one Noise message to the session, as the gateway does; closes the connection if
  // the verdict says so. Advances the clock by 20 ms (the default request rate's refill).
  server::internal::Verdict Deliver(InProcessConnection& c, ByteSpan message) {
    if (c.closed)
      return server::internal::Verdict::Close(*c.closed, server::internal::SendClose::kNo);
    now_ms_ += 20;
    bool became_open = false;
    server::internal::Verdict v = protocol_->OnMessage(c.state, message, c, now_ms_, became_open);
    if (!v.keep) {
      if (v.send_close == server::internal::SendClose::kYes) {
        protocol_->SendCloseFrame(c.state, v.cause, c);
      }
      Close(c, v.cause);
    }
    RunPosted();
    return v;
  }

  // Sends `request` on a clear connection; returns its response, if one was sent.
  std::optional<wire::Response> Call(InProcessConnection& c, const wire::Request& request) {
    wire::Frame frame;
    *frame.mutable_request() = request;
    Bytes bytes;
    wire::SerializeFrame(frame, bytes);
    Deliver(c, bytes);
    std::optional<wire::Response> out;
    for (wire::Frame& f : c.TakeFrames()) {
      if (f.has_response() && f.response().id() == request.id())
        out = f.response();
      else
        other_frames.push_back(std::move(f));
    }
    return out;
  }

  // Registers `handle` with the connection's key through request_code and register.
  std::optional<wire::RegisterResponse> Register(InProcessConnection& c,
                                                 const std::string& handle) {
    wire::Request ask;
    ask.set_id(1);
    ask.mutable_request_code()->set_handle(handle);
    auto asked = Call(c, ask);
    if (!asked || asked->status() != wire::STATUS_OK) return std::nullopt;
    wire::Request reg;
    reg.set_id(2);
    reg.mutable_register_()->set_handle(handle);
    reg.mutable_register_()->set_code(sender_.last_code);
    auto registered = Call(c, reg);
    if (!registered || registered->status() != wire::STATUS_OK) return std::nullopt;
    return registered->register_();
  }

  // Runs what the core posted to connections, including what those functions post.
  void RunPosted() {
    for (size_t ran = 0; !posted_.empty() && ran < kMaxPostedPerTurn; ++ran) {
      auto [link, fn] = std::move(posted_.front());
      posted_.pop_front();
      InProcessConnection* c = link->conn;
      if (c == nullptr || c->closed) continue;
      server::internal::SessionContext ctx{*protocol_, c->state, *c};
      fn(ctx);
      if (c->close_requested && !c->closed) {
        protocol_->SendCloseFrame(c->state, *c->close_requested, *c);
        Close(*c, *c->close_requested);
      }
    }
  }

  void Close(InProcessConnection& c, server::CloseCause cause) {
    if (c.closed) return;
    c.closed = cause;
    protocol_->OnClosed(c.state);
    for (auto& link : c.links) link->conn = nullptr;
  }

  void Enqueue(std::shared_ptr<InProcessLink> link,
               std::function<void(server::internal::SessionContext&)> fn) {
    posted_.emplace_back(std::move(link), std::move(fn));
  }

  server::ServerCore& core() { return *core_; }
  FaultInjectingStore& store() { return *store_; }
  std::shared_ptr<FaultInjectingStore> shared_store() { return store_; }
  server::internal::SessionProtocol& protocol() { return *protocol_; }
  const server::LoopMetrics& loop_metrics() const { return loop_metrics_; }
  const noise::KeyPair& server_static() const { return gateway_->options().server_static; }
  const std::string& last_code() const { return sender_.last_code; }

  std::vector<wire::Frame> other_frames;  // frames Call() saw besides its response

 private:
  // Bounds one turn, so functions that keep posting cannot spin forever.
  static constexpr size_t kMaxPostedPerTurn = 100'000;

  // Blocking store work runs inline (io_threads 0): everything stays on this one thread,
  // and a response the pool would send arrives in the same Deliver().
  static server::CoreOptions Inline(server::CoreOptions options) {
    options.store.io_threads = 0;
    return options;
  }

  static net::IpKey Loopback() {
    auto address = net::ParseHostPort("127.0.0.1:1");
    return address ? address->Key() : net::IpKey{};
  }

  InProcessConnection& NewConnection() {
    connections_.push_back(std::make_unique<InProcessConnection>(this));
    return *connections_.back();
  }

  // Shared with the other servers built on it (shared_store()); the last one frees it.
  std::shared_ptr<FaultInjectingStore> store_;
  std::unique_ptr<server::VerificationCodes> codes_;
  RecordingCodeSender sender_;
  std::unique_ptr<server::ServerCore> core_;
  std::unique_ptr<server::Gateway> gateway_;
  server::LoopMetrics loop_metrics_;
  std::unique_ptr<server::internal::SessionProtocol> protocol_;
  uint64_t now_ms_ = 1'000'000;
  std::deque<std::pair<std::shared_ptr<InProcessLink>,
                       std::function<void(server::internal::SessionContext&)>>>
      posted_;
  std::vector<std::unique_ptr<InProcessConnection>> connections_;
};

inline void InProcessLink::Post(std::function<void(server::internal::SessionContext&)> fn) {
  if (conn == nullptr) return;  // closed: dropped, as on a real connection
  server_->Enqueue(shared_from_this(), std::move(fn));
}

// The 33-byte Signal form (0x05 || key) of an identity's public key.
inline std::string IdentityKey33(const crypto::X25519Private& identity) {
  const crypto::X25519Public pub = crypto::PublicKeyOf(identity);
  std::string out(1, '\x05');
  out.append(reinterpret_cast<const char*>(pub.data()), pub.size());
  return out;
}

// An upload_keys request: `identity`, registration id `registration_id`, a signed prekey
// really signed by `identity`, and `one_time` one-time prekeys (ids 1..).
inline wire::Request UploadKeysRequest(const crypto::X25519Private& identity,
                                       uint32_t registration_id, int one_time,
                                       crypto::Random& random) {
  wire::Request r;
  wire::UploadKeysRequest* u = r.mutable_upload_keys();
  u->set_identity_key(IdentityKey33(identity));
  u->set_registration_id(registration_id);
  const std::string spk = IdentityKey33(crypto::GeneratePrivateKey(random));
  const crypto::Signature sig = crypto::Sign(identity, AsBytes(spk), random);
  u->mutable_signed_prekey()->set_id(1);
  u->mutable_signed_prekey()->set_public_key(spk);
  u->mutable_signed_prekey()->set_signature(reinterpret_cast<const char*>(sig.data()), sig.size());
  for (int i = 0; i < one_time; ++i) {
    wire::OneTimePreKey* k = u->add_one_time_prekeys();
    k->set_id(static_cast<uint32_t>(i + 1));
    k->set_public_key(IdentityKey33(crypto::GeneratePrivateKey(random)));
  }
  return r;
}

// A publish_device_list request naming only the primary (device 1, `identity`'s key) of
// `account`, at `version`, signed by `identity` (docs/devices.md "The signed bytes").
inline wire::Request PublishPrimaryOnly(const std::string& account, uint64_t version,
                                        const crypto::X25519Private& identity,
                                        crypto::Random& random) {
  wire::DeviceList list;
  list.set_account_id(account);
  list.set_version(version);
  list.set_timestamp_ms(1);
  wire::DeviceListEntry* e = list.add_devices();
  e->set_device_id(1);
  e->set_identity_key(IdentityKey33(identity));
  wire::Request r;
  wire::SignedDeviceList* signed_list = r.mutable_publish_device_list()->mutable_list();
  signed_list->set_list(list.SerializeAsString());
  const crypto::Signature sig =
      crypto::Sign(identity, wire::DeviceListSignedBytes(signed_list->list()), random);
  signed_list->set_signature(reinterpret_cast<const char*>(sig.data()), sig.size());
  return r;
}

}  // namespace sotto::testing
