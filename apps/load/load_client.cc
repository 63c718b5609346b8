#include "apps/load/load_client.h"

namespace sotto::load {

void Connection::OnIo(uint32_t events) { owner->OnConnectionIo(*this, events); }

LoadClient::LoadClient(Options options, std::unique_ptr<net::EventLoop> loop)
    : options_(std::move(options)),
      loop_(std::move(loop)),
      base_ms_(loop_->NowMs()),
      signal_watcher_([this] { OnSignal(); }),
      stdin_watcher_([this] { OnStdin(); }),
      pace_watcher_([this] {
        uint64_t expirations = 0;
        [[maybe_unused]] ssize_t r = read(pace_fd_, &expirations, sizeof expirations);
        if (phase_ == Phase::kRun) SendDue(NowNs());
      }) {
  wire::ClientHello hello;
  hello.set_wire_version(wire::kWireVersion);
  hello.set_user_agent(kUserAgent);
  hello_ = hello.SerializeAsString();
  plain_.resize(wire::kMaxNoiseMessage);
  framed_.resize(wire::kLengthPrefixSize + wire::kMaxNoiseMessage);
  // Handles differ between runs, so reruns against one server register new accounts.
  uint8_t prefix[8];
  crypto::SystemRandom().Fill(prefix);
  for (uint8_t b : prefix) handle_prefix_ = (handle_prefix_ << 8) | b;
}

LoadClient::~LoadClient() {
  loop_.reset();  // runs what is still posted while the members it touches live
  if (signal_fd_ >= 0) close(signal_fd_);
  if (pace_fd_ >= 0) close(pace_fd_);
}

Result<std::unique_ptr<LoadClient>> LoadClient::Create(Options options) {
  SOTTO_ASSIGN_OR_RETURN(std::unique_ptr<net::EventLoop> loop, net::EventLoop::Create());
  std::unique_ptr<LoadClient> client(new LoadClient(std::move(options), std::move(loop)));
  // Signals arrive through a signalfd on the loop, so they end a phase cleanly.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  client->signal_fd_ = signalfd(-1, &signals, SFD_NONBLOCK | SFD_CLOEXEC);
  if (client->signal_fd_ < 0 ||
      !client->loop_->Add(client->signal_fd_, EPOLLIN, &client->signal_watcher_)) {
    return net::NetError(Code::kInternal, net::NetErr::kSyscall, "signalfd failed");
  }
  if (client->options_.mode != Mode::kHandshake) {
    auto codes = CodeLog::Open(client->options_.codes_path);
    if (!codes) return tl::unexpected(codes.error());
    client->codes_.emplace(std::move(*codes));
  }
  // stdin EOF ends an idle hold; a stdin epoll cannot watch (/dev/null, a file) is ignored.
  if (client->options_.mode == Mode::kIdle) {
    client->stdin_watched_ =
        client->loop_->Add(STDIN_FILENO, EPOLLIN, &client->stdin_watcher_).has_value();
  }
  return client;
}

int LoadClient::Run() {
  setup_start_ns_ = NowNs();
  if (options_.mode == Mode::kHandshake) EnterRun();
  StartAttempts();
  loop_->RunEvery(std::chrono::milliseconds(1), [this] { Tick(); });
  loop_->Run();
  // Finish() closed every connection; what is left in the graveyard goes with us.
  graveyard_.clear();
  std::ostringstream json;
  Report(std::cerr, json);
  if (!options_.json_path.empty()) {
    std::ofstream out(options_.json_path);
    out << json.str();
    out.close();
    if (!out) {
      std::cerr << "sotto-load: cannot write " << options_.json_path << "\n";
      return 1;
    }
  }
  // Failure: no handshake at all, or fewer connections than asked for, or lost ones.
  if (options_.mode == Mode::kHandshake) return n_.handshakes > 0 ? 0 : 1;
  return setup_complete_ && n_.dropped == 0 && n_.protocol_errors == 0 ? 0 : 1;
}

void LoadClient::OnSignal() {
  signalfd_siginfo info{};
  while (read(signal_fd_, &info, sizeof info) == static_cast<ssize_t>(sizeof info)) {
  }
  stop_requested_ = true;
  Finish();
}

void LoadClient::OnStdin() {
  const MutableByteSpan scratch = loop_->scratch();
  const ssize_t n = read(STDIN_FILENO, scratch.data(), scratch.size());
  if (n > 0 || (n < 0 && (errno == EAGAIN || errno == EINTR))) return;  // input is ignored
  loop_->Remove(STDIN_FILENO);
  stdin_watched_ = false;
  stop_requested_ = true;
  if (phase_ == Phase::kRun) Finish();  // during setup: end the hold as soon as it begins
}

void LoadClient::Tick() {
  if (phase_ == Phase::kDone) return;
  const uint64_t now = NowNs();
  const bool connecting =
      phase_ == Phase::kSetup || phase_ == Phase::kQueueDrain || options_.mode == Mode::kHandshake;
  if (connecting && loop_->NowMs() - last_scan_ms_ >= kTimeoutScanMs) {
    last_scan_ms_ = loop_->NowMs();
    ScanTimeouts();
    if (phase_ == Phase::kDone) return;
  }
  if (codes_ && codes_->waiting() > 0 && loop_->NowMs() - last_code_poll_ms_ >= kCodePollMs) {
    last_code_poll_ms_ = loop_->NowMs();
    PollCodes();
  }
  switch (phase_) {
    case Phase::kSetup:
      if (now - setup_start_ns_ >= static_cast<uint64_t>(options_.setup_timeout_s * 1e9)) {
        EnterRun();  // gives up: reports fewer than --connections
        return;
      }
      StartAttempts();
      return;
    case Phase::kSettle:
      if (now >= run_start_ns_) StartWindow();
      return;
    case Phase::kRun:
      if (options_.mode == Mode::kPing || IsMessaging(options_.mode)) {
        SendDue(now);
        if (live_.empty()) {
          Finish();
          return;
        }
      } else if (options_.mode == Mode::kHandshake) {
        StartAttempts();
      }
      if (now >= run_end_ns_) EndWindow();
      return;
    case Phase::kDrain: {
      const bool answered = IsMessaging(options_.mode)
                                ? !AnswersOutstanding()
                                : n_.requests_sent == n_.responses_ok + n_.response_errors;
      if (answered || now >= drain_end_ns_ || live_.empty()) Settled();
      return;
    }
    case Phase::kQueueDrain:
      StartAttempts();
      CheckQueueDrained();  // every receiver caught up (or lost), or the timeout
      return;
    case Phase::kDone:
      return;
  }
}

void LoadClient::SendDue(uint64_t now) {
  // Open loop: send k of the window is planned at run_start + k / rate, and goes out
  // whether or not earlier requests returned. Its stamp (and so every latency) is that
  // planned time, not the moment it left: a client that falls behind adds its lag to the
  // latencies instead of hiding it (no coordinated omission). A tick sends at most a few
  // ticks' worth, so a client that falls behind still reads; what it could not send by
  // the end of the window is counted as `behind`, and a planned send that is not sent at
  // all (in-flight cap, full write queue, no sender left) as dropped: either makes the
  // latency figures of the run invalid (LatencyValid()).
  const uint64_t end = std::min(now, run_end_ns_);
  const auto due =
      static_cast<uint64_t>(options_.rate * static_cast<double>(end - run_start_ns_) / 1e9);
  const uint64_t cap =
      std::max<uint64_t>(kMinSendsPerTick, static_cast<uint64_t>(options_.rate / 250));
  for (uint64_t i = 0; i < cap && n_.requests_in_window < due && !live_.empty(); ++i) {
    const uint64_t planned = PlannedSendNs(run_start_ns_, n_.requests_in_window, options_.rate);
    max_send_lag_ns_ = std::max(max_send_lag_ns_, now - std::min(now, planned));
    ++n_.requests_in_window;
    if (IsMessaging(options_.mode)) {
      Connection* sender = NextSender();
      if (sender == nullptr) {
        ++n_.dropped_no_sender;
        break;
      }
      SendMessage(*sender, planned);
    } else {
      SendEcho(*live_[round_robin_++ % live_.size()], planned);
    }
  }
  if (now >= run_end_ns_) n_.behind = due - std::min(due, n_.requests_in_window);
}

bool LoadClient::LatencyValid() const {
  return n_.behind == 0 && n_.sends_skipped == 0 && n_.dropped_no_sender == 0 &&
         m_.skipped_in_flight == 0;
}

void LoadClient::StartAttempts() {
  if (phase_ == Phase::kQueueDrain) {
    StartReconnects();
    return;
  }
  const bool wanted =
      phase_ == Phase::kSetup || (phase_ == Phase::kRun && options_.mode == Mode::kHandshake);
  if (!wanted) return;
  const uint32_t target = options_.mode == Mode::kHandshake ? UINT32_MAX : options_.connections;
  while (in_flight_ < options_.concurrency && ready_ + in_flight_ < target) {
    if (!StartOne(std::nullopt)) {  // retried on the next tick, unless setup gives up
      SetupProgress();
      return;
    }
  }
}

bool LoadClient::StartOne(std::optional<uint32_t> reconnect_pair) {
  const auto index = static_cast<uint32_t>(n_.attempts++);
  const net::SocketAddress* source = nullptr;
  if (!options_.sources.empty()) {
    source = &options_.sources[next_source_++ % options_.sources.size()];
  }
  auto fd = net::ConnectNonBlocking(options_.server, source);
  if (!fd) {
    ++n_.connect_failures;
    return false;
  }
  auto c = std::make_unique<Connection>(*this, *fd);
  crypto::Random& random = crypto::SystemRandom();
  noise::KeyPair key =
      reconnect_pair ? *pairs_[*reconnect_pair].receiver_key : noise::KeyPair::Generate(random);
  c->handshake = std::make_unique<Handshake>(
      Handshake{noise::NoisePipe::Client(key, options_.server_key, random), NowNs()});
  if (IsMessaging(options_.mode)) {
    c->peer = std::make_unique<Peer>();
    c->peer->key = std::move(key);
    if (reconnect_pair) {
      c->peer->role = Role::kReceiver;
      c->peer->pair = *reconnect_pair;
    }
  }
  c->index = index;
  c->started_ms = RelativeMs();
  if (!loop_->Add(*fd, EPOLLOUT, c.get())) {
    close(*fd);
    ++n_.connect_failures;
    return false;
  }
  c->slot = static_cast<uint32_t>(live_.size());
  live_.push_back(std::move(c));
  ++in_flight_;
  return true;
}

void LoadClient::OnConnectionIo(Connection& c, uint32_t events) {
  if (c.state == ConnState::kClosed) return;
  if (c.state == ConnState::kConnecting) {
    OnConnected(c, events);
    return;
  }
  if (events & EPOLLOUT) Flush(c);
  if (c.state == ConnState::kClosed) return;
  if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) ReadFrom(c);
}

void LoadClient::OnConnected(Connection& c, uint32_t events) {
  if (net::SocketError(c.fd) != 0 || (events & EPOLLOUT) == 0) {
    Close(c, EndCause::kError);
    return;
  }
  c.state = ConnState::kHandshaking;
  if (!loop_->Modify(c.fd, EPOLLIN | EPOLLRDHUP, &c)) {
    Close(c, EndCause::kError);
    return;
  }
  WriteHandshake(c);
}

void LoadClient::ReadFrom(Connection& c) {
  ReadBurst(c);
  // Envelopes are acked every --ack-batch of them and at the end of every read burst.
  if (c.state != ConnState::kClosed && c.peer && !c.peer->acks.empty()) FlushAcks(c);
}

void LoadClient::ReadBurst(Connection& c) {
  const MutableByteSpan scratch = loop_->scratch();
  for (int i = 0; i < kMaxReadsPerWakeup; ++i) {
    const ssize_t n = read(c.fd, scratch.data(), scratch.size());
    if (n == 0) {
      Close(c, EndCause::kError);
      return;
    }
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) return;
      if (errno == EINTR) continue;
      Close(c, EndCause::kError);
      return;
    }
    const auto got = static_cast<size_t>(n);
    Status split =
        wire::SplitMessages(c.partial, ByteSpan(scratch.data(), got), wire::kMaxNoiseMessage,
                            [&](ByteSpan message) { return HandleMessage(c, message); });
    if (c.state == ConnState::kClosed) return;
    if (!split) {
      ++n_.protocol_errors;
      Close(c, EndCause::kError);
      return;
    }
    if (got < scratch.size()) return;  // drained
  }
}

bool LoadClient::HandleMessage(Connection& c, ByteSpan message) {
  switch (c.state) {
    case ConnState::kHandshaking:
      return HandleHandshake(c, message);
    case ConnState::kRegistering:
    case ConnState::kReady: {
      auto n = c.receive.DecryptWithAd({}, message, plain_);
      if (!n) {
        ++n_.protocol_errors;
        Close(c, EndCause::kError);
        return false;
      }
      return HandleFrame(c, ByteSpan(plain_.data(), *n));
    }
    case ConnState::kConnecting:
    case ConnState::kClosed:
      break;
  }
  return false;
}

bool LoadClient::WriteHandshake(Connection& c) {
  noise::NoisePipe& pipe = c.handshake->pipe;
  // The hello rides in IK message 1 or XX message 3; XX message 1 must be empty.
  const bool first_xx = !options_.server_key && !pipe.RemoteStatic();
  auto message = pipe.WriteMessage(first_xx ? ByteSpan() : AsBytes(hello_));
  if (!message || message->size() > wire::kMaxNoiseMessage) {
    Close(c, EndCause::kError);
    return false;
  }
  Bytes framed;
  framed.reserve(wire::kLengthPrefixSize + message->size());
  wire::AppendLengthPrefix(framed, message->size());
  Append(framed, *message);
  return SendRaw(c, framed);
}

bool LoadClient::HandleHandshake(Connection& c, ByteSpan message) {
  noise::NoisePipe& pipe = c.handshake->pipe;
  auto payload = pipe.ReadMessage(message);
  if (!payload) {
    Close(c, EndCause::kError);
    return false;
  }
  if (!payload->empty()) {  // the ServerHello
    wire::ServerHello hello;
    if (!hello.ParseFromArray(payload->data(), static_cast<int>(payload->size())) ||
        hello.wire_version() != wire::kWireVersion) {
      ++n_.protocol_errors;
      Close(c, EndCause::kError);
      return false;
    }
  }
  if (pipe.NextAction() == noise::HandshakeAction::kWriteMessage && !WriteHandshake(c)) {
    return false;
  }
  if (!pipe.IsFinished()) return true;
  return FinishHandshake(c);
}

bool LoadClient::FinishHandshake(Connection& c) {
  noise::NoisePipe& pipe = c.handshake->pipe;
  const auto remote = pipe.RemoteStatic();
  const auto pattern = pipe.pattern();
  auto ciphers = pipe.Split();
  if (!remote || !pattern || !ciphers) {
    Close(c, EndCause::kError);
    return false;
  }
  if (options_.server_key && *remote != *options_.server_key) {
    ++n_.key_mismatches;
    Close(c, EndCause::kError);
    return false;
  }
  c.send = std::move(ciphers->send);
  c.receive = std::move(ciphers->receive);
  handshake_ns_.Record(NowNs() - c.handshake->started_ns);
  c.handshake.reset();
  ++n_.handshakes;
  if (*pattern == noise::HandshakePattern::kIK) {
    ++n_.handshakes_ik;
  } else if (*pattern == noise::HandshakePattern::kXXfallback) {
    ++n_.handshakes_fallback;
  } else {
    ++n_.handshakes_xx;
  }
  if (options_.mode == Mode::kHandshake) {
    Close(c, EndCause::kCompleted);
    return false;
  }
  if (c.peer && c.peer->role == Role::kReceiver) {  // reconnected: the key is registered
    c.state = ConnState::kReady;
    --in_flight_;
    ++ready_;
    pairs_[c.peer->pair].receiver = &c;
    ++m_.drain_reconnects;
    return true;
  }
  // Registration: request_code, the code from the server's log (PollCodes), register.
  c.state = ConnState::kRegistering;
  const std::string handle = LoadHandle(handle_prefix_, c.index);
  codes_->Expect(handle, &c);
  frame_out_.Clear();
  wire::Request* request = frame_out_.mutable_request();
  request->set_id(kRequestCodeId);
  request->mutable_request_code()->set_handle(handle);
  return SendFrame(c, frame_out_);
}

void LoadClient::PollCodes() {
  const bool read = codes_->Poll([this](void* token, std::string_view code) {
    // The token is the connection, which Forgets its handle before it closes.
    Connection& c = *static_cast<Connection*>(token);
    frame_out_.Clear();
    wire::Request* request = frame_out_.mutable_request();
    request->set_id(kRegisterId);
    request->mutable_register_()->set_handle(LoadHandle(handle_prefix_, c.index));
    request->mutable_register_()->set_code(std::string(code));
    SendFrame(c, frame_out_);
  });
  if (!read) {
    std::cerr << "sotto-load: reading " << options_.codes_path << " failed\n";
    Finish();
  }
}

bool LoadClient::HandleFrame(Connection& c, ByteSpan plaintext) {
  if (!wire::ParseFrame(plaintext, frame_in_)) {
    ++n_.protocol_errors;
    Close(c, EndCause::kError);
    return false;
  }
  switch (frame_in_.body_case()) {
    case wire::Frame::kResponse:
      return HandleResponse(c, frame_in_.response());
    case wire::Frame::kPing:
      frame_out_.Clear();
      frame_out_.mutable_pong()->set_nonce(frame_in_.ping().nonce());
      ++n_.pings_answered;
      return SendFrame(c, frame_out_);
    case wire::Frame::kPong:
      return true;  // we never ping
    case wire::Frame::kClose:
      ++n_.close_frames;
      Close(c, EndCause::kError);
      return false;
    case wire::Frame::kQueueEmpty:
      if (c.peer) OnQueueEmpty(c);
      return true;
    case wire::Frame::kPrekeysLow:
    case wire::Frame::kPresence:
    case wire::Frame::kProvision:
      return true;  // the server core's notices; nothing to do for this load
    case wire::Frame::kEnvelope:
      if (c.peer && c.state == ConnState::kReady) return HandleEnvelope(c, frame_in_.envelope());
      break;
    case wire::Frame::kDeliveryAck:
    case wire::Frame::kRequest:
    case wire::Frame::BODY_NOT_SET:
      break;
  }
  ++n_.protocol_errors;
  Close(c, EndCause::kError);
  return false;
}

bool LoadClient::HandleRegistration(Connection& c, const wire::Response& response) {
  if (response.id() == kRequestCodeId) {
    if (response.status() == wire::STATUS_OK) return true;  // the code comes via the log
    ++n_.code_refusals;
    Close(c, EndCause::kError);
    return false;
  }
  if (response.id() != kRegisterId || response.status() != wire::STATUS_OK ||
      !response.has_register_() || response.register_().account_id().size() != kAccountIdSize) {
    Close(c, EndCause::kError);
    return false;
  }
  if (c.peer) {
    std::memcpy(c.peer->account.data(), response.register_().account_id().data(), kAccountIdSize);
  }
  c.state = ConnState::kReady;
  --in_flight_;
  ++ready_;
  SetupProgress();
  return true;
}

bool LoadClient::HandleResponse(Connection& c, const wire::Response& response) {
  if (c.state == ConnState::kRegistering) return HandleRegistration(c, response);
  if (IsMessaging(options_.mode)) {
    HandleSendResponse(c, response);
    return true;
  }
  const uint64_t now = NowNs();
  const std::string& echo = response.echo().data();
  uint64_t sent_ns = 0;
  uint64_t seq = 0;
  if (response.status() != wire::STATUS_OK || echo.size() != kEchoPayload) {
    ++n_.response_errors;
    return true;
  }
  std::memcpy(&sent_ns, echo.data(), sizeof sent_ns);
  std::memcpy(&seq, echo.data() + sizeof sent_ns, sizeof seq);
  if (seq != response.id() || sent_ns > now) {
    ++n_.response_errors;
    return true;
  }
  ++n_.responses_ok;
  if (phase_ == Phase::kRun && now <= run_end_ns_) ++n_.responses_in_window;
  latency_ns_.Record(now - sent_ns);
  return true;
}

void LoadClient::SendEcho(Connection& c, uint64_t planned_ns) {
  if (c.pending && c.pending->size() > kMaxPendingBytes) {
    ++n_.sends_skipped;
    return;
  }
  const uint64_t seq = ++seq_;
  char data[kEchoPayload];  // the planned send time: the round trip counts from there
  std::memcpy(data, &planned_ns, sizeof planned_ns);
  std::memcpy(data + sizeof planned_ns, &seq, sizeof seq);
  wire::Request* request = echo_frame_.mutable_request();
  request->set_id(seq);
  request->mutable_echo()->set_data(data, sizeof data);
  ++n_.requests_sent;
  SendFrame(c, echo_frame_);
}

bool LoadClient::SendFrame(Connection& c, const wire::Frame& frame) {
  wire::SerializeFrame(frame, frame_bytes_);
  auto n = c.send.EncryptWithAd({}, frame_bytes_,
                                MutableByteSpan(framed_).subspan(wire::kLengthPrefixSize));
  if (!n) {
    ++n_.protocol_errors;
    Close(c, EndCause::kError);
    return false;
  }
  framed_[0] = static_cast<uint8_t>(*n >> 8);
  framed_[1] = static_cast<uint8_t>(*n);
  return SendRaw(c, ByteSpan(framed_.data(), wire::kLengthPrefixSize + *n));
}

bool LoadClient::SendRaw(Connection& c, ByteSpan framed) {
  if (c.pending) {
    Append(c.pending->data, framed);
    return true;
  }
  size_t sent = 0;
  while (sent < framed.size()) {
    const ssize_t n =
        send(c.fd, framed.data() + sent, framed.size() - sent, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      sent += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
    Close(c, EndCause::kError);
    return false;
  }
  if (sent < framed.size()) {
    c.pending = std::make_unique<WriteQueue>();
    c.pending->data.assign(framed.begin() + static_cast<std::ptrdiff_t>(sent), framed.end());
    SetWriteInterest(c, WantWrite::kYes);
  }
  return true;
}

void LoadClient::Flush(Connection& c) {
  if (!c.pending) {
    SetWriteInterest(c, WantWrite::kNo);
    return;
  }
  WriteQueue& q = *c.pending;
  while (q.size() > 0) {
    const ssize_t n = send(c.fd, q.data.data() + q.offset, q.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      q.offset += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
    Close(c, EndCause::kError);
    return;
  }
  c.pending.reset();
  SetWriteInterest(c, WantWrite::kNo);
}

void LoadClient::SetWriteInterest(Connection& c, WantWrite want) {
  if (c.want_write == want || c.state == ConnState::kClosed) return;
  c.want_write = want;
  const uint32_t write = want == WantWrite::kYes ? uint32_t{EPOLLOUT} : 0u;
  (void)loop_->Modify(c.fd, EPOLLIN | EPOLLRDHUP | write, &c);
}

void LoadClient::Close(Connection& c, EndCause cause) {
  if (c.state == ConnState::kClosed) return;
  const ConnState was = c.state;
  if (was == ConnState::kReady) {
    --ready_;
  } else {
    --in_flight_;
  }
  switch (cause) {
    case EndCause::kCompleted:
      break;
    case EndCause::kShutdown:
      if (was != ConnState::kReady) ++n_.aborted_at_end;
      break;
    case EndCause::kTimeout:
      ++n_.timeouts;
      break;
    case EndCause::kError:
      switch (was) {
        case ConnState::kConnecting:
          ++n_.connect_failures;
          break;
        case ConnState::kHandshaking:
          ++n_.handshake_failures;
          break;
        case ConnState::kRegistering:
          ++n_.register_failures;
          break;
        case ConnState::kReady:
          ++n_.dropped;
          break;
        case ConnState::kClosed:
          break;
      }
      break;
  }
  if (was == ConnState::kRegistering && codes_) codes_->Forget(LoadHandle(handle_prefix_, c.index));
  if (c.peer) ForgetPeer(c);
  loop_->Remove(c.fd);
  close(c.fd);
  c.fd = -1;
  c.state = ConnState::kClosed;
  c.handshake.reset();
  c.pending.reset();
  c.partial = Bytes();
  // Swap-remove from live_; the object itself dies on a later loop turn, since this
  // may run inside its own callback.
  const uint32_t slot = c.slot;
  live_[slot].swap(live_.back());
  live_[slot]->slot = slot;
  graveyard_.push_back(std::move(live_.back()));
  live_.pop_back();
  if (!reap_posted_) {
    reap_posted_ = true;
    loop_->Post([this] {
      reap_posted_ = false;
      graveyard_.clear();
    });
  }
  if (phase_ == Phase::kSetup) SetupProgress();
  StartAttempts();
}

void LoadClient::ScanTimeouts() {
  const uint32_t now = RelativeMs();
  // Backwards: Close() swaps the last element into the closed one's slot.
  for (size_t i = live_.size(); i-- > 0;) {
    if (i >= live_.size()) continue;
    Connection& c = *live_[i];
    if (c.state != ConnState::kReady && now - c.started_ms >= kAttemptTimeoutMs) {
      Close(c, EndCause::kTimeout);
    }
  }
}

void LoadClient::SetupProgress() {
  if (phase_ != Phase::kSetup) return;
  // Give up when retries cannot plausibly succeed (the server refuses, ports ran out).
  const uint64_t budget = std::max<uint64_t>(100, options_.connections / 10);
  if (ready_ >= options_.connections || n_.failures() > budget) EnterRun();
}

void LoadClient::EnterRun() {
  if (phase_ != Phase::kSetup) return;
  setup_end_ns_ = NowNs();
  // First: the closes below must not start new attempts.
  phase_ = options_.mode == Mode::kSendOffline ? Phase::kSettle : Phase::kRun;
  if (options_.mode == Mode::kHandshake) {
    StartWindow();
    return;
  }
  setup_complete_ = ready_ >= options_.connections;
  ready_at_setup_end_ = ready_;
  // Attempts still in flight (after a give-up) do not count; the run sees only ready ones.
  for (size_t i = live_.size(); i-- > 0;) {
    if (i < live_.size() && live_[i]->state != ConnState::kReady) {
      Close(*live_[i], EndCause::kShutdown);
    }
  }
  if (IsMessaging(options_.mode)) PairUp();  // send-offline: the receivers go offline
  std::cout << "ready " << ready_at_setup_end_ << std::endl;  // drivers wait for this line
  if (!setup_complete_ || (options_.mode == Mode::kIdle && stop_requested_)) {
    Finish();
    return;
  }
  if (phase_ == Phase::kSettle) {
    run_start_ns_ = setup_end_ns_ + kSettleMs * 1'000'000;  // Tick starts the window then
    return;
  }
  StartWindow();
}

void LoadClient::StartWindow() {
  const uint64_t now = NowNs();
  phase_ = Phase::kRun;
  run_start_ns_ = now;
  run_cpu_start_ = CpuSeconds();
  if (options_.server_pid > 0) {
    clock_.server_cpu_start = ProcessCpuSeconds(options_.server_pid);
    clock_.server_wait_start = RunQueueWaitSeconds(options_.server_pid);
  }
  clock_.client_wait_start = RunQueueWaitSeconds(0);
  const double seconds = options_.mode == Mode::kIdle ? options_.hold_s : options_.duration_s;
  run_end_ns_ = now + static_cast<uint64_t>(seconds * 1e9);
  if (options_.mode == Mode::kPing || IsMessaging(options_.mode)) {
    pace_fd_ = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    itimerspec spec{};
    spec.it_interval.tv_nsec = kPaceIntervalUs * 1000;
    spec.it_value.tv_nsec = kPaceIntervalUs * 1000;
    if (pace_fd_ >= 0 && timerfd_settime(pace_fd_, 0, &spec, nullptr) == 0) {
      (void)loop_->Add(pace_fd_, EPOLLIN, &pace_watcher_);
    }
  }
}

void LoadClient::EndWindow() {
  if (pace_fd_ >= 0) loop_->Remove(pace_fd_);  // nothing more to pace
  window_end_ns_ = NowNs();
  run_cpu_s_ = CpuSeconds() - run_cpu_start_;
  if (options_.mode == Mode::kPing || IsMessaging(options_.mode)) {
    phase_ = Phase::kDrain;
    const uint64_t wait_ms = options_.mode == Mode::kPing ? kDrainMs : kMessagingDrainMs;
    drain_end_ns_ = window_end_ns_ + wait_ms * 1'000'000;
    return;
  }
  Finish();
}

void LoadClient::Settled() {
  if (IsMessaging(options_.mode)) {
    clock_.settled_ns = NowNs();
    clock_.client_cpu_settled = CpuSeconds() - run_cpu_start_;
    clock_.client_wait_settled = RunQueueWaitSeconds(0);
    if (options_.server_pid > 0) {
      clock_.server_cpu_settled = ProcessCpuSeconds(options_.server_pid);
      clock_.server_wait_settled = RunQueueWaitSeconds(options_.server_pid);
    }
    if (options_.mode == Mode::kSendOffline && options_.drain) {
      EnterQueueDrain();
      return;
    }
  }
  Finish();
}

void LoadClient::Finish() {
  if (phase_ == Phase::kDone) return;
  if (phase_ == Phase::kSetup) setup_end_ns_ = NowNs();
  if (phase_ == Phase::kRun) {
    window_end_ns_ = NowNs();
    run_cpu_s_ = CpuSeconds() - run_cpu_start_;
  }
  phase_ = Phase::kDone;
  while (!live_.empty()) Close(*live_.back(), EndCause::kShutdown);
  if (stdin_watched_) loop_->Remove(STDIN_FILENO);
  loop_->Stop();
}

}  // namespace sotto::load
