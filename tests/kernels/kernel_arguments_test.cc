// Malformed calls are refused with std::invalid_argument naming the kernel and the values, before any work (and
// without touching memory out of bounds: this test also runs under AddressSanitizer).
#include <gtest/gtest.h>

#include <cmath>
#include <stdexcept>
#include <string>

#include "kernels/embedding.h"
#include "kernels/logits.h"
#include "kernels/matmul.h"
#include "kernels/paged_attention.h"
#include "kernels/rms_norm.h"
#include "kernels/rope.h"
#include "kernels/swiglu.h"
#include "kernels/threading.h"
#include "tests/kernels/test_util.h"

namespace phx {
namespace {

// Runs `call`, expecting std::invalid_argument whose message contains `fragment`.
template <typename Call>
void expectRejected(Call call, const std::string& fragment) {
  try {
    call();
    ADD_FAILURE() << "no exception; expected one mentioning '" << fragment << "'";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
  }
}

TEST(KernelArguments, MatmulAndPacking) {
  std::vector<uint16_t> bits = testing::randomBf16(64 * 32, 1);
  PackedWeight w = PackedWeight::packBf16(bits.data(), 64, 32);
  std::vector<float> x(2 * 32), y(2 * 64);
  expectRejected([&] { matmul(x.data(), 31, 2, w, y.data(), 64); }, "32 input features");
  expectRejected([&] { matmul(x.data(), 32, 2, w, y.data(), 63); }, "64 output features");
  expectRejected([&] { matmul(x.data(), 32, -1, w, y.data(), 64); }, "negative row count");
  expectRejected([&] { matmul(x.data(), 1, PackedWeight(), y.data()); }, "empty");
  expectRejected([&] { PackedWeight::packBf16(bits.data(), 0, 32); }, "[0, 32]");
  expectRejected([&] { PackedWeight::packBf16(bits.data(), 64, 32, 16); }, "row stride 16");
  expectRejected([&] { PackedWeight::packBf16Rows(2, 32, [&](int64_t r) { return r == 0 ? bits.data() : nullptr; }); },
                 "row 1");
  expectRejected([&] { (void)w.at(64, 0); }, "(64, 0)");
  expectRejected([] { setKernelThreads(0); }, "thread count");
  matmul(x.data(), 0, w, y.data());  // zero rows: nothing to do, no error
}

TEST(KernelArguments, ElementwiseKernels) {
  std::vector<float> x(64, 1.0f), weight(16, 1.0f);
  expectRejected([&] { rmsNorm(x.data(), 2, 16, 8, weight.data(), 1e-5f, x.data()); }, "stride 8");
  expectRejected([&] { rmsNorm(x.data(), 2, 16, 16, weight.data(), -1.0f, x.data()); }, "negative eps");
  expectRejected([&] { swiglu(x.data(), 2, 16, 16, x.data(), 16); }, "strides 16");
  expectRejected([] { RopeTable(7, 10000.0, 10); }, "even");
  RopeTable table(8, 10000.0, 10);
  std::vector<int64_t> positions = {3, 10};
  expectRejected([&] { applyRope(x.data(), 2, 16, 2, 8, positions.data(), table); }, "position 10");
  expectRejected([&] { applyRope(x.data(), 2, 8, 2, 8, positions.data(), table); }, "row stride 8");
  std::vector<uint16_t> embedding(16 * 4);
  std::vector<int32_t> ids = {1, 2};
  expectRejected([&] { embeddingLookup(embedding.data(), 8, 0, 4, 16, ids.data(), 2, x.data()); }, "table stride 8");
  expectRejected([&] { embeddingLookup(embedding.data(), 5, 4, 16, ids.data(), 2, x.data()); }, "rows [5, 4)");
  expectRejected([&] { logSumExp(x.data(), 0); }, "at least one");
  expectRejected([&] { topK(x.data(), 4, -1); }, "k -1");
  expectRejected([&] { mergeSliceTopK({}, 3); }, "at least one slice");
}

TEST(KernelArguments, Attention) {
  PagedKvCache cache(KvBlockShape{2, 8, 4, KvType::kBf16}, 1, 3);
  PagedKv layer = cache.layer(0);
  std::vector<float> q(4 * 32), kv(4 * 16), out(4 * 32);
  std::vector<int32_t> kvHeadOf = {0, 0, 1, 1};
  AttentionHeads heads{4, 8, kvHeadOf.data(), 0.35f};
  std::vector<int32_t> table = {0, 2};
  AttentionSequence tooLong{0, 4, 6, table.data(), 2};  // 10 tokens need 3 blocks of 4
  expectRejected(
      [&] { pagedAttention(q.data(), 32, kv.data(), kv.data(), 16, &tooLong, 1, heads, layer, out.data(), 32); },
      "holds 10 tokens");
  std::vector<int32_t> badTable = {0, 3};
  AttentionSequence badBlock{0, 4, 2, badTable.data(), 2};
  expectRejected(
      [&] { pagedAttention(q.data(), 32, kv.data(), kv.data(), 16, &badBlock, 1, heads, layer, out.data(), 32); },
      "block 1 is 3");
  AttentionSequence fine{0, 4, 0, table.data(), 2};
  std::vector<int32_t> badMap = {0, 0, 1, 2};
  AttentionHeads badHeads{4, 8, badMap.data(), 0.35f};
  expectRejected(
      [&] { pagedAttention(q.data(), 32, kv.data(), kv.data(), 16, &fine, 1, badHeads, layer, out.data(), 32); },
      "query head 3 maps to KV head 2");
  expectRejected([&] { pagedAttention(q.data(), 32, kv.data(), kv.data(), 8, &fine, 1, heads, layer, out.data(), 32); },
                 "row stride 8");
  expectRejected([&] { cache.layer(1); }, "layer 1");
  expectRejected([] { PagedKvCache(KvBlockShape{0, 8, 4, KvType::kF32}, 1, 3); }, "kv heads 0");
}

}  // namespace
}  // namespace phx
