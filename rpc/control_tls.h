// Optional mutual TLS for the control plane (kj's TLS over OpenSSL): a worker presents its certificate and asks
// the coordinator for one; both are checked against the cluster's CA, and the coordinator checks that the worker's
// certificate names the host it dialled (`--workers`). Orthogonal to the cluster secret (rpc/cluster_auth.h),
// which authenticates; TLS adds confidentiality and integrity of every message after the handshake.
#pragma once

#include <kj/async-io.h>
#include <kj/compat/tls.h>

#include <filesystem>
#include <memory>
#include <optional>

namespace phx {

struct ControlTlsFiles {
  std::filesystem::path certificate;  // PEM: this process's certificate (chain)
  std::filesystem::path privateKey;   // PEM: its key
  std::filesystem::path ca;           // PEM: the CA that signs the other side's certificates
};

// A TLS context for one side of the control plane; `timer` (the worker's) bounds the handshakes it accepts. Throws
// phx::Error naming the file that is missing or not valid PEM.
class ControlTls {
 public:
  enum class Side { kWorker, kCoordinator };
  ControlTls(const ControlTlsFiles& files, Side side, kj::Timer* timer = nullptr);
  kj::TlsContext& context() { return *context_; }

 private:
  kj::Own<kj::TlsKeypair> keypair_;
  kj::Array<kj::TlsCertificate> trusted_;
  kj::Own<kj::TlsContext> context_;
};

// The three flags given together or not at all; throws phx::Error (invalid argument) naming the missing one.
std::optional<ControlTlsFiles> controlTlsFiles(const std::optional<std::string>& certificate,
                                               const std::optional<std::string>& privateKey,
                                               const std::optional<std::string>& ca);

}  // namespace phx
