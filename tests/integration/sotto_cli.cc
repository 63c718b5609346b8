#include "tests/integration/sotto_cli.h"

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sstream>
#include <string>
#include <vector>

#ifndef SOTTO_PATH
#error "SOTTO_PATH (the sotto binary) must be defined by the build"
#endif

namespace sotto::testing {

std::string ReadAll(int fd) {
  std::string s;
  char buf[4096];
  ssize_t n;
  while ((n = read(fd, buf, sizeof buf)) > 0) s.append(buf, static_cast<size_t>(n));
  return s;
}

pid_t SpawnSotto(const std::vector<std::string>& args, int out_fd, int err_fd) {
  std::vector<std::string> all = {SOTTO_PATH};
  all.insert(all.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (std::string& a : all) argv.push_back(a.data());
  argv.push_back(nullptr);
  const pid_t pid = fork();
  if (pid == 0) {
    const int devnull = open("/dev/null", O_RDWR);
    dup2(devnull, STDIN_FILENO);
    dup2(out_fd >= 0 ? out_fd : devnull, STDOUT_FILENO);
    dup2(err_fd, STDERR_FILENO);
    execv(argv[0], argv.data());
    _exit(127);
  }
  return pid;
}

int WaitExit(pid_t pid) {
  int status = 0;
  if (waitpid(pid, &status, 0) != pid) return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

ProcessRun Sotto(const std::vector<std::string>& args) {
  int out[2], err[2];
  if (pipe2(out, O_CLOEXEC) != 0 || pipe2(err, O_CLOEXEC) != 0) return {};
  const pid_t pid = SpawnSotto(args, out[1], err[1]);
  close(out[1]);
  close(err[1]);
  ProcessRun run;
  // stderr is small; read stdout to EOF first, then stderr (no deadlock for our sizes).
  run.out = ReadAll(out[0]);
  run.err = ReadAll(err[0]);
  close(out[0]);
  close(err[0]);
  run.exit_code = WaitExit(pid);
  return run;
}

std::vector<nlohmann::json> JsonLines(const std::string& text) {
  std::vector<nlohmann::json> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
    if (!j.is_discarded()) out.push_back(std::move(j));
  }
  return out;
}

std::vector<nlohmann::json> OfType(const std::vector<nlohmann::json>& lines,
                                   const std::string& type) {
  std::vector<nlohmann::json> out;
  for (const nlohmann::json& j : lines) {
    if (j.value("type", "") == type) out.push_back(j);
  }
  return out;
}

std::string Describe(const ProcessRun& r) {
  return "exit " + std::to_string(r.exit_code) + "\nstdout:\n" + r.out + "\nstderr:\n" + r.err;
}

}  // namespace sotto::testing
