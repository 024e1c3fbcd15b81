// The control plane's challenge-response (rpc/phalanx.capnp, authenticate): both sides hold one cluster secret
// (a file, `--cluster-secret-file`) and prove it to each other with HMAC-SHA256 over fresh nonces and the
// coordinator's epoch, so the secret never crosses the wire and a recorded exchange cannot be replayed against
// another challenge. docs/security.md says what this does and does not protect.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

namespace phx {

inline constexpr size_t kAuthNonceBytes = 32;
inline constexpr size_t kMinSecretBytes = 16;

// The file's bytes, surrounding whitespace trimmed. Throws phx::Error naming the file: kIo when unreadable,
// kInvalidArgument when shorter than kMinSecretBytes (a short secret is guessable offline from one exchange).
std::string readClusterSecret(const std::filesystem::path& file);

std::vector<uint8_t> randomNonce();  // kAuthNonceBytes from OpenSSL's CSPRNG

enum class AuthRole { kCoordinator, kWorker };
// HMAC-SHA256(secret, role label | first | second | epoch): the coordinator proves over (challenge, clientNonce),
// the worker answers over (clientNonce, challenge).
std::vector<uint8_t> authProof(std::string_view secret, AuthRole role, const std::vector<uint8_t>& first,
                               const std::vector<uint8_t>& second, uint64_t epoch);
// Constant-time comparison of a received proof with the expected one.
bool proofMatches(const std::vector<uint8_t>& received, const std::vector<uint8_t>& expected);

}  // namespace phx
