// Resource limits of a real `phalanx serve` met with raw sockets: a body that trickles in past --body-timeout gets
// 408, a connection beyond --max-connections gets 503 and is closed, and the server serves normally afterwards.
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <thread>

#include "tests/common/free_ports.h"
#include "tests/serving/serve_process.h"

namespace phx::testing {
namespace {

int connectTo(int port) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address = loopbackAddress(port);
  EXPECT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)), 0);
  timeval timeout{.tv_sec = 30, .tv_usec = 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  return fd;
}

// Everything the server sends until it closes (or 30 s pass).
std::string readAll(int fd) {
  std::string text;
  char buffer[4096];
  for (ssize_t n; (n = recv(fd, buffer, sizeof(buffer), 0)) > 0;) text.append(buffer, size_t(n));
  return text;
}

TEST(ServeLimitsTest, ABodyThatDoesNotArriveInTimeGets408) {
  ServeProcess server({"--body-timeout", "1"});
  const int fd = connectTo(server.port());
  const std::string start =
      "POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n"
      "{\"prompt\": ";
  ASSERT_EQ(send(fd, start.data(), start.size(), 0), ssize_t(start.size()));
  const auto sent = std::chrono::steady_clock::now();
  char buffer[4096];
  const ssize_t n = recv(fd, buffer, sizeof(buffer), 0);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - sent).count();
  close(fd);
  ASSERT_GT(n, 0);
  EXPECT_EQ(std::string(buffer, size_t(n)).rfind("HTTP/1.1 408", 0), 0u) << std::string(buffer, size_t(n));
  EXPECT_GE(seconds, 0.9);
  EXPECT_EQ(server.http("POST", "/v1/completions", R"({"prompt": "Hi", "max_tokens": 2})").status, 200);
  EXPECT_EQ(server.stop(), 0) << server.stderrText();
}

TEST(ServeLimitsTest, AConnectionBeyondTheCapGets503AndOthersCarryOn) {
  ServeProcess server({"--max-connections", "2"});
  const int first = connectTo(server.port());
  const int second = connectTo(server.port());
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // both accepted
  const int third = connectTo(server.port());
  const std::string refused = readAll(third);
  close(third);
  EXPECT_EQ(refused.rfind("HTTP/1.1 503", 0), 0u) << refused;
  EXPECT_NE(refused.find("Retry-After: 1"), std::string::npos) << refused;
  EXPECT_NE(refused.find("too many open connections"), std::string::npos) << refused;
  close(first);
  close(second);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // both closed
  EXPECT_EQ(server.http("POST", "/v1/completions", R"({"prompt": "Hi", "max_tokens": 2})").status, 200);
  EXPECT_EQ(server.stop(), 0) << server.stderrText();
}

}  // namespace
}  // namespace phx::testing
