#include "rpc/control_tls.h"

#include <fstream>
#include <sstream>

#include "common/error.h"

namespace phx {
namespace {

std::string readPem(const std::filesystem::path& file, const char* what) {
  std::ifstream in(file);
  if (!in) throwIoError(std::string("control TLS: cannot read the ") + what + " " + file.string());
  std::ostringstream text;
  text << in.rdbuf();
  if (text.str().find("-----BEGIN") == std::string::npos) {
    throwInvalidArgument(std::string("control TLS: ") + file.string() + " holds no PEM block; expected the " + what);
  }
  return text.str();
}

template <typename Make>
auto parsed(const std::filesystem::path& file, const char* what, Make make) {
  try {
    return make(readPem(file, what));
  } catch (const kj::Exception& e) {
    throwInvalidArgument(std::string("control TLS: ") + file.string() + " is not a valid " + what + ": " +
                         e.getDescription().cStr());
  }
}

}  // namespace

ControlTls::ControlTls(const ControlTlsFiles& files, Side side, kj::Timer* timer) {
  auto key = parsed(files.privateKey, "private key",
                    [](const std::string& pem) { return kj::TlsPrivateKey(kj::StringPtr(pem.c_str())); });
  auto certificate = parsed(files.certificate, "certificate",
                            [](const std::string& pem) { return kj::TlsCertificate(kj::StringPtr(pem.c_str())); });
  keypair_ = kj::heap<kj::TlsKeypair>(kj::TlsKeypair{kj::mv(key), kj::mv(certificate)});
  auto ca = parsed(files.ca, "CA certificate",
                   [](const std::string& pem) { return kj::TlsCertificate(kj::StringPtr(pem.c_str())); });
  auto trusted = kj::heapArrayBuilder<kj::TlsCertificate>(1);
  trusted.add(kj::mv(ca));
  trusted_ = trusted.finish();
  kj::TlsContext::Options options;
  options.useSystemTrustStore = false;  // only the cluster's CA
  options.trustedCertificates = trusted_;
  options.defaultKeypair = *keypair_;
  options.verifyClients = side == Side::kWorker;  // mutual: a worker admits only clients the CA signed
  options.minVersion = kj::TlsVersion::TLS_1_2;
  if (timer != nullptr) {
    options.timer = *timer;
    options.acceptTimeout = 10 * kj::SECONDS;  // a client that never finishes its handshake is dropped
  }
  context_ = kj::heap<kj::TlsContext>(kj::mv(options));
}

std::optional<ControlTlsFiles> controlTlsFiles(const std::optional<std::string>& certificate,
                                               const std::optional<std::string>& privateKey,
                                               const std::optional<std::string>& ca) {
  if (!certificate && !privateKey && !ca) return std::nullopt;
  if (!certificate || !privateKey || !ca) {
    throwInvalidArgument(std::string("control TLS needs --tls-cert, --tls-key and --tls-ca together; missing ") +
                         (!certificate  ? "--tls-cert"
                          : !privateKey ? "--tls-key"
                                        : "--tls-ca"));
  }
  return ControlTlsFiles{*certificate, *privateKey, *ca};
}

}  // namespace phx
