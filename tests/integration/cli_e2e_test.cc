// End to end through the real binaries: a real sottod and real `sotto` processes (one per
// command, as a user runs them) and the `sotto daemon` over its Unix socket (JSON-RPC).
// Waits are on process exits, output lines and socket reads, never sleeps.
#include <signal.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "base/version.h"
#include "client/content.h"
#include "tests/integration/sotto_cli.h"
#include "wire/wire.h"

namespace sotto {
namespace {

using nlohmann::json;
using testing::CliTest;
using testing::Daemon;
using testing::Describe;
using testing::JsonLines;
using testing::kAlice;
using testing::kBob;
using testing::OfType;
using testing::ProcessRun;
using testing::Sotto;

TEST_F(CliTest, TwoUsersChatWithTicksSearchAndSafetyNumbers) {
  const std::string alice = Home("alice"), bob = Home("bob");
  ASSERT_NO_FATAL_FAILURE(Register(alice, kAlice));
  ASSERT_NO_FATAL_FAILURE(Register(bob, kBob));

  // Bob is offline (no process): three messages wait on the server, in order.
  for (int i = 1; i <= 3; ++i) {
    ProcessRun r = Sotto({"--home", alice, "send", kBob, "hello bob " + std::to_string(i)});
    ASSERT_EQ(r.exit_code, 0) << Describe(r);
  }
  std::vector<json> got = OfType(Receive(bob), "message");
  ASSERT_EQ(got.size(), 3u);
  for (int i = 1; i <= 3; ++i) {
    EXPECT_EQ(got[static_cast<size_t>(i - 1)]["body"], "hello bob " + std::to_string(i));
    EXPECT_EQ(got[static_cast<size_t>(i - 1)]["from"], kAlice);
  }
  // Nothing is delivered twice.
  EXPECT_TRUE(OfType(Receive(bob), "message").empty());

  ProcessRun reply = Sotto({"--home", bob, "send", kAlice, "hi alice, got them"});
  ASSERT_EQ(reply.exit_code, 0) << Describe(reply);
  std::vector<json> alice_in = Receive(alice);
  ASSERT_EQ(OfType(alice_in, "message").size(), 1u);
  EXPECT_EQ(OfType(alice_in, "message")[0]["body"], "hi alice, got them");
  // The server's delivered receipts for her three messages: two ticks.
  EXPECT_EQ(OfType(alice_in, "receipt").size(), 3u);

  ProcessRun conv = Sotto({"--home", alice, "messages", kBob, "--json", "--no-mark-read"});
  ASSERT_EQ(conv.exit_code, 0) << Describe(conv);
  std::vector<json> lines = JsonLines(conv.out);
  ASSERT_EQ(lines.size(), 4u) << conv.out;
  for (size_t i = 0; i < 3; ++i) EXPECT_EQ(lines[i]["status"], "delivered") << lines[i];

  // Bob opens the conversation: read receipts make alice's ticks blue.
  ASSERT_EQ(Sotto({"--home", bob, "messages", kAlice}).exit_code, 0);
  alice_in = Receive(alice);
  EXPECT_EQ(OfType(alice_in, "receipt").size(), 3u);
  for (const json& r : OfType(alice_in, "receipt")) EXPECT_EQ(r["status"], "read");
  lines = JsonLines(Sotto({"--home", alice, "messages", kBob, "--json", "--no-mark-read"}).out);
  ASSERT_EQ(lines.size(), 4u);
  for (size_t i = 0; i < 3; ++i) EXPECT_EQ(lines[i]["status"], "read") << lines[i];

  ProcessRun search = Sotto({"--home", bob, "search", "bob 2", "--json"});
  ASSERT_EQ(search.exit_code, 0) << Describe(search);
  std::vector<json> hits = JsonLines(search.out);
  ASSERT_EQ(hits.size(), 1u) << search.out;
  EXPECT_NE(hits[0].dump().find("hello bob 2"), std::string::npos);

  ProcessRun a = Sotto({"--home", alice, "safety-number", kBob});
  ProcessRun b = Sotto({"--home", bob, "safety-number", kAlice});
  ASSERT_EQ(a.exit_code, 0) << Describe(a);
  ASSERT_EQ(b.exit_code, 0) << Describe(b);
  auto digits = [](const std::string& s) {
    std::string d;
    for (char c : s) {
      if (c >= '0' && c <= '9') d += c;
    }
    return d;
  };
  // Each prints the other's number too; the safety number is the last 60 digits.
  const std::string number_a = digits(a.out), number_b = digits(b.out);
  ASSERT_GE(number_a.size(), 60u);
  ASSERT_GE(number_b.size(), 60u);
  EXPECT_EQ(number_a.substr(number_a.size() - 60), number_b.substr(number_b.size() - 60));
  ProcessRun qr = Sotto({"--home", alice, "safety-number", kBob, "--qr"});
  ASSERT_EQ(qr.exit_code, 0);
  EXPECT_NE(qr.out.find("\u2580"), std::string::npos);  // half blocks
  ProcessRun wrong =
      Sotto({"--home", alice, "verify-contact", kBob, "--safety-number", std::string(60, '7')});
  EXPECT_EQ(wrong.exit_code, 8) << Describe(wrong);
  ProcessRun right = Sotto({"--home", alice, "verify-contact", kBob});
  EXPECT_EQ(right.exit_code, 0) << Describe(right);
}

TEST_F(CliTest, IdentityChangeBlocksSendingUntilTrusted) {
  const std::string alice = Home("alice"), bob = Home("bob"), bob2 = Home("bob-new-phone");
  ASSERT_NO_FATAL_FAILURE(Register(alice, kAlice));
  ASSERT_NO_FATAL_FAILURE(Register(bob, kBob));
  ASSERT_EQ(Sotto({"--home", alice, "send", kBob, "hi"}).exit_code, 0);
  // bob's number on a new device: a new identity key
  ASSERT_NO_FATAL_FAILURE(Register(bob2, kBob));
  ProcessRun held = Sotto({"--home", alice, "send", kBob, "is this still you?"});
  EXPECT_EQ(held.exit_code, 5) << Describe(held);
  EXPECT_NE((held.out + held.err).find("trust"), std::string::npos) << Describe(held);
  EXPECT_TRUE(OfType(Receive(bob2), "message").empty());
  ProcessRun trust = Sotto({"--home", alice, "trust", kBob});
  ASSERT_EQ(trust.exit_code, 0) << Describe(trust);
  std::vector<json> got = OfType(Receive(bob2), "message");
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0]["body"], "is this still you?");
}

TEST_F(CliTest, ExitCodesAreDocumentedOnes) {
  const std::string alice = Home("alice");
  EXPECT_EQ(Sotto({"--home", alice, "send", kBob, "x"}).exit_code, 3);  // not registered
  EXPECT_EQ(Sotto({"--home", alice, "no-such-command"}).exit_code, 2);
  ProcessRun bad = Sotto({"--home", alice, "register", "--server", Server(), "--number", "12345"});
  EXPECT_EQ(bad.exit_code, 6) << Describe(bad);
  ASSERT_NO_FATAL_FAILURE(Register(alice, kAlice));
  ProcessRun unknown = Sotto({"--home", alice, "send", "+15559999999", "x"});
  EXPECT_EQ(unknown.exit_code, 6) << Describe(unknown);
  EXPECT_EQ(Sotto({"--home", alice, "verify", "123456"}).exit_code, 1) << "already registered";
  ProcessRun help = Sotto({"--home", alice, "send", "--help"});
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_NE(help.out.find("send"), std::string::npos);
}

// What a newcomer meets first: versions, a mistyped command, an empty or too long text.
TEST_F(CliTest, VersionsAndUsageErrorsSayWhatIsWrong) {
  const std::string version =
      std::string(sotto::kVersion) + " (wire version " + std::to_string(wire::kWireVersion) + ")";
  ProcessRun cli_version = Sotto({"--version"});
  EXPECT_EQ(cli_version.exit_code, 0) << Describe(cli_version);
  EXPECT_EQ(cli_version.out, "sotto " + version + "\n");
  {
    FILE* sottod = popen(SOTTOD_PATH " --version", "r");
    ASSERT_NE(sottod, nullptr);
    std::string out;
    char buffer[256];
    while (fgets(buffer, sizeof buffer, sottod) != nullptr) out += buffer;
    EXPECT_EQ(pclose(sottod), 0);
    EXPECT_EQ(out, "sottod " + version + "\n");
  }

  const std::string alice = Home("alice"), bob = Home("bob");
  ProcessRun typo = Sotto({"--home", alice, "sendd", kBob, "hi"});
  EXPECT_EQ(typo.exit_code, 2) << Describe(typo);
  EXPECT_NE(typo.err.find("unknown command 'sendd'; did you mean 'send'?"), std::string::npos)
      << Describe(typo);
  ProcessRun nested = Sotto({"contacts", "--home", alice, "ad", kBob});
  EXPECT_EQ(nested.exit_code, 2) << Describe(nested);
  EXPECT_NE(nested.err.find("unknown command 'contacts ad'; did you mean 'contacts add'?"),
            std::string::npos)
      << Describe(nested);
  ProcessRun far = Sotto({"--home", alice, "xyzzy"});
  EXPECT_EQ(far.exit_code, 2) << Describe(far);
  EXPECT_NE(far.err.find("unknown command 'xyzzy'"), std::string::npos) << Describe(far);
  EXPECT_EQ(far.err.find("did you mean"), std::string::npos) << Describe(far);

  ASSERT_NO_FATAL_FAILURE(Register(alice, kAlice));
  ASSERT_NO_FATAL_FAILURE(Register(bob, kBob));
  ProcessRun empty = Sotto({"--home", alice, "send", kBob, ""});
  EXPECT_EQ(empty.exit_code, 2) << Describe(empty);
  EXPECT_NE(empty.err.find("the text is empty"), std::string::npos) << Describe(empty);
  ProcessRun missing = Sotto({"--home", alice, "send", kBob});
  EXPECT_EQ(missing.exit_code, 2) << Describe(missing);
  EXPECT_NE(missing.err.find("give the message text or --message-stdin"), std::string::npos)
      << Describe(missing);
  const std::string at_limit(client::kMaxBodyBytes, 'x');
  ProcessRun too_long = Sotto({"--home", alice, "send", kBob, at_limit + "x"});
  EXPECT_EQ(too_long.exit_code, 2) << Describe(too_long);
  EXPECT_NE(too_long.err.find("the text is 8193 bytes; a message holds at most 8192 bytes"),
            std::string::npos)
      << Describe(too_long);
  EXPECT_EQ(too_long.err.find("kMax"), std::string::npos) << Describe(too_long);
  ProcessRun fits = Sotto({"--home", alice, "send", kBob, at_limit});
  EXPECT_EQ(fits.exit_code, 0) << Describe(fits);
  std::vector<json> got = OfType(Receive(bob), "message");
  ASSERT_EQ(got.size(), 1u);  // only the one that fits was sent
  EXPECT_EQ(got[0]["body"], at_limit);
}

// `receive` returns once the server says the queue is drained, prints only results (no
// connection chatter unless --verbose), and shows the names given to contacts.
TEST_F(CliTest, ReceiveReturnsWhenDrainedQuietlyAndShowsContactNames) {
  const std::string alice = Home("alice"), bob = Home("bob");
  ASSERT_NO_FATAL_FAILURE(Register(alice, kAlice));
  ASSERT_NO_FATAL_FAILURE(Register(bob, kBob));
  ASSERT_EQ(Sotto({"--home", bob, "contacts", "add", kAlice, "--name", "Alice"}).exit_code, 0);
  ASSERT_EQ(Sotto({"--home", alice, "send", kBob, "hi bob"}).exit_code, 0);

  const auto started = std::chrono::steady_clock::now();
  ProcessRun received = Sotto({"--home", bob, "receive"});
  const auto took = std::chrono::steady_clock::now() - started;
  ASSERT_EQ(received.exit_code, 0) << Describe(received);
  // Before, `receive` always listened its 5 s default; drained, it is done at once.
  EXPECT_LT(took, std::chrono::seconds(5));
  EXPECT_NE(received.out.find("Alice (" + std::string(kAlice) + ") (device 1) at "),
            std::string::npos)
      << Describe(received);
  EXPECT_NE(received.out.find(": hi bob\n"), std::string::npos) << Describe(received);
  EXPECT_EQ(received.err, "") << Describe(received);  // no connect/disconnect lines

  ASSERT_EQ(Sotto({"--home", alice, "send", kBob, "again"}).exit_code, 0);
  ProcessRun verbose = Sotto({"--home", bob, "--verbose", "receive", "--json"});
  ASSERT_EQ(verbose.exit_code, 0) << Describe(verbose);
  const std::vector<json> lines = JsonLines(verbose.out);
  ASSERT_EQ(OfType(lines, "connection").size(), 1u) << verbose.out;  // one connection, no churn
  const std::vector<json> messages = OfType(lines, "message");
  ASSERT_EQ(messages.size(), 1u) << verbose.out;
  EXPECT_EQ(messages[0]["name"], "Alice");
  EXPECT_EQ(messages[0]["from"], kAlice);
  EXPECT_EQ(messages[0]["outgoing"], false);

  ProcessRun conv = Sotto({"--home", bob, "messages", kAlice, "--no-mark-read"});
  ASSERT_EQ(conv.exit_code, 0) << Describe(conv);
  EXPECT_NE(conv.out.find("] Alice (" + std::string(kAlice) + ") (device 1): hi bob"),
            std::string::npos)
      << conv.out;
  ProcessRun conv_json = Sotto({"--home", bob, "messages", kAlice, "--json", "--no-mark-read"});
  ASSERT_EQ(JsonLines(conv_json.out).size(), 2u) << conv_json.out;
  EXPECT_EQ(JsonLines(conv_json.out)[0]["name"], "Alice");
  ProcessRun search = Sotto({"--home", bob, "search", "again"});
  ASSERT_EQ(search.exit_code, 0) << Describe(search);
  EXPECT_NE(search.out.find("Alice (" + std::string(kAlice) + ") \u2192 me: [again]"),
            std::string::npos)
      << search.out;

  // --follow listens until stopped; it and --timeout are one choice.
  ProcessRun both = Sotto({"--home", bob, "receive", "--follow", "--timeout", "3"});
  EXPECT_EQ(both.exit_code, 2) << Describe(both);
}

TEST_F(CliTest, DaemonSpeaksJsonRpcAndSurvivesARestart) {
  const std::string alice = Home("alice"), bob = Home("bob");
  ASSERT_NO_FATAL_FAILURE(Register(alice, kAlice));
  ASSERT_NO_FATAL_FAILURE(Register(bob, kBob));
  const std::string socket = root_ + "/alice.sock";
  {
    Daemon daemon(alice, socket);
    json version = daemon.Call("version", json::object());
    ASSERT_TRUE(version.contains("result")) << version;
    EXPECT_EQ(version["result"]["version"], std::string(sotto::kVersion));
    EXPECT_EQ(version["result"]["wire"], wire::kWireVersion);
    json unknown = daemon.Call("noSuchMethod", json::object());
    EXPECT_EQ(unknown["error"]["code"], -32601) << unknown;
    json bad = daemon.Call("send", {{"to", kBob}});
    EXPECT_EQ(bad["error"]["code"], -32602) << bad;

    json sent = daemon.Call("send", {{"to", kBob}, {"text", "from the daemon"}});
    ASSERT_TRUE(sent.contains("result")) << sent;
    EXPECT_EQ(sent["result"]["status"], "sent");
    std::vector<json> got = OfType(Receive(bob), "message");
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got[0]["body"], "from the daemon");
    // Delivered receipt reaches the daemon as a notification.
    json receipt = daemon.Await("receipt");  // first "sent" (one tick), then "delivered"
    if (receipt["params"]["status"] == "sent") receipt = daemon.Await("receipt");
    EXPECT_EQ(receipt["params"]["status"], "delivered") << receipt;

    ASSERT_EQ(Sotto({"--home", bob, "send", kAlice, "to the daemon 1"}).exit_code, 0);
    json message = daemon.Await("message");
    EXPECT_EQ(message["params"]["body"], "to the daemon 1") << message;
    // The daemon holds the home: a CLI command on it is refused with exit 3.
    EXPECT_EQ(Sotto({"--home", alice, "messages", kBob}).exit_code, 3);
    daemon.Stop(SIGKILL);  // crash
  }
  for (int i = 2; i <= 4; ++i) {
    ASSERT_EQ(
        Sotto({"--home", bob, "send", kAlice, "to the daemon " + std::to_string(i)}).exit_code, 0);
  }
  {
    Daemon daemon(alice, socket);  // the stale socket file is replaced
    for (int i = 2; i <= 4; ++i) {
      json message = daemon.Await("message");
      EXPECT_EQ(message["params"]["body"], "to the daemon " + std::to_string(i)) << message;
    }
    json conv = daemon.Call("messages", {{"with", kBob}, {"markRead", false}});
    ASSERT_TRUE(conv.contains("result")) << conv;
    EXPECT_EQ(conv["result"].dump().find("to the daemon 1"),
              conv["result"].dump().rfind("to the daemon 1"));  // once only
    json search = daemon.Call("search", {{"query", "daemon 3"}});
    EXPECT_NE(search["result"].dump().find("to the daemon 3"), std::string::npos) << search;
    EXPECT_EQ(daemon.Stop(SIGTERM), 0);
  }
}

TEST_F(CliTest, GroupCommandsCreateSendReceiveAndManage) {
  const std::string alice = Home("alice"), bob = Home("bob"), carol = Home("carol");
  const std::string kCarol = "+15551110003";
  ASSERT_NO_FATAL_FAILURE(Register(alice, kAlice));
  ASSERT_NO_FATAL_FAILURE(Register(bob, kBob));
  ASSERT_NO_FATAL_FAILURE(Register(carol, kCarol));

  ProcessRun created = Sotto({"--home", alice, "group", "create", "book club", kBob, kCarol, "--json"});
  ASSERT_EQ(created.exit_code, 0) << Describe(created);
  const json group = json::parse(created.out);
  const std::string id = group["id"];
  EXPECT_EQ(group["members"].size(), 3u);
  EXPECT_TRUE(group["admin"]);

  // Bob learns the group (and its name, end to end) when he receives.
  std::vector<json> bob_in = Receive(bob);
  ASSERT_EQ(OfType(bob_in, "group").size(), 1u);
  EXPECT_EQ(OfType(bob_in, "group")[0]["action"], "create");
  ProcessRun list = Sotto({"--home", bob, "group", "list", "--json"});
  ASSERT_EQ(list.exit_code, 0) << Describe(list);
  ASSERT_EQ(JsonLines(list.out).size(), 1u);
  EXPECT_EQ(JsonLines(list.out)[0]["name"], "book club");

  // By exact name, then by an id prefix.
  ProcessRun sent = Sotto({"--home", alice, "group", "send", "book club", "first chapter?"});
  ASSERT_EQ(sent.exit_code, 0) << Describe(sent);
  ProcessRun sent2 = Sotto({"--home", alice, "group", "send", id.substr(0, 8), "or the second", "--json"});
  ASSERT_EQ(sent2.exit_code, 0) << Describe(sent2);
  bob_in = Receive(bob);
  std::vector<json> got = OfType(bob_in, "message");
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0]["body"], "first chapter?");
  EXPECT_EQ(got[1]["body"], "or the second");
  EXPECT_EQ(got[0]["group"], id);
  EXPECT_EQ(got[0]["from"], kAlice);

  // Bob reads the group: alice sees per-member ticks in `group info`.
  ProcessRun conv = Sotto({"--home", bob, "messages", "book club", "--json"});
  ASSERT_EQ(conv.exit_code, 0) << Describe(conv);
  EXPECT_EQ(JsonLines(conv.out).size(), 2u);
  Receive(alice);
  ProcessRun info = Sotto({"--home", alice, "group", "info", id, "--json"});
  ASSERT_EQ(info.exit_code, 0) << Describe(info);
  const json details = json::parse(info.out);
  ASSERT_EQ(details["messages"].size(), 2u);
  EXPECT_EQ(details["messages"][1]["recipients"], 2);
  EXPECT_EQ(details["messages"][1]["delivered"], 1);  // bob's device acked; carol has not received
  EXPECT_EQ(details["messages"][1]["read"], 1);
  ProcessRun text_info = Sotto({"--home", alice, "group", "info", "book club"});
  ASSERT_EQ(text_info.exit_code, 0) << Describe(text_info);
  EXPECT_NE(text_info.out.find("delivered 1/2, read 1/2"), std::string::npos) << text_info.out;

  // Admin rules: bob may not remove; after promotion he may.
  ProcessRun denied = Sotto({"--home", bob, "group", "remove", id, kCarol});
  EXPECT_EQ(denied.exit_code, 7) << Describe(denied);
  ASSERT_EQ(Sotto({"--home", alice, "group", "admin", id, kBob}).exit_code, 0);
  Receive(bob);
  ProcessRun removed = Sotto({"--home", bob, "group", "remove", id, kCarol});
  ASSERT_EQ(removed.exit_code, 0) << Describe(removed);
  ASSERT_EQ(Sotto({"--home", alice, "group", "admin", id, kBob, "--demote"}).exit_code, 0);

  // Carol, removed, cannot send; unknown and ambiguous groups are usage errors.
  Receive(carol);
  ProcessRun refused = Sotto({"--home", carol, "group", "send", id, "hello?"});
  EXPECT_EQ(refused.exit_code, 7) << Describe(refused);
  EXPECT_EQ(Sotto({"--home", alice, "group", "send", "no such group", "x"}).exit_code, 2);
  ProcessRun left = Sotto({"--home", bob, "group", "leave", id});
  ASSERT_EQ(left.exit_code, 0) << Describe(left);
  // Alice already knows the removal (her demote's answer carried the later version): the
  // leave is the one announcement left for her.
  EXPECT_EQ(OfType(Receive(alice), "group").size(), 1u);
  ProcessRun alone = Sotto({"--home", alice, "group", "info", id, "--json"});
  EXPECT_EQ(json::parse(alone.out)["members"].size(), 1u) << alone.out;
}

// Issue 12: consent from the command line (leave --refuse-readd, allow-readd, adds), and
// group events that name people by contact name and number instead of raw account ids.
TEST_F(CliTest, GroupConsentAndNamedGroupEvents) {
  const std::string alice = Home("alice"), bob = Home("bob"), carol = Home("carol");
  const std::string kCarol = "+15551110003";
  ASSERT_NO_FATAL_FAILURE(Register(alice, kAlice));
  ASSERT_NO_FATAL_FAILURE(Register(bob, kBob));
  ASSERT_NO_FATAL_FAILURE(Register(carol, kCarol));
  ASSERT_EQ(Sotto({"--home", bob, "contacts", "add", kAlice, "--name", "Alice"}).exit_code, 0);
  ASSERT_EQ(Sotto({"--home", bob, "contacts", "add", kCarol}).exit_code, 0);  // no name
  ProcessRun created = Sotto({"--home", alice, "group", "create", "club", kBob, kCarol, "--json"});
  ASSERT_EQ(created.exit_code, 0) << Describe(created);
  const json group = json::parse(created.out);
  const std::string id = group["id"];
  EXPECT_TRUE(group["refused"].empty());
  Receive(bob);
  ASSERT_EQ(Sotto({"--home", alice, "group", "admin", id, kCarol}).exit_code, 0);
  ProcessRun text = Sotto({"--home", bob, "receive", "--timeout", "0"});
  ASSERT_EQ(text.exit_code, 0) << Describe(text);
  EXPECT_NE(text.out.find("Alice (" + std::string(kAlice) + ") made " + kCarol + " admin"),
            std::string::npos)
      << text.out;
  EXPECT_EQ(text.out.find(group["members"][0]["peer"].get<std::string>()), std::string::npos)
      << "no raw account id: " << text.out;

  ProcessRun left = Sotto({"--home", bob, "group", "leave", id, "--refuse-readd"});
  ASSERT_EQ(left.exit_code, 0) << Describe(left);
  EXPECT_NE(left.out.find("cannot add you again"), std::string::npos) << left.out;
  ProcessRun readd = Sotto({"--home", alice, "group", "add", id, kBob});
  ASSERT_EQ(readd.exit_code, 0) << Describe(readd);
  EXPECT_NE(readd.out.find(std::string(kBob) + " refuses to be added"), std::string::npos)
      << readd.out;
  Receive(carol);
  ProcessRun not_refused = Sotto({"--home", carol, "group", "allow-readd", id});
  EXPECT_EQ(not_refused.exit_code, 7) << Describe(not_refused);
  ASSERT_EQ(Sotto({"--home", bob, "group", "allow-readd", id}).exit_code, 0);
  ProcessRun back = Sotto({"--home", alice, "group", "add", id, kBob});
  ASSERT_EQ(back.exit_code, 0) << Describe(back);
  EXPECT_EQ(back.out.find("refuses"), std::string::npos) << back.out;

  EXPECT_EQ(Sotto({"--home", carol, "group", "adds", "strangers"}).exit_code, 2);
  ASSERT_EQ(Sotto({"--home", carol, "group", "adds", "nobody"}).exit_code, 0);
  ProcessRun second = Sotto({"--home", alice, "group", "create", "second", kCarol, "--json"});
  ASSERT_EQ(second.exit_code, 0) << Describe(second);
  const json made = json::parse(second.out);
  EXPECT_EQ(made["refused"], json::array({kCarol}));
  EXPECT_EQ(made["members"].size(), 1u);
}

TEST_F(CliTest, SendFileArrivesAndIsListed) {
  const std::string alice = Home("alice"), bob = Home("bob");
  ASSERT_NO_FATAL_FAILURE(Register(alice, kAlice));
  ASSERT_NO_FATAL_FAILURE(Register(bob, kBob));
  const std::string file = root_ + "/notes.txt";
  std::string content;
  for (int i = 0; i < 20000; ++i) content += std::to_string(i) + "\n";
  { std::ofstream(file) << content; }
  ProcessRun sent = Sotto({"--home", alice, "send-file", kBob, file, "--caption", "my notes", "--json"});
  ASSERT_EQ(sent.exit_code, 0) << Describe(sent);
  ASSERT_EQ(JsonLines(sent.out).at(0)["status"], "sent");

  std::vector<json> got = OfType(Receive(bob), "message");
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0]["body"], "my notes");
  const json a = got[0]["attachment"];
  EXPECT_EQ(a["state"], "saved") << a;
  EXPECT_EQ(a["type"], "text/plain");
  EXPECT_EQ(a["name"], "notes.txt");
  EXPECT_EQ(a["size"], content.size());
  std::ifstream in(a["path"].get<std::string>());
  EXPECT_EQ(std::string(std::istreambuf_iterator<char>(in), {}), content);

  ProcessRun listed = Sotto({"--home", bob, "messages", kAlice});
  ASSERT_EQ(listed.exit_code, 0) << Describe(listed);
  EXPECT_NE(listed.out.find("[file notes.txt, " + std::to_string(content.size()) +
                            " bytes, text/plain: saved at "),
            std::string::npos)
      << listed.out;
  // A missing file is a usage error before anything is sent.
  EXPECT_EQ(Sotto({"--home", alice, "send-file", kBob, root_ + "/missing"}).exit_code, 2);
}

}  // namespace
}  // namespace sotto

namespace sotto {
namespace {

// Reads `fd` until a whitespace-separated word starting with "sotto-link:" has arrived
// (or end of file); returns it and everything read so far in `seen`.
std::string ReadLinkCode(int fd, std::string& seen) {
  char buffer[4096];
  for (;;) {
    const size_t at = seen.find("sotto-link:");
    if (at != std::string::npos) {
      const size_t end = seen.find_first_of(" \n", at);
      if (end != std::string::npos) return seen.substr(at, end - at);
    }
    const ssize_t n = read(fd, buffer, sizeof buffer);
    if (n <= 0) return "";
    seen.append(buffer, static_cast<size_t>(n));
  }
}

TEST_F(CliTest, LinkApproveDevicesAndUnlinkAcrossProcesses) {
  const std::string alice = Home("alice"), alice2 = Home("alice2"), bob = Home("bob");
  ASSERT_NO_FATAL_FAILURE(Register(alice, testing::kAlice));
  ASSERT_NO_FATAL_FAILURE(Register(bob, testing::kBob));
  // A code that is not one: a usage error, nothing contacted.
  EXPECT_EQ(testing::Sotto({"--home", alice, "link-approve", "sotto-link:00"}).exit_code, 2);

  // `link` (the new companion) and `link-approve` (the primary) run at the same time.
  int out[2];
  ASSERT_EQ(pipe2(out, O_CLOEXEC), 0);
  const pid_t linking = testing::SpawnSotto({"--home", alice2, "link", "--server", Server(),
                                             "--server-key", ServerKey(), "--timeout", "30"},
                                            out[1], STDERR_FILENO);
  close(out[1]);
  std::string seen;
  const std::string code = ReadLinkCode(out[0], seen);
  ASSERT_FALSE(code.empty()) << seen;
  ProcessRun approve = testing::Sotto({"--home", alice, "link-approve", code, "--timeout", "30"});
  EXPECT_EQ(approve.exit_code, 0) << testing::Describe(approve);
  EXPECT_NE(approve.out.find("linked device 2"), std::string::npos) << approve.out;
  seen += testing::ReadAll(out[0]);
  close(out[0]);
  ASSERT_EQ(testing::WaitExit(linking), 0) << seen;
  EXPECT_NE(seen.find("linked as device 2 of " + std::string(testing::kAlice)), std::string::npos)
      << seen;

  ProcessRun devices = testing::Sotto({"--home", alice, "devices", "--json"});
  ASSERT_EQ(devices.exit_code, 0) << testing::Describe(devices);
  std::vector<nlohmann::json> listed = testing::JsonLines(devices.out);
  ASSERT_EQ(listed.size(), 2u) << devices.out;
  for (const nlohmann::json& d : listed) EXPECT_EQ(d["state"], "linked") << d;

  // Both devices get bob's message; the companion's own message reaches bob and shows up
  // on the primary as sent.
  ASSERT_EQ(testing::Sotto({"--home", bob, "send", testing::kAlice, "to both"}).exit_code, 0);
  EXPECT_EQ(OfType(Receive(alice), "message").size(), 1u);
  EXPECT_EQ(OfType(Receive(alice2), "message").size(), 1u);
  ProcessRun from2 =
      testing::Sotto({"--home", alice2, "send", testing::kBob, "from the companion"});
  ASSERT_EQ(from2.exit_code, 0) << testing::Describe(from2);
  std::vector<nlohmann::json> bob_in = OfType(Receive(bob), "message");
  ASSERT_EQ(bob_in.size(), 1u);
  EXPECT_EQ(bob_in[0]["body"], "from the companion");
  // The primary learns it as its own message, to bob (not as one from bob).
  std::vector<nlohmann::json> synced = OfType(Receive(alice), "message");
  ASSERT_EQ(synced.size(), 1u);
  EXPECT_EQ(synced[0]["outgoing"], true) << synced[0];
  EXPECT_EQ(synced[0]["to"], testing::kBob) << synced[0];
  EXPECT_FALSE(synced[0].contains("from")) << synced[0];
  ASSERT_EQ(testing::Sotto({"--home", alice2, "send", testing::kBob, "and again"}).exit_code, 0);
  ProcessRun synced_text = testing::Sotto({"--home", alice, "receive"});
  ASSERT_EQ(synced_text.exit_code, 0) << testing::Describe(synced_text);
  EXPECT_NE(synced_text.out.find("me \u2192 " + std::string(testing::kBob) + " at "),
            std::string::npos)
      << synced_text.out;
  EXPECT_NE(synced_text.out.find(": and again"), std::string::npos) << synced_text.out;
  ProcessRun conv =
      testing::Sotto({"--home", alice, "messages", testing::kBob, "--json", "--no-mark-read"});
  ASSERT_EQ(conv.exit_code, 0) << testing::Describe(conv);
  std::vector<nlohmann::json> lines = testing::JsonLines(conv.out);
  ASSERT_EQ(lines.size(), 3u) << conv.out;
  EXPECT_EQ(lines[1]["body"], "from the companion");
  EXPECT_EQ(lines[1]["direction"], "outgoing");

  // The daemon lists the devices and unlinks the companion.
  {
    testing::Daemon daemon(alice, Home("alice.sock"));
    ASSERT_TRUE(daemon.listening()) << daemon.stderr_text();
    nlohmann::json devices_rpc = daemon.Call("devices", nlohmann::json::object());
    ASSERT_EQ(devices_rpc["result"]["devices"].size(), 2u) << devices_rpc;
    EXPECT_EQ(devices_rpc["result"]["devices"][1]["state"], "linked");
    // The same object as `devices --json` prints.
    EXPECT_EQ(devices_rpc["result"]["devices"][0], listed[0]) << devices_rpc;
    nlohmann::json primary_rpc = daemon.Call("unlink", {{"device", 1}});
    EXPECT_EQ(primary_rpc["error"]["code"], -32602) << primary_rpc;
    nlohmann::json unlinked = daemon.Call("unlink", {{"device", 2}});
    EXPECT_EQ(unlinked["result"]["unlinked"], 2) << unlinked;
  }
  listed = testing::JsonLines(testing::Sotto({"--home", alice, "devices", "--json"}).out);
  ASSERT_EQ(listed.size(), 1u);
  EXPECT_EQ(listed[0]["device"], 1);  // the daemon's field names (docs/cli.md)
  EXPECT_EQ(listed[0]["thisDevice"], true);
  // The unlinked home can no longer act, and a second unlink finds nothing.
  EXPECT_NE(testing::Sotto({"--home", alice2, "send", testing::kBob, "still here?"}).exit_code, 0);
  EXPECT_NE(testing::Sotto({"--home", alice, "unlink", "2"}).exit_code, 0);
}

}  // namespace
}  // namespace sotto
