#include "rpc/cluster_auth.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <fstream>
#include <sstream>

#include "common/error.h"

namespace phx {

std::string readClusterSecret(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throwIoError("cluster secret file " + file.string() + ": cannot open");
  std::ostringstream bytes;
  bytes << in.rdbuf();
  std::string secret = bytes.str();
  const auto first = secret.find_first_not_of(" \t\r\n");
  const auto last = secret.find_last_not_of(" \t\r\n");
  secret = first == std::string::npos ? "" : secret.substr(first, last - first + 1);
  if (secret.size() < kMinSecretBytes) {
    throwInvalidArgument("cluster secret file " + file.string() + " holds " + std::to_string(secret.size()) +
                         " bytes; expected at least " + std::to_string(kMinSecretBytes) +
                         " (e.g. `head -c 32 /dev/urandom | base64 > FILE`)");
  }
  return secret;
}

std::vector<uint8_t> randomNonce() {
  std::vector<uint8_t> nonce(kAuthNonceBytes);
  if (RAND_bytes(nonce.data(), int(nonce.size())) != 1) {
    throw Error(ErrorKind::kInternal, "cluster auth: OpenSSL's random generator failed");
  }
  return nonce;
}

std::vector<uint8_t> authProof(std::string_view secret, AuthRole role, const std::vector<uint8_t>& first,
                               const std::vector<uint8_t>& second, uint64_t epoch) {
  const std::string_view label = role == AuthRole::kCoordinator ? "phalanx coordinator" : "phalanx worker";
  std::vector<uint8_t> message(label.begin(), label.end());
  message.push_back(0);
  message.insert(message.end(), first.begin(), first.end());
  message.insert(message.end(), second.begin(), second.end());
  for (int i = 0; i < 8; ++i) message.push_back(uint8_t(epoch >> (8 * i)));
  std::vector<uint8_t> mac(EVP_MAX_MD_SIZE);
  unsigned length = 0;
  if (!HMAC(EVP_sha256(), secret.data(), int(secret.size()), message.data(), message.size(), mac.data(), &length)) {
    throw Error(ErrorKind::kInternal, "cluster auth: HMAC-SHA256 failed");
  }
  mac.resize(length);
  return mac;
}

bool proofMatches(const std::vector<uint8_t>& received, const std::vector<uint8_t>& expected) {
  return received.size() == expected.size() && CRYPTO_memcmp(received.data(), expected.data(), expected.size()) == 0;
}

}  // namespace phx
