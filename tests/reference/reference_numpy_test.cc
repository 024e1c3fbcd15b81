// The C++ reference against a second, independently written implementation: tests/reference/numpy_phi3.py, a
// vectorised numpy forward pass in float64 (HF's repeat_kv, cat(freqs, freqs) and masked-matrix attention rather
// than the C++ per-head loops), on the generated tiny checkpoint.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "tests/reference/reference_model.h"

#include "tests/common/test_files.h"

namespace phx::reference {
namespace {

const std::filesystem::path kTinyDir = ::phx::testing::testModelDir("tiny");
const std::string kPython = "/usr/bin/python3";  // Debian's, where scripts/setup.sh installs python3-numpy
const std::string kScript = std::string(PHX_SOURCE_DIR) + "/tests/reference/numpy_phi3.py";

std::vector<double> readDoubles(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<double> values(bytes.size() / sizeof(double));
  std::memcpy(values.data(), bytes.data(), values.size() * sizeof(double));
  return values;
}

TEST(ReferenceNumpyTest, LogitsAndNormsMatchAnIndependentNumpyForward) {
  ASSERT_EQ(std::system((kPython + " -c 'import numpy' 2>/dev/null").c_str()), 0)
      << kPython << " cannot import numpy: run scripts/setup.sh (it installs python3-numpy)";
  const std::vector<int32_t> tokens = {100257, 9906, 1917, 0, 15339, 100351, 42, 24748, 7, 100265};
  std::string ids;
  for (int32_t t : tokens) {
    if (!ids.empty()) ids += ',';
    ids += std::to_string(t);
  }
  const std::filesystem::path dir = std::filesystem::path(::testing::TempDir()) / "reference_numpy_test";
  std::filesystem::create_directories(dir);
  const std::string command = kPython + " " + kScript + " --model " + kTinyDir.string() + " --tokens " + ids +
                              " --logits-out " + (dir / "logits.f64").string() + " --norms-out " +
                              (dir / "norms.f64").string();
  ASSERT_EQ(std::system(command.c_str()), 0) << command;
  const std::vector<double> expected = readDoubles(dir / "logits.f64");
  const std::vector<double> expectedNorms = readDoubles(dir / "norms.f64");

  const ReferenceModel model(kTinyDir);
  std::vector<float> layerRms;
  const std::vector<float> logits = model.forward(tokens, false, &layerRms);
  ASSERT_EQ(logits.size(), expected.size());
  ASSERT_EQ(layerRms.size(), expectedNorms.size());

  // Tolerance: the C++ side rounds every activation to fp32 (relative 6e-8) and sums matmuls of <= 192 terms in
  // fp32; through 2 layers that is ~1e-6 relative, so on logits of magnitude <= ~15 a few 1e-6 absolute. 1e-4
  // leaves a wide margin and still catches any convention error (rope pairing, head grouping, gate/up order,
  // a missing norm weight), each of which moves logits by O(0.1-1).
  double worst = 0, largest = 0;
  for (size_t i = 0; i < logits.size(); ++i) {
    worst = std::max(worst, std::abs(double(logits[i]) - expected[i]));
    largest = std::max(largest, std::abs(expected[i]));
  }
  std::printf("max |logit| %.4f, max abs difference %.3g\n", largest, worst);
  EXPECT_LE(worst, 1e-4);
  EXPECT_GT(largest, 1.0);  // the logits are not degenerate
  for (size_t l = 0; l < layerRms.size(); ++l) EXPECT_NEAR(layerRms[l], expectedNorms[l], 1e-5) << "layer " << l;
}

}  // namespace
}  // namespace phx::reference
