// The reference's own safetensors reader: reads what it should, and refuses broken files with a phx::Error that
// names the file or tensor (also under AddressSanitizer: no read outside the mapping).
#include "tests/reference/safetensors_reader.h"

#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "common/error.h"
#include "model/bf16.h"
#include "tests/reference/reference_model.h"

namespace phx::reference {
namespace {

using nlohmann::json;

class ReferenceReaderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::path(::testing::TempDir()) /
           ("reference_reader_" + std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()));
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  // Writes the 8-byte length, the header text and the data bytes as given, valid or not.
  void writeRaw(const std::string& file, uint64_t headerLength, const std::string& header, size_t dataBytes) {
    std::ofstream out(dir_ / file, std::ios::binary);
    out.write(reinterpret_cast<const char*>(&headerLength), 8);
    out << header << std::string(dataBytes, '\0');
  }
  void writeShard(const std::string& file, const json& header, size_t dataBytes) {
    writeRaw(file, header.dump().size(), header.dump(), dataBytes);
  }
  // Expects construction to throw a phx::Error whose message contains `fragment`.
  void expectRefused(const std::string& fragment) {
    try {
      SafetensorsReader reader(dir_);
      ADD_FAILURE() << "no error; expected one mentioning '" << fragment << "'";
    } catch (const Error& error) {
      EXPECT_NE(std::string(error.what()).find(fragment), std::string::npos) << error.what();
    }
  }

  std::filesystem::path dir_;
};

TEST_F(ReferenceReaderTest, ReadsBf16AndF32TensorsAcrossShards) {
  const std::vector<uint16_t> a = {floatToBf16(1.5f), floatToBf16(-2.0f), floatToBf16(0.25f), floatToBf16(3.0f)};
  const std::vector<float> b = {0.1f, -7.0f};
  const json headerA = {{"__metadata__", {{"format", "pt"}}},
                        {"a", {{"dtype", "BF16"}, {"shape", {2, 2}}, {"data_offsets", {0, 8}}}}};
  const json headerB = {{"b", {{"dtype", "F32"}, {"shape", {2}}, {"data_offsets", {0, 8}}}}};
  for (const auto& [file, header, bytes] : {std::tuple{"one.safetensors", headerA, (const void*)a.data()},
                                            std::tuple{"two.safetensors", headerB, (const void*)b.data()}}) {
    std::ofstream out(dir_ / file, std::ios::binary);
    const std::string text = header.dump();
    const uint64_t length = text.size();
    out.write(reinterpret_cast<const char*>(&length), 8);
    out << text;
    out.write(static_cast<const char*>(bytes), 8);
  }
  std::ofstream(dir_ / "model.safetensors.index.json")
      << json{{"weight_map", {{"a", "one.safetensors"}, {"b", "two.safetensors"}}}}.dump();
  SafetensorsReader reader(dir_);
  EXPECT_EQ(reader.tensorCount(), 2u);
  EXPECT_EQ(reader.tensor("a", {2, 2}).toFloat(), (std::vector<float>{1.5f, -2.0f, 0.25f, 3.0f}));
  EXPECT_EQ(reader.tensor("b", {2}).toFloat(), b);
  EXPECT_THROW(reader.tensor("a", {4}), Error);
  EXPECT_THROW(reader.tensor("c", {2}), Error);
}

TEST_F(ReferenceReaderTest, RefusesAMissingCheckpoint) {
  expectRefused("model.safetensors: cannot open");
  EXPECT_THROW(ReferenceModel(dir_ / "nowhere"), Error);
}

TEST_F(ReferenceReaderTest, RefusesAFileTooShortForTheHeaderLength) {
  std::ofstream(dir_ / "model.safetensors") << "abc";
  expectRefused("too short");
}

TEST_F(ReferenceReaderTest, RefusesAHeaderLengthPastTheFile) {
  writeRaw("model.safetensors", 1000, "{}", 0);
  expectRefused("runs past the file");
}

TEST_F(ReferenceReaderTest, RefusesAMalformedHeader) {
  writeRaw("model.safetensors", 9, "{\"a\": [1,", 0);
  expectRefused("not a JSON object");
}

TEST_F(ReferenceReaderTest, RefusesAnUnknownDtype) {
  writeShard("model.safetensors", {{"a", {{"dtype", "Q4"}, {"shape", {2}}, {"data_offsets", {0, 2}}}}}, 2);
  expectRefused("dtype \"Q4\"");
}

TEST_F(ReferenceReaderTest, RefusesDataPastTheEnd) {
  writeShard("model.safetensors", {{"a", {{"dtype", "BF16"}, {"shape", {64}}, {"data_offsets", {0, 128}}}}}, 100);
  expectRefused("truncated");
}

TEST_F(ReferenceReaderTest, RefusesASizeThatContradictsTheShape) {
  writeShard("model.safetensors", {{"a", {{"dtype", "F32"}, {"shape", {3}}, {"data_offsets", {0, 8}}}}}, 8);
  expectRefused("needs 12");
}

TEST_F(ReferenceReaderTest, RefusesAnIndexNamingAMissingShard) {
  std::ofstream(dir_ / "model.safetensors.index.json") << R"({"weight_map": {"a": "gone.safetensors"}})";
  expectRefused("gone.safetensors: cannot open");
}

TEST_F(ReferenceReaderTest, RefusesAnIndexNamingATensorItsShardLacks) {
  writeShard("one.safetensors", {{"a", {{"dtype", "F32"}, {"shape", {1}}, {"data_offsets", {0, 4}}}}}, 4);
  std::ofstream(dir_ / "model.safetensors.index.json")
      << R"({"weight_map": {"a": "one.safetensors", "b": "one.safetensors"}})";
  expectRefused("tensor 'b' is not in its shard");
}

}  // namespace
}  // namespace phx::reference
