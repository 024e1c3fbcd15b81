// One .safetensors file: header parsing against files the tests' writer assembled byte by byte, the limits of the
// format (empty tensors, gaps, padding), header-level errors, and MappedFile's reads and mappings.
#include "model/safetensors.h"

#include <gtest/gtest.h>

#include "common/error.h"
#include "tests/model/test_checkpoint.h"

namespace phx::testing {
namespace {

using nlohmann::json;

TEST(Safetensors, ParsesAWrittenShard) {
  ScratchDir temp;
  const auto file = temp.path() / "a.safetensors";
  const std::vector<TestTensor> tensors = {
      {"w", "BF16", {3, 5}}, {"b", "F32", {7}}, {"scalar", "F64", {}}, {"empty", "F16", {0, 4}}, {"q", "I8", {2, 2}}};
  const auto written = writeShard(file, tensors, {{"format", "pt"}});
  const SafetensorsHeader header = readSafetensorsHeader(MappedFile::open(file));
  EXPECT_EQ(header.metadata, (std::map<std::string, std::string>{{"format", "pt"}}));
  EXPECT_EQ(header.headerLength % 8, 0u);  // the writer pads like the safetensors library
  ASSERT_EQ(header.tensors.size(), tensors.size());
  uint64_t previous = 0;
  for (const TensorInfo& info : header.tensors) {
    const WrittenTensor& expected = written.at(info.name);
    EXPECT_EQ(info.file, file);
    EXPECT_EQ(info.dataOffset, expected.dataOffset) << info.name;
    EXPECT_EQ(info.byteSize, expected.byteSize) << info.name;
    EXPECT_EQ(info.shape, expected.tensor.shape) << info.name;
    EXPECT_EQ(dtypeName(info.dtype), expected.tensor.dtype) << info.name;
    EXPECT_GE(info.dataOffset, previous) << "tensors come in data order";
    previous = info.dataOffset;
  }
  EXPECT_EQ(written.at("scalar").byteSize, 8u);
  EXPECT_EQ(written.at("empty").byteSize, 0u);
}

// Offsets may leave gaps and tensors may be listed in any order; a header may be empty.
TEST(Safetensors, AcceptsGapsAndAnyOrder) {
  const std::string text =
      R"({"late": {"dtype": "U8", "shape": [4], "data_offsets": [12, 16]},)"
      R"( "early": {"dtype": "U8", "shape": [2], "data_offsets": [0, 2]}})";
  const SafetensorsHeader header = parseSafetensorsHeader(text, text.size(), 8 + text.size() + 16, "x.safetensors");
  ASSERT_EQ(header.tensors.size(), 2u);
  EXPECT_EQ(header.tensors[0].name, "early");
  EXPECT_EQ(header.tensors[1].dataOffset, 8 + text.size() + 12);
  EXPECT_TRUE(header.metadata.empty());
  EXPECT_TRUE(parseSafetensorsHeader("{}", 2, 10, "x.safetensors").tensors.empty());
}

void expectRefused(const std::string& header, uint64_t dataBytes, const std::string& says) {
  try {
    parseSafetensorsHeader(header, header.size(), 8 + header.size() + dataBytes, "shard.safetensors");
    FAIL() << "accepted: " << header;
  } catch (const Error& error) {
    EXPECT_EQ(error.kind(), ErrorKind::kInvalidCheckpoint) << error.what();
    EXPECT_NE(std::string(error.what()).find("shard.safetensors: "), std::string::npos) << error.what();
    EXPECT_NE(std::string(error.what()).find(says), std::string::npos) << error.what();
  }
}

TEST(Safetensors, RefusesMalformedEntries) {
  auto entry = [](const std::string& fields) { return R"({"t": {)" + fields + "}}"; };
  expectRefused(R"({"t": )", 0, "not valid JSON");
  expectRefused("\"t\"", 0, "must be a JSON object");
  expectRefused(R"({"t": 5})", 0, "tensor 't': expected an object");
  expectRefused(entry(R"("shape": [2], "data_offsets": [0, 4])"), 4, "'dtype' must be a string");
  expectRefused(entry(R"("dtype": "Q4", "shape": [2], "data_offsets": [0, 4])"), 4, "unknown dtype \"Q4\"");
  expectRefused(entry(R"("dtype": "F16", "data_offsets": [0, 4])"), 4, "'shape' must be an array");
  expectRefused(entry(R"("dtype": "F16", "shape": ["2"], "data_offsets": [0, 4])"), 4, "non-negative integers");
  expectRefused(entry(R"("dtype": "F16", "shape": [1e1], "data_offsets": [0, 20])"), 20, "non-negative integers");
  expectRefused(entry(R"("dtype": "F16", "shape": [9223372036854775808], "data_offsets": [0, 4])"), 4,
                "non-negative integers");
  expectRefused(entry(R"("dtype": "F16", "shape": [2], "data_offsets": [0])"), 4, "'data_offsets' must be");
  expectRefused(entry(R"("dtype": "F16", "shape": [2], "data_offsets": [-4, 0])"), 4, "'data_offsets' must be");
  expectRefused(entry(R"("dtype": "F16", "shape": [2], "data_offsets": [0, 6])"), 8, "span 6 bytes");
  expectRefused(entry(R"("dtype": "F16", "shape": [2], "data_offsets": [4, 8])"), 6, "lie outside");
  expectRefused(entry(R"("dtype": "F16", "shape": [4294967296, 4294967296], "data_offsets": [0, 8])"), 8,
                "overflows");
  expectRefused(R"({"a": {"dtype": "U8", "shape": [4], "data_offsets": [0, 4]},)"
                R"( "b": {"dtype": "U8", "shape": [2], "data_offsets": [3, 5]}})",
                8, "overlaps");
  expectRefused(R"({"__metadata__": ["pt"]})", 0, "'__metadata__' must be an object");
}

TEST(Safetensors, RefusesBadLengthFields) {
  ScratchDir temp;
  const auto file = temp.path() / "s.safetensors";
  auto expectRefusedFile = [&](const std::string& says) {
    try {
      readSafetensorsHeader(MappedFile::open(file));
      FAIL() << "accepted";
    } catch (const Error& error) {
      EXPECT_EQ(error.kind(), ErrorKind::kInvalidCheckpoint) << error.what();
      EXPECT_NE(std::string(error.what()).find(file.string()), std::string::npos) << error.what();
      EXPECT_NE(std::string(error.what()).find(says), std::string::npos) << error.what();
    }
  };
  writeTextFile(file, "");
  expectRefusedFile("0 bytes, shorter than the 8-byte header length field");
  writeRawShard(file, "{}", {});
  setHeaderLengthField(file, 3);  // 10-byte file: 2 header bytes, not 3
  expectRefusedFile("header length 3 runs beyond the file (10 bytes)");
  setHeaderLengthField(file, kMaxSafetensorsHeaderBytes + 1);
  expectRefusedFile("exceeds");
  setHeaderLengthField(file, 2);
  EXPECT_TRUE(readSafetensorsHeader(MappedFile::open(file)).tensors.empty());
}

TEST(MappedFile, ReadsAndMapsRanges) {
  ScratchDir temp;
  const auto file = temp.path() / "bytes";
  std::string bytes;
  for (int i = 0; i < 10000; ++i) bytes.push_back(char(i * 7));
  writeTextFile(file, bytes);
  const MappedFile mapped = MappedFile::open(file);
  EXPECT_EQ(mapped.size(), 10000u);
  std::vector<std::byte> out(100);
  mapped.read(4990, out);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(out[i], std::byte(char((4990 + i) * 7)));
  const MappedRange range = mapped.mapRange(4097, 5000);  // an offset that is not page-aligned
  ASSERT_EQ(range.bytes().size(), 5000u);
  for (int i = 0; i < 5000; i += 499) EXPECT_EQ(range.bytes()[i], std::byte(char((4097 + i) * 7)));
  EXPECT_TRUE(mapped.mapRange(10000, 0).bytes().empty());
}

TEST(MappedFile, RefusesWhatItCannotRead) {
  ScratchDir temp;
  writeTextFile(temp.path() / "short", "12345");
  const MappedFile mapped = MappedFile::open(temp.path() / "short");
  std::vector<std::byte> out(4);
  EXPECT_THROW(mapped.read(2, out), Error);
  EXPECT_THROW(mapped.read(UINT64_MAX - 1, out), Error);
  EXPECT_THROW(mapped.mapRange(4, 2), Error);
  for (const auto& name : {"absent", ""}) {
    try {
      MappedFile::open(temp.path() / name);  // "" is the directory itself
      FAIL() << "opened " << name;
    } catch (const Error& error) {
      EXPECT_EQ(error.kind(), ErrorKind::kInvalidCheckpoint);
      EXPECT_NE(std::string(error.what()).find(temp.path().string()), std::string::npos) << error.what();
    }
  }
}

}  // namespace
}  // namespace phx::testing
