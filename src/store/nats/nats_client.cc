#include "store/nats/nats_client.h"

#include <nats/nats.h>

#include <atomic>
#include <cstdlib>
#include <utility>

namespace sotto::store::nats {
namespace {

constexpr int64_t kNanosPerMilli = 1'000'000;
// A URL buffer for natsConnection_GetConnectedUrl; nats URLs of our config are short.
constexpr size_t kMaxUrlBytes = 256;
constexpr const char* kKvOperationHeader = "KV-Operation";

tl::unexpected<Error> NatsError(NatsErr detail, const char* message) {
  Code code = Code::kInternal;
  switch (detail) {
    case NatsErr::kConnect:
    case NatsErr::kTimeout:
    case NatsErr::kNoResponders:
    case NatsErr::kClosed:
    case NatsErr::kInsufficientPeers:
      code = Code::kUnavailable;
      break;
    case NatsErr::kWrongLastSequence:
      code = Code::kFailedPrecondition;
      break;
    case NatsErr::kNotFound:
      code = Code::kNotFound;
      break;
    case NatsErr::kSubjectFull:
      code = Code::kResourceExhausted;
      break;
    case NatsErr::kStreamConfig:
    case NatsErr::kInvalid:
      code = Code::kInvalidArgument;
      break;
    case NatsErr::kServer:
    case NatsErr::kLibrary:
    case NatsErr::kBadReply:
      code = Code::kInternal;
      break;
  }
  return MakeError(code, Module::kNats, static_cast<uint16_t>(detail), message);
}

// Maps a nats.c status and JetStream error code to our error. `what` names the call.
tl::unexpected<Error> FromNats(natsStatus s, jsErrCode js_err, const char* what) {
  switch (static_cast<int>(js_err)) {
    case JSStreamWrongLastSequenceErr:
    case JSStreamWrongLastMsgIDErr:
    case JSStreamSequenceNotMatchErr:
      return NatsError(NatsErr::kWrongLastSequence, what);
    case JSNoMessageFoundErr:
    case JSSequenceNotFoundErr:
    case JSStreamNotFoundErr:
      return NatsError(NatsErr::kNotFound, what);
    case JSStreamStoreFailedErr:
      return NatsError(NatsErr::kSubjectFull, what);
    case JSInsufficientResourcesErr:
    case JSClusterNoPeersErr:
      return NatsError(NatsErr::kInsufficientPeers, what);
    case JSClusterNotAvailErr:
    case JSClusterNotLeaderErr:
      return NatsError(NatsErr::kNoResponders, what);
    case JSStreamCreateErr:
    case JSStreamUpdateErr:
    case JSStreamNameExistErr:
    case JSStreamSubjectOverlapErr:
    case JSStreamInvalidErr:
    case JSStreamReplicasNotUpdatableErr:
      return NatsError(NatsErr::kStreamConfig, what);
    default:
      break;
  }
  switch (s) {
    case NATS_TIMEOUT:
      return NatsError(NatsErr::kTimeout, what);
    case NATS_NO_RESPONDERS:
      return NatsError(NatsErr::kNoResponders, what);
    case NATS_CONNECTION_CLOSED:
      return NatsError(NatsErr::kClosed, what);
    case NATS_NO_SERVER:
      return NatsError(NatsErr::kConnect, what);
    case NATS_NOT_FOUND:
      return NatsError(NatsErr::kNotFound, what);
    case NATS_INVALID_ARG:
    case NATS_INVALID_SUBJECT:
      return NatsError(NatsErr::kInvalid, what);
    default:
      break;
  }
  if (js_err != 0) return NatsError(NatsErr::kServer, what);
  return NatsError(NatsErr::kLibrary, what);
}

struct MsgDeleter {
  void operator()(natsMsg* m) const { natsMsg_Destroy(m); }
};
using MsgPtr = std::unique_ptr<natsMsg, MsgDeleter>;

struct PubAckDeleter {
  void operator()(jsPubAck* p) const { jsPubAck_Destroy(p); }
};

struct StreamInfoDeleter {
  void operator()(jsStreamInfo* p) const { jsStreamInfo_Destroy(p); }
};

// A natsMsg for `subject` carrying `data` and `options.headers`.
Result<MsgPtr> BuildMsg(std::string_view subject, std::span<const uint8_t> data,
                        const PublishOptions& options) {
  const std::string subj(subject);
  natsMsg* raw = nullptr;
  natsStatus s =
      natsMsg_Create(&raw, subj.c_str(), nullptr, reinterpret_cast<const char*>(data.data()),
                     static_cast<int>(data.size()));
  if (s != NATS_OK) return FromNats(s, static_cast<jsErrCode>(0), "nats: cannot build a message");
  MsgPtr msg(raw);
  for (const auto& [key, value] : options.headers) {
    s = natsMsgHeader_Set(msg.get(), key.c_str(), value.c_str());
    if (s != NATS_OK) return FromNats(s, static_cast<jsErrCode>(0), "nats: bad header");
  }
  return msg;
}

// jsPubOptions pointing into `options` (which must outlive the result's use).
jsPubOptions PubOptions(const PublishOptions& options) {
  jsPubOptions po;
  jsPubOptions_Init(&po);
  if (!options.msg_id.empty()) po.MsgId = options.msg_id.c_str();
  if (options.expected_last_subject_sequence) {
    if (*options.expected_last_subject_sequence == 0) {
      po.ExpectNoMessage = true;
    } else {
      po.ExpectLastSubjectSeq = *options.expected_last_subject_sequence;
    }
  }
  return po;
}

Result<StoredMsg> ToStoredMsg(natsMsg* msg) {
  StoredMsg out;
  const char* value = nullptr;
  if (natsMsgHeader_Get(msg, "Nats-Subject", &value) == NATS_OK && value != nullptr) {
    out.subject = value;
  } else if (natsMsg_GetSubject(msg) != nullptr) {
    out.subject = natsMsg_GetSubject(msg);
  }
  if (natsMsgHeader_Get(msg, "Nats-Sequence", &value) == NATS_OK && value != nullptr) {
    out.sequence = std::strtoull(value, nullptr, 10);
  }
  const auto* data = reinterpret_cast<const uint8_t*>(natsMsg_GetData(msg));
  out.data.assign(data, data + natsMsg_GetDataLength(msg));
  const char** keys = nullptr;
  int count = 0;
  if (natsMsgHeader_Keys(msg, &keys, &count) == NATS_OK) {
    for (int i = 0; i < count; ++i) {
      if (natsMsgHeader_Get(msg, keys[i], &value) == NATS_OK && value != nullptr) {
        out.headers.emplace_back(keys[i], value);
      }
    }
    free(static_cast<void*>(keys));  // nats.c allocates the array with malloc
  }
  return out;
}

}  // namespace

bool IsNatsErr(const Error& error, NatsErr detail) {
  return error.module == Module::kNats && error.detail == static_cast<uint16_t>(detail);
}

std::string_view StoredMsg::Header(std::string_view name) const {
  for (const auto& [key, value] : headers) {
    if (key == name) return value;
  }
  return {};
}

struct NatsClient::State {
  natsConnection* nc = nullptr;
  jsCtx* js = nullptr;
  AsyncAckHandler on_async_ack;
  int64_t request_timeout_ms = 0;
  std::atomic<uint64_t> reconnects{0};

  ~State() {
    if (js != nullptr) jsCtx_Destroy(js);
    if (nc != nullptr) {
      natsConnection_Close(nc);
      natsConnection_Destroy(nc);
    }
  }

  static void OnReconnected(natsConnection* /*nc*/, void* closure) {
    static_cast<State*>(closure)->reconnects.fetch_add(1, std::memory_order_relaxed);
  }

  static void OnAck(jsCtx* /*js*/, natsMsg* msg, jsPubAck* pa, jsPubAckErr* pae, void* closure) {
    auto* self = static_cast<State*>(closure);
    const char* id = nullptr;
    if (natsMsgHeader_Get(msg, "Nats-Msg-Id", &id) != NATS_OK || id == nullptr) id = "";
    if (self->on_async_ack) {
      if (pa != nullptr) {
        self->on_async_ack(id, PubAck{pa->Sequence, pa->Duplicate});
      } else if (pae != nullptr) {
        self->on_async_ack(id, FromNats(pae->Err, pae->ErrCode, "nats: async publish failed"));
      }
    }
    natsMsg_Destroy(msg);
  }
};

NatsClient::NatsClient(std::unique_ptr<State> state) : state_(std::move(state)) {}
NatsClient::~NatsClient() = default;

Result<std::unique_ptr<NatsClient>> NatsClient::Connect(const ClientOptions& options,
                                                        AsyncAckHandler on_async_ack) {
  if (options.servers.empty()) return NatsError(NatsErr::kInvalid, "nats: no server given");
  auto state = std::make_unique<State>();
  state->on_async_ack = std::move(on_async_ack);
  state->request_timeout_ms = options.request_timeout_ms;
  natsOptions* raw_opts = nullptr;
  if (natsOptions_Create(&raw_opts) != NATS_OK) {
    return NatsError(NatsErr::kLibrary, "nats: cannot create options");
  }
  std::unique_ptr<natsOptions, void (*)(natsOptions*)> opts(raw_opts, natsOptions_Destroy);
  std::vector<const char*> urls;
  urls.reserve(options.servers.size());
  for (const std::string& url : options.servers) urls.push_back(url.c_str());
  natsStatus s = natsOptions_SetServers(opts.get(), urls.data(), static_cast<int>(urls.size()));
  if (s == NATS_OK) s = natsOptions_SetNoRandomize(opts.get(), true);
  if (s == NATS_OK && !options.name.empty())
    s = natsOptions_SetName(opts.get(), options.name.c_str());
  if (s == NATS_OK) s = natsOptions_SetTimeout(opts.get(), options.connect_timeout_ms);
  if (s == NATS_OK) s = natsOptions_SetMaxReconnect(opts.get(), options.max_reconnect);
  if (s == NATS_OK) s = natsOptions_SetReconnectWait(opts.get(), options.reconnect_wait_ms);
  if (s == NATS_OK) {
    s = natsOptions_SetReconnectedCB(opts.get(), &State::OnReconnected, state.get());
  }
  if (s != NATS_OK) return FromNats(s, static_cast<jsErrCode>(0), "nats: bad client options");
  s = natsConnection_Connect(&state->nc, opts.get());
  if (s != NATS_OK) {
    state->nc = nullptr;
    return NatsError(NatsErr::kConnect, "nats: no server could be reached");
  }
  jsOptions jo;
  jsOptions_Init(&jo);
  jo.Wait = options.request_timeout_ms;
  jo.PublishAsync.MaxPending = options.max_pending_async;
  jo.PublishAsync.StallWait = options.request_timeout_ms;
  jo.PublishAsync.AckHandler = &State::OnAck;
  jo.PublishAsync.AckHandlerClosure = state.get();
  s = natsConnection_JetStream(&state->js, state->nc, &jo);
  if (s != NATS_OK) {
    state->js = nullptr;
    return FromNats(s, static_cast<jsErrCode>(0), "nats: cannot create a JetStream context");
  }
  return std::unique_ptr<NatsClient>(new NatsClient(std::move(state)));
}

std::string NatsClient::ConnectedUrl() const {
  char buf[kMaxUrlBytes] = {};
  if (natsConnection_GetConnectedUrl(state_->nc, buf, sizeof buf) != NATS_OK) return {};
  return buf;
}

uint64_t NatsClient::reconnects() const {
  return state_->reconnects.load(std::memory_order_relaxed);
}

Status NatsClient::AddOrUpdateStream(const StreamConfig& config) {
  jsStreamConfig cfg;
  jsStreamConfig_Init(&cfg);
  cfg.Name = config.name.c_str();
  std::vector<const char*> subjects;
  subjects.reserve(config.subjects.size());
  for (const std::string& subject : config.subjects) subjects.push_back(subject.c_str());
  cfg.Subjects = subjects.data();
  cfg.SubjectsLen = static_cast<int>(subjects.size());
  cfg.Storage = config.storage == Storage::kFile ? js_FileStorage : js_MemoryStorage;
  cfg.Replicas = config.replicas;
  cfg.MaxMsgsPerSubject = config.max_msgs_per_subject;
  cfg.DiscardNewPerSubject = config.discard_new_per_subject;
  if (config.discard_new_per_subject) cfg.Discard = js_DiscardNew;
  cfg.MaxBytes = config.max_bytes;
  cfg.MaxAge = config.max_age_ms * kNanosPerMilli;
  cfg.Duplicates = config.duplicate_window_ms * kNanosPerMilli;
  cfg.AllowDirect = config.allow_direct;
  jsRePublish republish{};
  if (!config.republish_destination.empty()) {
    republish.Source = config.republish_source.c_str();
    republish.Destination = config.republish_destination.c_str();
    republish.HeadersOnly = config.republish_headers_only;
    cfg.RePublish = &republish;
  }
  jsStreamInfo* raw = nullptr;
  jsErrCode err = static_cast<jsErrCode>(0);
  natsStatus s = js_AddStream(&raw, state_->js, &cfg, nullptr, &err);
  if (s != NATS_OK && err == JSStreamNameExistErr) {
    err = static_cast<jsErrCode>(0);
    s = js_UpdateStream(&raw, state_->js, &cfg, nullptr, &err);
  }
  std::unique_ptr<jsStreamInfo, StreamInfoDeleter> info(raw);
  if (s != NATS_OK) return FromNats(s, err, "nats: stream add/update failed");
  return Ok();
}

Status NatsClient::DeleteStream(std::string_view name) {
  const std::string stream(name);
  jsErrCode err = static_cast<jsErrCode>(0);
  const natsStatus s = js_DeleteStream(state_->js, stream.c_str(), nullptr, &err);
  if (s != NATS_OK) return FromNats(s, err, "nats: stream delete failed");
  return Ok();
}

Result<StreamState> NatsClient::GetStreamState(std::string_view name) {
  const std::string stream(name);
  jsStreamInfo* raw = nullptr;
  jsErrCode err = static_cast<jsErrCode>(0);
  const natsStatus s = js_GetStreamInfo(&raw, state_->js, stream.c_str(), nullptr, &err);
  std::unique_ptr<jsStreamInfo, StreamInfoDeleter> info(raw);
  if (s != NATS_OK) return FromNats(s, err, "nats: stream info failed");
  StreamState out;
  out.messages = info->State.Msgs;
  out.bytes = info->State.Bytes;
  out.first_sequence = info->State.FirstSeq;
  out.last_sequence = info->State.LastSeq;
  out.subjects = info->State.NumSubjects;
  if (info->Cluster != nullptr) {
    if (info->Cluster->Leader != nullptr) {
      out.leader = info->Cluster->Leader;
      out.replicas_current = 1;
    }
    out.replicas = out.replicas_current + info->Cluster->ReplicasLen;
    for (int i = 0; i < info->Cluster->ReplicasLen; ++i) {
      const jsPeerInfo* peer = info->Cluster->Replicas[i];
      if (peer->Current && !peer->Offline) ++out.replicas_current;
    }
  } else {
    out.replicas = 1;
    out.replicas_current = 1;
  }
  return out;
}

Result<PubAck> NatsClient::Publish(std::string_view subject, std::span<const uint8_t> data,
                                   const PublishOptions& options) {
  SOTTO_ASSIGN_OR_RETURN(MsgPtr msg, BuildMsg(subject, data, options));
  jsPubOptions po = PubOptions(options);
  jsPubAck* raw = nullptr;
  jsErrCode err = static_cast<jsErrCode>(0);
  const natsStatus s = js_PublishMsg(&raw, state_->js, msg.get(), &po, &err);
  std::unique_ptr<jsPubAck, PubAckDeleter> ack(raw);
  if (s != NATS_OK) return FromNats(s, err, "nats: publish failed");
  return PubAck{ack->Sequence, ack->Duplicate};
}

Status NatsClient::PublishAsync(std::string_view subject, std::span<const uint8_t> data,
                                const PublishOptions& options) {
  SOTTO_ASSIGN_OR_RETURN(MsgPtr msg, BuildMsg(subject, data, options));
  jsPubOptions po = PubOptions(options);
  natsMsg* raw = msg.release();
  // On success the library owns the message and sets `raw` to NULL; on failure it is ours.
  const natsStatus s = js_PublishMsgAsync(state_->js, &raw, &po);
  if (raw != nullptr) natsMsg_Destroy(raw);
  if (s != NATS_OK) return FromNats(s, static_cast<jsErrCode>(0), "nats: async publish failed");
  return Ok();
}

Status NatsClient::PublishAsyncComplete(int64_t timeout_ms) {
  jsPubOptions po;
  jsPubOptions_Init(&po);
  po.MaxWait = timeout_ms;
  const natsStatus s = js_PublishAsyncComplete(state_->js, &po);
  if (s != NATS_OK) return FromNats(s, static_cast<jsErrCode>(0), "nats: async publishes pending");
  return Ok();
}

Result<StoredMsg> NatsClient::DirectGet(std::string_view stream, const DirectGetRequest& request) {
  const std::string name(stream);
  jsDirectGetMsgOptions dg;
  jsDirectGetMsgOptions_Init(&dg);
  dg.Sequence = request.sequence;
  if (!request.last_by_subject.empty()) dg.LastBySubject = request.last_by_subject.c_str();
  if (!request.next_by_subject.empty()) dg.NextBySubject = request.next_by_subject.c_str();
  natsMsg* raw = nullptr;
  const natsStatus s = js_DirectGetMsg(&raw, state_->js, name.c_str(), nullptr, &dg);
  MsgPtr msg(raw);
  if (s != NATS_OK) return FromNats(s, static_cast<jsErrCode>(0), "nats: direct get failed");
  auto out = ToStoredMsg(msg.get());
  if (out && out->sequence == 0)
    return NatsError(NatsErr::kBadReply, "nats: direct get: no sequence");
  return out;
}

Result<StoredMsg> NatsClient::GetMsg(std::string_view stream, uint64_t sequence) {
  const std::string name(stream);
  natsMsg* raw = nullptr;
  jsErrCode err = static_cast<jsErrCode>(0);
  const natsStatus s = js_GetMsg(&raw, state_->js, name.c_str(), sequence, nullptr, &err);
  MsgPtr msg(raw);
  if (s != NATS_OK) return FromNats(s, err, "nats: get message failed");
  auto out = ToStoredMsg(msg.get());
  if (out) out->sequence = sequence;
  return out;
}

Status NatsClient::DeleteMsg(std::string_view stream, uint64_t sequence) {
  const std::string name(stream);
  jsErrCode err = static_cast<jsErrCode>(0);
  const natsStatus s = js_DeleteMsg(state_->js, name.c_str(), sequence, nullptr, &err);
  if (s == NATS_OK) return Ok();
  // A clustered stream answers a delete of a missing sequence with the generic 10057
  // (JSStreamMsgDeleteFailed, "no message found"), not 10043 as a single server does; a
  // leader read tells "already gone" from other failures without parsing the text.
  if (err == JSStreamMsgDeleteFailed) {
    auto still = GetMsg(stream, sequence);
    if (!still && IsNatsErr(still.error(), NatsErr::kNotFound)) {
      return NatsError(NatsErr::kNotFound, "nats: message already deleted");
    }
  }
  return FromNats(s, err, "nats: delete message failed");
}

struct Subscription::Impl {
  natsSubscription* sub = nullptr;
  MessageHandler handler;

  ~Impl() {
    if (sub != nullptr) {
      natsSubscription_Unsubscribe(sub);
      natsSubscription_Destroy(sub);
    }
  }

  static void OnMsg(natsConnection* /*nc*/, natsSubscription* /*sub*/, natsMsg* raw,
                    void* closure) {
    MsgPtr msg(raw);
    auto stored = ToStoredMsg(msg.get());
    if (stored) static_cast<Impl*>(closure)->handler(std::move(*stored));
  }
};

Subscription::Subscription(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Subscription::Subscription(Subscription&& other) noexcept = default;
Subscription& Subscription::operator=(Subscription&& other) noexcept = default;
Subscription::~Subscription() = default;

Status NatsClient::PublishCore(std::string_view subject, std::span<const uint8_t> data) {
  const std::string subj(subject);
  const natsStatus s =
      natsConnection_Publish(state_->nc, subj.c_str(), data.data(), static_cast<int>(data.size()));
  if (s != NATS_OK) return FromNats(s, static_cast<jsErrCode>(0), "nats: core publish failed");
  return Ok();
}

Result<Subscription> NatsClient::Subscribe(std::string_view subject, MessageHandler handler) {
  const std::string subj(subject);
  auto impl = std::make_unique<Subscription::Impl>();
  impl->handler = std::move(handler);
  natsStatus s = natsConnection_Subscribe(&impl->sub, state_->nc, subj.c_str(),
                                          &Subscription::Impl::OnMsg, impl.get());
  if (s != NATS_OK) {
    impl->sub = nullptr;
    return FromNats(s, static_cast<jsErrCode>(0), "nats: subscribe failed");
  }
  // The round trip makes sure the server registered the interest before we return.
  s = natsConnection_FlushTimeout(state_->nc, state_->request_timeout_ms);
  if (s != NATS_OK) return FromNats(s, static_cast<jsErrCode>(0), "nats: subscribe not confirmed");
  return Subscription(std::move(impl));
}

Result<KvBucket> NatsClient::CreateKeyValue(std::string_view bucket, int replicas, int history,
                                            Storage storage) {
  const std::string name(bucket);
  kvConfig cfg;
  kvConfig_Init(&cfg);
  cfg.Bucket = name.c_str();
  cfg.Replicas = replicas;
  cfg.History = static_cast<uint8_t>(history);
  cfg.StorageType = storage == Storage::kFile ? js_FileStorage : js_MemoryStorage;
  kvStore* kv = nullptr;
  const natsStatus s = js_CreateKeyValue(&kv, state_->js, &cfg);
  if (s != NATS_OK) return FromNats(s, static_cast<jsErrCode>(0), "nats: bucket create failed");
  kvStore_Destroy(kv);  // reads and writes go through the stream calls below
  return KvBucket(this, name);
}

std::string KvBucket::Subject(std::string_view key) const {
  return "$KV." + name_ + "." + std::string(key);
}

std::string KvBucket::Stream() const { return "KV_" + name_; }

Result<KvEntry> KvBucket::Get(std::string_view key) {
  DirectGetRequest req;
  req.last_by_subject = Subject(key);
  SOTTO_ASSIGN_OR_RETURN(StoredMsg msg, client_->DirectGet(Stream(), req));
  const std::string_view op = msg.Header(kKvOperationHeader);
  if (op == "DEL" || op == "PURGE") return NatsError(NatsErr::kNotFound, "nats: key deleted");
  return KvEntry{std::move(msg.data), msg.sequence};
}

Result<uint64_t> KvBucket::Create(std::string_view key, std::span<const uint8_t> value) {
  PublishOptions po;
  po.expected_last_subject_sequence = 0;
  auto ack = client_->Publish(Subject(key), value, po);
  if (!ack && IsNatsErr(ack.error(), NatsErr::kWrongLastSequence)) {
    // A deleted key still has its delete marker as last message: create over it.
    DirectGetRequest req;
    req.last_by_subject = Subject(key);
    auto last = client_->DirectGet(Stream(), req);
    if (last) {
      const std::string_view op = last->Header(kKvOperationHeader);
      if (op == "DEL" || op == "PURGE") return Update(key, value, last->sequence);
    }
  }
  if (!ack) return tl::unexpected<Error>(ack.error());
  return ack->sequence;
}

Result<uint64_t> KvBucket::Update(std::string_view key, std::span<const uint8_t> value,
                                  uint64_t expected_revision) {
  PublishOptions po;
  po.expected_last_subject_sequence = expected_revision;
  SOTTO_ASSIGN_OR_RETURN(PubAck ack, client_->Publish(Subject(key), value, po));
  return ack.sequence;
}

Result<uint64_t> KvBucket::Put(std::string_view key, std::span<const uint8_t> value) {
  SOTTO_ASSIGN_OR_RETURN(PubAck ack, client_->Publish(Subject(key), value));
  return ack.sequence;
}

Status KvBucket::Delete(std::string_view key, uint64_t expected_revision) {
  PublishOptions po;
  po.expected_last_subject_sequence = expected_revision;
  po.headers.emplace_back(kKvOperationHeader, "DEL");
  SOTTO_RETURN_IF_ERROR(client_->Publish(Subject(key), {}, po));
  return Ok();
}

}  // namespace sotto::store::nats
