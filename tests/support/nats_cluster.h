// Starts a real nats-server JetStream cluster on 127.0.0.1 for tests and benchmarks: N
// nodes (3 by default), each with its own store directory under one temp dir, client and
// monitoring ports chosen by the server (-1, read back from its ports file), cluster
// ports reserved just before the start (the routes of every node must name them).
// Readiness is awaited, never slept for: every node's monitoring endpoint (/jsz) must
// report the meta leader and the full cluster size before the constructor returns.
//
// A node can be killed with SIGKILL and restarted on the same ports and store directory.
// The destructor SIGKILLs every node still running and removes the temp dir; each child
// also gets PR_SET_PDEATHSIG, so a crashed test leaves no nats-server behind.
//
// Thread-safety: externally synchronized (one test thread drives it).
#pragma once

#include <sys/resource.h>
#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

namespace sotto::testing {

struct NatsClusterOptions {
  int nodes = 3;
  std::string cluster_name = "sotto-test";
  // RLIMIT_NOFILE of each nats-server (this machine caps open files at 20,000 in all).
  rlim_t open_file_limit = 4'096;
  // Where the temp dir goes (e.g. the disk a benchmark measures); empty = /tmp.
  std::string base_dir;
  // The bound on every wait (start, readiness, catch-up).
  int timeout_ms = 20'000;
  // Extra "NAME=value" environment entries for each nats-server (e.g. GOGC for a memory
  // measurement); the rest of the environment is inherited.
  std::vector<std::string> env;
};

class NatsCluster {
 public:
  explicit NatsCluster(const NatsClusterOptions& options = {});
  ~NatsCluster();
  NatsCluster(const NatsCluster&) = delete;
  NatsCluster& operator=(const NatsCluster&) = delete;

  // True if every node started and the cluster became ready; otherwise error() says why.
  bool ok() const { return error_.empty(); }
  const std::string& error() const { return error_; }

  int size() const { return static_cast<int>(nodes_.size()); }
  // "nats://127.0.0.1:PORT" of one node, and of all of them (for a client's server list).
  std::string ClientUrl(int node) const;
  std::vector<std::string> ClientUrls() const;
  uint16_t MonitorPort(int node) const { return node_at(node).http_port; }
  pid_t pid(int node) const { return node_at(node).pid; }
  bool running(int node) const { return node_at(node).pid > 0; }
  const std::string& dir() const { return dir_; }
  // The server_name of a node ("n1".."nN"), as stream info reports leaders and peers.
  static std::string NodeName(int node) { return "n" + std::to_string(node + 1); }

  // SIGKILL and wait: a crash, nothing flushed. True if the node was running.
  bool Kill(int node);
  // Starts a killed node again on its ports and store dir; waits until it reports the
  // meta leader. False (and error() set) on failure.
  bool Restart(int node);
  // Waits until every running node reports a meta leader and the full cluster size.
  bool AwaitReady();

  // GET http://127.0.0.1:PORT/path on a node's monitoring port; the body, or "" on failure.
  std::string Monitor(int node, const std::string& path) const;
  // A number from a node's /jsz (e.g. "messages", "streams"); -1 if absent.
  long Jsz(int node, const std::string& key) const;

 private:
  struct Node {
    pid_t pid = -1;
    uint16_t cluster_port = 0;
    uint16_t client_port = 0;  // 0 until the first start chose one
    uint16_t http_port = 0;
    std::string dir;
  };
  const Node& node_at(int node) const { return nodes_.at(static_cast<size_t>(node)); }
  bool StartAll();
  bool StartNode(int node);
  bool AwaitNodeReady(int node, long deadline_ms);
  void Fail(const std::string& why);
  std::string LogTail(int node) const;

  NatsClusterOptions options_;
  std::string dir_;
  std::vector<Node> nodes_;
  std::string error_;
};

}  // namespace sotto::testing
