// `phalanx tokenize` end to end: ids on stdout for text on stdin, --json, --special, --decode in its three input
// forms, and exit codes (2 for usage errors, 1 for bad input) with a message on stderr.
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iterator>

#include <gtest/gtest.h>

#include "model/tokenizer_files.h"
#include "tests/common/test_files.h"

namespace phx {
namespace {

using ::phx::testing::slurp;

namespace fs = std::filesystem;

struct CliResult {
  int exitCode;
  std::string out;
  std::string err;
};

class TokenizeCli : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new fs::path(fs::temp_directory_path() / ("phx_tokenize_cli_" + std::to_string(::getpid())));
    fs::create_directories(*dir_ / "model");
    writeTokenizerFiles(*dir_ / "model");
  }
  static void TearDownTestSuite() {
    fs::remove_all(*dir_);
    delete dir_;
  }

  // Runs `phalanx tokenize ARGS` with `input` on stdin.
  static CliResult run(const std::string& args, const std::string& input) {
    std::ofstream(*dir_ / "in", std::ios::binary) << input;
    const std::string command = std::string(PHX_BINARY) + " tokenize " + args + " < '" + (*dir_ / "in").string() +
                                "' > '" + (*dir_ / "out").string() + "' 2> '" + (*dir_ / "err").string() + "'";
    const int status = std::system(command.c_str());
    return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, slurp(*dir_ / "out"), slurp(*dir_ / "err")};
  }
  static std::string model() { return "--model '" + (*dir_ / "model").string() + "'"; }
  static fs::path* dir_;
};
fs::path* TokenizeCli::dir_ = nullptr;

TEST_F(TokenizeCli, EncodesStdin) {
  CliResult r = run(model(), "hello world");
  EXPECT_EQ(r.exitCode, 0) << r.err;
  EXPECT_EQ(r.out, "15339 1917\n");
  r = run(model() + " --json", "Hello");
  EXPECT_EQ(r.out, "[9906]\n");
  r = run(model() + " --special", "<|endoftext|>");
  EXPECT_EQ(r.out, "100257\n");
  r = run(model(), "<|endoftext|>");
  EXPECT_NE(r.out, "100257\n");
  EXPECT_EQ(r.exitCode, 0);
}

TEST_F(TokenizeCli, DecodesIdsInAnyForm) {
  for (const char* ids : {"15339 1917", "15339,1917\n", "[15339, 1917]"}) {
    const CliResult r = run(model() + " --decode", ids);
    EXPECT_EQ(r.exitCode, 0) << r.err;
    EXPECT_EQ(r.out, "hello world") << ids;
  }
  const CliResult r = run(model() + " --decode --json", "100264");
  EXPECT_EQ(r.out, "\"<|im_start|>\"\n");
}

TEST_F(TokenizeCli, ExitCodes) {
  CliResult r = run(model() + " --decode", "15339 100352");
  EXPECT_EQ(r.exitCode, 1);
  EXPECT_NE(r.err.find("100352"), std::string::npos) << r.err;
  r = run(model() + " --decode", "15339 hello");
  EXPECT_EQ(r.exitCode, 1);
  EXPECT_NE(r.err.find("'hello' is not a token id"), std::string::npos) << r.err;
  r = run("", "hi");
  EXPECT_EQ(r.exitCode, 2);
  EXPECT_NE(r.err.find("model"), std::string::npos) << r.err;
  r = run(model() + " --bogus", "hi");
  EXPECT_EQ(r.exitCode, 2);
  r = run("--model /nonexistent/phx", "hi");
  EXPECT_EQ(r.exitCode, 1);
  EXPECT_NE(r.err.find("/nonexistent/phx"), std::string::npos) << r.err;
  r = run(model() + " --help", "");
  EXPECT_EQ(r.exitCode, 0);
  EXPECT_NE(r.out.find("--decode"), std::string::npos);
}

}  // namespace
}  // namespace phx
