// phalanx bench-comm: all-reduce latency and bus bandwidth of the data plane, in one run, for UCX over shared
// memory, UCX over TCP on loopback and MPI_Allreduce (Open MPI over its UCX PML and over ob1/vader). The command
// forks its UCX ranks itself and launches the MPI ranks with mpirun running this same binary (--mpi-rank). With
// --netns NAME every rank first enters network namespace NAME-<rank> and talks over its interface NAME<rank>
// (scripts/netns_hosts.sh), so the all-reduces cross the links scripts/netbench.sh shapes.
#include <sched.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "cli/args.h"
#include "cli/commands.h"
#include "common/error.h"
#include "common/network_namespace.h"
#include "rpc/mpi_communicator.h"
#include "rpc/ucx_communicator.h"

namespace phx::cli {
namespace {

struct Measurement {
  std::size_t bytes = 0;
  double medianUs = 0, p99Us = 0;
};

// "1KiB..16MiB" -> 1 KiB, 4 KiB, ... (x4 steps), plus 10 KiB (one decode token of Phi-4 in BF16) when in range.
std::vector<std::size_t> parseSizes(const std::string& text) {
  const auto dots = text.find("..");
  if (dots == std::string::npos) throwInvalidArgument("--sizes: expected FROM..TO such as 1KiB..16MiB, got " + text);
  const auto from = std::size_t(parseByteSize(text.substr(0, dots), "sizes"));
  const auto to = std::size_t(parseByteSize(text.substr(dots + 2), "sizes"));
  if (from < 4 || to < from) throwInvalidArgument("--sizes: need 4 B <= FROM <= TO, got " + text);
  std::vector<std::size_t> sizes;
  for (std::size_t bytes = from; bytes <= to; bytes *= 4) sizes.push_back(bytes / 4 * 4);
  if (from <= 10240 && 10240 <= to) sizes.push_back(10240);
  std::sort(sizes.begin(), sizes.end());
  sizes.erase(std::unique(sizes.begin(), sizes.end()), sizes.end());
  return sizes;
}

// Every rank must run the same number of calls; fewer for big messages so a run stays short.
int repsFor(std::size_t bytes, int reps) {
  return static_cast<int>(std::clamp<std::size_t>(reps * std::size_t{16384} / bytes, 20, reps));
}

// Rank side: time every call; rank 0's times are the result (each call ends on every rank at nearly the same time).
std::vector<Measurement> measure(Communicator& comm, const std::vector<std::size_t>& sizes, int reps) {
  std::vector<Measurement> results;
  for (std::size_t bytes : sizes) {
    std::vector<float> data(bytes / sizeof(float), 1.0f);
    const int count = repsFor(bytes, reps);
    for (int i = 0; i < std::max(5, count / 10); ++i) comm.allReduceSum(data);  // warm up: wireup, page faults
    std::vector<double> micros(count);
    for (int i = 0; i < count; ++i) {
      std::fill(data.begin(), data.end(), 1.0f);  // keep the values finite; costs the same on every transport
      const auto start = std::chrono::steady_clock::now();
      comm.allReduceSum(data);
      micros[i] = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start).count();
    }
    std::sort(micros.begin(), micros.end());
    results.push_back({bytes, micros[count / 2], micros[std::min<std::size_t>(count - 1, count * 99 / 100)]});
  }
  return results;
}

std::string encode(const std::vector<Measurement>& results) {
  std::ostringstream out;
  for (const auto& m : results) out << "RESULT " << m.bytes << ' ' << m.medianUs << ' ' << m.p99Us << '\n';
  return out.str();
}

std::vector<Measurement> decode(const std::string& text) {
  std::vector<Measurement> results;
  std::istringstream in(text);
  std::string word;
  while (in >> word) {
    if (word != "RESULT") continue;
    Measurement m;
    in >> m.bytes >> m.medianUs >> m.p99Us;
    results.push_back(m);
  }
  return results;
}

void pinToCore(int rank) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(rank % std::max(1u, std::thread::hardware_concurrency()), &set);
  sched_setaffinity(0, sizeof set, &set);  // best effort: a container may forbid it
}

std::vector<std::byte> readWhenPresent(const std::string& file) {
  while (!std::filesystem::exists(file)) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  std::ifstream in(file, std::ios::binary);
  std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const auto* begin = reinterpret_cast<const std::byte*>(bytes.data());
  return {begin, begin + bytes.size()};
}

// A rank on "host" `rank` of scripts/netns_hosts.sh's set NAME: its namespace and its one interface, for UCX (and
// Open MPI's TCP BTL). Before UCX or MPI start, so they see only that namespace's links.
void enterHost(const std::string& netns, int rank) {
  enterNetworkNamespace(netns + "-" + std::to_string(rank));
  const std::string device = netns + std::to_string(rank);
  setenv("UCX_NET_DEVICES", device.c_str(), 1);
  setenv("OMPI_MCA_btl_tcp_if_include", device.c_str(), 1);
}

// One UCX rank in a forked child: swap addresses through files in `dir`, measure, rank 0 writes the results.
void ucxRank(int rank, int ranks, const std::string& dir, const std::vector<std::size_t>& sizes, int reps, int out,
             const std::string& netns) {
  pinToCore(rank);
  if (!netns.empty()) enterHost(netns, rank);
  auto comm = UcxCommunicator::create();
  const auto mine = comm->address();
  {
    std::ofstream(dir + "/.tmp" + std::to_string(rank), std::ios::binary)
        .write(reinterpret_cast<const char*>(mine.data()), static_cast<std::streamsize>(mine.size()));
    std::filesystem::rename(dir + "/.tmp" + std::to_string(rank), dir + "/addr" + std::to_string(rank));
  }
  std::vector<std::vector<std::byte>> addresses(ranks);
  std::vector<int> group(ranks);
  for (int r = 0; r < ranks; ++r) {
    addresses[r] = readWhenPresent(dir + "/addr" + std::to_string(r));
    group[r] = r;
  }
  comm->connect(addresses, rank, group);
  // As a worker does: the algorithm by size comes from a measurement on these links.
  const AllReduceTuning tuning = comm->tuneAllReduce();
  if (rank == 0) {
    std::fprintf(stderr, "bench-comm: UCX all-reduce direct up to %s bytes sent a rank, ring above (tuned)\n",
                 tuning.directMaxBytesSent == std::numeric_limits<std::size_t>::max()
                     ? "any number of"
                     : std::to_string(tuning.directMaxBytesSent).c_str());
  }
  const auto results = measure(*comm, sizes, reps);
  if (rank == 0) {
    const std::string text = encode(results);
    if (write(out, text.data(), text.size()) != static_cast<ssize_t>(text.size())) _exit(3);
  }
}

std::vector<Measurement> runUcx(const std::vector<std::pair<std::string, std::string>>& env, int ranks,
                                const std::vector<std::size_t>& sizes, int reps, const std::string& netns) {
  char pattern[] = "/tmp/phx-bench-comm-XXXXXX";
  if (!mkdtemp(pattern)) throwIoError("bench-comm: mkdtemp");
  const std::string dir = pattern;
  int pipeFds[2];
  if (pipe(pipeFds) != 0) throwIoError("bench-comm: pipe");
  std::fflush(nullptr);
  std::vector<pid_t> pids;
  for (int rank = 0; rank < ranks; ++rank) {
    const pid_t pid = fork();
    if (pid == 0) {
      close(pipeFds[0]);
      for (const auto& [name, value] : env) setenv(name.c_str(), value.c_str(), 1);
      int code = 0;
      try {
        ucxRank(rank, ranks, dir, sizes, reps, pipeFds[1], netns);
      } catch (const std::exception& error) {
        std::fprintf(stderr, "bench-comm rank %d: %s\n", rank, error.what());
        code = 1;
      }
      _exit(code);
    }
    pids.push_back(pid);
  }
  close(pipeFds[1]);
  std::string text;
  char buffer[4096];
  for (ssize_t n; (n = read(pipeFds[0], buffer, sizeof buffer)) > 0;) text.append(buffer, n);
  close(pipeFds[0]);
  bool failed = false;
  for (pid_t pid : pids) {
    int status = 0;
    waitpid(pid, &status, 0);
    failed = failed || !WIFEXITED(status) || WEXITSTATUS(status) != 0;
  }
  std::filesystem::remove_all(dir);
  if (failed) throw Error(ErrorKind::kDisconnected, "bench-comm: a UCX rank failed (see its message above)");
  return decode(text);
}

std::vector<Measurement> runMpi(const std::string& mcaFlags, int ranks, const std::string& sizesText, int reps,
                                const std::string& netns) {
  const std::string self = std::filesystem::read_symlink("/proc/self/exe").string();
  // Across namespaces a rank cannot reach mpirun's PMIx server on this namespace's loopback: it listens on the
  // bridge the namespaces hang off (scripts/netns_hosts.sh names it NAMEbr) instead.
  const std::string pmix =
      netns.empty() ? "" : "PMIX_MCA_ptl_tcp_remote_connections=1 PMIX_MCA_ptl_tcp_if_include=" + netns + "br ";
  const std::string command = pmix + "mpirun --allow-run-as-root --oversubscribe -np " + std::to_string(ranks) +
                              " --bind-to core " + mcaFlags + " " + self + " bench-comm --mpi-rank --sizes " +
                              sizesText + " --reps " + std::to_string(reps) +
                              (netns.empty() ? "" : " --netns " + netns) + " 2>&1";
  FILE* pipe = popen(command.c_str(), "r");
  if (!pipe) throwIoError("bench-comm: cannot start " + command);
  std::string text;
  char buffer[4096];
  for (std::size_t n; (n = fread(buffer, 1, sizeof buffer, pipe)) > 0;) text.append(buffer, n);
  if (pclose(pipe) != 0) {
    throw Error(ErrorKind::kDisconnected, "bench-comm: '" + command + "' failed:\n" + text);
  }
  return decode(text);
}

int mpiRank(const std::vector<std::size_t>& sizes, int reps, const std::string& netns) {
  // Open MPI numbers the ranks in the environment before MPI_Init, which must already see the rank's namespace.
  if (!netns.empty()) {
    const char* rank = std::getenv("OMPI_COMM_WORLD_RANK");
    if (rank == nullptr) throwInvalidArgument("bench-comm --mpi-rank --netns: OMPI_COMM_WORLD_RANK is not set");
    enterHost(netns, std::atoi(rank));
  }
  const int world = MpiCommunicator::worldSize();
  std::vector<int> group(world);
  for (int r = 0; r < world; ++r) group[r] = r;
  auto comm = MpiCommunicator::create(group);
  const auto results = measure(*comm, sizes, reps);
  if (comm->rank() == 0) std::fputs(encode(results).c_str(), stdout);
  return 0;
}

struct Transport {
  const char* name;
  const char* how;
  const char* howAcrossHosts;  // with --netns; null: not across hosts (shared memory would bypass the links)
};

constexpr Transport kTransports[] = {
    {"ucx-sm", "UCX_TLS=sm,self", nullptr},
    {"ucx-tcp", "UCX_TLS=tcp,self UCX_NET_DEVICES=lo", "UCX_TLS=tcp,self, each rank on its namespace's interface"},
    {"mpi-ucx", "mpirun --mca pml ucx (UCX_TLS=sm,self)", "mpirun --mca pml ucx (UCX_TLS=tcp,self)"},
    {"mpi-ob1", "mpirun --mca pml ob1 --mca btl self,vader", "mpirun --mca pml ob1 --mca btl self,tcp"},
};

std::vector<Measurement> runTransport(const std::string& name, const ParsedArgs& args,
                                      const std::vector<std::size_t>& sizes, const std::string& netns) {
  const int ranks = int(args.integer("ranks")), reps = int(args.integer("reps"));
  const bool hosts = !netns.empty();
  if (name == "ucx-sm") return runUcx({{"UCX_TLS", "sm,self"}}, ranks, sizes, reps, netns);
  if (name == "ucx-tcp") {
    return runUcx({{"UCX_TLS", "tcp,self"}, {"UCX_NET_DEVICES", "lo"}}, ranks, sizes, reps, netns);
  }
  if (name == "mpi-ucx") {
    return runMpi(std::string("--mca pml ucx --mca pml_ucx_tls any --mca pml_ucx_devices any ") +
                      (hosts ? "-x UCX_TLS=tcp,self" : "-x UCX_TLS=sm,self -x UCX_NET_DEVICES=lo") +
                      " --mca oob_tcp_if_include lo",
                  ranks, args.str("sizes"), reps, netns);
  }
  return runMpi(
      std::string("--mca pml ob1 --mca btl ") + (hosts ? "self,tcp" : "self,vader") + " --mca oob_tcp_if_include lo",
      ranks, args.str("sizes"), reps, netns);
}

void report(const Transport& transport, bool acrossHosts, int ranks, const std::vector<Measurement>& results,
            nlohmann::json& json) {
  std::printf("\n%s (%s)\n%12s %14s %14s %16s\n", transport.name,
              acrossHosts ? transport.howAcrossHosts : transport.how, "bytes", "median us", "p99 us", "bus GB/s");
  for (const auto& m : results) {
    const double busGbps = m.bytes * 2.0 * (ranks - 1) / ranks / (m.medianUs * 1e-6) / 1e9;
    std::printf("%12zu %14.2f %14.2f %16.3f\n", m.bytes, m.medianUs, m.p99Us, busGbps);
    json.push_back({{"transport", transport.name},
                    {"bytes", m.bytes},
                    {"ranks", ranks},
                    {"latency_us_median", m.medianUs},
                    {"latency_us_p99", m.p99Us},
                    {"bus_bandwidth_gbps", busGbps}});
  }
  std::fflush(stdout);
}

}  // namespace

int benchCommCommand(int argc, char** argv) {
  ArgParser parser("phalanx bench-comm [options]",
                   "All-reduce (sum, f32) latency and bus bandwidth between rank processes on this machine, for UCX "
                   "over shared memory, UCX over TCP (loopback) and MPI_Allreduce (Open MPI, UCX PML and ob1), in one "
                   "run. Bus bandwidth = bytes x 2 (ranks - 1) / ranks / time, comparable across rank counts.");
  parser.option("sizes", "FROM..TO", "message sizes, x4 steps, plus 10 KiB when in range", "1KiB..16MiB")
      .option("ranks", "N", "ranks per all-reduce", "2")
      .option("reps", "N", "timed calls per size up to 16 KiB (fewer above, at least 20)", "2000")
      .option("json", "FILE", "also write one JSON object per transport x size to FILE")
      .option("transports", "LIST", "comma list of ucx-sm, ucx-tcp, mpi-ucx, mpi-ob1", "ucx-sm,ucx-tcp,mpi-ucx,mpi-ob1")
      .option("netns", "NAME",
              "rank i runs in network namespace NAME-i over its interface NAMEi (scripts/netns_hosts.sh): the "
              "all-reduces cross those links, over TCP (ucx-tcp, mpi-ucx, mpi-ob1); root")
      .flag("mpi-rank", "internal: run as one mpirun-launched rank");
  const auto parsed = parser.parse(argc, argv);
  if (!parsed) return 0;
  const ParsedArgs& args = *parsed;
  const auto sizes = parseSizes(args.str("sizes"));
  const int reps = static_cast<int>(args.integer("reps"));
  const int ranks = static_cast<int>(args.integer("ranks"));
  if (reps < 1 || ranks < 2) throwInvalidArgument("--reps must be >= 1 and --ranks >= 2");
  const std::string netns = args.optionalStr("netns").value_or("");
  if (args.has("mpi-rank")) return mpiRank(sizes, reps, netns);

  const std::vector<std::string> chosen = args.strList("transports");
  for (const std::string& name : chosen) {
    if (std::none_of(std::begin(kTransports), std::end(kTransports), [&](auto& t) { return t.name == name; })) {
      throwInvalidArgument("--transports: unknown transport '" + name + "' (ucx-sm, ucx-tcp, mpi-ucx, mpi-ob1)");
    }
  }
  std::printf(
      "all-reduce sum of f32, %d ranks on %u cores%s; hardware limit: memory bandwidth ~30 GB/s "
      "(PLATFORM.md); medians of up to %d calls\n",
      ranks, std::thread::hardware_concurrency(),
      netns.empty() ? "" : (", rank i in network namespace " + netns + "-i").c_str(), reps);
  nlohmann::json json = nlohmann::json::array();
  for (const auto& transport : kTransports) {
    if (std::find(chosen.begin(), chosen.end(), transport.name) == chosen.end()) continue;
    if (!netns.empty() && transport.howAcrossHosts == nullptr) {
      throwInvalidArgument(std::string("bench-comm --netns: ") + transport.name +
                           " shares memory, which would bypass the links between the namespaces; choose ucx-tcp, "
                           "mpi-ucx or mpi-ob1");
    }
    report(transport, !netns.empty(), ranks, runTransport(transport.name, args, sizes, netns), json);
  }
  if (args.has("json")) {
    std::ofstream out(args.str("json"));
    out << json.dump(2) << '\n';
    if (!out) throwIoError("bench-comm: cannot write " + args.str("json"));
  }
  return 0;
}

}  // namespace phx::cli
