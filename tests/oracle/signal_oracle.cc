// Oracle peer wrapping libsignal-protocol-c 2.3.3. See signal_oracle.h.
//
// Layout: LibContext owns a signal_context plus the crypto provider state (OpenSSL EVP for
// HMAC-SHA256 / SHA-512 / AES, libsodium for randomness). OracleParty::Impl owns a LibContext, a
// signal_protocol_store_context and the in-memory C++ maps that back every store callback.
// Library objects are held in Ref<T> (unique_ptr that calls signal_type_unref) so every reference
// the library hands us is dropped exactly once.

#include "signal_oracle.h"

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <sodium.h>

// libsignal's headers are included by bare name through the pkg-config include dir
// (/usr/include/signal): "signal/..." would resolve to Sotto's own src/signal/ headers first.
#include <curve.h>
#include <fingerprint.h>
#include <group_cipher.h>
#include <group_session_builder.h>
#include <key_helper.h>
#include <protocol.h>
#include <ratchet.h>
#include <session_builder.h>
#include <session_cipher.h>
#include <session_pre_key.h>
#include <signal_protocol.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <tuple>
#include <utility>

namespace sotto::oracle {

static_assert(kOk == SG_SUCCESS && kErrNoMem == SG_ERR_NOMEM && kErrInval == SG_ERR_INVAL &&
              kErrUnknown == SG_ERR_UNKNOWN && kErrDuplicateMessage == SG_ERR_DUPLICATE_MESSAGE &&
              kErrInvalidKey == SG_ERR_INVALID_KEY && kErrInvalidKeyId == SG_ERR_INVALID_KEY_ID &&
              kErrInvalidMac == SG_ERR_INVALID_MAC &&
              kErrInvalidMessage == SG_ERR_INVALID_MESSAGE &&
              kErrInvalidVersion == SG_ERR_INVALID_VERSION &&
              kErrLegacyMessage == SG_ERR_LEGACY_MESSAGE && kErrNoSession == SG_ERR_NO_SESSION &&
              kErrStaleKeyExchange == SG_ERR_STALE_KEY_EXCHANGE &&
              kErrUntrustedIdentity == SG_ERR_UNTRUSTED_IDENTITY &&
              kErrInvalidProtoBuf == SG_ERR_INVALID_PROTO_BUF &&
              kErrFpVersionMismatch == SG_ERR_FP_VERSION_MISMATCH &&
              kErrFpIdentMismatch == SG_ERR_FP_IDENT_MISMATCH);
static_assert(kTypeSignal == CIPHERTEXT_SIGNAL_TYPE && kTypePreKey == CIPHERTEXT_PREKEY_TYPE &&
              kTypeSenderKey == CIPHERTEXT_SENDERKEY_TYPE &&
              kTypeSenderKeyDistribution == CIPHERTEXT_SENDERKEY_DISTRIBUTION_TYPE);

namespace {

// ---------------------------------------------------------------------------------------------
// Ownership helpers.

// Drops one reference of a libsignal reference-counted object (the SIGNAL_UNREF equivalent).
struct Unref {
  void operator()(void* p) const {
    if (p != nullptr) signal_type_unref(static_cast<signal_type_base*>(p));
  }
};
template <typename T>
using Ref = std::unique_ptr<T, Unref>;

struct BufferFree {
  void operator()(signal_buffer* b) const { signal_buffer_free(b); }
};
using Buffer = std::unique_ptr<signal_buffer, BufferFree>;

struct SessionBuilderFree {
  void operator()(session_builder* b) const { session_builder_free(b); }
};
struct SessionCipherFree {
  void operator()(session_cipher* c) const { session_cipher_free(c); }
};
struct GroupBuilderFree {
  void operator()(group_session_builder* b) const { group_session_builder_free(b); }
};
struct GroupCipherFree {
  void operator()(group_cipher* c) const { group_cipher_free(c); }
};
struct FingerprintGeneratorFree {
  void operator()(fingerprint_generator* g) const { fingerprint_generator_free(g); }
};

Bytes ToBytes(const signal_buffer* b) {
  if (b == nullptr) return {};
  const uint8_t* data = signal_buffer_const_data(b);
  return Bytes(data, data + signal_buffer_len(b));
}

Bytes ToBytes(const uint8_t* data, size_t len) {
  if (data == nullptr) return {};
  return Bytes(data, data + len);
}

// signal_buffer_create with a non-null pointer even for empty input.
signal_buffer* NewBuffer(ByteSpan bytes) {
  static const uint8_t kEmpty = 0;
  return signal_buffer_create(bytes.empty() ? &kEmpty : bytes.data(), bytes.size());
}

signal_protocol_address MakeAddress(const std::string& name, int32_t device_id) {
  return signal_protocol_address{name.data(), name.size(), device_id};
}

signal_protocol_sender_key_name MakeSenderKeyName(const std::string& group_id,
                                                  const std::string& name, int32_t device_id) {
  return signal_protocol_sender_key_name{group_id.data(), group_id.size(),
                                         MakeAddress(name, device_id)};
}

std::string AddressName(const signal_protocol_address* address) {
  return std::string(address->name, address->name_len);
}

// ---------------------------------------------------------------------------------------------
// Library context with crypto provider.

class LibContext {
 public:
  explicit LibContext(uint64_t seed) : seed_(seed) {}
  LibContext(const LibContext&) = delete;
  LibContext& operator=(const LibContext&) = delete;

  ~LibContext() {
    if (ctx_ != nullptr) signal_context_destroy(ctx_);
    EVP_MAC_CTX_free(hmac_template_);
    EVP_MAC_free(hmac_);
    EVP_MD_free(sha512_);
  }

  // Returns SG_SUCCESS or a negative code. Must be called once before ctx().
  int Init();

  signal_context* ctx() const { return ctx_; }
  uint64_t seed() const { return seed_; }

 private:
  static int Random(uint8_t* data, size_t len, void* user_data);
  static int HmacInit(void** hmac_context, const uint8_t* key, size_t key_len, void* user_data);
  static int HmacUpdate(void* hmac_context, const uint8_t* data, size_t data_len, void* user_data);
  static int HmacFinal(void* hmac_context, signal_buffer** output, void* user_data);
  static void HmacCleanup(void* hmac_context, void* user_data);
  static int Sha512Init(void** digest_context, void* user_data);
  static int Sha512Update(void* digest_context, const uint8_t* data, size_t data_len,
                          void* user_data);
  static int Sha512Final(void* digest_context, signal_buffer** output, void* user_data);
  static void Sha512Cleanup(void* digest_context, void* user_data);
  static int Encrypt(signal_buffer** output, int cipher, const uint8_t* key, size_t key_len,
                     const uint8_t* iv, size_t iv_len, const uint8_t* plaintext,
                     size_t plaintext_len, void* user_data);
  static int Decrypt(signal_buffer** output, int cipher, const uint8_t* key, size_t key_len,
                     const uint8_t* iv, size_t iv_len, const uint8_t* ciphertext,
                     size_t ciphertext_len, void* user_data);
  static int AesCrypt(bool encrypt, signal_buffer** output, int cipher, const uint8_t* key,
                      size_t key_len, const uint8_t* iv, size_t iv_len, const uint8_t* input,
                      size_t input_len);
  static void Lock(void* /*user_data*/) {}
  static void Unlock(void* /*user_data*/) {}
  static void Log(int /*level*/, const char* /*message*/, size_t /*len*/, void* /*user_data*/) {}

  const uint64_t seed_;
  uint64_t rng_counter_ = 0;
  EVP_MAC* hmac_ = nullptr;
  EVP_MAC_CTX* hmac_template_ = nullptr;  // HMAC with digest SHA256 set; duplicated per use.
  EVP_MD* sha512_ = nullptr;
  signal_context* ctx_ = nullptr;
};

int LibContext::Init() {
  if (sodium_init() < 0) return SG_ERR_UNKNOWN;
  hmac_ = EVP_MAC_fetch(nullptr, OSSL_MAC_NAME_HMAC, nullptr);
  sha512_ = EVP_MD_fetch(nullptr, OSSL_DIGEST_NAME_SHA2_512, nullptr);
  if (hmac_ == nullptr || sha512_ == nullptr) return SG_ERR_UNKNOWN;
  hmac_template_ = EVP_MAC_CTX_new(hmac_);
  if (hmac_template_ == nullptr) return SG_ERR_NOMEM;
  char digest_name[] = OSSL_DIGEST_NAME_SHA2_256;
  const OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest_name, 0),
      OSSL_PARAM_construct_end()};
  if (EVP_MAC_CTX_set_params(hmac_template_, params) != 1) return SG_ERR_UNKNOWN;

  int rc = signal_context_create(&ctx_, this);
  if (rc != SG_SUCCESS) return rc;
  signal_crypto_provider provider{};
  provider.random_func = &LibContext::Random;
  provider.hmac_sha256_init_func = &LibContext::HmacInit;
  provider.hmac_sha256_update_func = &LibContext::HmacUpdate;
  provider.hmac_sha256_final_func = &LibContext::HmacFinal;
  provider.hmac_sha256_cleanup_func = &LibContext::HmacCleanup;
  provider.sha512_digest_init_func = &LibContext::Sha512Init;
  provider.sha512_digest_update_func = &LibContext::Sha512Update;
  provider.sha512_digest_final_func = &LibContext::Sha512Final;
  provider.sha512_digest_cleanup_func = &LibContext::Sha512Cleanup;
  provider.encrypt_func = &LibContext::Encrypt;
  provider.decrypt_func = &LibContext::Decrypt;
  provider.user_data = this;
  rc = signal_context_set_crypto_provider(ctx_, &provider);
  if (rc != SG_SUCCESS) return rc;
  rc = signal_context_set_locking_functions(ctx_, &LibContext::Lock, &LibContext::Unlock);
  if (rc != SG_SUCCESS) return rc;
  return signal_context_set_log_function(ctx_, &LibContext::Log);
}

int LibContext::Random(uint8_t* data, size_t len, void* user_data) {
  auto* self = static_cast<LibContext*>(user_data);
  if (len == 0) return SG_SUCCESS;
  if (self->seed_ == 0) {
    randombytes_buf(data, len);
    return SG_SUCCESS;
  }
  // Counter-extended seed: seed (LE64) || call counter (LE64) || fixed 16-byte label.
  std::array<uint8_t, randombytes_SEEDBYTES> key{};
  static_assert(randombytes_SEEDBYTES == 32);
  const uint64_t counter = self->rng_counter_++;
  for (size_t i = 0; i < 8; ++i) {
    key[i] = static_cast<uint8_t>(self->seed_ >> (8 * i));
    key[8 + i] = static_cast<uint8_t>(counter >> (8 * i));
  }
  static constexpr char kLabel[] = "sotto-oracle-rng";
  static_assert(sizeof(kLabel) - 1 == 16);
  std::memcpy(key.data() + 16, kLabel, 16);
  randombytes_buf_deterministic(data, len, key.data());
  return SG_SUCCESS;
}

int LibContext::HmacInit(void** hmac_context, const uint8_t* key, size_t key_len, void* user_data) {
  auto* self = static_cast<LibContext*>(user_data);
  EVP_MAC_CTX* mac = EVP_MAC_CTX_dup(self->hmac_template_);
  if (mac == nullptr) return SG_ERR_NOMEM;
  // OpenSSL treats a null key as "keep the previous key"; pass a real pointer for empty keys.
  static const uint8_t kEmpty = 0;
  if (EVP_MAC_init(mac, key_len == 0 ? &kEmpty : key, key_len, nullptr) != 1) {
    EVP_MAC_CTX_free(mac);
    return SG_ERR_UNKNOWN;
  }
  *hmac_context = mac;
  return SG_SUCCESS;
}

int LibContext::HmacUpdate(void* hmac_context, const uint8_t* data, size_t data_len,
                           void* /*user_data*/) {
  if (data_len == 0) return SG_SUCCESS;
  return EVP_MAC_update(static_cast<EVP_MAC_CTX*>(hmac_context), data, data_len) == 1
             ? SG_SUCCESS
             : SG_ERR_UNKNOWN;
}

int LibContext::HmacFinal(void* hmac_context, signal_buffer** output, void* /*user_data*/) {
  std::array<uint8_t, EVP_MAX_MD_SIZE> out{};
  size_t out_len = 0;
  if (EVP_MAC_final(static_cast<EVP_MAC_CTX*>(hmac_context), out.data(), &out_len, out.size()) !=
      1) {
    return SG_ERR_UNKNOWN;
  }
  *output = signal_buffer_create(out.data(), out_len);
  return *output != nullptr ? SG_SUCCESS : SG_ERR_NOMEM;
}

void LibContext::HmacCleanup(void* hmac_context, void* /*user_data*/) {
  EVP_MAC_CTX_free(static_cast<EVP_MAC_CTX*>(hmac_context));
}

int LibContext::Sha512Init(void** digest_context, void* user_data) {
  auto* self = static_cast<LibContext*>(user_data);
  EVP_MD_CTX* md = EVP_MD_CTX_new();
  if (md == nullptr) return SG_ERR_NOMEM;
  if (EVP_DigestInit_ex(md, self->sha512_, nullptr) != 1) {
    EVP_MD_CTX_free(md);
    return SG_ERR_UNKNOWN;
  }
  *digest_context = md;
  return SG_SUCCESS;
}

int LibContext::Sha512Update(void* digest_context, const uint8_t* data, size_t data_len,
                             void* /*user_data*/) {
  if (data_len == 0) return SG_SUCCESS;
  return EVP_DigestUpdate(static_cast<EVP_MD_CTX*>(digest_context), data, data_len) == 1
             ? SG_SUCCESS
             : SG_ERR_UNKNOWN;
}

int LibContext::Sha512Final(void* digest_context, signal_buffer** output, void* user_data) {
  auto* self = static_cast<LibContext*>(user_data);
  auto* md = static_cast<EVP_MD_CTX*>(digest_context);
  std::array<uint8_t, EVP_MAX_MD_SIZE> out{};
  unsigned int out_len = 0;
  if (EVP_DigestFinal_ex(md, out.data(), &out_len) != 1) return SG_ERR_UNKNOWN;
  // The library reuses the context after final (fingerprint iterations): re-initialize it.
  if (EVP_DigestInit_ex(md, self->sha512_, nullptr) != 1) return SG_ERR_UNKNOWN;
  *output = signal_buffer_create(out.data(), out_len);
  return *output != nullptr ? SG_SUCCESS : SG_ERR_NOMEM;
}

void LibContext::Sha512Cleanup(void* digest_context, void* /*user_data*/) {
  EVP_MD_CTX_free(static_cast<EVP_MD_CTX*>(digest_context));
}

const EVP_CIPHER* PickCipher(int cipher, size_t key_len) {
  if (cipher == SG_CIPHER_AES_CBC_PKCS5) {
    switch (key_len) {
      case 16:
        return EVP_aes_128_cbc();
      case 24:
        return EVP_aes_192_cbc();
      case 32:
        return EVP_aes_256_cbc();
      default:
        return nullptr;
    }
  }
  if (cipher == SG_CIPHER_AES_CTR_NOPADDING) {
    switch (key_len) {
      case 16:
        return EVP_aes_128_ctr();
      case 24:
        return EVP_aes_192_ctr();
      case 32:
        return EVP_aes_256_ctr();
      default:
        return nullptr;
    }
  }
  return nullptr;
}

int LibContext::AesCrypt(bool encrypt, signal_buffer** output, int cipher, const uint8_t* key,
                         size_t key_len, const uint8_t* iv, size_t iv_len, const uint8_t* input,
                         size_t input_len) {
  const EVP_CIPHER* evp_cipher = PickCipher(cipher, key_len);
  if (evp_cipher == nullptr) return SG_ERR_INVAL;
  if (iv_len != static_cast<size_t>(EVP_CIPHER_get_iv_length(evp_cipher))) return SG_ERR_INVAL;
  if (input_len > static_cast<size_t>(INT_MAX) - 32) return SG_ERR_INVAL;
  std::unique_ptr<EVP_CIPHER_CTX, decltype(&EVP_CIPHER_CTX_free)> ctx(EVP_CIPHER_CTX_new(),
                                                                      &EVP_CIPHER_CTX_free);
  if (ctx == nullptr) return SG_ERR_NOMEM;
  if (EVP_CipherInit_ex(ctx.get(), evp_cipher, nullptr, key, iv, encrypt ? 1 : 0) != 1) {
    return SG_ERR_UNKNOWN;
  }
  if (EVP_CIPHER_CTX_set_padding(ctx.get(), cipher == SG_CIPHER_AES_CBC_PKCS5 ? 1 : 0) != 1) {
    return SG_ERR_UNKNOWN;
  }
  Bytes out(input_len + 32);
  int len1 = 0;
  int len2 = 0;
  if (input_len > 0 &&
      EVP_CipherUpdate(ctx.get(), out.data(), &len1, input, static_cast<int>(input_len)) != 1) {
    return SG_ERR_UNKNOWN;
  }
  if (EVP_CipherFinal_ex(ctx.get(), out.data() + len1, &len2) != 1) return SG_ERR_UNKNOWN;
  *output = NewBuffer(ByteSpan(out.data(), static_cast<size_t>(len1 + len2)));
  sodium_memzero(out.data(), out.size());
  return *output != nullptr ? SG_SUCCESS : SG_ERR_NOMEM;
}

int LibContext::Encrypt(signal_buffer** output, int cipher, const uint8_t* key, size_t key_len,
                        const uint8_t* iv, size_t iv_len, const uint8_t* plaintext,
                        size_t plaintext_len, void* /*user_data*/) {
  return AesCrypt(true, output, cipher, key, key_len, iv, iv_len, plaintext, plaintext_len);
}

int LibContext::Decrypt(signal_buffer** output, int cipher, const uint8_t* key, size_t key_len,
                        const uint8_t* iv, size_t iv_len, const uint8_t* ciphertext,
                        size_t ciphertext_len, void* /*user_data*/) {
  return AesCrypt(false, output, cipher, key, key_len, iv, iv_len, ciphertext, ciphertext_len);
}

// ---------------------------------------------------------------------------------------------
// Key decoding helpers.

Ref<ec_public_key> DecodePublic(ByteSpan bytes, signal_context* ctx, int* rc) {
  if (bytes.empty()) {
    *rc = SG_ERR_INVALID_KEY;
    return nullptr;
  }
  ec_public_key* key = nullptr;
  *rc = curve_decode_point(&key, bytes.data(), bytes.size(), ctx);
  if (*rc != SG_SUCCESS) {
    Ref<ec_public_key> drop(key);
    return nullptr;
  }
  return Ref<ec_public_key>(key);
}

Ref<ec_private_key> DecodePrivate(ByteSpan bytes, signal_context* ctx, int* rc) {
  if (bytes.empty()) {
    *rc = SG_ERR_INVALID_KEY;
    return nullptr;
  }
  ec_private_key* key = nullptr;
  *rc = curve_decode_private_point(&key, bytes.data(), bytes.size(), ctx);
  if (*rc != SG_SUCCESS) {
    Ref<ec_private_key> drop(key);
    return nullptr;
  }
  return Ref<ec_private_key>(key);
}

Bytes SerializePublic(const ec_public_key* key) {
  signal_buffer* raw = nullptr;
  if (ec_public_key_serialize(&raw, key) != SG_SUCCESS) {
    signal_buffer_free(raw);
    return {};
  }
  Buffer buffer(raw);
  return ToBytes(buffer.get());
}

Bytes SerializePrivate(const ec_private_key* key) {
  signal_buffer* raw = nullptr;
  if (ec_private_key_serialize(&raw, key) != SG_SUCCESS) {
    signal_buffer_free(raw);
    return {};
  }
  Buffer buffer(raw);
  return ToBytes(buffer.get());
}

// Builds an ec_key_pair from serialized parts, checking that they belong together.
Ref<ec_key_pair> MakeKeyPair(ByteSpan pub, ByteSpan priv, signal_context* ctx, int* rc) {
  Ref<ec_public_key> public_key = DecodePublic(pub, ctx, rc);
  if (*rc != SG_SUCCESS) return nullptr;
  Ref<ec_private_key> private_key = DecodePrivate(priv, ctx, rc);
  if (*rc != SG_SUCCESS) return nullptr;
  ec_public_key* derived_raw = nullptr;
  *rc = curve_generate_public_key(&derived_raw, private_key.get());
  Ref<ec_public_key> derived(derived_raw);
  if (*rc != SG_SUCCESS) return nullptr;
  if (ec_public_key_compare(derived.get(), public_key.get()) != 0) {
    *rc = SG_ERR_INVALID_KEY;
    return nullptr;
  }
  ec_key_pair* pair = nullptr;
  *rc = ec_key_pair_create(&pair, public_key.get(), private_key.get());  // Takes its own refs.
  Ref<ec_key_pair> result(pair);
  if (*rc != SG_SUCCESS) return nullptr;
  return result;
}

}  // namespace

// -----------------------------------------------------------------------------------------------
// OracleParty::Impl: stores.

struct OracleParty::Impl {
  explicit Impl(uint64_t seed) : lib(seed) {}
  Impl(const Impl&) = delete;
  Impl& operator=(const Impl&) = delete;
  ~Impl() {
    if (store != nullptr) signal_protocol_store_context_destroy(store);
  }

  int Init(uint32_t reg_id);
  int LoadIdentityPair(Ref<ratchet_identity_key_pair>* out);

  // Session store.
  static int LoadSession(signal_buffer** record, signal_buffer** user_record,
                         const signal_protocol_address* address, void* user_data);
  static int GetSubDeviceSessions(signal_int_list** sessions, const char* name, size_t name_len,
                                  void* user_data);
  static int StoreSession(const signal_protocol_address* address, uint8_t* record,
                          size_t record_len, uint8_t* user_record, size_t user_record_len,
                          void* user_data);
  static int ContainsSession(const signal_protocol_address* address, void* user_data);
  static int DeleteSession(const signal_protocol_address* address, void* user_data);
  static int DeleteAllSessions(const char* name, size_t name_len, void* user_data);
  // Pre key store.
  static int LoadPreKey(signal_buffer** record, uint32_t id, void* user_data);
  static int StorePreKey(uint32_t id, uint8_t* record, size_t record_len, void* user_data);
  static int ContainsPreKey(uint32_t id, void* user_data);
  static int RemovePreKey(uint32_t id, void* user_data);
  // Signed pre key store.
  static int LoadSignedPreKey(signal_buffer** record, uint32_t id, void* user_data);
  static int StoreSignedPreKey(uint32_t id, uint8_t* record, size_t record_len, void* user_data);
  static int ContainsSignedPreKey(uint32_t id, void* user_data);
  static int RemoveSignedPreKey(uint32_t id, void* user_data);
  // Identity store.
  static int GetIdentityKeyPair(signal_buffer** public_data, signal_buffer** private_data,
                                void* user_data);
  static int GetLocalRegistrationId(void* user_data, uint32_t* registration_id);
  static int SaveIdentity(const signal_protocol_address* address, uint8_t* key_data, size_t key_len,
                          void* user_data);
  static int IsTrustedIdentity(const signal_protocol_address* address, uint8_t* key_data,
                               size_t key_len, void* user_data);
  // Sender key store.
  static int StoreSenderKey(const signal_protocol_sender_key_name* name, uint8_t* record,
                            size_t record_len, uint8_t* user_record, size_t user_record_len,
                            void* user_data);
  static int LoadSenderKey(signal_buffer** record, signal_buffer** user_record,
                           const signal_protocol_sender_key_name* name, void* user_data);
  static void DestroyStore(void* /*user_data*/) {}

  using SessionKey = std::pair<std::string, int32_t>;
  using SenderKeyKey = std::tuple<std::string, std::string, int32_t>;

  static SenderKeyKey MakeSenderKeyKey(const signal_protocol_sender_key_name* name) {
    return {std::string(name->group_id, name->group_id_len), AddressName(&name->sender),
            name->sender.device_id};
  }

  LibContext lib;
  signal_protocol_store_context* store = nullptr;
  uint32_t registration_id = 0;
  Bytes identity_public;
  Bytes identity_private;
  bool trust_all = false;
  uint64_t session_loads = 0;
  uint64_t session_stores = 0;
  std::map<SessionKey, Bytes> sessions;
  std::map<uint32_t, Bytes> prekeys;
  std::map<uint32_t, Bytes> signed_prekeys;
  std::map<std::string, Bytes> identities;
  std::map<SenderKeyKey, Bytes> sender_keys;
};

int OracleParty::Impl::Init(uint32_t reg_id) {
  registration_id = reg_id;
  int rc = lib.Init();
  if (rc != SG_SUCCESS) return rc;
  rc = signal_protocol_store_context_create(&store, lib.ctx());
  if (rc != SG_SUCCESS) return rc;

  signal_protocol_session_store session_store{};
  session_store.load_session_func = &Impl::LoadSession;
  session_store.get_sub_device_sessions_func = &Impl::GetSubDeviceSessions;
  session_store.store_session_func = &Impl::StoreSession;
  session_store.contains_session_func = &Impl::ContainsSession;
  session_store.delete_session_func = &Impl::DeleteSession;
  session_store.delete_all_sessions_func = &Impl::DeleteAllSessions;
  session_store.destroy_func = &Impl::DestroyStore;
  session_store.user_data = this;
  rc = signal_protocol_store_context_set_session_store(store, &session_store);
  if (rc != SG_SUCCESS) return rc;

  signal_protocol_pre_key_store pre_key_store{};
  pre_key_store.load_pre_key = &Impl::LoadPreKey;
  pre_key_store.store_pre_key = &Impl::StorePreKey;
  pre_key_store.contains_pre_key = &Impl::ContainsPreKey;
  pre_key_store.remove_pre_key = &Impl::RemovePreKey;
  pre_key_store.destroy_func = &Impl::DestroyStore;
  pre_key_store.user_data = this;
  rc = signal_protocol_store_context_set_pre_key_store(store, &pre_key_store);
  if (rc != SG_SUCCESS) return rc;

  signal_protocol_signed_pre_key_store signed_store{};
  signed_store.load_signed_pre_key = &Impl::LoadSignedPreKey;
  signed_store.store_signed_pre_key = &Impl::StoreSignedPreKey;
  signed_store.contains_signed_pre_key = &Impl::ContainsSignedPreKey;
  signed_store.remove_signed_pre_key = &Impl::RemoveSignedPreKey;
  signed_store.destroy_func = &Impl::DestroyStore;
  signed_store.user_data = this;
  rc = signal_protocol_store_context_set_signed_pre_key_store(store, &signed_store);
  if (rc != SG_SUCCESS) return rc;

  signal_protocol_identity_key_store identity_store{};
  identity_store.get_identity_key_pair = &Impl::GetIdentityKeyPair;
  identity_store.get_local_registration_id = &Impl::GetLocalRegistrationId;
  identity_store.save_identity = &Impl::SaveIdentity;
  identity_store.is_trusted_identity = &Impl::IsTrustedIdentity;
  identity_store.destroy_func = &Impl::DestroyStore;
  identity_store.user_data = this;
  rc = signal_protocol_store_context_set_identity_key_store(store, &identity_store);
  if (rc != SG_SUCCESS) return rc;

  signal_protocol_sender_key_store sender_store{};
  sender_store.store_sender_key = &Impl::StoreSenderKey;
  sender_store.load_sender_key = &Impl::LoadSenderKey;
  sender_store.destroy_func = &Impl::DestroyStore;
  sender_store.user_data = this;
  return signal_protocol_store_context_set_sender_key_store(store, &sender_store);
}

int OracleParty::Impl::LoadIdentityPair(Ref<ratchet_identity_key_pair>* out) {
  ratchet_identity_key_pair* raw = nullptr;
  const int rc = signal_protocol_identity_get_key_pair(store, &raw);
  out->reset(raw);
  return rc;
}

int OracleParty::Impl::LoadSession(signal_buffer** record, signal_buffer** /*user_record*/,
                                   const signal_protocol_address* address, void* user_data) {
  auto* self = static_cast<Impl*>(user_data);
  ++self->session_loads;
  auto it = self->sessions.find({AddressName(address), address->device_id});
  if (it == self->sessions.end()) return 0;
  *record = NewBuffer(it->second);
  return *record != nullptr ? 1 : SG_ERR_NOMEM;
}

int OracleParty::Impl::GetSubDeviceSessions(signal_int_list** sessions, const char* name,
                                            size_t name_len, void* user_data) {
  auto* self = static_cast<Impl*>(user_data);
  const std::string wanted(name, name_len);
  signal_int_list* list = signal_int_list_alloc();
  if (list == nullptr) return SG_ERR_NOMEM;
  for (const auto& [key, record] : self->sessions) {
    if (key.first != wanted) continue;
    if (signal_int_list_push_back(list, key.second) != SG_SUCCESS) {
      signal_int_list_free(list);
      return SG_ERR_NOMEM;
    }
  }
  *sessions = list;
  return static_cast<int>(signal_int_list_size(list));
}

int OracleParty::Impl::StoreSession(const signal_protocol_address* address, uint8_t* record,
                                    size_t record_len, uint8_t* /*user_record*/,
                                    size_t /*user_record_len*/, void* user_data) {
  auto* self = static_cast<Impl*>(user_data);
  ++self->session_stores;
  self->sessions[{AddressName(address), address->device_id}] = ToBytes(record, record_len);
  return SG_SUCCESS;
}

int OracleParty::Impl::ContainsSession(const signal_protocol_address* address, void* user_data) {
  auto* self = static_cast<Impl*>(user_data);
  return self->sessions.count({AddressName(address), address->device_id}) != 0 ? 1 : 0;
}

int OracleParty::Impl::DeleteSession(const signal_protocol_address* address, void* user_data) {
  auto* self = static_cast<Impl*>(user_data);
  return self->sessions.erase({AddressName(address), address->device_id}) != 0 ? 1 : 0;
}

int OracleParty::Impl::DeleteAllSessions(const char* name, size_t name_len, void* user_data) {
  auto* self = static_cast<Impl*>(user_data);
  const std::string wanted(name, name_len);
  int deleted = 0;
  for (auto it = self->sessions.begin(); it != self->sessions.end();) {
    if (it->first.first == wanted) {
      it = self->sessions.erase(it);
      ++deleted;
    } else {
      ++it;
    }
  }
  return deleted;
}

int OracleParty::Impl::LoadPreKey(signal_buffer** record, uint32_t id, void* user_data) {
  auto* self = static_cast<Impl*>(user_data);
  auto it = self->prekeys.find(id);
  if (it == self->prekeys.end()) return SG_ERR_INVALID_KEY_ID;
  *record = NewBuffer(it->second);
  return *record != nullptr ? SG_SUCCESS : SG_ERR_NOMEM;
}

int OracleParty::Impl::StorePreKey(uint32_t id, uint8_t* record, size_t record_len,
                                   void* user_data) {
  static_cast<Impl*>(user_data)->prekeys[id] = ToBytes(record, record_len);
  return SG_SUCCESS;
}

int OracleParty::Impl::ContainsPreKey(uint32_t id, void* user_data) {
  return static_cast<Impl*>(user_data)->prekeys.count(id) != 0 ? 1 : 0;
}

int OracleParty::Impl::RemovePreKey(uint32_t id, void* user_data) {
  static_cast<Impl*>(user_data)->prekeys.erase(id);
  return SG_SUCCESS;
}

int OracleParty::Impl::LoadSignedPreKey(signal_buffer** record, uint32_t id, void* user_data) {
  auto* self = static_cast<Impl*>(user_data);
  auto it = self->signed_prekeys.find(id);
  if (it == self->signed_prekeys.end()) return SG_ERR_INVALID_KEY_ID;
  *record = NewBuffer(it->second);
  return *record != nullptr ? SG_SUCCESS : SG_ERR_NOMEM;
}

int OracleParty::Impl::StoreSignedPreKey(uint32_t id, uint8_t* record, size_t record_len,
                                         void* user_data) {
  static_cast<Impl*>(user_data)->signed_prekeys[id] = ToBytes(record, record_len);
  return SG_SUCCESS;
}

int OracleParty::Impl::ContainsSignedPreKey(uint32_t id, void* user_data) {
  return static_cast<Impl*>(user_data)->signed_prekeys.count(id) != 0 ? 1 : 0;
}

int OracleParty::Impl::RemoveSignedPreKey(uint32_t id, void* user_data) {
  static_cast<Impl*>(user_data)->signed_prekeys.erase(id);
  return SG_SUCCESS;
}

int OracleParty::Impl::GetIdentityKeyPair(signal_buffer** public_data, signal_buffer** private_data,
                                          void* user_data) {
  auto* self = static_cast<Impl*>(user_data);
  Buffer pub(NewBuffer(self->identity_public));
  Buffer priv(NewBuffer(self->identity_private));
  if (pub == nullptr || priv == nullptr) return SG_ERR_NOMEM;
  *public_data = pub.release();
  *private_data = priv.release();
  return SG_SUCCESS;
}

int OracleParty::Impl::GetLocalRegistrationId(void* user_data, uint32_t* registration_id) {
  *registration_id = static_cast<Impl*>(user_data)->registration_id;
  return SG_SUCCESS;
}

int OracleParty::Impl::SaveIdentity(const signal_protocol_address* address, uint8_t* key_data,
                                    size_t key_len, void* user_data) {
  auto* self = static_cast<Impl*>(user_data);
  if (key_data == nullptr) {
    self->identities.erase(AddressName(address));
  } else {
    self->identities[AddressName(address)] = ToBytes(key_data, key_len);
  }
  return SG_SUCCESS;
}

int OracleParty::Impl::IsTrustedIdentity(const signal_protocol_address* address, uint8_t* key_data,
                                         size_t key_len, void* user_data) {
  auto* self = static_cast<Impl*>(user_data);
  if (self->trust_all) return 1;
  auto it = self->identities.find(AddressName(address));
  if (it == self->identities.end()) return 1;  // Trust on first use.
  const Bytes offered = ToBytes(key_data, key_len);
  return offered == it->second ? 1 : 0;
}

int OracleParty::Impl::StoreSenderKey(const signal_protocol_sender_key_name* name, uint8_t* record,
                                      size_t record_len, uint8_t* /*user_record*/,
                                      size_t /*user_record_len*/, void* user_data) {
  static_cast<Impl*>(user_data)->sender_keys[MakeSenderKeyKey(name)] = ToBytes(record, record_len);
  return SG_SUCCESS;
}

int OracleParty::Impl::LoadSenderKey(signal_buffer** record, signal_buffer** /*user_record*/,
                                     const signal_protocol_sender_key_name* name, void* user_data) {
  auto* self = static_cast<Impl*>(user_data);
  auto it = self->sender_keys.find(MakeSenderKeyKey(name));
  if (it == self->sender_keys.end()) return 0;
  *record = NewBuffer(it->second);
  return *record != nullptr ? 1 : SG_ERR_NOMEM;
}

// -----------------------------------------------------------------------------------------------
// OracleParty.

OracleParty::OracleParty(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

OracleParty::~OracleParty() = default;

std::unique_ptr<OracleParty> OracleParty::Create(uint32_t registration_id, uint64_t seed) {
  auto impl = std::make_unique<Impl>(seed);
  if (impl->Init(registration_id) != SG_SUCCESS) return nullptr;
  ratchet_identity_key_pair* raw = nullptr;
  const int rc = signal_protocol_key_helper_generate_identity_key_pair(&raw, impl->lib.ctx());
  Ref<ratchet_identity_key_pair> pair(raw);
  if (rc != SG_SUCCESS) return nullptr;
  impl->identity_public = SerializePublic(ratchet_identity_key_pair_get_public(pair.get()));
  impl->identity_private = SerializePrivate(ratchet_identity_key_pair_get_private(pair.get()));
  if (impl->identity_public.size() != 33 || impl->identity_private.size() != 32) return nullptr;
  return std::unique_ptr<OracleParty>(new OracleParty(std::move(impl)));
}

std::unique_ptr<OracleParty> OracleParty::CreateWithIdentity(uint32_t registration_id,
                                                             ByteSpan identity_public,
                                                             ByteSpan identity_private,
                                                             uint64_t seed) {
  auto impl = std::make_unique<Impl>(seed);
  if (impl->Init(registration_id) != SG_SUCCESS) return nullptr;
  int rc = SG_SUCCESS;
  Ref<ec_key_pair> pair = MakeKeyPair(identity_public, identity_private, impl->lib.ctx(), &rc);
  if (rc != SG_SUCCESS) return nullptr;
  impl->identity_public = SerializePublic(ec_key_pair_get_public(pair.get()));
  impl->identity_private = SerializePrivate(ec_key_pair_get_private(pair.get()));
  if (impl->identity_public.size() != 33 || impl->identity_private.size() != 32) return nullptr;
  return std::unique_ptr<OracleParty>(new OracleParty(std::move(impl)));
}

Bytes OracleParty::IdentityPublic() const { return impl_->identity_public; }
Bytes OracleParty::IdentityPrivate() const { return impl_->identity_private; }
uint32_t OracleParty::RegistrationId() const { return impl_->registration_id; }

OracleBundle OracleParty::GenerateBundle(uint32_t device_id, uint32_t signed_prekey_id,
                                         uint32_t prekey_id, bool with_one_time_prekey) {
  OracleBundle bundle;
  Ref<ratchet_identity_key_pair> identity;
  if (impl_->LoadIdentityPair(&identity) != SG_SUCCESS) return {};

  // Deterministic parties use timestamp 0 so that their stored records are reproducible too.
  uint64_t timestamp = 0;
  if (impl_->lib.seed() == 0) {
    timestamp = static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                          std::chrono::system_clock::now().time_since_epoch())
                                          .count());
  }
  session_signed_pre_key* spk_raw = nullptr;
  int rc = signal_protocol_key_helper_generate_signed_pre_key(
      &spk_raw, identity.get(), signed_prekey_id, timestamp, impl_->lib.ctx());
  Ref<session_signed_pre_key> spk(spk_raw);
  if (rc != SG_SUCCESS) return {};
  if (signal_protocol_signed_pre_key_store_key(impl_->store, spk.get()) != SG_SUCCESS) return {};
  bundle.signed_prekey_id = signed_prekey_id;
  bundle.signed_prekey_public =
      SerializePublic(ec_key_pair_get_public(session_signed_pre_key_get_key_pair(spk.get())));
  bundle.signed_prekey_signature = ToBytes(session_signed_pre_key_get_signature(spk.get()),
                                           session_signed_pre_key_get_signature_len(spk.get()));

  if (with_one_time_prekey) {
    ec_key_pair* pair_raw = nullptr;
    rc = curve_generate_key_pair(impl_->lib.ctx(), &pair_raw);
    Ref<ec_key_pair> pair(pair_raw);
    if (rc != SG_SUCCESS) return {};
    session_pre_key* pk_raw = nullptr;
    rc = session_pre_key_create(&pk_raw, prekey_id, pair.get());  // Takes its own ref.
    Ref<session_pre_key> pk(pk_raw);
    if (rc != SG_SUCCESS) return {};
    if (signal_protocol_pre_key_store_key(impl_->store, pk.get()) != SG_SUCCESS) return {};
    bundle.has_prekey = true;
    bundle.prekey_id = prekey_id;
    bundle.prekey_public = SerializePublic(ec_key_pair_get_public(pair.get()));
  }

  bundle.registration_id = impl_->registration_id;
  bundle.device_id = device_id;
  bundle.identity_key = impl_->identity_public;
  return bundle;
}

int OracleParty::AddPreKey(uint32_t id, ByteSpan pub, ByteSpan priv) {
  int rc = SG_SUCCESS;
  Ref<ec_key_pair> pair = MakeKeyPair(pub, priv, impl_->lib.ctx(), &rc);
  if (rc != SG_SUCCESS) return rc;
  session_pre_key* raw = nullptr;
  rc = session_pre_key_create(&raw, id, pair.get());
  Ref<session_pre_key> pre_key(raw);
  if (rc != SG_SUCCESS) return rc;
  return signal_protocol_pre_key_store_key(impl_->store, pre_key.get());
}

int OracleParty::AddSignedPreKey(uint32_t id, ByteSpan pub, ByteSpan priv, ByteSpan signature) {
  int rc = SG_SUCCESS;
  Ref<ec_key_pair> pair = MakeKeyPair(pub, priv, impl_->lib.ctx(), &rc);
  if (rc != SG_SUCCESS) return rc;
  session_signed_pre_key* raw = nullptr;
  rc = session_signed_pre_key_create(&raw, id, /*timestamp=*/0, pair.get(), signature.data(),
                                     signature.size());
  Ref<session_signed_pre_key> signed_pre_key(raw);
  if (rc != SG_SUCCESS) return rc;
  return signal_protocol_signed_pre_key_store_key(impl_->store, signed_pre_key.get());
}

bool OracleParty::HasPreKey(uint32_t id) const { return impl_->prekeys.count(id) != 0; }

bool OracleParty::HasSignedPreKey(uint32_t id) const {
  return impl_->signed_prekeys.count(id) != 0;
}

void OracleParty::RemovePreKey(uint32_t id) { impl_->prekeys.erase(id); }

int OracleParty::ProcessBundle(const std::string& name, int32_t device_id,
                               const OracleBundle& bundle) {
  signal_context* ctx = impl_->lib.ctx();
  int rc = SG_SUCCESS;
  Ref<ec_public_key> identity = DecodePublic(bundle.identity_key, ctx, &rc);
  if (rc != SG_SUCCESS) return rc;
  Ref<ec_public_key> signed_pre_key = DecodePublic(bundle.signed_prekey_public, ctx, &rc);
  if (rc != SG_SUCCESS) return rc;
  Ref<ec_public_key> pre_key;
  if (bundle.has_prekey) {
    pre_key = DecodePublic(bundle.prekey_public, ctx, &rc);
    if (rc != SG_SUCCESS) return rc;
  }
  session_pre_key_bundle* bundle_raw = nullptr;
  rc = session_pre_key_bundle_create(
      &bundle_raw, bundle.registration_id, static_cast<int>(bundle.device_id),
      bundle.has_prekey ? bundle.prekey_id : 0, pre_key.get(), bundle.signed_prekey_id,
      signed_pre_key.get(), bundle.signed_prekey_signature.data(),
      bundle.signed_prekey_signature.size(), identity.get());
  Ref<session_pre_key_bundle> pre_key_bundle(bundle_raw);
  if (rc != SG_SUCCESS) return rc;

  const signal_protocol_address address = MakeAddress(name, device_id);
  session_builder* builder_raw = nullptr;
  rc = session_builder_create(&builder_raw, impl_->store, &address, ctx);
  std::unique_ptr<session_builder, SessionBuilderFree> builder(builder_raw);
  if (rc != SG_SUCCESS) return rc;
  return session_builder_process_pre_key_bundle(builder.get(), pre_key_bundle.get());
}

OracleCiphertext OracleParty::Encrypt(const std::string& name, int32_t device_id,
                                      ByteSpan plaintext) {
  OracleCiphertext out;
  // Guard: the library does not report a missing session cleanly on encrypt.
  if (!HasSession(name, device_id)) {
    out.rc = SG_ERR_NO_SESSION;
    return out;
  }
  const signal_protocol_address address = MakeAddress(name, device_id);
  session_cipher* cipher_raw = nullptr;
  out.rc = session_cipher_create(&cipher_raw, impl_->store, &address, impl_->lib.ctx());
  std::unique_ptr<session_cipher, SessionCipherFree> cipher(cipher_raw);
  if (out.rc != SG_SUCCESS) return out;
  static const uint8_t kEmpty = 0;
  ciphertext_message* message_raw = nullptr;
  out.rc = session_cipher_encrypt(cipher.get(), plaintext.empty() ? &kEmpty : plaintext.data(),
                                  plaintext.size(), &message_raw);
  Ref<ciphertext_message> message(message_raw);
  if (out.rc != SG_SUCCESS) return out;
  out.type = ciphertext_message_get_type(message.get());
  out.bytes = ToBytes(ciphertext_message_get_serialized(message.get()));  // Borrowed buffer.
  return out;
}

OraclePlaintext OracleParty::Decrypt(const std::string& name, int32_t device_id, ByteSpan message,
                                     int type) {
  OraclePlaintext out;
  if (message.empty()) {
    out.rc = SG_ERR_INVALID_MESSAGE;
    return out;
  }
  signal_context* ctx = impl_->lib.ctx();
  const signal_protocol_address address = MakeAddress(name, device_id);
  session_cipher* cipher_raw = nullptr;
  out.rc = session_cipher_create(&cipher_raw, impl_->store, &address, ctx);
  std::unique_ptr<session_cipher, SessionCipherFree> cipher(cipher_raw);
  if (out.rc != SG_SUCCESS) return out;

  signal_buffer* plaintext_raw = nullptr;
  if (type == kTypePreKey) {
    pre_key_signal_message* msg_raw = nullptr;
    out.rc = pre_key_signal_message_deserialize(&msg_raw, message.data(), message.size(), ctx);
    Ref<pre_key_signal_message> msg(msg_raw);
    if (out.rc != SG_SUCCESS) return out;
    out.rc = session_cipher_decrypt_pre_key_signal_message(cipher.get(), msg.get(), nullptr,
                                                           &plaintext_raw);
  } else if (type == kTypeSignal) {
    signal_message* msg_raw = nullptr;
    out.rc = signal_message_deserialize(&msg_raw, message.data(), message.size(), ctx);
    Ref<signal_message> msg(msg_raw);
    if (out.rc != SG_SUCCESS) return out;
    out.rc =
        session_cipher_decrypt_signal_message(cipher.get(), msg.get(), nullptr, &plaintext_raw);
  } else {
    out.rc = SG_ERR_INVAL;
    return out;
  }
  Buffer plaintext(plaintext_raw);
  if (out.rc != SG_SUCCESS) return out;
  out.plaintext = ToBytes(plaintext.get());
  return out;
}

bool OracleParty::HasSession(const std::string& name, int32_t device_id) const {
  return impl_->sessions.count({name, device_id}) != 0;
}

void OracleParty::DeleteSession(const std::string& name, int32_t device_id) {
  impl_->sessions.erase({name, device_id});
}

Bytes OracleParty::SessionRecord(const std::string& name, int32_t device_id) const {
  auto it = impl_->sessions.find({name, device_id});
  return it == impl_->sessions.end() ? Bytes{} : it->second;
}

void OracleParty::SetTrustAll(bool trust_all) { impl_->trust_all = trust_all; }

Bytes OracleParty::StoredIdentity(const std::string& name) const {
  auto it = impl_->identities.find(name);
  return it == impl_->identities.end() ? Bytes{} : it->second;
}

Bytes OracleParty::CreateSenderKeyDistribution(const std::string& group_id,
                                               const std::string& own_name, int32_t own_device) {
  group_session_builder* builder_raw = nullptr;
  int rc = group_session_builder_create(&builder_raw, impl_->store, impl_->lib.ctx());
  std::unique_ptr<group_session_builder, GroupBuilderFree> builder(builder_raw);
  if (rc != SG_SUCCESS) return {};
  const signal_protocol_sender_key_name sender_key_name =
      MakeSenderKeyName(group_id, own_name, own_device);
  sender_key_distribution_message* skdm_raw = nullptr;
  rc = group_session_builder_create_session(builder.get(), &skdm_raw, &sender_key_name);
  Ref<sender_key_distribution_message> skdm(skdm_raw);
  if (rc != SG_SUCCESS) return {};
  // A distribution message is a ciphertext_message (its first member in the library), which is
  // the only public way to reach its serialized form.
  return ToBytes(
      ciphertext_message_get_serialized(reinterpret_cast<ciphertext_message*>(skdm.get())));
}

int OracleParty::ProcessSenderKeyDistribution(const std::string& group_id,
                                              const std::string& sender_name, int32_t sender_device,
                                              ByteSpan skdm) {
  if (skdm.empty()) return SG_ERR_INVALID_MESSAGE;
  sender_key_distribution_message* skdm_raw = nullptr;
  int rc = sender_key_distribution_message_deserialize(&skdm_raw, skdm.data(), skdm.size(),
                                                       impl_->lib.ctx());
  Ref<sender_key_distribution_message> message(skdm_raw);
  if (rc != SG_SUCCESS) return rc;
  group_session_builder* builder_raw = nullptr;
  rc = group_session_builder_create(&builder_raw, impl_->store, impl_->lib.ctx());
  std::unique_ptr<group_session_builder, GroupBuilderFree> builder(builder_raw);
  if (rc != SG_SUCCESS) return rc;
  const signal_protocol_sender_key_name sender_key_name =
      MakeSenderKeyName(group_id, sender_name, sender_device);
  return group_session_builder_process_session(builder.get(), &sender_key_name, message.get());
}

OracleCiphertext OracleParty::GroupEncrypt(const std::string& group_id, const std::string& own_name,
                                           int32_t own_device, ByteSpan plaintext) {
  OracleCiphertext out;
  const signal_protocol_sender_key_name sender_key_name =
      MakeSenderKeyName(group_id, own_name, own_device);
  group_cipher* cipher_raw = nullptr;
  out.rc = group_cipher_create(&cipher_raw, impl_->store, &sender_key_name, impl_->lib.ctx());
  std::unique_ptr<group_cipher, GroupCipherFree> cipher(cipher_raw);
  if (out.rc != SG_SUCCESS) return out;
  static const uint8_t kEmpty = 0;
  ciphertext_message* message_raw = nullptr;
  out.rc = group_cipher_encrypt(cipher.get(), plaintext.empty() ? &kEmpty : plaintext.data(),
                                plaintext.size(), &message_raw);
  Ref<ciphertext_message> message(message_raw);
  if (out.rc != SG_SUCCESS) return out;
  out.type = ciphertext_message_get_type(message.get());
  out.bytes = ToBytes(ciphertext_message_get_serialized(message.get()));
  return out;
}

OraclePlaintext OracleParty::GroupDecrypt(const std::string& group_id,
                                          const std::string& sender_name, int32_t sender_device,
                                          ByteSpan message) {
  OraclePlaintext out;
  if (message.empty()) {
    out.rc = SG_ERR_INVALID_MESSAGE;
    return out;
  }
  signal_context* ctx = impl_->lib.ctx();
  sender_key_message* msg_raw = nullptr;
  out.rc = sender_key_message_deserialize(&msg_raw, message.data(), message.size(), ctx);
  Ref<sender_key_message> msg(msg_raw);
  if (out.rc != SG_SUCCESS) return out;
  const signal_protocol_sender_key_name sender_key_name =
      MakeSenderKeyName(group_id, sender_name, sender_device);
  group_cipher* cipher_raw = nullptr;
  out.rc = group_cipher_create(&cipher_raw, impl_->store, &sender_key_name, ctx);
  std::unique_ptr<group_cipher, GroupCipherFree> cipher(cipher_raw);
  if (out.rc != SG_SUCCESS) return out;
  signal_buffer* plaintext_raw = nullptr;
  out.rc = group_cipher_decrypt(cipher.get(), msg.get(), nullptr, &plaintext_raw);
  Buffer plaintext(plaintext_raw);
  if (out.rc != SG_SUCCESS) return out;
  out.plaintext = ToBytes(plaintext.get());
  return out;
}

uint64_t OracleParty::SessionLoads() const { return impl_->session_loads; }
uint64_t OracleParty::SessionStores() const { return impl_->session_stores; }

// -----------------------------------------------------------------------------------------------
// Stateless helpers.

namespace {

// Runs the library's fingerprint generator; on success *out holds a fingerprint reference.
int MakeFingerprint(LibContext& lib, uint32_t iterations, int scannable_version,
                    const std::string& local_id, ByteSpan local_key33, const std::string& remote_id,
                    ByteSpan remote_key33, Ref<fingerprint>* out) {
  int rc = lib.Init();
  if (rc != SG_SUCCESS) return rc;
  if (iterations > static_cast<uint32_t>(INT_MAX)) return SG_ERR_INVAL;
  Ref<ec_public_key> local_key = DecodePublic(local_key33, lib.ctx(), &rc);
  if (rc != SG_SUCCESS) return rc;
  Ref<ec_public_key> remote_key = DecodePublic(remote_key33, lib.ctx(), &rc);
  if (rc != SG_SUCCESS) return rc;
  fingerprint_generator* generator_raw = nullptr;
  rc = fingerprint_generator_create(&generator_raw, static_cast<int>(iterations), scannable_version,
                                    lib.ctx());
  std::unique_ptr<fingerprint_generator, FingerprintGeneratorFree> generator(generator_raw);
  if (rc != SG_SUCCESS) return rc;
  fingerprint* fp_raw = nullptr;
  rc = fingerprint_generator_create_for(generator.get(), local_id.c_str(), local_key.get(),
                                        remote_id.c_str(), remote_key.get(), &fp_raw);
  out->reset(fp_raw);
  return rc;
}

}  // namespace

std::string DisplayableFingerprint(uint32_t iterations, const std::string& local_id,
                                   ByteSpan local_key33, const std::string& remote_id,
                                   ByteSpan remote_key33) {
  LibContext lib(0);
  Ref<fingerprint> fp;
  if (MakeFingerprint(lib, iterations, /*scannable_version=*/1, local_id, local_key33, remote_id,
                      remote_key33, &fp) != SG_SUCCESS) {
    return {};
  }
  const displayable_fingerprint* displayable = fingerprint_get_displayable(fp.get());
  if (displayable == nullptr) return {};
  const char* text = displayable_fingerprint_text(displayable);
  return text != nullptr ? std::string(text) : std::string();
}

Bytes ScannableFingerprint(uint32_t iterations, const std::string& local_id, ByteSpan local_key33,
                           const std::string& remote_id, ByteSpan remote_key33,
                           int scannable_version) {
  LibContext lib(0);
  Ref<fingerprint> fp;
  if (MakeFingerprint(lib, iterations, scannable_version, local_id, local_key33, remote_id,
                      remote_key33, &fp) != SG_SUCCESS) {
    return {};
  }
  const scannable_fingerprint* scannable = fingerprint_get_scannable(fp.get());
  if (scannable == nullptr) return {};
  signal_buffer* raw = nullptr;
  const int rc = scannable_fingerprint_serialize(&raw, scannable);
  Buffer buffer(raw);
  if (rc != SG_SUCCESS) return {};
  return ToBytes(buffer.get());
}

int CompareScannable(ByteSpan mine_serialized, ByteSpan theirs_serialized) {
  if (mine_serialized.empty() || theirs_serialized.empty()) return SG_ERR_INVAL;
  LibContext lib(0);
  int rc = lib.Init();
  if (rc != SG_SUCCESS) return rc;
  scannable_fingerprint* mine_raw = nullptr;
  rc = scannable_fingerprint_deserialize(&mine_raw, mine_serialized.data(), mine_serialized.size(),
                                         lib.ctx());
  Ref<scannable_fingerprint> mine(mine_raw);
  if (rc != SG_SUCCESS) return rc;
  scannable_fingerprint* theirs_raw = nullptr;
  rc = scannable_fingerprint_deserialize(&theirs_raw, theirs_serialized.data(),
                                         theirs_serialized.size(), lib.ctx());
  Ref<scannable_fingerprint> theirs(theirs_raw);
  if (rc != SG_SUCCESS) return rc;
  return scannable_fingerprint_compare(mine.get(), theirs.get());
}

Bytes Sign(ByteSpan private32, ByteSpan message) {
  LibContext lib(0);
  int rc = lib.Init();
  if (rc != SG_SUCCESS) return {};
  Ref<ec_private_key> key = DecodePrivate(private32, lib.ctx(), &rc);
  if (rc != SG_SUCCESS) return {};
  static const uint8_t kEmpty = 0;
  signal_buffer* raw = nullptr;
  rc = curve_calculate_signature(lib.ctx(), &raw, key.get(),
                                 message.empty() ? &kEmpty : message.data(), message.size());
  Buffer signature(raw);
  if (rc != SG_SUCCESS) return {};
  return ToBytes(signature.get());
}

bool Verify(ByteSpan public33, ByteSpan message, ByteSpan signature64) {
  LibContext lib(0);
  int rc = lib.Init();
  if (rc != SG_SUCCESS) return false;
  Ref<ec_public_key> key = DecodePublic(public33, lib.ctx(), &rc);
  if (rc != SG_SUCCESS) return false;
  static const uint8_t kEmpty = 0;
  return curve_verify_signature(key.get(), message.empty() ? &kEmpty : message.data(),
                                message.size(), signature64.empty() ? &kEmpty : signature64.data(),
                                signature64.size()) == 1;
}

Bytes Agree(ByteSpan public33, ByteSpan private32) {
  LibContext lib(0);
  int rc = lib.Init();
  if (rc != SG_SUCCESS) return {};
  Ref<ec_public_key> public_key = DecodePublic(public33, lib.ctx(), &rc);
  if (rc != SG_SUCCESS) return {};
  Ref<ec_private_key> private_key = DecodePrivate(private32, lib.ctx(), &rc);
  if (rc != SG_SUCCESS) return {};
  uint8_t* shared = nullptr;
  const int len = curve_calculate_agreement(&shared, public_key.get(), private_key.get());
  // The library allocates the shared secret with malloc; the caller frees it.
  std::unique_ptr<uint8_t, decltype(&std::free)> owner(shared, &std::free);
  if (len <= 0 || shared == nullptr) return {};
  return Bytes(shared, shared + len);
}

Bytes PublicFromPrivate(ByteSpan private32) {
  LibContext lib(0);
  int rc = lib.Init();
  if (rc != SG_SUCCESS) return {};
  Ref<ec_private_key> private_key = DecodePrivate(private32, lib.ctx(), &rc);
  if (rc != SG_SUCCESS) return {};
  ec_public_key* raw = nullptr;
  rc = curve_generate_public_key(&raw, private_key.get());
  Ref<ec_public_key> public_key(raw);
  if (rc != SG_SUCCESS) return {};
  return SerializePublic(public_key.get());
}

OracleKeyPair GenerateKeyPair() {
  LibContext lib(0);
  if (lib.Init() != SG_SUCCESS) return {};
  ec_key_pair* raw = nullptr;
  const int rc = curve_generate_key_pair(lib.ctx(), &raw);
  Ref<ec_key_pair> pair(raw);
  if (rc != SG_SUCCESS) return {};
  return {SerializePublic(ec_key_pair_get_public(pair.get())),
          SerializePrivate(ec_key_pair_get_private(pair.get()))};
}

}  // namespace sotto::oracle
