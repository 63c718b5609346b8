// Tests of the sotto daemon's sans-I/O JSON-RPC layer (apps/sotto/json_rpc.h): line
// framing at its limit, request parsing and validation of every error class, and the
// exact shape of response and notification lines; plus the exit-code mapping and home
// resolution the commands rely on.
#include "apps/sotto/json_rpc.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "apps/sotto/exit_code.h"
#include "apps/sotto/paths.h"
#include "apps/sotto/suggest.h"
#include "client/client.h"
#include "client/content.h"
#include "client/gateway_client.h"
#include "client/local_store.h"

namespace sotto::cli {
namespace {

using nlohmann::json;

int Code(RpcCode code) { return static_cast<int>(code); }

// --- LineFramer -----------------------------------------------------------------------

TEST(LineFramer, SplitsLinesAcrossChunksAndStripsCarriageReturns) {
  const std::string stream = "{\"a\":1}\r\n\n{\"b\":2}\n{\"c\"";
  for (size_t chunk = 1; chunk <= stream.size(); ++chunk) {
    LineFramer framer;
    std::vector<std::string> lines;
    for (size_t off = 0; off < stream.size(); off += chunk) {
      ASSERT_EQ(framer.Feed(std::string_view(stream).substr(off, chunk), lines),
                LineFramer::Outcome::kOk);
    }
    EXPECT_EQ(lines, (std::vector<std::string>{"{\"a\":1}", "", "{\"b\":2}"})) << chunk;
    EXPECT_EQ(framer.buffered(), 4u);
  }
}

TEST(LineFramer, AcceptsALineOfExactlyTheLimit) {
  LineFramer framer;
  std::vector<std::string> lines;
  const std::string line(kMaxRpcLineBytes, 'x');
  EXPECT_EQ(framer.Feed(line + "\r\n", lines), LineFramer::Outcome::kOk);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0].size(), kMaxRpcLineBytes);
}

TEST(LineFramer, RefusesALongerLineEvenWithoutNewlineAndStaysRefused) {
  LineFramer framer;
  std::vector<std::string> lines;
  EXPECT_EQ(framer.Feed("ok\n", lines), LineFramer::Outcome::kOk);
  const std::string half(kMaxRpcLineBytes / 2 + 1, 'x');
  EXPECT_EQ(framer.Feed(half, lines), LineFramer::Outcome::kOk);
  EXPECT_EQ(framer.Feed(half, lines), LineFramer::Outcome::kLineTooLong);
  EXPECT_EQ(framer.buffered(), 0u);  // nothing kept for a connection being closed
  EXPECT_EQ(framer.Feed("x\n", lines), LineFramer::Outcome::kLineTooLong);
  EXPECT_EQ(lines, std::vector<std::string>{"ok"});
}

TEST(LineFramer, ReturnsTheLinesBeforeAnOverlongOne) {
  LineFramer framer;
  std::vector<std::string> lines;
  const std::string input = "one\ntwo\n" + std::string(kMaxRpcLineBytes + 2, 'x') + "\nthree\n";
  EXPECT_EQ(framer.Feed(input, lines), LineFramer::Outcome::kLineTooLong);
  EXPECT_EQ(lines, (std::vector<std::string>{"one", "two"}));
}

// --- Nesting --------------------------------------------------------------------------

TEST(NestingWithin, CountsOnlyBracketsOutsideStrings) {
  EXPECT_TRUE(NestingWithin(std::string(32, '[') + std::string(32, ']'), 32));
  EXPECT_FALSE(NestingWithin(std::string(33, '['), 32));
  EXPECT_TRUE(NestingWithin("\"" + std::string(100, '[') + "\"", 1));
  EXPECT_TRUE(NestingWithin(R"({"a":"\"[[[[","b":1})", 1));
  EXPECT_FALSE(NestingWithin(R"({"a":"\\",[[)", 2));  // an escaped backslash ends the string
  EXPECT_TRUE(NestingWithin("]]]]{}", 1));
}

// --- ParseRequest ---------------------------------------------------------------------

TEST(ParseRequest, ParsesARequestWithIdAndParams) {
  auto request = ParseRequest(R"({"jsonrpc":"2.0","id":7,"method":"send","params":{"to":"+1"}})");
  ASSERT_TRUE(request);
  ASSERT_TRUE(request->id);
  EXPECT_EQ(*request->id, json(7));
  EXPECT_EQ(request->method, "send");
  EXPECT_EQ(request->params, json({{"to", "+1"}}));
}

TEST(ParseRequest, WithoutIdIsANotificationAndParamsDefaultToAnObject) {
  auto request = ParseRequest(R"({"jsonrpc":"2.0","method":"status"})");
  ASSERT_TRUE(request);
  EXPECT_FALSE(request->id);
  EXPECT_TRUE(request->params.is_object());
  auto null_id = ParseRequest(R"({"jsonrpc":"2.0","method":"status","id":null})");
  ASSERT_TRUE(null_id);
  EXPECT_TRUE(null_id->id && null_id->id->is_null());
}

struct BadRequest {
  const char* line;
  RpcCode code;
  json id;
};

TEST(ParseRequest, RefusesEachKindOfBadRequestWithItsCode) {
  const std::vector<BadRequest> cases = {
      {"{", RpcCode::kParseError, nullptr},
      {"", RpcCode::kParseError, nullptr},
      {R"({"jsonrpc":"2.0","method":"x"} trailing)", RpcCode::kParseError, nullptr},
      {"\"\xff\"", RpcCode::kParseError, nullptr},
      {R"({"jsonrpc":"2.0","id":1e999,"method":"x"})", RpcCode::kParseError, nullptr},
      {R"([{"jsonrpc":"2.0","id":1,"method":"status"}])", RpcCode::kInvalidRequest, nullptr},
      {"42", RpcCode::kInvalidRequest, nullptr},
      {R"({"jsonrpc":"2.0","id":{"a":1},"method":"x"})", RpcCode::kInvalidRequest, nullptr},
      {R"({"jsonrpc":"2.0","id":true,"method":"x"})", RpcCode::kInvalidRequest, nullptr},
      {R"({"id":3,"method":"x"})", RpcCode::kInvalidRequest, 3},
      {R"({"jsonrpc":"1.0","id":"a","method":"x"})", RpcCode::kInvalidRequest, "a"},
      {R"({"jsonrpc":"2.0","id":4,"method":5})", RpcCode::kInvalidRequest, 4},
      {R"({"jsonrpc":"2.0","id":5,"method":"x","params":[1]})", RpcCode::kInvalidParams, 5},
      {R"({"jsonrpc":"2.0","id":6,"method":"x","params":"p"})", RpcCode::kInvalidRequest, 6},
  };
  for (const BadRequest& c : cases) {
    auto request = ParseRequest(c.line);
    ASSERT_FALSE(request) << c.line;
    EXPECT_EQ(request.error().error.code, Code(c.code)) << c.line;
    EXPECT_EQ(request.error().id, c.id) << c.line;
    EXPECT_FALSE(request.error().error.message.empty());
  }
}

TEST(ParseRequest, RefusesBatchesWithAClearMessage) {
  auto request = ParseRequest("[]");
  ASSERT_FALSE(request);
  EXPECT_EQ(request.error().error.message, "batch requests are not supported");
}

TEST(ParseRequest, RefusesDeepNestingBeforeParsing) {
  const std::string deep = R"({"jsonrpc":"2.0","id":1,"method":"x","params":{"a":)" +
                           std::string(100'000, '[') + std::string(100'000, ']') + "}}";
  auto request = ParseRequest(deep);
  ASSERT_FALSE(request);
  EXPECT_EQ(request.error().error.code, Code(RpcCode::kInvalidRequest));
}

TEST(ParseRequest, TakesHugeIntegersAsNumbersWithoutThrowing) {
  auto request =
      ParseRequest(R"({"jsonrpc":"2.0","id":123456789012345678901234567890,"method":"status"})");
  ASSERT_TRUE(request);
  EXPECT_TRUE(request->id->is_number());
}

// --- ParseCall ------------------------------------------------------------------------

RpcResult<RpcCall> Call(const std::string& method, const json& params) {
  RpcRequest request;
  request.id = 1;
  request.method = method;
  request.params = params;
  return ParseCall(request);
}

TEST(ParseCall, BuildsTypedCallsWithDefaults) {
  auto send = Call("send", {{"to", "+4915112345678"}, {"text", "hi"}});
  ASSERT_TRUE(send);
  EXPECT_EQ(std::get<SendCall>(*send).text, "hi");

  auto messages = Call("messages", {{"with", "+4915112345678"}});
  ASSERT_TRUE(messages);
  EXPECT_EQ(std::get<MessagesCall>(*messages).limit, kDefaultConversationLimit);
  EXPECT_EQ(std::get<MessagesCall>(*messages).mark_read, MarkReadPolicy::kMarkRead);

  auto unread = Call("messages", {{"with", "+4915112345678"}, {"limit", 3}, {"markRead", false}});
  ASSERT_TRUE(unread);
  EXPECT_EQ(std::get<MessagesCall>(*unread).limit, 3u);
  EXPECT_EQ(std::get<MessagesCall>(*unread).mark_read, MarkReadPolicy::kLeaveUnread);

  auto verify = Call("verifyContact", {{"with", "+4915112345678"}, {"safetyNumber", "123"}});
  ASSERT_TRUE(verify);
  EXPECT_EQ(std::get<VerifyContactCall>(*verify).safety_number, "123");

  auto typing = Call("typing", {{"with", "+4915112345678"}, {"typing", false}});
  ASSERT_TRUE(typing);
  EXPECT_EQ(std::get<TypingCall>(*typing).typing, TypingState::kStopped);

  auto add = Call("contactsAdd", {{"number", "+4915112345678"}});
  ASSERT_TRUE(add);
  EXPECT_EQ(std::get<ContactsAddCall>(*add).name, "");

  for (const char* method : {"contactsList", "status", "version"}) {
    EXPECT_TRUE(Call(method, json::object())) << method;
  }
  for (const char* method : {"safetyNumber", "trust", "presence", "markRead"}) {
    EXPECT_TRUE(Call(method, {{"with", "+4915112345678"}})) << method;
  }
  EXPECT_TRUE(Call("setPresenceVisibility", {{"visibility", "nobody"}}));
  EXPECT_TRUE(Call("search", {{"query", "lunch"}, {"limit", client::kMaxSearchResults}}));

  auto file = Call("sendFile", {{"to", "+4915112345678"}, {"path", "/tmp/a.png"}});
  ASSERT_TRUE(file);
  EXPECT_EQ(std::get<SendFileCall>(*file).path, "/tmp/a.png");
  EXPECT_EQ(std::get<SendFileCall>(*file).caption, "");
  auto captioned = Call("sendFile", {{"to", "+4915112345678"}, {"path", "/tmp/a"},
                                     {"caption", "look"}, {"mime", "image/png"}});
  ASSERT_TRUE(captioned);
  EXPECT_EQ(std::get<SendFileCall>(*captioned).caption, "look");
  EXPECT_EQ(std::get<SendFileCall>(*captioned).mime, "image/png");
}

TEST(ParseCall, UnknownMethodIsMethodNotFound) {
  auto call = Call("Send", {{"to", "+1"}, {"text", "x"}});
  ASSERT_FALSE(call);
  EXPECT_EQ(call.error().code, Code(RpcCode::kMethodNotFound));
}

TEST(ParseCall, RefusesMissingMistypedOutOfRangeAndUnknownParams) {
  const std::vector<std::pair<std::string, json>> cases = {
      {"send", {{"to", "+1"}}},
      {"send", {{"to", "+1"}, {"text", ""}}},
      {"send", {{"to", 1}, {"text", "x"}}},
      {"send", {{"to", "+1"}, {"text", "x"}, {"attachment", "y"}}},
      {"messages", {{"with", "+1"}, {"limit", 0}}},
      {"messages", {{"with", "+1"}, {"limit", -1}}},
      {"messages", {{"with", "+1"}, {"limit", 1.5}}},
      {"messages", {{"with", "+1"}, {"limit", 1e30}}},
      {"messages", {{"with", "+1"}, {"limit", kMaxConversationLimit + 1}}},
      {"messages", {{"with", "+1"}, {"limit", "10"}}},
      {"messages", {{"with", "+1"}, {"markRead", "no"}}},
      {"search", {{"query", "x"}, {"limit", client::kMaxSearchResults + 1}}},
      {"setPresenceVisibility", {{"visibility", "friends"}}},
      {"verifyContact", {{"with", "+1"}, {"safetyNumber", 123}}},
      {"status", {{"verbose", true}}},
      {"contactsAdd", {{"number", "+1"}, {"name", json::array()}}},
      {"sendFile", {{"to", "+1"}}},
      {"sendFile", {{"to", "+1"}, {"path", ""}}},
      {"sendFile", {{"to", "+1"}, {"path", "/x"}, {"caption", 3}}},
      {"sendFile", {{"to", "+1"}, {"path", "/x"}, {"name", "y"}}},
  };
  for (const auto& [method, params] : cases) {
    auto call = Call(method, params);
    ASSERT_FALSE(call) << method << " " << params.dump();
    EXPECT_EQ(call.error().code, Code(RpcCode::kInvalidParams)) << method << " " << params.dump();
  }
}

// A message's text is at most client::kMaxBodyBytes bytes: exactly that is a call, one
// byte more is -32602 naming the limit in bytes (not an internal constant's name).
TEST(ParseCall, TextAtTheBodyLimitIsACallOneByteMoreIsInvalidParams) {
  const std::string at_limit(client::kMaxBodyBytes, 'x');
  auto send = Call("send", {{"to", "+4915112345678"}, {"text", at_limit}});
  ASSERT_TRUE(send);
  EXPECT_EQ(std::get<SendCall>(*send).text.size(), client::kMaxBodyBytes);
  for (const char* method : {"send", "groupSend"}) {
    json params = {{"text", at_limit + "x"}};
    params[std::string(method) == "send" ? "to" : "group"] = "+4915112345678";
    auto past = Call(method, params);
    ASSERT_FALSE(past) << method;
    EXPECT_EQ(past.error().code, Code(RpcCode::kInvalidParams));
    EXPECT_NE(past.error().message.find("8193 bytes"), std::string::npos) << past.error().message;
    EXPECT_NE(past.error().message.find("at most 8192 bytes"), std::string::npos)
        << past.error().message;
    EXPECT_EQ(past.error().message.find("kMax"), std::string::npos) << past.error().message;
  }
}

TEST(MessageTextProblem, EmptyTooLongAndNotUtf8EachSayWhat) {
  EXPECT_EQ(MessageTextProblem("hi"), std::nullopt);
  EXPECT_EQ(MessageTextProblem(std::string(client::kMaxBodyBytes, 'x')), std::nullopt);
  const auto empty = MessageTextProblem("");
  ASSERT_TRUE(empty);
  EXPECT_NE(empty->find("the text is empty"), std::string::npos) << *empty;
  const auto long_text = MessageTextProblem(std::string(client::kMaxBodyBytes + 1, 'x'));
  ASSERT_TRUE(long_text);
  EXPECT_NE(long_text->find("8193 bytes; a message holds at most 8192 bytes"), std::string::npos)
      << *long_text;
  const auto bad = MessageTextProblem("caf\xc3");
  ASSERT_TRUE(bad);
  EXPECT_NE(bad->find("UTF-8"), std::string::npos) << *bad;
}

TEST(ParseCall, LinkedDeviceMethodsAtTheirEdges) {
  auto approve = Call("linkApprove", {{"code", "sotto-link:00"}});
  ASSERT_TRUE(approve);
  EXPECT_EQ(std::get<LinkApproveCall>(*approve).timeout_s, 120u);
  auto longest = Call("linkApprove", {{"code", "c"}, {"timeoutS", kMaxRpcLinkTimeoutS}});
  ASSERT_TRUE(longest);
  EXPECT_EQ(std::get<LinkApproveCall>(*longest).timeout_s, kMaxRpcLinkTimeoutS);
  auto unlink = Call("unlink", {{"device", 2}});
  ASSERT_TRUE(unlink);
  EXPECT_EQ(std::get<UnlinkCall>(*unlink).device, 2u);
  EXPECT_TRUE(Call("devices", json::object()));
  const std::vector<std::pair<std::string, json>> bad = {
      {"linkApprove", json::object()},
      {"linkApprove", {{"code", "c"}, {"timeoutS", kMaxRpcLinkTimeoutS + 1}}},
      {"linkApprove", {{"code", "c"}, {"timeoutS", 0}}},
      {"linkApprove", {{"code", "c"}, {"timeoutS", -5}}},
      {"unlink", json::object()},
      {"unlink", {{"device", 1}}},  // the primary is never unlinked
      {"unlink", {{"device", "2"}}},
      {"devices", {{"all", true}}},
  };
  for (const auto& [method, params] : bad) {
    auto call = Call(method, params);
    ASSERT_FALSE(call) << method << " " << params.dump();
    EXPECT_EQ(call.error().code, Code(RpcCode::kInvalidParams)) << method << " " << params.dump();
  }
}

// --- Output lines ---------------------------------------------------------------------

TEST(Lines, ResultErrorAndNotificationAreSingleJsonLines) {
  EXPECT_EQ(ResultLine(1, {{"id", "ab"}}), R"({"id":1,"jsonrpc":"2.0","result":{"id":"ab"}})"
                                           "\n");
  EXPECT_EQ(ErrorLine(nullptr, MakeRpcError(RpcCode::kParseError, "parse error")),
            R"({"error":{"code":-32700,"message":"parse error"},"id":null,"jsonrpc":"2.0"})"
            "\n");
  EXPECT_EQ(ErrorLine("x", MakeAppError(ExitCode::kOffline, "server unreachable")),
            R"({"error":{"code":-32004,"data":{"code":4},"message":"server unreachable"},)"
            R"("id":"x","jsonrpc":"2.0"})"
            "\n");
  EXPECT_EQ(NotificationLine("typing", {{"typing", true}}),
            R"({"jsonrpc":"2.0","method":"typing","params":{"typing":true}})"
            "\n");
}

TEST(Lines, InvalidUtf8FromAPeerIsReplacedNotThrown) {
  const std::string line = NotificationLine("message", {{"body", "a\xff\nb"}});
  EXPECT_EQ(line.find('\n'), line.size() - 1);
  EXPECT_NE(line.find("\xef\xbf\xbd"), std::string::npos);
}

// --- Exit codes and paths -------------------------------------------------------------

Error ClientError(uint16_t detail) {
  return Error{Code::kFailedPrecondition, Module::kClient, detail, "static message"};
}

TEST(ExitCodes, MapEachSdkErrorFamily) {
  using client::ClientErr;
  using client::SdkErr;
  using client::StoreErr;
  auto code = [](auto detail) { return ExitCodeFor(ClientError(static_cast<uint16_t>(detail))); };
  EXPECT_EQ(code(ClientErr::kConnect), ExitCode::kOffline);
  EXPECT_EQ(code(ClientErr::kTimeout), ExitCode::kOffline);
  EXPECT_EQ(code(ClientErr::kServerKeyMismatch), ExitCode::kError);
  EXPECT_EQ(code(StoreErr::kBusy), ExitCode::kStore);
  EXPECT_EQ(code(StoreErr::kNoAccount), ExitCode::kStore);
  EXPECT_EQ(code(SdkErr::kNotRegistered), ExitCode::kStore);
  EXPECT_EQ(code(SdkErr::kOffline), ExitCode::kOffline);
  EXPECT_EQ(code(SdkErr::kIdentityChanged), ExitCode::kIdentityChanged);
  EXPECT_EQ(code(SdkErr::kUnknownUser), ExitCode::kUnknownUser);
  EXPECT_EQ(code(SdkErr::kBadHandle), ExitCode::kUnknownUser);
  EXPECT_EQ(code(SdkErr::kServerRefused), ExitCode::kServerRefused);
  EXPECT_EQ(code(SdkErr::kMismatch), ExitCode::kMismatch);
  EXPECT_EQ(code(SdkErr::kBadServerKey), ExitCode::kUsage);
  EXPECT_EQ(code(SdkErr::kTooLarge), ExitCode::kUsage);  // a text past its limit
  EXPECT_EQ(ExitCodeFor(Error{Code::kInternal, Module::kNet, 1, "x"}), ExitCode::kOffline);
  EXPECT_EQ(ExitCodeFor(Error{Code::kInternal, Module::kSignal, 1, "x"}), ExitCode::kError);
}

TEST(ExitCodes, BusyStoreSaysWhoHoldsIt) {
  EXPECT_EQ(UserMessage(ClientError(static_cast<uint16_t>(client::StoreErr::kBusy))),
            "another sotto process (the daemon?) uses this home");
  EXPECT_EQ(UserMessage(ClientError(static_cast<uint16_t>(client::SdkErr::kUnknownUser))),
            "static message");
}

TEST(ExitCodes, ServerStorageFullIsNamedAndMeansRefused) {
  const Error full = ClientError(static_cast<uint16_t>(client::SdkErr::kServerStorageFull));
  EXPECT_EQ(ExitCodeFor(full), ExitCode::kServerRefused);
  EXPECT_EQ(UserMessage(full).rfind("server storage full", 0), 0u) << UserMessage(full);
}

TEST(Paths, HomeComesFromFlagThenSottoHomeThenHome) {
  EXPECT_EQ(ResolveHome("/a", "/b", "/c"), std::filesystem::path("/a"));
  EXPECT_EQ(ResolveHome("", "/b", "/c"), std::filesystem::path("/b"));
  EXPECT_EQ(ResolveHome("", "", "/c"), std::filesystem::path("/c/.local/share/sotto"));
  EXPECT_EQ(ResolveHome("", nullptr, nullptr), std::nullopt);
}

TEST(Paths, ShellQuoteQuotesOnlyWhatNeedsIt) {
  EXPECT_EQ(ShellQuote("/tmp/alice-1"), "/tmp/alice-1");
  EXPECT_EQ(ShellQuote("/tmp/my home"), "'/tmp/my home'");
  EXPECT_EQ(ShellQuote("it's"), "'it'\\''s'");
  EXPECT_EQ(ShellQuote(""), "''");
}

// --- "did you mean" (suggest.h) ------------------------------------------------------

TEST(Suggest, EditDistanceCountsEditsAndNeighbourSwapsAsOne) {
  EXPECT_EQ(EditDistance("send", "send"), 0u);
  EXPECT_EQ(EditDistance("sendd", "send"), 1u);
  EXPECT_EQ(EditDistance("recieve", "receive"), 1u);  // a swap
  EXPECT_EQ(EditDistance("", "list"), 4u);
  EXPECT_EQ(EditDistance("status", "search"), 4u);
}

TEST(Suggest, NearestCommandOnlyWhenNearEnough) {
  const std::vector<std::string> commands = {"send",   "send-file", "receive", "messages",
                                             "search", "status",    "contacts"};
  EXPECT_EQ(NearestCommand("sendd", commands), "send");
  EXPECT_EQ(NearestCommand("recieve", commands), "receive");
  EXPECT_EQ(NearestCommand("mesages", commands), "messages");
  EXPECT_EQ(NearestCommand("contact", commands), "contacts");
  EXPECT_EQ(NearestCommand("send-fle", commands), "send-file");
  EXPECT_EQ(NearestCommand("xyzzy", commands), std::nullopt);
  EXPECT_EQ(NearestCommand("q", commands), std::nullopt);
}

}  // namespace
}  // namespace sotto::cli
