// The reference forward pass checked against itself on the generated tiny checkpoint: causality, prefixes,
// the activation report, and input validation. Its numbers are checked against numpy in reference_numpy_test.
#include "tests/reference/reference_model.h"

#include <cmath>
#include <vector>

#include <gtest/gtest.h>

#include "common/error.h"
#include "tests/common/test_files.h"

namespace phx::reference {
namespace {

const std::filesystem::path kTinyDir = ::phx::testing::testModelDir("tiny");

// Ids spread over the vocabulary, special tokens and both ends included.
const std::vector<int32_t> kPrompt = {100257, 9906, 1917, 0, 15339, 100351, 42, 24748};

class ReferenceModelTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { model_ = new ReferenceModel(kTinyDir); }
  static void TearDownTestSuite() { delete model_; }
  static ReferenceModel* model_;
};
ReferenceModel* ReferenceModelTest::model_ = nullptr;

float maxAbsDiff(const float* a, const float* b, int64_t n) {
  float worst = 0;
  for (int64_t i = 0; i < n; ++i) worst = std::max(worst, std::abs(a[i] - b[i]));
  return worst;
}

TEST_F(ReferenceModelTest, ReturnsFiniteLogitsOfTheRightShape) {
  const int64_t vocab = model_->config().vocabSize;
  const std::vector<float> logits = model_->forward(kPrompt);
  ASSERT_EQ(int64_t(logits.size()), int64_t(kPrompt.size()) * vocab);
  for (float value : logits) ASSERT_TRUE(std::isfinite(value));
  const std::vector<float> last = model_->forward(kPrompt, /*lastOnly=*/true);
  ASSERT_EQ(int64_t(last.size()), vocab);
}

// Changing tokens after position i must leave the logits at positions <= i unchanged. Each row is computed by
// the same loops in the same order whatever follows it, so they agree to fp32 rounding (1e-5 allows for none
// at all in practice); a leak through the causal mask moves them by O(0.1) on this model.
TEST_F(ReferenceModelTest, LaterTokensDoNotChangeEarlierLogits) {
  const int64_t vocab = model_->config().vocabSize;
  std::vector<int32_t> changed = kPrompt;
  const size_t keep = 4;
  for (size_t i = keep; i < changed.size(); ++i) changed[i] = int32_t((changed[i] + 31337) % vocab);
  const std::vector<float> a = model_->forward(kPrompt), b = model_->forward(changed);
  EXPECT_LE(maxAbsDiff(a.data(), b.data(), int64_t(keep) * vocab), 1e-5f);
  // The later rows do differ, so the comparison above is not vacuous.
  EXPECT_GT(maxAbsDiff(a.data() + keep * vocab, b.data() + keep * vocab, int64_t(a.size() - keep * vocab)), 0.1f);
}

// forward(tokens[:k]) with lastOnly equals row k-1 of forward(tokens), for every k.
TEST_F(ReferenceModelTest, PrefixLastRowMatchesFullSequenceRow) {
  const int64_t vocab = model_->config().vocabSize;
  const std::vector<float> full = model_->forward(kPrompt);
  for (size_t k = 1; k <= kPrompt.size(); ++k) {
    const std::vector<float> last = model_->forward(std::span(kPrompt).first(k), /*lastOnly=*/true);
    EXPECT_LE(maxAbsDiff(last.data(), full.data() + (k - 1) * vocab, vocab), 1e-5f) << "prefix length " << k;
  }
}

TEST_F(ReferenceModelTest, ReportsTheResidualRmsOfEveryLayer) {
  std::vector<float> layerRms;
  ActivationNorms norms;
  const std::vector<float> a = model_->forward(kPrompt, true, &layerRms);
  const std::vector<float> b = model_->forwardWithNorms(kPrompt, true, &norms);
  ASSERT_EQ(int64_t(layerRms.size()), model_->config().numLayers);
  ASSERT_EQ(norms.afterLayer.size(), layerRms.size());
  ASSERT_EQ(norms.attentionOut.size(), layerRms.size());
  ASSERT_EQ(norms.mlpOut.size(), layerRms.size());
  EXPECT_EQ(a, b);
  for (size_t l = 0; l < layerRms.size(); ++l) {
    EXPECT_FLOAT_EQ(layerRms[l], float(norms.afterLayer[l]));
    // The generator's scaling keeps the stream near RMS 1 (docs/checkpoints.md); anything outside [0.3, 3]
    // would mean a broken forward pass or broken weights.
    EXPECT_GT(layerRms[l], 0.3f);
    EXPECT_LT(layerRms[l], 3.0f);
  }
  // Embedding rows have std 1; the final norm output has RMS ~ RMS(norm weight) ~ 1.
  EXPECT_NEAR(norms.embedding, 1.0, 0.35);
  EXPECT_NEAR(norms.finalNorm, 1.0, 0.1);
}

TEST_F(ReferenceModelTest, RefusesTokensOutsideTheVocabulary) {
  const std::vector<int32_t> tooBig = {1, int32_t(model_->config().vocabSize)};
  const std::vector<int32_t> negative = {-1};
  EXPECT_THROW(model_->forward(tooBig), Error);
  EXPECT_THROW(model_->forward(negative), Error);
  EXPECT_THROW(model_->forward(std::span<const int32_t>()), Error);
}

}  // namespace
}  // namespace phx::reference
