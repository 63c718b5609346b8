// Media: SendFile (encrypt + upload, then the pointer through the outbox) and receiving
// attachments (store the pointer with the message, ack, then download, verify, decrypt
// and save under HOME/media/). docs/media.md.
#include <sys/stat.h>

#include <spdlog/spdlog.h>

#include "client/internal/client_impl.h"

namespace sotto::client {
namespace {

constexpr size_t kHostPortMaxBytes = 300;

tl::unexpected<Error> MediaFail(Code code, MediaErr detail, const char* message) {
  return MakeError(code, Module::kClient, static_cast<uint16_t>(detail), message);
}

bool IsMediaErr(const Error& e, MediaErr detail) {
  return e.module == Module::kClient && e.detail == static_cast<uint16_t>(detail);
}

// "host:port" or "[v6]:port" -> host.
std::string HostOf(std::string_view server) {
  if (server.size() > kHostPortMaxBytes) return "";
  const size_t colon = server.rfind(':');
  std::string_view host = colon == std::string_view::npos ? server : server.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  return std::string(host);
}

std::filesystem::path MediaDir(const ClientConfig& config) { return config.home / "media"; }

Status CheckCaption(std::string_view caption) {
  if (caption.size() > kMaxBodyBytes || !IsUtf8(caption)) {
    return SdkError(Code::kInvalidArgument, SdkErr::kTooLarge, kCaptionTooLong);
  }
  return Ok();
}

// How the local copy of a file we send describes it: read from `path` (absolute if it can
// be made so).
AttachmentInfo SentAttachment(const content::AttachmentPointer& pointer,
                              const std::filesystem::path& path) {
  std::error_code ec;
  const std::filesystem::path absolute = std::filesystem::absolute(path, ec);
  return AttachmentInfo{pointer.content_type(), pointer.size(), pointer.file_name(),
                        ec ? path.string() : absolute.string(), AttachmentState::kSent};
}

}  // namespace

Result<MediaEndpoint> Client::Impl::GetMediaEndpoint() {
  if (media_endpoint) return *media_endpoint;
  if (!conn) SOTTO_RETURN_IF_ERROR(TryConnect());
  wire::Request request;
  request.mutable_media_location();
  SOTTO_ASSIGN_OR_RETURN(wire::Response response, Call(std::move(request)));
  if (response.status() == wire::STATUS_MEDIA_DISABLED) {
    return SdkError(Code::kFailedPrecondition, SdkErr::kServerRefused,
                    "the server has no media service");
  }
  if (response.status() != wire::STATUS_OK) {
    return SdkError(Code::kUnavailable, SdkErr::kServerRefused, "the server refused media_location");
  }
  const wire::MediaLocation& loc = response.media_location();
  SOTTO_ASSIGN_OR_RETURN(MediaEndpoint endpoint,
                         ResolveMediaEndpoint(HostOf(account->server), loc.port(), loc.base_url()));
  media_endpoint = endpoint;
  return endpoint;
}

Result<content::AttachmentPointer> Client::Impl::UploadAttachment(
    const std::filesystem::path& path, std::string_view content_type) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) {
    return MediaFail(Code::kInvalidArgument, MediaErr::kFile, "not a readable regular file");
  }
  const uint64_t size = static_cast<uint64_t>(st.st_size);
  if (size > kMaxAttachmentBytes) {
    return MediaFail(Code::kInvalidArgument, MediaErr::kTooLarge,
                     "the file is larger than kMaxAttachmentBytes (1 GiB)");
  }
  if (content_type.size() > kMaxContentTypeBytes) {
    return MediaFail(Code::kInvalidArgument, MediaErr::kBadPointer,
                     "the MIME type is longer than kMaxContentTypeBytes");
  }
  if (!conn) SOTTO_RETURN_IF_ERROR(TryConnect());
  const uint64_t blob_size = EncryptedBlobSize(size);
  wire::Request request;
  request.mutable_media_upload()->set_size(blob_size);
  SOTTO_ASSIGN_OR_RETURN(wire::Response response, Call(std::move(request)));
  switch (response.status()) {
    case wire::STATUS_OK: break;
    case wire::STATUS_MEDIA_DISABLED:
      return SdkError(Code::kFailedPrecondition, SdkErr::kServerRefused,
                      "the server has no media service");
    case wire::STATUS_TOO_LARGE:
      return MediaFail(Code::kResourceExhausted, MediaErr::kTooLarge,
                       "the file is larger than the server allows (media.max_blob_bytes)");
    default:
      return SdkError(Code::kUnavailable, SdkErr::kServerRefused,
                      "the server refused an upload token");
  }
  const wire::MediaUploadResponse& grant = response.media_upload();
  SOTTO_ASSIGN_OR_RETURN(MediaEndpoint endpoint,
                         ResolveMediaEndpoint(HostOf(account->server), grant.location().port(),
                                              grant.location().base_url()));
  content::AttachmentPointer pointer;
  SOTTO_RETURN_IF_ERROR(UploadBlob(endpoint, grant.blob_id(), grant.token(), blob_size,
                                   [&](const BlobSink& blob_sink) -> Status {
                                     SOTTO_ASSIGN_OR_RETURN(pointer,
                                                            EncryptFile(path, size, random, blob_sink));
                                     return Ok();
                                   }));
  pointer.set_blob_id(grant.blob_id());
  pointer.set_content_type(content_type.empty() ? MimeTypeFor(path.filename().string())
                                                : std::string(content_type));
  std::string name = path.filename().string();
  if (name.size() > kMaxAttachmentNameBytes || !IsUtf8(name)) name = SanitizeFileName(name);
  pointer.set_file_name(name);
  return pointer;
}

Result<SendOutcome> Client::SendFile(std::string_view handle, const std::filesystem::path& path,
                                     std::string_view caption, std::string_view content_type) {
  Impl& d = *impl_;
  SOTTO_RETURN_IF_ERROR(d.RequireRegistered());
  SOTTO_RETURN_IF_ERROR(CheckCaption(caption));
  SOTTO_ASSIGN_OR_RETURN(Contact contact, d.ResolveContact(handle));
  SOTTO_ASSIGN_OR_RETURN(content::AttachmentPointer pointer,
                         d.UploadAttachment(path, content_type));
  content::Content content = d.NewContent();
  content.mutable_data()->set_body(std::string(caption));
  content.mutable_data()->set_timestamp_ms(WallMs());
  *content.mutable_data()->mutable_attachment() = pointer;
  StoredMessage message;
  message.peer = contact.account_id;
  message.direction = MessageDirection::kOutgoing;
  message.body = std::string(caption);
  message.sent_ms = content.data().timestamp_ms();
  message.stored_ms = message.sent_ms;
  message.tick = Tick::kPending;
  message.attachment = SentAttachment(pointer, path);
  {
    LocalStore::Transaction tx(*d.store);
    SOTTO_ASSIGN_OR_RETURN(message.message_id, d.QueueContent(contact.account_id, content, false));
    SOTTO_ASSIGN_OR_RETURN(message.rowid, d.store->AddMessage(message));
    const std::string serialized = pointer.SerializeAsString();
    SOTTO_RETURN_IF_ERROR(d.store->PutAttachment(message.rowid, AsBytes(serialized), *message.attachment));
    SOTTO_RETURN_IF_ERROR(tx.Commit());
  }
  SendOutcome outcome{message.message_id, Tick::kPending};
  if (d.conn) SOTTO_RETURN_IF_ERROR(d.FlushOutbox(Impl::Due::kAll));
  SOTTO_ASSIGN_OR_RETURN(
      std::optional<StoredMessage> stored,
      d.store->GetMessage(contact.account_id, MessageDirection::kOutgoing, message.message_id));
  if (stored) outcome.tick = stored->tick;
  return outcome;
}

Result<SendOutcome> Client::SendGroupFile(std::string_view group, const std::filesystem::path& path,
                                          std::string_view caption, std::string_view content_type) {
  Impl& d = *impl_;
  SOTTO_RETURN_IF_ERROR(d.RequireRegistered());
  SOTTO_RETURN_IF_ERROR(CheckCaption(caption));
  SOTTO_ASSIGN_OR_RETURN(const std::string group_id, d.ResolveGroupId(group));
  SOTTO_ASSIGN_OR_RETURN(content::AttachmentPointer pointer, d.UploadAttachment(path, content_type));
  content::DataMessage data;
  data.set_body(std::string(caption));
  data.set_timestamp_ms(WallMs());
  *data.mutable_attachment() = pointer;
  return d.SendGroupData(group_id, std::move(data), SentAttachment(pointer, path));
}

Status Client::Impl::StoreIncomingAttachment(StoredMessage& message,
                                             const content::AttachmentPointer& pointer) {
  AttachmentInfo info;
  info.content_type = pointer.content_type();
  info.size = pointer.size();
  info.file_name = pointer.file_name();
  info.state = AttachmentState::kPending;
  if (auto valid = ValidatePointer(pointer); !valid) {
    spdlog::warn("received an attachment pointer that is malformed: {}", valid.error().ToString());
    info = AttachmentInfo{};
    info.state = AttachmentState::kRejected;
  }
  const std::string serialized = pointer.SerializeAsString();
  SOTTO_RETURN_IF_ERROR(store->PutAttachment(message.rowid, AsBytes(serialized), info));
  message.attachment = info;
  return Ok();
}

void Client::Impl::FetchReceivedAttachments(std::vector<Event>& events) {
  if (config.attachment_download != ClientConfig::AttachmentDownload::kOnReceive) return;
  for (Event& event : events) {
    auto* m = std::get_if<MessageEvent>(&event);
    if (m == nullptr || !m->message.attachment ||
        m->message.attachment->state != AttachmentState::kPending) {
      continue;
    }
    auto fetched = FetchAttachment(m->message.rowid);
    if (fetched) {
      m->message.attachment = *fetched;
    } else {
      spdlog::warn("attachment download failed (retry with DownloadAttachment): {}",
                   fetched.error().ToString());
      if (IsMediaErr(fetched.error(), MediaErr::kRejected)) {
        m->message.attachment->state = AttachmentState::kRejected;
      }
    }
  }
}

Result<AttachmentInfo> Client::Impl::FetchAttachment(int64_t rowid) {
  SOTTO_ASSIGN_OR_RETURN(std::optional<LocalStore::Attachment> stored, store->GetAttachment(rowid));
  if (!stored) return SdkError(Code::kNotFound, SdkErr::kServerRefused, "this message has no attachment");
  AttachmentInfo info = stored->info;
  if (info.state == AttachmentState::kSaved || info.state == AttachmentState::kSent) return info;
  content::AttachmentPointer pointer;
  if (!pointer.ParseFromArray(stored->pointer.data(), static_cast<int>(stored->pointer.size()))) {
    return MediaFail(Code::kDataLoss, MediaErr::kBadPointer, "a stored attachment pointer does not parse");
  }
  SOTTO_RETURN_IF_ERROR(ValidatePointer(pointer));
  const std::filesystem::path dir = MediaDir(config);
  const std::filesystem::path partial_dir = dir / ".partial";
  std::error_code ec;
  std::filesystem::create_directories(partial_dir, ec);
  std::filesystem::permissions(dir, std::filesystem::perms::owner_all, ec);
  const std::filesystem::path part = partial_dir / (pointer.blob_id() + ".blob");
  const std::filesystem::path final_path =
      dir / (std::to_string(rowid) + "-" + SanitizeFileName(pointer.file_name()));
  const uint32_t attempts = stored->attempts + 1;
  auto failed = [&](const Error& error) -> Result<AttachmentInfo> {
    const bool rejected = IsMediaErr(error, MediaErr::kRejected);
    if (rejected) std::filesystem::remove(part, ec);  // a retry downloads afresh
    SOTTO_RETURN_IF_ERROR(store->UpdateAttachment(
        rowid, rejected ? AttachmentState::kRejected : AttachmentState::kPending, "", attempts));
    return tl::unexpected(error);
  };
  auto endpoint = GetMediaEndpoint();
  if (!endpoint) return failed(endpoint.error());
  auto fetched = DownloadBlob(*endpoint, pointer.blob_id(), EncryptedBlobSize(pointer.size()), part);
  if (!fetched) {
    if (!IsMediaErr(fetched.error(), MediaErr::kRejected)) media_endpoint.reset();
    return failed(fetched.error());
  }
  if (auto done = DecryptBlobFile(part, pointer, final_path); !done) return failed(done.error());
  std::filesystem::remove(part, ec);
  info.local_path = final_path.string();
  info.state = AttachmentState::kSaved;
  SOTTO_RETURN_IF_ERROR(store->UpdateAttachment(rowid, info.state, info.local_path, attempts));
  return info;
}

Result<AttachmentInfo> Client::DownloadAttachment(int64_t message_rowid) {
  Impl& d = *impl_;
  SOTTO_RETURN_IF_ERROR(d.RequireRegistered());
  return d.FetchAttachment(message_rowid);
}

}  // namespace sotto::client
