// The `sotto daemon`'s limits and edges (docs/cli.md, "sotto daemon: JSON-RPC 2.0"),
// each at and past the edge: socket mode, a second daemon, line length, client count,
// protocol errors, stopping by signal, and notifications to every client. Real sottod,
// real `sotto` processes, clients on the real socket; waits are on process exits, lines
// and socket reads, never sleeps.
#include <signal.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "apps/sotto/json_rpc.h"
#include "tests/integration/sotto_cli.h"

namespace sotto {
namespace {

using cli::kMaxRpcClients;
using cli::kMaxRpcLineBytes;
using nlohmann::json;
using testing::CliTest;
using testing::Daemon;
using testing::Describe;
using testing::kAlice;
using testing::kBob;
using testing::RpcClient;
using testing::Sotto;

// The figures docs/cli.md promises.
static_assert(kMaxRpcLineBytes == 64 * 1024);
static_assert(kMaxRpcClients == 64);

constexpr int kAppError = -32001;  // kAppErrorBase - exit code 1

bool IsVersionResult(const json& response, const json& id) {
  return response.contains("result") && response["id"] == id &&
         response["result"].contains("version");
}

class DaemonTest : public CliTest {
 protected:
  // Alice registered, and the socket path her daemon is to use.
  void SetUp() override {
    ASSERT_NO_FATAL_FAILURE(Register(Home("alice"), kAlice));
    socket_ = root_ + "/alice.sock";
  }

  std::string socket_;
};

TEST_F(DaemonTest, SocketIsOwnerOnlyEvenUnderAPermissiveUmask) {
  const mode_t old_mask = umask(0);  // inherited by the daemon
  Daemon daemon(Home("alice"), socket_);
  umask(old_mask);
  ASSERT_TRUE(daemon.listening()) << daemon.stderr_text();
  struct stat st {};
  ASSERT_EQ(lstat(socket_.c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 07777, 0600u) << std::oct << (st.st_mode & 07777);
  EXPECT_EQ(st.st_uid, getuid());
  EXPECT_TRUE(IsVersionResult(daemon.Call("version", json::object()), 1));
}

TEST_F(DaemonTest, ASecondDaemonIsRefusedAndTheFirstKeepsWorking) {
  ASSERT_NO_FATAL_FAILURE(Register(Home("bob"), kBob));
  Daemon first(Home("alice"), socket_);
  ASSERT_TRUE(first.listening()) << first.stderr_text();

  // Another account's daemon on the same socket path: it sees the first one answer.
  Daemon second(Home("bob"), socket_);
  EXPECT_FALSE(second.listening());
  EXPECT_EQ(second.Wait(), 1) << second.stderr_text();
  EXPECT_NE(second.stderr_text().find("another daemon is listening on " + socket_),
            std::string::npos)
      << second.stderr_text();
  // A second daemon on the same home is refused by the home's lock (exit 3) and creates
  // no socket of its own.
  const std::string other_socket = root_ + "/other.sock";
  Daemon same_home(Home("alice"), other_socket);
  EXPECT_FALSE(same_home.listening());
  EXPECT_EQ(same_home.Wait(), 3) << same_home.stderr_text();
  EXPECT_NE(same_home.stderr_text().find("another sotto process"), std::string::npos)
      << same_home.stderr_text();
  EXPECT_FALSE(std::filesystem::exists(other_socket));

  // The first daemon's socket file is still there and it still answers, on its open
  // connection and on a new one.
  struct stat st {};
  ASSERT_EQ(lstat(socket_.c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_TRUE(IsVersionResult(first.Call("version", json::object()), 1));
  RpcClient late(socket_);
  ASSERT_TRUE(late.connected());
  EXPECT_TRUE(IsVersionResult(late.Call("version", json::object()), 1));
  EXPECT_EQ(first.Stop(SIGTERM), 0) << first.stderr_text();

  // A path that is not a socket is left alone.
  const std::string file = root_ + "/not-a-socket";
  std::ofstream(file) << "precious";
  Daemon on_file(Home("bob"), file);
  EXPECT_FALSE(on_file.listening());
  EXPECT_EQ(on_file.Wait(), 1) << on_file.stderr_text();
  EXPECT_NE(on_file.stderr_text().find("is not a socket"), std::string::npos)
      << on_file.stderr_text();
  std::string content;
  std::ifstream(file) >> content;
  EXPECT_EQ(content, "precious");
}

TEST_F(DaemonTest, ALineOfExactlyTheLimitIsServedOneByteMoreClosesTheConnection) {
  Daemon daemon(Home("alice"), socket_);
  ASSERT_TRUE(daemon.listening()) << daemon.stderr_text();
  // A valid request padded with JSON whitespace to exactly kMaxRpcLineBytes.
  auto padded = [](const std::string& id, size_t size) {
    std::string line = R"({"jsonrpc":"2.0","id":")" + id + R"(","method":"version"})";
    line.resize(size, ' ');
    return line;
  };

  {
    RpcClient at_limit(socket_);
    ASSERT_TRUE(at_limit.connected());
    ASSERT_TRUE(at_limit.Send(padded("lf", kMaxRpcLineBytes) + "\n"));
    EXPECT_TRUE(IsVersionResult(at_limit.NextResponse(), "lf"));
    // "\r\n" endings: the '\r' does not count.
    ASSERT_TRUE(at_limit.Send(padded("crlf", kMaxRpcLineBytes) + "\r\n"));
    EXPECT_TRUE(IsVersionResult(at_limit.NextResponse(), "crlf"));
    // The connection stays open.
    EXPECT_TRUE(IsVersionResult(at_limit.Call("version", json::object()), 1));
  }
  {
    // One byte more, with a request after it that must not be served.
    RpcClient past(socket_);
    ASSERT_TRUE(past.connected());
    past.Send(padded("past", kMaxRpcLineBytes + 1) + "\n" +
              R"({"jsonrpc":"2.0","id":"after","method":"version"})" + "\n");
    const json error = past.NextResponse();
    EXPECT_EQ(error["error"]["code"], -32600) << error;
    EXPECT_TRUE(error["id"].is_null()) << error;
    EXPECT_NE(error["error"]["message"].get<std::string>().find(std::to_string(kMaxRpcLineBytes)),
              std::string::npos)
        << error;
    EXPECT_TRUE(past.AwaitClose());
  }
  {
    // Past the limit without any newline: refused without waiting for the line's end.
    RpcClient endless(socket_);
    ASSERT_TRUE(endless.connected());
    endless.Send(std::string(kMaxRpcLineBytes + 2, 'x'));
    const json error = endless.NextResponse();
    EXPECT_EQ(error["error"]["code"], -32600) << error;
    EXPECT_TRUE(endless.AwaitClose());
  }
  EXPECT_TRUE(IsVersionResult(daemon.Call("version", json::object()), 1));
}

TEST_F(DaemonTest, MaxClientsAreServedTheNextIsRefusedAndTheOthersStillWork) {
  Daemon daemon(Home("alice"), socket_);
  ASSERT_TRUE(daemon.listening()) << daemon.stderr_text();
  std::vector<std::unique_ptr<RpcClient>> clients;  // with daemon.client(): kMaxRpcClients
  for (size_t i = 1; i < kMaxRpcClients; ++i) {
    clients.push_back(std::make_unique<RpcClient>(socket_));
    ASSERT_TRUE(clients.back()->connected()) << i;
  }
  EXPECT_TRUE(IsVersionResult(daemon.Call("version", json::object()), 1));
  for (auto& client : clients) {
    EXPECT_TRUE(IsVersionResult(client->Call("version", json::object()), 1));
  }

  {
    RpcClient one_too_many(socket_);  // the kernel accepts; the daemon refuses
    ASSERT_TRUE(one_too_many.connected());
    const json error = one_too_many.Next();
    EXPECT_EQ(error["error"]["code"], kAppError) << error;
    EXPECT_EQ(error["error"]["message"],
              "too many clients (at most " + std::to_string(kMaxRpcClients) + ")")
        << error;
    EXPECT_TRUE(one_too_many.AwaitClose());
  }
  EXPECT_TRUE(IsVersionResult(daemon.Call("version", json::object()), 2));
  for (auto& client : clients) {
    EXPECT_TRUE(IsVersionResult(client->Call("version", json::object()), 2));
  }

  // A client leaves; once the daemon has seen it go (it answers a later request after
  // reading the close), its place is free again.
  clients.pop_back();
  EXPECT_TRUE(IsVersionResult(daemon.Call("version", json::object()), 3));
  RpcClient newcomer(socket_);
  ASSERT_TRUE(newcomer.connected());
  EXPECT_TRUE(IsVersionResult(newcomer.Call("version", json::object()), 1));
}

TEST_F(DaemonTest, ProtocolErrorsGetTheirCodesAndTheConnectionStaysUsable) {
  Daemon daemon(Home("alice"), socket_);
  ASSERT_TRUE(daemon.listening()) << daemon.stderr_text();
  RpcClient& rpc = daemon.client();
  int version_id = 0;
  auto still_answers = [&] {
    ++version_id;
    const std::string id = "v" + std::to_string(version_id);
    ASSERT_TRUE(rpc.Send(R"({"jsonrpc":"2.0","id":")" + id +
                         R"(","method":"version"})"
                         "\n"));
    EXPECT_TRUE(IsVersionResult(rpc.NextResponse(), id));
  };
  auto expect_error = [&](const std::string& line, int code, const json& id) {
    ASSERT_TRUE(rpc.Send(line + "\n"));
    const json response = rpc.NextResponse();
    EXPECT_EQ(response["error"]["code"], code) << line << "\n" << response;
    EXPECT_EQ(response["id"], id) << line << "\n" << response;
    ASSERT_NO_FATAL_FAILURE(still_answers());
  };

  ASSERT_NO_FATAL_FAILURE(
      expect_error(R"({"jsonrpc":"2.0","id":1,"method":"version")", -32700, nullptr));
  ASSERT_NO_FATAL_FAILURE(expect_error("not json at all", -32700, nullptr));
  ASSERT_NO_FATAL_FAILURE(
      expect_error(R"([{"jsonrpc":"2.0","id":2,"method":"version"}])", -32600, nullptr));
  ASSERT_NO_FATAL_FAILURE(expect_error("[]", -32600, nullptr));
  // no "jsonrpc"
  ASSERT_NO_FATAL_FAILURE(expect_error(R"({"id":3,"method":"version"})", -32600, 3));
  ASSERT_NO_FATAL_FAILURE(expect_error(R"({"jsonrpc":"2.0","id":4,"method":7})", -32600, 4));
  // too deep
  ASSERT_NO_FATAL_FAILURE(
      expect_error(std::string(33, '[') + std::string(33, ']'), -32600, nullptr));
  ASSERT_NO_FATAL_FAILURE(
      expect_error(R"({"jsonrpc":"2.0","id":5,"method":"noSuchMethod"})", -32601, 5));
  ASSERT_NO_FATAL_FAILURE(expect_error(
      R"({"jsonrpc":"2.0","id":6,"method":"messages","params":{"with":5}})", -32602, 6));
  ASSERT_NO_FATAL_FAILURE(expect_error(
      R"({"jsonrpc":"2.0","id":7,"method":"messages","params":{"with":"+15551110002","limit":"ten"}})",
      -32602, 7));
  ASSERT_NO_FATAL_FAILURE(expect_error(
      R"({"jsonrpc":"2.0","id":8,"method":"messages","params":{"with":"+15551110002","markRead":"no"}})",
      -32602, 8));
  ASSERT_NO_FATAL_FAILURE(expect_error(
      R"({"jsonrpc":"2.0","id":9,"method":"send","params":{"to":"+15551110002","text":["x"]}})",
      -32602, 9));
  ASSERT_NO_FATAL_FAILURE(expect_error(
      R"({"jsonrpc":"2.0","id":10,"method":"version","params":["by","position"]})", -32602, 10));
  ASSERT_NO_FATAL_FAILURE(expect_error(
      R"({"jsonrpc":"2.0","id":"s","method":"version","params":{"extra":true}})", -32602, "s"));
  // A notification (no id) gets no response, not even an error: the next response is
  // the version request's.
  ASSERT_TRUE(rpc.Send(R"({"jsonrpc":"2.0","method":"noSuchMethod"})"
                       "\n"));
  ASSERT_NO_FATAL_FAILURE(still_answers());
}

TEST_F(DaemonTest, SigtermAndSigintExitZeroAndRemoveTheSocket) {
  for (const int signal_number : {SIGTERM, SIGINT}) {
    SCOPED_TRACE(signal_number);
    Daemon daemon(Home("alice"), socket_);  // a previous run's socket must not be in the way
    ASSERT_TRUE(daemon.listening()) << daemon.stderr_text();
    ASSERT_TRUE(std::filesystem::exists(socket_));
    RpcClient watcher(socket_);
    ASSERT_TRUE(watcher.connected());
    EXPECT_TRUE(IsVersionResult(watcher.Call("version", json::object()), 1));

    EXPECT_EQ(daemon.Stop(signal_number), 0) << daemon.stderr_text();
    EXPECT_NE(daemon.stderr_text().find("daemon stopping"), std::string::npos)
        << daemon.stderr_text();
    EXPECT_TRUE(watcher.AwaitClose());
    EXPECT_FALSE(std::filesystem::exists(socket_));
    // The home is free again for a one-shot command.
    testing::ProcessRun status = Sotto({"--home", Home("alice"), "status"});
    EXPECT_EQ(status.exit_code, 0) << Describe(status);
  }
}

TEST_F(DaemonTest, NotificationsReachEveryConnectedClient) {
  ASSERT_NO_FATAL_FAILURE(Register(Home("bob"), kBob));
  Daemon daemon(Home("alice"), socket_);
  ASSERT_TRUE(daemon.listening()) << daemon.stderr_text();
  RpcClient second(socket_);
  ASSERT_TRUE(second.connected());
  // Both answered once: the daemon has accepted both before the message exists.
  EXPECT_TRUE(IsVersionResult(daemon.Call("version", json::object()), 1));
  EXPECT_TRUE(IsVersionResult(second.Call("version", json::object()), 1));

  testing::ProcessRun sent = Sotto({"--home", Home("bob"), "send", kAlice, "to both of you"});
  ASSERT_EQ(sent.exit_code, 0) << Describe(sent);
  for (RpcClient* client : {&daemon.client(), &second}) {
    const json message = client->Await("message");
    EXPECT_EQ(message["params"]["body"], "to both of you") << message;
    EXPECT_EQ(message["params"]["from"], kBob) << message;
  }
}

// Notifications carry the contact's name and the message's direction, and "messages"
// and "search" results the name, as `receive --json` and `messages --json` do.
TEST_F(DaemonTest, NotificationsAndResultsCarryContactNamesAndDirection) {
  ASSERT_NO_FATAL_FAILURE(Register(Home("bob"), kBob));
  Daemon daemon(Home("alice"), socket_);
  ASSERT_TRUE(daemon.listening()) << daemon.stderr_text();
  json added = daemon.Call("contactsAdd", {{"number", kBob}, {"name", "Bob"}});
  ASSERT_TRUE(added.contains("result")) << added;
  EXPECT_EQ(added["result"]["name"], "Bob");

  testing::ProcessRun sent = Sotto({"--home", Home("bob"), "send", kAlice, "named hello"});
  ASSERT_EQ(sent.exit_code, 0) << Describe(sent);
  const json message = daemon.Await("message");
  EXPECT_EQ(message["params"]["body"], "named hello") << message;
  EXPECT_EQ(message["params"]["from"], kBob) << message;
  EXPECT_EQ(message["params"]["name"], "Bob") << message;
  EXPECT_EQ(message["params"]["outgoing"], false) << message;
  EXPECT_EQ(message["params"]["direction"], "incoming") << message;

  json conversation = daemon.Call("messages", {{"with", kBob}, {"markRead", false}});
  ASSERT_EQ(conversation["result"]["messages"].size(), 1u) << conversation;
  EXPECT_EQ(conversation["result"]["messages"][0]["name"], "Bob") << conversation;
  json hits = daemon.Call("search", {{"query", "named"}});
  ASSERT_EQ(hits["result"]["hits"].size(), 1u) << hits;
  EXPECT_EQ(hits["result"]["hits"][0]["name"], "Bob") << hits;
  // A text past the limit is a parameter error that names the limit in bytes.
  json too_long = daemon.Call("send", {{"to", kBob}, {"text", std::string(8193, 'x')}});
  EXPECT_EQ(too_long["error"]["code"], -32602) << too_long;
  EXPECT_NE(too_long["error"]["message"].get<std::string>().find("at most 8192 bytes"),
            std::string::npos)
      << too_long;
}

TEST_F(DaemonTest, GroupMethodsAndNotifications) {
  ASSERT_NO_FATAL_FAILURE(Register(Home("bob"), kBob));
  Daemon daemon(Home("alice"), socket_);
  ASSERT_TRUE(daemon.listening()) << daemon.stderr_text();
  RpcClient& rpc = daemon.client();

  json created = rpc.Call("groupCreate", {{"name", "daemon group"}, {"members", {kBob}}});
  ASSERT_TRUE(created.contains("result")) << created;
  const std::string id = created["result"]["id"];
  EXPECT_EQ(created["result"]["members"].size(), 2u);
  EXPECT_EQ(rpc.Await("group")["params"]["action"], "create");

  // Parameter edges: members must be a non-empty array of at most kMaxRpcGroupMembers.
  json empty = rpc.Call("groupCreate", {{"name", "x"}, {"members", json::array()}});
  EXPECT_EQ(empty["error"]["code"], -32602) << empty;
  json too_many_members = json::array();
  for (int i = 0; i <= 1024; ++i) too_many_members.push_back("+1555" + std::to_string(2000000 + i));
  json too_many = rpc.Call("groupCreate", {{"name", "x"}, {"members", too_many_members}});
  EXPECT_EQ(too_many["error"]["code"], -32602) << too_many;
  too_many_members.erase(too_many_members.begin());  // exactly kMaxRpcGroupMembers: accepted,
  json at_limit = rpc.Call("groupCreate", {{"name", "x"}, {"members", too_many_members}});
  EXPECT_EQ(at_limit["error"]["data"]["code"], 6) << at_limit;  // then: no such user
  json unknown = rpc.Call("groupSend", {{"group", "nope"}, {"text", "x"}});
  EXPECT_EQ(unknown["error"]["data"]["code"], 2) << unknown;  // no such group: usage
  json typo = rpc.Call("groupInfo", {{"group", id}, {"limit", 3}});
  EXPECT_EQ(typo["error"]["code"], -32602) << typo;

  json sent = rpc.Call("groupSend", {{"group", "daemon group"}, {"text", "hello group"}});
  ASSERT_TRUE(sent.contains("result")) << sent;
  EXPECT_EQ(sent["result"]["status"], "sent");

  // Bob answers in the group; the daemon notifies alice's clients.
  ASSERT_EQ(Sotto({"--home", Home("bob"), "receive", "--timeout", "0"}).exit_code, 0);
  testing::ProcessRun reply = Sotto({"--home", Home("bob"), "group", "send", id, "hi from bob"});
  ASSERT_EQ(reply.exit_code, 0) << Describe(reply);
  const json message = rpc.Await("message");
  EXPECT_EQ(message["params"]["body"], "hi from bob") << message;
  EXPECT_EQ(message["params"]["group"], id) << message;
  EXPECT_EQ(message["params"]["from"], kBob) << message;
  // Bob's device acked alice's message: a per-member receipt.
  const json receipt = rpc.Await("receipt");
  EXPECT_EQ(receipt["params"]["group"], id) << receipt;

  json listed = rpc.Call("groupList", json::object());
  ASSERT_EQ(listed["result"]["groups"].size(), 1u) << listed;
  json info = rpc.Call("groupInfo", {{"group", id}});
  ASSERT_EQ(info["result"]["messages"].size(), 1u) << info;
  EXPECT_EQ(info["result"]["messages"][0]["recipients"], 1);
  json conversation = rpc.Call("groupMessages", {{"group", id}});
  ASSERT_EQ(conversation["result"]["messages"].size(), 2u) << conversation;
  json renamed = rpc.Call("groupRename", {{"group", id}, {"name", "renamed"}});
  EXPECT_TRUE(renamed.contains("result")) << renamed;
  json removed = rpc.Call("groupRemove", {{"group", "renamed"}, {"members", {kBob}}});
  ASSERT_TRUE(removed.contains("result")) << removed;
  EXPECT_EQ(removed["result"]["members"].size(), 1u);
  json left = rpc.Call("groupLeave", {{"group", id}, {"refuseReadd", true}});
  ASSERT_TRUE(left.contains("result")) << left;
  EXPECT_EQ(left["result"]["refuseReadd"], true) << left;
  // Consent (issue 12): who may add this account to groups.
  json adds = rpc.Call("groupAdds", {{"who", "contacts"}});
  EXPECT_EQ(adds["result"]["who"], "contacts") << adds;
  json bad_adds = rpc.Call("groupAdds", {{"who", "strangers"}});
  EXPECT_EQ(bad_adds["error"]["code"], -32602) << bad_adds;
  json bad_leave = rpc.Call("groupLeave", {{"group", id}, {"refuseReadd", "yes"}});
  EXPECT_EQ(bad_leave["error"]["code"], -32602) << bad_leave;
}

}  // namespace
}  // namespace sotto
