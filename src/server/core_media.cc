// The Noise-side half of media: upload tokens and where the blob service is.
// docs/media.md.
#include "server/core.h"
#include "server/internal/core_util.h"
#include "server/media.h"

namespace sotto::server {

void ServerCore::HandleMedia(const store::AccountId& account, const wire::Request& request,
                             wire::Response& response) {
  if (media_ == nullptr) {
    internal::Fail(response, wire::STATUS_MEDIA_DISABLED, "this server has no media service");
    return;
  }
  const MediaConfig& config = media_->config();
  auto fill_location = [&](wire::MediaLocation& location) {
    location.set_port(media_->port());
    location.set_base_url(config.public_url);
    location.set_blob_ttl_s(config.blob_ttl_s);
  };
  if (request.body_case() == wire::Request::kMediaLocation) {
    fill_location(*response.mutable_media_location());
    return;
  }
  auto grant = media_->IssueUpload(
      request.media_upload().size(),
      std::string_view(reinterpret_cast<const char*>(account.data()), account.size()));
  if (!grant) {
    const auto detail = static_cast<MediaErr>(grant.error().detail);
    if (detail == MediaErr::kTooLarge) {
      internal::Fail(response, wire::STATUS_TOO_LARGE, "blob larger than media.max_blob_bytes");
    } else if (detail == MediaErr::kTooManyForOwner) {
      metrics_.media_tokens_refused.fetch_add(1, std::memory_order_relaxed);
      internal::Fail(
          response, wire::STATUS_RATE_LIMITED,
          "too many unused upload tokens for this account (media.max_tokens_per_account)");
    } else {
      metrics_.media_tokens_refused.fetch_add(1, std::memory_order_relaxed);
      internal::Fail(response, wire::STATUS_RATE_LIMITED,
                     "too many unused upload tokens (media.max_pending_tokens)");
    }
    return;
  }
  auto* out = response.mutable_media_upload();
  out->set_blob_id(grant->blob_id);
  out->set_token(grant->token);
  out->set_expires_in_s(config.upload_token_ttl_s);
  fill_location(*out->mutable_location());
}

}  // namespace sotto::server
