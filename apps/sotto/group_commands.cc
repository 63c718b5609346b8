#include "apps/sotto/group_commands.h"

#include <iostream>
#include <memory>

#include "apps/sotto/command_util.h"
#include "apps/sotto/output.h"
#include "client/client.h"

namespace sotto::cli {
namespace {

using client::Client;

// Opens the client and connects when it can (offline is left to the call to report).
Result<std::unique_ptr<Client>> Open(const GlobalOptions& global, bool connect) {
  SOTTO_ASSIGN_OR_RETURN(std::unique_ptr<Client> client, OpenClient(global));
  if (connect) SOTTO_RETURN_IF_ERROR(ConnectIfPossible(*client));
  return client;
}

struct GroupArgs {
  std::string group;
  std::string name;
  std::string description;
  std::vector<std::string> numbers;
  std::string number;
  std::string text;
  bool demote = false;
  bool refuse_readd = false;
  std::string who;  // `group adds`
  OutputFormat format = OutputFormat::kText;
};

// "NUMBER refuses to be added (not added)" lines for accounts a create/add left out.
void PrintRefused(const std::vector<std::string>& refused) {
  for (const std::string& r : refused) {
    std::cout << SanitizeForTerminal(r) << " refuses to be added to this group (not added)\n";
  }
}

ExitCode Create(const GlobalOptions& global, const GroupArgs& args) {
  auto client = Open(global, true);
  if (!client) return Fail(client.error(), "group create");
  auto group = (*client)->CreateGroup(args.name, args.numbers);
  if (!group) return Fail(group.error(), "group create");
  if (args.format == OutputFormat::kJson) {
    nlohmann::json out = GroupJson(*group);
    out["refused"] = group->refused;
    PrintJsonLine(out);
  } else {
    std::cout << "created group " << group->id << " (" << SanitizeForTerminal(group->name) << ", "
              << group->members.size() << " members)\n";
    PrintRefused(group->refused);
  }
  return ExitCode::kOk;
}

enum class Change : uint8_t { kAdd, kRemove, kLeave, kAdmin, kRename, kAllowReadd, kAdds };

ExitCode Modify(const GlobalOptions& global, const GroupArgs& args, Change change) {
  auto client = Open(global, true);
  if (!client) return Fail(client.error(), "group");
  Client& c = **client;
  Status done = Ok();
  std::string what;
  switch (change) {
    case Change::kAdd: {
      auto refused = c.AddMembers(args.group, args.numbers);
      if (!refused) return Fail(refused.error(), "group");
      PrintRefused(*refused);
      what = refused->size() == args.numbers.size() ? "nobody added" : "added";
      break;
    }
    case Change::kRemove:
      done = c.RemoveMembers(args.group, args.numbers);
      what = "removed";
      break;
    case Change::kLeave:
      done = c.LeaveGroup(args.group,
                          args.refuse_readd ? client::ReAdds::kRefuse : client::ReAdds::kAllow);
      what =
          args.refuse_readd ? "left the group; its admins cannot add you again" : "left the group";
      break;
    case Change::kAllowReadd:
      done = c.AllowGroupReadd(args.group);
      what = "the group's admins may add you again";
      break;
    case Change::kAdds:
      done = c.SetGroupAdds(args.who);
      what = "who may add you to groups: " + args.who;
      break;
    case Change::kAdmin:
      done = c.SetAdmin(args.group, args.number, !args.demote);
      what = args.demote ? "demoted" : "promoted";
      break;
    case Change::kRename:
      done = c.RenameGroup(args.group, args.name, args.description);
      what = "renamed";
      break;
  }
  if (!done) return Fail(done.error(), "group");
  std::cout << what << "\n";
  return ExitCode::kOk;
}

ExitCode GroupSend(const GlobalOptions& global, const GroupArgs& args) {
  if (auto problem = MessageTextProblem(args.text)) {
    std::cerr << "sotto: group send: " << *problem << "; nothing was sent\n";
    return ExitCode::kUsage;
  }
  auto client = Open(global, true);
  if (!client) return Fail(client.error(), "group send");
  auto outcome = (*client)->SendGroupText(args.group, args.text);
  if (!outcome) return Fail(outcome.error(), "group send");
  const ExitCode code = outcome->tick == client::Tick::kPending   ? ExitCode::kOffline
                        : outcome->tick == client::Tick::kBlocked ? ExitCode::kServerRefused
                                                                  : ExitCode::kOk;
  if (args.format == OutputFormat::kJson) {
    PrintJsonLine({{"id", outcome->message_id}, {"status", client::TickName(outcome->tick)}});
  } else if (code == ExitCode::kOffline) {
    std::cout << "message " << outcome->message_id << " queued: server unreachable, will retry\n";
  } else if (code == ExitCode::kServerRefused) {
    std::cout << "message " << outcome->message_id << " held: not a member of the group\n";
  } else {
    std::cout << "message " << outcome->message_id << " sent " << TickMark(outcome->tick) << "\n";
  }
  return code;
}

ExitCode List(const GlobalOptions& global, const GroupArgs& args) {
  auto client = Open(global, false);
  if (!client) return Fail(client.error(), "group list");
  auto groups = (*client)->Groups();
  if (!groups) return Fail(groups.error(), "group list");
  for (const client::GroupDetails& g : *groups) {
    if (args.format == OutputFormat::kJson) {
      PrintJsonLine(GroupJson(g));
    } else {
      std::cout << GroupLine(g) << "\n";
    }
  }
  return ExitCode::kOk;
}

ExitCode Info(const GlobalOptions& global, const GroupArgs& args) {
  auto client = Open(global, false);
  if (!client) return Fail(client.error(), "group info");
  Client& c = **client;
  auto group = c.GroupInfo(args.group);
  if (!group) return Fail(group.error(), "group info");
  auto conversation = c.GroupConversation(group->id, kMaxConversationLimit);
  if (!conversation) return Fail(conversation.error(), "group info");
  std::vector<GroupMessageReceipts> recent;
  for (auto it = conversation->rbegin();
       it != conversation->rend() && recent.size() < kGroupInfoMessages; ++it) {
    if (it->direction != client::MessageDirection::kOutgoing) continue;
    auto receipts = c.GroupReceipts(group->id, it->message_id);
    if (!receipts) return Fail(receipts.error(), "group info");
    recent.insert(recent.begin(), GroupMessageReceipts{*it, *std::move(receipts)});
  }
  if (args.format == OutputFormat::kJson) {
    PrintJsonLine(GroupInfoJson(*group, recent));
  } else {
    std::cout << GroupInfoText(*group, recent, TimeZoneChoice::kLocal);
  }
  return ExitCode::kOk;
}

}  // namespace

ExitCode GroupMessages(const GlobalOptions& global, const MessagesArgs& args) {
  auto client = Open(global, false);
  if (!client) return Fail(client.error(), "messages");
  Client& c = **client;
  auto messages = c.GroupConversation(args.with, args.limit);
  if (!messages) return Fail(messages.error(), "messages");
  auto group = c.GroupInfo(args.with);
  if (!group) return Fail(group.error(), "messages");
  for (const client::StoredMessage& message : *messages) {
    std::string handle;
    if (message.direction == client::MessageDirection::kOutgoing) {
      handle = "group " + group->name;
    } else {
      for (const client::GroupMemberInfo& m : group->members) {
        if (m.account_id == message.group_sender) handle = m.handle;
      }
    }
    if (args.format == OutputFormat::kJson) {
      PrintJsonLine(MessageJson(message, handle));
    } else {
      std::cout << MessageText(message, handle, TimeZoneChoice::kLocal) << "\n";
    }
  }
  std::cout << std::flush;
  if (args.mark_read == MarkReadPolicy::kLeaveUnread) return ExitCode::kOk;
  if (auto read = c.MarkGroupRead(args.with);
      !read && ExitCodeFor(read.error()) != ExitCode::kOffline) {
    return Fail(read.error(), "marking read");
  }
  return ExitCode::kOk;
}

void AddGroupCommands(CLI::App& app, std::function<ExitCode(const GlobalOptions&)>& action) {
  auto args = std::make_shared<GroupArgs>();
  auto* group = app.add_subcommand("group", "groups (end-to-end encrypted with Sender Keys)");
  group->require_subcommand(1);
  auto json_flag = [args](CLI::App* command) {
    command->add_flag_callback(
        "--json", [args] { args->format = OutputFormat::kJson; }, "one JSON object per line");
  };
  auto on = [&action, args](CLI::App* command, auto run) {
    command->callback([&action, args, run] {
      action = [args, run](const GlobalOptions& g) { return run(g, *args); };
    });
  };
  const char* kGroupHelp = "the group: its id, a unique id prefix, or its exact name";

  auto* create = group->add_subcommand("create", "create a group; you become its admin");
  create->add_option("name", args->name, "the group's name (end to end, never sent to the server)")
      ->required();
  create->add_option("members", args->numbers, "members, +E164 each")->required();
  json_flag(create);
  on(create, Create);

  auto* add = group->add_subcommand("add", "add members (admins only)");
  add->add_option("group", args->group, kGroupHelp)->required();
  add->add_option("members", args->numbers, "+E164 each")->required();
  on(add, [](const GlobalOptions& g, const GroupArgs& a) { return Modify(g, a, Change::kAdd); });

  auto* remove = group->add_subcommand("remove", "remove members (admins only)");
  remove->add_option("group", args->group, kGroupHelp)->required();
  remove->add_option("members", args->numbers, "+E164 each")->required();
  on(remove,
     [](const GlobalOptions& g, const GroupArgs& a) { return Modify(g, a, Change::kRemove); });

  auto* leave = group->add_subcommand("leave", "leave a group");
  leave->add_option("group", args->group, kGroupHelp)->required();
  leave->add_flag("--refuse-readd", args->refuse_readd,
                  "refuse being added to this group again (until `group allow-readd`)");
  on(leave,
     [](const GlobalOptions& g, const GroupArgs& a) { return Modify(g, a, Change::kLeave); });

  auto* allow = group->add_subcommand("allow-readd",
                                      "let a group you left with --refuse-readd add you again");
  allow->add_option("group", args->group, kGroupHelp)->required();
  on(allow,
     [](const GlobalOptions& g, const GroupArgs& a) { return Modify(g, a, Change::kAllowReadd); });

  auto* adds = group->add_subcommand("adds", "who may add you to groups");
  adds->add_option("who", args->who, "everyone (the default), contacts or nobody")
      ->required()
      ->check(CLI::IsMember({"everyone", "contacts", "nobody"}));
  on(adds, [](const GlobalOptions& g, const GroupArgs& a) { return Modify(g, a, Change::kAdds); });

  auto* admin = group->add_subcommand("admin", "make a member admin (or --demote)");
  admin->add_option("group", args->group, kGroupHelp)->required();
  admin->add_option("member", args->number, "+E164")->required();
  admin->add_flag("--demote", args->demote, "take admin away instead");
  on(admin,
     [](const GlobalOptions& g, const GroupArgs& a) { return Modify(g, a, Change::kAdmin); });

  auto* rename = group->add_subcommand("rename", "rename the group (admins only)");
  rename->add_option("group", args->group, kGroupHelp)->required();
  rename->add_option("name", args->name, "the new name")->required();
  rename->add_option("--description", args->description, "the new description");
  on(rename,
     [](const GlobalOptions& g, const GroupArgs& a) { return Modify(g, a, Change::kRename); });

  auto* send = group->add_subcommand("send", "send a text message to the group");
  send->add_option("group", args->group, kGroupHelp)->required();
  send->add_option("text", args->text, "the message (use -- before text starting with -)")
      ->required();
  json_flag(send);
  on(send, GroupSend);

  auto* list = group->add_subcommand("list", "list groups");
  json_flag(list);
  on(list, List);

  auto* info = group->add_subcommand(
      "info", "members, admins, and per-member receipts of your recent messages");
  info->add_option("group", args->group, kGroupHelp)->required();
  json_flag(info);
  on(info, Info);
}

}  // namespace sotto::cli
