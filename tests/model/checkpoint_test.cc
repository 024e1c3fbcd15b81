// Checkpoint on valid directories written by the tests' own writer: what open() reports is what the writer
// recorded, and every copy returns exactly the bytes the writer put there (computed from payloadByte, not read
// back through the loader).
#include "model/checkpoint.h"

#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <thread>

#include <gtest/gtest.h>

#include "common/error.h"
#include "tests/model/test_checkpoint.h"

namespace phx::testing {
namespace {

namespace fs = std::filesystem;

// The bytes of the given rows of a row-major tensor whose rows are `rowBytes` long, as the writer wrote them.
std::vector<std::byte> expectedRows(const std::string& name, uint64_t rowBytes, const std::vector<IndexRange>& rows) {
  std::vector<std::byte> bytes;
  for (const IndexRange& s : rows) {
    for (uint64_t i = uint64_t(s.begin) * rowBytes; i < uint64_t(s.begin + s.count) * rowBytes; ++i) {
      bytes.push_back(payloadByte(name, i));
    }
  }
  return bytes;
}

// The bytes of the given columns of a [rows, cols] BF16 tensor: row by row, segments in order.
std::vector<std::byte> expectedColumns(const std::string& name, int64_t rows, int64_t cols,
                                       const std::vector<IndexRange>& columns) {
  std::vector<std::byte> bytes;
  for (int64_t r = 0; r < rows; ++r) {
    for (const IndexRange& s : columns) {
      for (int64_t c = s.begin; c < s.begin + s.count; ++c) {
        for (int b = 0; b < 2; ++b) bytes.push_back(payloadByte(name, uint64_t((r * cols + c) * 2 + b)));
      }
    }
  }
  return bytes;
}

std::vector<std::byte> copyRows(const Checkpoint& checkpoint, const std::string& name, std::vector<IndexRange> rows,
                                uint64_t rowBytes) {
  uint64_t total = 0;
  for (const IndexRange& s : rows) total += uint64_t(s.count) * rowBytes;
  std::vector<std::byte> out(total);
  checkpoint.copyRows(name, rows, out);
  return out;
}

TEST(Checkpoint, ReportsWhatTheWriterWrote) {
  ScratchDir temp;
  const TestCheckpoint written = writeTestCheckpoint(temp.path());
  const auto checkpoint = Checkpoint::open(temp.path());
  EXPECT_EQ(checkpoint->directory(), temp.path());
  EXPECT_EQ(checkpoint->config().hiddenSize, 64);
  EXPECT_EQ(checkpoint->config().numKvHeads, 2);
  EXPECT_EQ(checkpoint->config().vocabSize, 256);
  const std::vector<TestTensor> model = testModelTensors();
  ASSERT_EQ(checkpoint->tensors().size(), model.size());
  for (size_t i = 0; i < model.size(); ++i) {
    const TensorInfo& info = checkpoint->tensors()[i];
    const WrittenTensor& expected = written.tensors.at(model[i].name);
    EXPECT_EQ(info.name, model[i].name);  // module order, not the index's name order
    EXPECT_EQ(info.dtype, DType::kBF16);
    EXPECT_EQ(info.shape, model[i].shape);
    EXPECT_EQ(info.file, temp.path() / expected.shard);
    EXPECT_EQ(info.dataOffset, expected.dataOffset) << info.name;
    EXPECT_EQ(info.byteSize, expected.byteSize) << info.name;
    EXPECT_EQ(&checkpoint->info(info.name), &info);
  }
  ASSERT_EQ(checkpoint->shards().size(), 3u);
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(checkpoint->shards()[i].file, temp.path() / written.shardNames[i]);
    EXPECT_EQ(checkpoint->shards()[i].fileSize, fs::file_size(temp.path() / written.shardNames[i]));
    EXPECT_EQ(checkpoint->shards()[i].metadata.at("format"), "pt");
  }
  EXPECT_TRUE(checkpoint->warnings().empty());
  EXPECT_EQ(checkpoint->bytesRead(), 0u);
}

TEST(Checkpoint, CopyTensorReturnsTheWrittenBytes) {
  ScratchDir temp;
  writeTestCheckpoint(temp.path());
  const auto checkpoint = Checkpoint::open(temp.path());
  uint64_t total = 0;
  for (const TestTensor& tensor : testModelTensors()) {
    std::vector<std::byte> out(tensor.byteSize());
    checkpoint->copyTensor(tensor.name, out);
    EXPECT_EQ(out, expectedRows(tensor.name, tensor.byteSize(), {{0, 1}})) << tensor.name;
    total += tensor.byteSize();
  }
  EXPECT_EQ(checkpoint->bytesRead(), total);
}

// microsoft/phi-4's layout: six shards named model-0000i-of-00006, headers with {"format": "pt"}, layers
// straddling shards, tokenizer files beside them. Also without metadata and as one model.safetensors.
TEST(Checkpoint, LoadsHuggingFaceLayouts) {
  const TestModelShape shape{.hidden = 128, .heads = 8, .kvHeads = 2, .intermediate = 160, .layers = 4, .vocab = 300};
  for (const WriteOptions& options : {WriteOptions{.shards = 6}, WriteOptions{.shards = 2, .metadata = nullptr},
                                      WriteOptions{.shards = 0, .extraFiles = false}}) {
    ScratchDir temp;
    const TestCheckpoint written = writeTestCheckpoint(temp.path(), shape, options);
    const auto checkpoint = Checkpoint::open(temp.path());
    EXPECT_EQ(checkpoint->shards().size(), written.shardNames.size());
    EXPECT_EQ(checkpoint->tensors().size(), 1 + 6 * 4 + 2u);
    EXPECT_EQ(checkpoint->config().numLayers, 4);
    const TensorInfo& down = checkpoint->info("model.layers.3.mlp.down_proj.weight");
    EXPECT_EQ(down.shape, (std::vector<int64_t>{128, 160}));
    EXPECT_EQ(down.file, temp.path() / written.tensors.at(down.name).shard);
    std::vector<std::byte> out(down.byteSize);
    checkpoint->copyTensor(down.name, out);
    EXPECT_EQ(out, expectedRows(down.name, down.byteSize, {{0, 1}}));
  }
  ScratchDir temp;
  writeTestCheckpoint(temp.path(), shape, {.shards = 6});
  EXPECT_EQ(Checkpoint::open(temp.path())->shards()[5].file.filename(), "model-00006-of-00006.safetensors");
}

// Phi-4's exact shapes at full size (29.3 GB of BF16 in six shards), the payload left as a hole in sparse files.
TEST(Checkpoint, OpensAFullSizePhi4Layout) {
  ScratchDir temp;
  const TestModelShape phi4{.hidden = 5120, .heads = 40, .kvHeads = 10, .intermediate = 17920, .layers = 40,
                            .vocab = 100352};
  writeTestCheckpoint(temp.path(), phi4, {.shards = 6, .sparsePayload = true});
  const auto checkpoint = Checkpoint::open(temp.path());
  ASSERT_EQ(checkpoint->tensors().size(), 243u);
  uint64_t parameters = 0, bytes = 0;
  for (const TensorInfo& tensor : checkpoint->tensors()) {
    parameters += uint64_t(tensor.elementCount());
    bytes += tensor.byteSize;
  }
  EXPECT_EQ(parameters, 14659507200u);  // the figures issue 2 states for microsoft/phi-4
  EXPECT_EQ(bytes, 29319014400u);
  EXPECT_EQ(checkpoint->shards().size(), 6u);
  EXPECT_EQ(checkpoint->info("model.layers.39.self_attn.qkv_proj.weight").shape, (std::vector<int64_t>{7680, 5120}));
  // The last rows of lm_head sit at the very end of a shard: a read there works (the hole reads as zeros).
  std::vector<std::byte> out(2 * 5120 * 2, std::byte{1});
  checkpoint->copyRows("lm_head.weight", std::vector<IndexRange>{{100350, 2}}, out);
  EXPECT_EQ(std::count(out.begin(), out.end(), std::byte{0}), std::ptrdiff_t(out.size()));
}

TEST(Checkpoint, CopyRowsConcatenatesSegments) {
  ScratchDir temp;
  writeTestCheckpoint(temp.path());
  const auto checkpoint = Checkpoint::open(temp.path());
  // qkv_proj: [Q 4 heads x 16 | K 2 x 16 | V 2 x 16, 64]. Rank 1 of 2 holds Q heads 2-3, K head 1, V head 1.
  const std::string qkv = "model.layers.1.self_attn.qkv_proj.weight";
  const std::vector<IndexRange> rank1 = {{32, 32}, {64 + 16, 16}, {96 + 16, 16}};
  EXPECT_EQ(copyRows(*checkpoint, qkv, rank1, 128), expectedRows(qkv, 128, rank1));
  // gate_up_proj: [gate 96 | up 96, 64]. Columns 48-95 of the MLP: that range of the gate half and of the up half.
  const std::string gateUp = "model.layers.0.mlp.gate_up_proj.weight";
  const std::vector<IndexRange> half = {{48, 48}, {96 + 48, 48}};
  EXPECT_EQ(copyRows(*checkpoint, gateUp, half, 128), expectedRows(gateUp, 128, half));
  // A 1-D tensor's rows are its elements; empty segments add nothing.
  const std::vector<IndexRange> norm = {{60, 4}, {0, 0}, {0, 2}};
  EXPECT_EQ(copyRows(*checkpoint, "model.norm.weight", norm, 2), expectedRows("model.norm.weight", 2, norm));
  EXPECT_EQ(checkpoint->bytesRead(), 64 * 128 + 96 * 128 + 6 * 2u);
}

TEST(Checkpoint, CopyColumnsSlicesEveryRow) {
  ScratchDir temp;
  writeTestCheckpoint(temp.path());
  const auto checkpoint = Checkpoint::open(temp.path());
  const std::string down = "model.layers.0.mlp.down_proj.weight";  // [64, 96]
  const std::string oProj = "model.layers.1.self_attn.o_proj.weight";  // [64, 64]
  const std::vector<std::pair<std::string, std::vector<IndexRange>>> cases = {
      {down, {{48, 48}}},                  // rank 1 of 2
      {down, {{0, 96}}},                   // everything
      {down, {{0, 10}, {10, 86}}},         // adjacent segments that cover every column
      {oProj, {{16, 16}, {48, 8}, {0, 4}}},  // out of order, uneven
      {oProj, {{5, 0}}},                   // nothing
  };
  uint64_t total = 0;
  for (const auto& [name, columns] : cases) {
    const int64_t cols = checkpoint->info(name).shape[1];
    const std::vector<std::byte> expected = expectedColumns(name, 64, cols, columns);
    std::vector<std::byte> out(expected.size());
    checkpoint->copyColumns(name, columns, out);
    EXPECT_EQ(out, expected) << name << " with " << columns.size() << " segments";
    total += expected.size();
  }
  EXPECT_EQ(checkpoint->bytesRead(), total);
}

TEST(Checkpoint, CopiesFromManyThreadsAtOnce) {
  ScratchDir temp;
  writeTestCheckpoint(temp.path(), {.hidden = 128, .heads = 8, .kvHeads = 4, .intermediate = 256, .layers = 3});
  const auto checkpoint = Checkpoint::open(temp.path());
  constexpr int kThreads = 4;
  std::vector<int> mismatches(kThreads, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      // Each thread reads its quarter of every matrix's rows, repeatedly.
      for (int rep = 0; rep < 20; ++rep) {
        for (const TensorInfo& info : checkpoint->tensors()) {
          const int64_t rows = info.shape[0] / kThreads;
          const uint64_t rowBytes = info.byteSize / uint64_t(info.shape[0]);
          const std::vector<IndexRange> mine = {{t * rows, rows}};
          mismatches[t] += copyRows(*checkpoint, info.name, mine, rowBytes) != expectedRows(info.name, rowBytes, mine);
        }
      }
    });
  }
  for (auto& thread : threads) thread.join();
  uint64_t expectedTotal = 0;
  for (const TensorInfo& info : checkpoint->tensors()) {
    expectedTotal += uint64_t(info.shape[0] / kThreads * kThreads) * (info.byteSize / uint64_t(info.shape[0]));
  }
  for (int t = 0; t < kThreads; ++t) EXPECT_EQ(mismatches[t], 0) << "thread " << t;
  EXPECT_EQ(checkpoint->bytesRead(), 20 * expectedTotal);
}

int64_t residentBytes() {
  std::ifstream statm("/proc/self/statm");
  uint64_t size = 0, resident = 0;
  statm >> size >> resident;
  return int64_t(resident) * sysconf(_SC_PAGESIZE);
}

// The engine packs weights as it reads them: a copy must not leave the file's pages in the process's RSS.
TEST(Checkpoint, CopiesLeaveNoFilePagesResident) {
  ScratchDir temp;
  // embed_tokens and lm_head are 8192 x 1024 BF16 = 16 MiB each.
  writeTestCheckpoint(temp.path(), {.hidden = 1024, .heads = 8, .kvHeads = 2, .intermediate = 256, .layers = 1,
                                    .vocab = 8192}, {.shards = 2});
  const auto checkpoint = Checkpoint::open(temp.path());
  const TensorInfo& embed = checkpoint->info("model.embed_tokens.weight");
  // Both buffers are touched first, so they are resident before measuring.
  std::vector<std::byte> out(embed.byteSize, std::byte{1});
  std::vector<std::byte> columns(8192 * 512 * 2, std::byte{1});
  const int64_t before = residentBytes();
  checkpoint->copyTensor(embed.name, out);
  checkpoint->copyRows("lm_head.weight", std::vector<IndexRange>{{4096, 4096}, {0, 4096}}, out);
  const int64_t afterRows = residentBytes();
  checkpoint->copyColumns("lm_head.weight", std::vector<IndexRange>{{256, 512}}, columns);
  const int64_t afterColumns = residentBytes();
  EXPECT_LT(afterRows - before, 2 << 20) << "whole-tensor and row copies grew RSS";
  EXPECT_LT(afterColumns - afterRows, 2 << 20) << "a column copy grew RSS";
  EXPECT_EQ(out[0], payloadByte("lm_head.weight", 4096 * 1024 * 2));
  EXPECT_EQ(columns[0], payloadByte("lm_head.weight", 256 * 2));
}

TEST(Checkpoint, AcceptsFloatWeightsAndIgnoresRotaryBuffers) {
  ScratchDir temp;
  const TestCheckpoint written = writeTestCheckpoint(temp.path());
  const fs::path shard3 = temp.path() / written.shardNames[2];
  std::vector<TestTensor> tensors;
  for (const auto& [name, tensor] : written.tensors) {
    if (tensor.shard == written.shardNames[2]) tensors.push_back(tensor.tensor);
  }
  for (TestTensor& tensor : tensors) {
    if (tensor.name == "model.norm.weight") tensor.dtype = "F32";
    if (tensor.name == "lm_head.weight") tensor.dtype = "F16";
  }
  tensors.push_back({"model.layers.1.self_attn.rotary_emb.inv_freq", "F32", {8}});
  writeShard(shard3, tensors, {{"format", "pt"}});
  editJsonFile(temp.path() / "model.safetensors.index.json", [&](nlohmann::json& index) {
    index["weight_map"]["model.layers.1.self_attn.rotary_emb.inv_freq"] = written.shardNames[2];
  });
  const auto checkpoint = Checkpoint::open(temp.path());
  EXPECT_EQ(checkpoint->info("model.norm.weight").dtype, DType::kF32);
  EXPECT_EQ(checkpoint->info("model.norm.weight").byteSize, 64 * 4u);
  EXPECT_EQ(checkpoint->info("lm_head.weight").dtype, DType::kF16);
  EXPECT_FALSE(checkpoint->has("model.layers.1.self_attn.rotary_emb.inv_freq"));
  // The F32 norm now weighs 128 bytes more than the index's total_size says: said, not refused.
  ASSERT_EQ(checkpoint->warnings().size(), 2u);
  EXPECT_NE(checkpoint->warnings()[0].find("inv_freq"), std::string::npos) << checkpoint->warnings()[0];
  EXPECT_NE(checkpoint->warnings()[1].find("total_size"), std::string::npos) << checkpoint->warnings()[1];
}

void expectInvalidArgument(const std::function<void()>& call, const std::string& mentions) {
  try {
    call();
    FAIL() << "accepted; expected an error mentioning " << mentions;
  } catch (const Error& error) {
    EXPECT_EQ(error.kind(), ErrorKind::kInvalidArgument) << error.what();
    EXPECT_NE(std::string(error.what()).find(mentions), std::string::npos) << error.what();
  }
}

TEST(Checkpoint, BadSelectionsNameTheTensor) {
  ScratchDir temp;
  writeTestCheckpoint(temp.path());
  const auto checkpoint = Checkpoint::open(temp.path());
  const std::string qkv = "model.layers.0.self_attn.qkv_proj.weight";  // [128, 64]
  std::vector<std::byte> out(64 * 128 * 2);
  auto rows = [&](std::vector<IndexRange> segments, size_t bytes) {
    return [&checkpoint, &out, &qkv, segments, bytes] {
      checkpoint->copyRows(qkv, segments, std::span(out).first(bytes));
    };
  };
  expectInvalidArgument(rows({{120, 16}}, 16 * 128), qkv + "' of shape [128,64]: row segment [120, +16)");
  expectInvalidArgument(rows({{-1, 2}}, 2 * 128), "out of range");
  expectInvalidArgument(rows({{4, -2}}, 0), "out of range");
  expectInvalidArgument(rows({{0, 4}}, 3 * 128), "selection is 512 bytes");
  expectInvalidArgument(
      [&] { checkpoint->copyColumns(qkv, std::vector<IndexRange>{{60, 5}}, std::span(out).first(128 * 5 * 2)); },
      "column segment [60, +5)");
  expectInvalidArgument(
      [&] { checkpoint->copyColumns("model.norm.weight", std::vector<IndexRange>{{0, 1}}, std::span(out).first(2)); },
      "'model.norm.weight' of shape [64] is not 2-D");
  expectInvalidArgument([&] { checkpoint->copyTensor(qkv, std::span(out).first(10)); }, "holds 10 bytes");
  expectInvalidArgument([&] { checkpoint->info("model.layers.9.mlp.down_proj.weight"); },
                        temp.path().string() + ": the checkpoint has no tensor 'model.layers.9.mlp.down_proj.weight'");
  EXPECT_EQ(checkpoint->bytesRead(), 0u);
}

}  // namespace
}  // namespace phx::testing
