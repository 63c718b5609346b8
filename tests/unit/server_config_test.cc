// Tests of sottod's configuration and the token bucket: defaults, overrides, unknown
// keys and out-of-range values named in the error, and rate limits at their edge.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "server/config.h"
#include "server/rate_limiter.h"

namespace sotto::server {
namespace {

std::string WriteTemp(const std::string& text) {
  const auto path = std::filesystem::temp_directory_path() /
                    ("sotto-config-" + std::to_string(::testing::UnitTest::GetInstance()->random_seed()) +
                     ::testing::UnitTest::GetInstance()->current_test_info()->name() + ".toml");
  std::ofstream(path) << text;
  return path.string();
}

TEST(Config, OverridesDefaults) {
  ServerConfig c;
  std::string detail;
  auto s = LoadConfigFile(WriteTemp("[server]\nlisten = \"127.0.0.1:0\"\nloops = 2\n"
                                    "[limits]\nmax_connections = 10\nrequest_rate_per_s = 2.5\n"),
                          c, detail);
  ASSERT_TRUE(s) << detail;
  EXPECT_EQ(c.listen, "127.0.0.1:0");
  EXPECT_EQ(c.loops, 2u);
  EXPECT_EQ(c.limits.max_connections, 10u);
  EXPECT_DOUBLE_EQ(c.limits.request_rate.per_second, 2.5);
  EXPECT_EQ(c.limits.max_frame_bytes, 65535u);  // untouched default
}

TEST(Config, ErrorsNameTheKey) {
  struct Case {
    const char* toml;
    const char* named;
  } cases[] = {
      {"[server]\nlisten_typo = \"x\"\n", "server.listen_typo"},
      {"[limits]\nmax_connections = -1\n", "limits.max_connections"},
      {"[limits]\nmax_frame_bytes = 65536\n", "limits.max_frame_bytes"},
      {"[limits]\nmax_frame_bytes = 63\n", "limits.max_frame_bytes"},
      {"[limits]\nmax_connections = 0\n", "limits.max_connections"},
      {"[limits]\nmax_write_queue_bytes = 100\n", "limits.max_write_queue_bytes"},
      {"[nope]\n", "[nope]"},
      {"[server\n", ""},
  };
  for (const Case& c : cases) {
    ServerConfig config;
    std::string detail;
    auto s = LoadConfigFile(WriteTemp(c.toml), config, detail);
    ASSERT_FALSE(s) << c.toml;
    EXPECT_NE(detail.find(c.named), std::string::npos) << detail;
  }
  ServerConfig edge;
  std::string detail;
  ASSERT_TRUE(LoadConfigFile(WriteTemp("[limits]\nmax_frame_bytes = 65535\n"), edge, detail)) << detail;
  ASSERT_TRUE(LoadConfigFile(WriteTemp("[limits]\nmax_frame_bytes = 64\nmax_write_queue_bytes = 66\n"),
                             edge, detail))
      << detail;
}

TEST(ServerConfig, CoreTablesLoadAndNameBadValues) {
  ServerConfig c;
  std::string detail;
  ASSERT_TRUE(LoadConfigFile(
      WriteTemp("[store]\nmessage_ttl_s = 60\nmax_queue_depth = 5\nsync = false\n"
                "max_queued_per_sender = 5\n"
                "[registration]\ncode_sender = \"webhook\"\nwebhook_url = \"http://h/x\"\n"
                "[prekeys]\nlow_watermark = 3\nbundle_rate_per_s = 2.5\n"
                "[push]\ncoalesce_ms = 10\nallow_private_endpoints = true\n"),
      c, detail))
      << detail;
  EXPECT_EQ(c.store.message_ttl_s, 60u);
  EXPECT_EQ(c.store.max_queue_depth, 5u);
  EXPECT_FALSE(c.store.sync);
  EXPECT_EQ(c.registration.code_sender, "webhook");
  EXPECT_EQ(c.prekeys.low_watermark, 3u);
  EXPECT_DOUBLE_EQ(c.prekeys.bundle_rate.per_second, 2.5);
  EXPECT_TRUE(c.push.allow_private_endpoints);
  struct Case {
    const char* toml;
    const char* names;
  };
  for (const Case& bad : {Case{"[store]\nmax_queue_depth = 0\n", "store.max_queue_depth"},
                          Case{"[store]\ndelivery_window = 4097\n", "store.delivery_window"},
                          Case{"[store]\nsync = 1\n", "store.sync"},
                          Case{"[store]\nttl = 1\n", "store.ttl"},
                          Case{"[registration]\ncode_sender = \"sms\"\n", "registration.code_sender"},
                          Case{"[registration]\ncode_sender = \"webhook\"\n", "registration.webhook_url"},
                          Case{"[prekeys]\nlow_watermark = 2000\n", "prekeys.low_watermark"},
                          Case{"[push]\ninitial_backoff_ms = 0\n", "push.initial_backoff_ms"}}) {
    ServerConfig fresh;
    std::string why;
    EXPECT_FALSE(LoadConfigFile(WriteTemp(bad.toml), fresh, why)) << bad.toml;
    EXPECT_NE(why.find(bad.names), std::string::npos) << why;
  }
  // The queue-depth edge: 1 is accepted.
  ServerConfig edge;
  EXPECT_TRUE(LoadConfigFile(WriteTemp("[store]\nmax_queue_depth = 1\nmax_queued_per_sender = 1\n"),
                             edge, detail))
      << detail;
}

TEST(ServerConfig, DevicesTableLoadsAndBoundsItsLimits) {
  ServerConfig c;
  std::string detail;
  ASSERT_TRUE(LoadConfigFile(WriteTemp("[devices]\nmax_devices_per_account = 16\n"
                                       "provision_ttl_s = 1\nmax_provision_body_bytes = 256\n"
                                       "link_token_ttl_s = 2\nmax_link_tokens = 3\n"),
                             c, detail))
      << detail;
  EXPECT_EQ(c.devices.max_devices_per_account, kMaxDevicesPerAccountLimit);  // at the edge
  EXPECT_EQ(c.devices.provision_ttl_s, 1u);
  EXPECT_EQ(c.devices.max_provision_body_bytes, 256u);
  EXPECT_EQ(c.devices.link_token_ttl_s, 2u);
  EXPECT_EQ(c.devices.max_link_tokens, 3u);
  EXPECT_EQ(ServerConfig().devices.max_devices_per_account, 5u);
  for (const char* bad :
       {"[devices]\nmax_devices_per_account = 17\n", "[devices]\nmax_devices_per_account = 0\n",
        "[devices]\nprovision_ttl_s = 0\n", "[devices]\nmax_provision_body_bytes = 255\n",
        "[devices]\nmax_provision_body_bytes = 32769\n", "[devices]\nlink_token_ttl = 5\n"}) {
    ServerConfig fresh;
    std::string why;
    EXPECT_FALSE(LoadConfigFile(WriteTemp(bad), fresh, why)) << bad;
    EXPECT_NE(why.find("devices."), std::string::npos) << why;
  }
}

// Issue 12: the per-source, per-account and per-target limits load, a rate of 0 turns one
// off, a rate without a burst of at least 1 and a count of 0 are refused by name.
TEST(ServerConfig, SourceAndAccountLimitsLoadAtAndPastTheirEdges) {
  ServerConfig c;
  std::string detail;
  ASSERT_TRUE(LoadConfigFile(
      WriteTemp("[registration]\nip_code_rate_per_s = 0.5\nip_code_burst = 1\n"
                "global_code_rate_per_s = 0\nglobal_code_burst = 0\n"
                "ip_guess_rate_per_s = 2\nip_guess_burst = 3\n"
                "global_guess_rate_per_s = 4\nglobal_guess_burst = 5\n"
                "[lookups]\naccount_rate_per_s = 1\naccount_burst = 1\nip_rate_per_s = 0\n"
                "global_rate_per_s = 7\nglobal_burst = 8\n"
                "[prekeys]\ntarget_rate_per_s = 0.25\ntarget_burst = 1\nnew_account_age_s = 0\n"
                "new_account_bundle_rate_per_s = 3\nnew_account_bundle_burst = 4\n"
                "[media]\nmax_tokens_per_account = 1\n"
                "[devices]\nmax_provision_ids_per_ip = 1\nmax_link_tokens_per_account = 1\n"),
      c, detail))
      << detail;
  EXPECT_DOUBLE_EQ(c.registration.ip_code_rate.per_second, 0.5);
  EXPECT_DOUBLE_EQ(c.registration.ip_code_rate.burst, 1);           // at the edge
  EXPECT_DOUBLE_EQ(c.registration.global_code_rate.per_second, 0);  // off
  EXPECT_DOUBLE_EQ(c.registration.ip_guess_rate.burst, 3);
  EXPECT_DOUBLE_EQ(c.registration.global_guess_rate.per_second, 4);
  EXPECT_DOUBLE_EQ(c.lookups.account_rate.per_second, 1);
  EXPECT_DOUBLE_EQ(c.lookups.ip_rate.per_second, 0);
  EXPECT_DOUBLE_EQ(c.lookups.global_rate.burst, 8);
  EXPECT_DOUBLE_EQ(c.prekeys.target_rate.per_second, 0.25);
  EXPECT_EQ(c.prekeys.new_account_age_s, 0u);
  EXPECT_DOUBLE_EQ(c.prekeys.new_account_bundle_rate.burst, 4);
  EXPECT_EQ(c.media.max_tokens_per_account, 1u);
  EXPECT_EQ(c.devices.max_provision_ids_per_ip, 1u);
  EXPECT_EQ(c.devices.max_link_tokens_per_account, 1u);
  // The defaults are the ones docs/config.md and docs/server.md state.
  const ServerConfig d;
  EXPECT_DOUBLE_EQ(d.registration.ip_code_rate.per_second, 1.0 / 300);
  EXPECT_DOUBLE_EQ(d.registration.global_guess_rate.per_second, 0.05);
  EXPECT_DOUBLE_EQ(d.prekeys.target_rate.burst, 50);
  EXPECT_EQ(d.prekeys.new_account_age_s, 86'400u);
  EXPECT_EQ(d.media.max_tokens_per_account, 50u);
  EXPECT_EQ(d.devices.max_provision_ids_per_ip, 16u);
  EXPECT_EQ(d.devices.max_link_tokens_per_account, 4u);
  struct Case {
    const char* toml;
    const char* names;
  };
  for (const Case& bad :
       {Case{"[registration]\nip_code_rate_per_s = 1\nip_code_burst = 0.5\n",
             "registration.ip_code_burst"},
        Case{"[registration]\nglobal_code_rate_per_s = 1\nglobal_code_burst = 0\n",
             "registration.global_code_burst"},
        Case{"[registration]\nip_guess_rate_per_s = 1\nip_guess_burst = 0\n",
             "registration.ip_guess_burst"},
        Case{"[registration]\nglobal_guess_rate_per_s = 1\nglobal_guess_burst = 0\n",
             "registration.global_guess_burst"},
        Case{"[registration]\nip_code_rate_per_s = -1\n", "registration.ip_code_rate_per_s"},
        Case{"[lookups]\naccount_rate_per_s = 1\naccount_burst = 0\n", "lookups.account_burst"},
        Case{"[lookups]\nip_rate_per_s = 1\nip_burst = 0\n", "lookups.ip_burst"},
        Case{"[lookups]\nglobal_rate_per_s = 1\nglobal_burst = 0\n", "lookups.global_burst"},
        Case{"[lookups]\nrate = 1\n", "lookups.rate"},
        Case{"[prekeys]\ntarget_rate_per_s = 1\ntarget_burst = 0\n", "prekeys.target_burst"},
        Case{"[prekeys]\nnew_account_bundle_burst = 0\n", "prekeys.new_account_bundle_burst"},
        Case{"[prekeys]\nnew_account_age_s = -1\n", "prekeys.new_account_age_s"},
        Case{"[media]\nmax_tokens_per_account = 0\n", "media.max_tokens_per_account"},
        Case{"[devices]\nmax_provision_ids_per_ip = 0\n", "devices.max_provision_ids_per_ip"},
        Case{"[devices]\nmax_link_tokens_per_account = 0\n",
             "devices.max_link_tokens_per_account"}}) {
    ServerConfig fresh;
    std::string why;
    EXPECT_FALSE(LoadConfigFile(WriteTemp(bad.toml), fresh, why)) << bad.toml;
    EXPECT_NE(why.find(bad.names), std::string::npos) << bad.toml << ": " << why;
  }
}

TEST(ServerConfig, GroupsTableAtAndPastItsEdges) {
  ServerConfig defaults;
  EXPECT_EQ(defaults.groups.max_members, 1024u);
  EXPECT_EQ(defaults.groups.max_request_accounts, 1024u);
  for (const char* ok : {"[groups]\nmax_members = 1\nmax_request_accounts = 1\n",
                         "[groups]\nmax_members = 1024\nmax_request_accounts = 1024\n"}) {
    ServerConfig c;
    std::string detail;
    EXPECT_TRUE(LoadConfigFile(WriteTemp(ok), c, detail)) << detail;
  }
  ServerConfig c;
  std::string detail;
  ASSERT_TRUE(LoadConfigFile(WriteTemp("[groups]\nmax_members = 8\n"), c, detail)) << detail;
  EXPECT_EQ(c.groups.max_members, 8u);
  struct Case {
    const char* toml;
    const char* names;
  };
  for (const Case& bad : {Case{"[groups]\nmax_members = 0\n", "groups.max_members"},
                          Case{"[groups]\nmax_members = 1025\n", "groups.max_members"},
                          Case{"[groups]\nmax_request_accounts = 0\n", "groups.max_request_accounts"},
                          Case{"[groups]\nmax_request_accounts = 1025\n",
                               "groups.max_request_accounts"},
                          Case{"[groups]\nsize = 3\n", "groups.size"}}) {
    ServerConfig fresh;
    std::string why;
    EXPECT_FALSE(LoadConfigFile(WriteTemp(bad.toml), fresh, why)) << bad.toml;
    EXPECT_NE(why.find(bad.names), std::string::npos) << why;
  }
}

// Issue 12: the group change rate limits.
TEST(ServerConfig, GroupChangeRatesAtAndPastTheirEdges) {
  ServerConfig defaults;
  EXPECT_EQ(defaults.groups.account_change_rate.per_second, 1.0);
  EXPECT_EQ(defaults.groups.account_change_rate.burst, 30.0);
  EXPECT_EQ(defaults.groups.group_change_rate.per_second, 2.0);
  EXPECT_EQ(defaults.groups.group_change_rate.burst, 60.0);
  ServerConfig c;
  std::string detail;
  ASSERT_TRUE(LoadConfigFile(WriteTemp("[groups]\naccount_change_rate_per_s = 0.5\n"
                                       "account_change_burst = 1\ngroup_change_rate_per_s = 0\n"
                                       "group_change_burst = 0\n"),
                             c, detail))
      << detail;
  EXPECT_EQ(c.groups.account_change_rate.per_second, 0.5);
  EXPECT_EQ(c.groups.account_change_rate.burst, 1.0);     // the edge: one change at a time
  EXPECT_EQ(c.groups.group_change_rate.per_second, 0.0);  // 0 turns the limit off
  struct Case {
    const char* toml;
    const char* names;
  };
  for (const Case& bad :
       {Case{"[groups]\naccount_change_burst = 0.5\n", "groups.account_change_burst"},
        Case{"[groups]\ngroup_change_burst = 0\n", "groups.group_change_burst"},
        Case{"[groups]\naccount_change_rate_per_s = -1\n", "groups.account_change_rate_per_s"}}) {
    ServerConfig fresh;
    std::string why;
    EXPECT_FALSE(LoadConfigFile(WriteTemp(bad.toml), fresh, why)) << bad.toml;
    EXPECT_NE(why.find(bad.names), std::string::npos) << why;
  }
}

TEST(ServerConfig, MediaTableLoadsAndNamesBadValues) {
  ServerConfig c;
  std::string detail;
  ASSERT_TRUE(LoadConfigFile(
      WriteTemp("[media]\nlisten = \"127.0.0.1:0\"\npublic_url = \"https://m.example.org/x\"\n"
                "max_blob_bytes = 5000000000\nblob_ttl_s = 1\nupload_token_ttl_s = 2\n"
                "sweep_interval_ms = 3\nmax_transfers = 10000\nidle_timeout_ms = 5\n"
                "max_pending_tokens = 6\n"),
      c, detail))
      << detail;
  EXPECT_EQ(c.media.listen, "127.0.0.1:0");
  EXPECT_EQ(c.media.max_blob_bytes, 5'000'000'000u);  // above 2^32: a 64-bit key
  EXPECT_EQ(c.media.max_transfers, 10'000u);          // the edge is accepted
  EXPECT_EQ(c.media.max_pending_tokens, 6u);
  EXPECT_TRUE(ServerConfig().media.listen.empty());   // off by default
  struct Case {
    const char* toml;
    const char* names;
  };
  for (const Case& bad : {Case{"[media]\nmax_blob_bytes = 0\n", "media.max_blob_bytes"},
                          Case{"[media]\nmax_blob_bytes = -1\n", "media.max_blob_bytes"},
                          Case{"[media]\nblob_ttl_s = 0\n", "media.blob_ttl_s"},
                          Case{"[media]\nmax_transfers = 10001\n", "media.max_transfers"},
                          Case{"[media]\nidle_timeout_ms = 0\n", "media.idle_timeout_ms"},
                          Case{"[media]\nmax_pending_tokens = 0\n", "media.max_pending_tokens"},
                          Case{"[media]\npublic_url = \"ftp://x\"\n", "media.public_url"},
                          Case{"[media]\nport = 1\n", "media.port"}}) {
    ServerConfig fresh;
    std::string why;
    EXPECT_FALSE(LoadConfigFile(WriteTemp(bad.toml), fresh, why)) << bad.toml;
    EXPECT_NE(why.find(bad.names), std::string::npos) << why;
  }
}

TEST(ServerConfig, MaxQueuedPerSenderIsWithinOneAndTheQueueDepth) {
  ServerConfig defaults;
  EXPECT_EQ(defaults.store.max_queued_per_sender, 1'000u);
  std::string detail;
  EXPECT_TRUE(ValidateConfig(defaults, detail)) << detail;
  for (const char* toml : {"[store]\nmax_queued_per_sender = 0\n",
                           "[store]\nmax_queue_depth = 10\nmax_queued_per_sender = 11\n",
                           "[store]\nmax_queue_depth = 999\n"}) {  // below the default 1,000
    ServerConfig c;
    std::string why;
    EXPECT_FALSE(LoadConfigFile(WriteTemp(toml), c, why)) << toml;
    EXPECT_NE(why.find("store.max_queued_per_sender"), std::string::npos) << why;
  }
  for (const char* toml : {"[store]\nmax_queue_depth = 10\nmax_queued_per_sender = 10\n",
                           "[store]\nmax_queued_per_sender = 1\n"}) {
    ServerConfig c;
    EXPECT_TRUE(LoadConfigFile(WriteTemp(toml), c, detail)) << toml << detail;
  }
  ServerConfig edge;
  ASSERT_TRUE(LoadConfigFile(
      WriteTemp("[store]\nmax_queue_depth = 10\nmax_queued_per_sender = 10\n"), edge, detail));
  EXPECT_EQ(edge.store.max_queued_per_sender, 10u);
}

// The blocking-work pool (docs/server.md "Threads"): both values at and past their edges.
TEST(ServerConfig, IoThreadsAndIoQueueDepthAtAndPastTheirEdges) {
  ServerConfig defaults;
  EXPECT_EQ(defaults.store.io_threads, 4u);
  EXPECT_EQ(defaults.store.io_queue_depth, 4'096u);
  struct Bad {
    const char* toml;
    const char* names;
  };
  for (const Bad& bad : {Bad{"[store]\nio_threads = 0\n", "store.io_threads"},
                         Bad{"[store]\nio_threads = 257\n", "store.io_threads"},
                         Bad{"[store]\nio_queue_depth = 0\n", "store.io_queue_depth"},
                         Bad{"[store]\nio_queue_depth = 1000001\n", "store.io_queue_depth"}}) {
    ServerConfig c;
    std::string why;
    EXPECT_FALSE(LoadConfigFile(WriteTemp(bad.toml), c, why)) << bad.toml;
    EXPECT_NE(why.find(bad.names), std::string::npos) << why;
  }
  ServerConfig low;
  std::string detail;
  ASSERT_TRUE(
      LoadConfigFile(WriteTemp("[store]\nio_threads = 1\nio_queue_depth = 1\n"), low, detail))
      << detail;
  EXPECT_EQ(low.store.io_threads, 1u);
  EXPECT_EQ(low.store.io_queue_depth, 1u);
  ServerConfig high;
  ASSERT_TRUE(LoadConfigFile(WriteTemp("[store]\nio_threads = 256\nio_queue_depth = 1000000\n"),
                             high, detail))
      << detail;
  EXPECT_EQ(high.store.io_threads, 256u);
  EXPECT_EQ(high.store.io_queue_depth, 1'000'000u);
}

TEST(TokenBucket, BurstThenRate) {
  TokenBucket b;
  const RateLimit limit{10, 3};  // 10/s, burst 3
  uint64_t now = 1000;
  EXPECT_TRUE(b.Allow(now, limit));
  EXPECT_TRUE(b.Allow(now, limit));
  EXPECT_TRUE(b.Allow(now, limit));
  EXPECT_FALSE(b.Allow(now, limit));  // burst exhausted
  now += 99;
  EXPECT_FALSE(b.Allow(now, limit));  // 0.99 tokens
  now += 1;
  EXPECT_TRUE(b.Allow(now, limit));  // exactly one token after 100 ms
  EXPECT_FALSE(b.Allow(now, limit));
  now += 10'000;
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(b.Allow(now, limit));
  EXPECT_FALSE(b.Allow(now, limit));  // refill capped at burst
  TokenBucket off;
  for (int i = 0; i < 1000; ++i) EXPECT_TRUE(off.Allow(now, RateLimit{0, 0}));
}

TEST(ServerConfig, NetLimitsLoadAndAreCheckedAtTheirEdges) {
  ServerConfig c;
  std::string detail;
  ASSERT_TRUE(LoadConfigFile(
      WriteTemp("[limits]\nmax_frame_bytes = 1000\nmax_partial_input_bytes = 1002\n"
                "partial_frame_timeout_ms = 1\nmax_connections_per_ip = 1\n"
                "max_handshakes_per_ip = 1\nreserved_fds = 0\nmax_metrics_connections = 1\n"
                "[media]\nmax_transfers = 4\nmax_transfers_per_ip = 4\nheader_timeout_ms = 1\n"
                "min_transfer_bytes_per_s = 0\n"),
      c, detail))
      << detail;
  EXPECT_EQ(c.limits.max_partial_input_bytes, 1002u);
  EXPECT_EQ(c.limits.max_connections_per_ip, 1u);
  EXPECT_EQ(c.media.max_transfers_per_ip, 4u);
  EXPECT_EQ(c.media.min_transfer_bytes_per_s, 0u);
  struct Case {
    const char* toml;
    const char* named;
  } cases[] = {
      {"[limits]\nmax_frame_bytes = 1000\nmax_partial_input_bytes = 1001\n",
       "limits.max_partial_input_bytes"},
      {"[limits]\npartial_frame_timeout_ms = 0\n", "limits.partial_frame_timeout_ms"},
      {"[limits]\nmax_connections_per_ip = 0\n", "limits.max_connections_per_ip"},
      {"[limits]\nmax_handshakes_per_ip = 0\n", "limits.max_handshakes_per_ip"},
      {"[limits]\nmax_metrics_connections = 0\n", "limits.max_metrics_connections"},
      {"[media]\nheader_timeout_ms = 0\n", "media.header_timeout_ms"},
      {"[media]\nmax_transfers = 4\nmax_transfers_per_ip = 5\n", "media.max_transfers_per_ip"},
      {"[media]\nmax_transfers_per_ip = 0\n", "media.max_transfers_per_ip"},
  };
  for (const Case& k : cases) {
    ServerConfig config;
    auto s = LoadConfigFile(WriteTemp(k.toml), config, detail);
    ASSERT_FALSE(s) << k.toml;
    EXPECT_NE(detail.find(k.named), std::string::npos) << detail;
  }
}

TEST(ServerConfig, DescriptorBudgetMustFitTheOpenFileLimit) {
  ServerConfig c;
  c.limits.max_connections = 100;
  c.limits.max_metrics_connections = 10;
  c.limits.reserved_fds = 40;
  std::string detail;
  EXPECT_EQ(ListenerFdBudget(c), 110u);
  EXPECT_TRUE(CheckDescriptorBudget(c, 150, detail));  // at the edge
  auto over = CheckDescriptorBudget(c, 149, detail);
  ASSERT_FALSE(over);
  EXPECT_NE(detail.find("RLIMIT_NOFILE 149"), std::string::npos) << detail;
  EXPECT_NE(detail.find("limits.max_connections (100)"), std::string::npos) << detail;
  EXPECT_NE(detail.find("limits.reserved_fds (40)"), std::string::npos) << detail;
  // The media service counts kFdsPerMediaTransfer per transfer, only when it runs.
  c.media.listen = "127.0.0.1:0";
  c.media.max_transfers = 10;
  EXPECT_EQ(ListenerFdBudget(c), 110u + 10 * kFdsPerMediaTransfer);
  ASSERT_FALSE(CheckDescriptorBudget(c, 150, detail));
  EXPECT_NE(detail.find("media.max_transfers (10)"), std::string::npos) << detail;
  EXPECT_TRUE(CheckDescriptorBudget(c, 150 + 10 * kFdsPerMediaTransfer, detail));
  // The defaults fit a 20,000-descriptor limit with the media service on.
  ServerConfig defaults;
  defaults.media.listen = "127.0.0.1:0";
  EXPECT_TRUE(CheckDescriptorBudget(defaults, 20'000, detail)) << detail;
}

}  // namespace
}  // namespace sotto::server
