#include "rpc/control_codec.h"

#include <bit>
#include <cstring>
#include <string>

#include "common/error.h"

namespace phx {
namespace {

static_assert(std::endian::native == std::endian::little, "Data fields carry little-endian float32");

void encodeRange(const ShardRange& range, proto::Range::Builder out) {
  out.setBegin(range.begin);
  out.setCount(range.count);
}

ShardRange decodeRange(proto::Range::Reader in) { return {in.getBegin(), in.getCount()}; }

capnp::Data::Reader floatData(const float* data, size_t count) {
  return {reinterpret_cast<const kj::byte*>(data), count * sizeof(float)};
}

void copyFloats(capnp::Data::Reader data, size_t expected, std::vector<float>& out, const char* field) {
  if (data.size() != expected * sizeof(float)) {
    throwInvalidArgument(std::string("control plane: step output field ") + field + " holds " +
                         std::to_string(data.size()) + " bytes, expected " + std::to_string(expected) +
                         " float32 values");
  }
  out.resize(expected);
  if (expected > 0) std::memcpy(out.data(), data.begin(), data.size());
}

proto::LogitsFor encodeLogitsFor(LogitsFor logits) {
  switch (logits) {
    case LogitsFor::kNone: return proto::LogitsFor::NONE;
    case LogitsFor::kLast: return proto::LogitsFor::LAST;
    case LogitsFor::kAll: return proto::LogitsFor::ALL;
  }
  return proto::LogitsFor::LAST;
}

LogitsFor decodeLogitsFor(proto::LogitsFor logits) {
  switch (logits) {
    case proto::LogitsFor::NONE: return LogitsFor::kNone;
    case proto::LogitsFor::LAST: return LogitsFor::kLast;
    case proto::LogitsFor::ALL: return LogitsFor::kAll;
  }
  throwInvalidArgument("control plane: unknown LogitsFor value " + std::to_string(int(logits)));
}

}  // namespace

std::vector<int32_t> toVector(capnp::List<int32_t>::Reader list) {
  std::vector<int32_t> out;
  out.reserve(list.size());
  for (int32_t value : list) out.push_back(value);
  return out;
}

void encodeRankShard(const RankShard& shard, proto::RankShard::Builder out) {
  encodeRange(shard.layers, out.initLayers());
  encodeRange(shard.queryHeads, out.initQueryHeads());
  encodeRange(shard.kvHeads, out.initKvHeads());
  encodeRange(shard.mlpColumns, out.initMlpColumns());
  encodeRange(shard.vocabRows, out.initVocabRows());
  out.setFirstStage(shard.firstStage);
  out.setLastStage(shard.lastStage);
}

RankShard decodeRankShard(proto::RankShard::Reader in) {
  RankShard shard;
  shard.layers = decodeRange(in.getLayers());
  shard.queryHeads = decodeRange(in.getQueryHeads());
  shard.kvHeads = decodeRange(in.getKvHeads());
  shard.mlpColumns = decodeRange(in.getMlpColumns());
  shard.vocabRows = decodeRange(in.getVocabRows());
  shard.firstStage = in.getFirstStage();
  shard.lastStage = in.getLastStage();
  return shard;
}

proto::WeightDtype encodeWeightDtype(std::optional<WeightType> type) {
  if (!type) return proto::WeightDtype::WORKER_DEFAULT;
  if (*type == WeightType::kInt8) return proto::WeightDtype::INT8;
  if (*type == WeightType::kBf16) return proto::WeightDtype::BF16;
  throwInvalidArgument("control plane: matrices load as bf16 or int8, not " + std::string(weightTypeName(*type)));
}

std::optional<WeightType> decodeWeightDtype(proto::WeightDtype dtype) {
  switch (dtype) {
    case proto::WeightDtype::WORKER_DEFAULT: return std::nullopt;
    case proto::WeightDtype::BF16: return WeightType::kBf16;
    case proto::WeightDtype::INT8: return WeightType::kInt8;
  }
  throwInvalidArgument("control plane: loadShard field weights holds an unknown dtype " +
                       std::to_string(unsigned(dtype)));
}

proto::KvDtype encodeKvDtype(KvType type) {
  switch (type) {
    case KvType::kBf16: return proto::KvDtype::BF16;
    case KvType::kInt8: return proto::KvDtype::INT8;
    case KvType::kF32: return proto::KvDtype::F32;
  }
  return proto::KvDtype::BF16;  // unreachable: every enumerator is above
}

KvType decodeKvDtype(proto::KvDtype dtype) {
  switch (dtype) {
    case proto::KvDtype::BF16: return KvType::kBf16;
    case proto::KvDtype::INT8: return KvType::kInt8;
    case proto::KvDtype::F32: return KvType::kF32;
  }
  throwInvalidArgument("control plane: loadShard field kv.dtype holds an unknown dtype " +
                       std::to_string(unsigned(dtype)));
}

void encodeStepBatch(const StepBatch& batch, proto::StepBatch::Builder out) {
  auto tokens = out.initTokens(unsigned(batch.tokens.size()));
  for (size_t i = 0; i < batch.tokens.size(); ++i) tokens.set(unsigned(i), batch.tokens[i]);
  auto sequences = out.initSequences(unsigned(batch.sequences.size()));
  for (size_t s = 0; s < batch.sequences.size(); ++s) {
    const SequenceStep& seq = batch.sequences[s];
    auto encoded = sequences[unsigned(s)];
    encoded.setCachedTokens(seq.cachedTokens);
    encoded.setNewTokens(seq.newTokens);
    auto table = encoded.initBlockTable(unsigned(seq.blockTable.size()));
    for (size_t b = 0; b < seq.blockTable.size(); ++b) table.set(unsigned(b), seq.blockTable[b]);
    encoded.setLogits(encodeLogitsFor(seq.logits));
  }
  out.setCandidates(batch.candidates);
}

StepBatch decodeStepBatch(proto::StepBatch::Reader in) {
  StepBatch batch;
  batch.tokens = toVector(in.getTokens());
  batch.sequences.reserve(in.getSequences().size());
  for (auto seq : in.getSequences()) {
    SequenceStep step;
    step.cachedTokens = seq.getCachedTokens();
    step.newTokens = seq.getNewTokens();
    step.blockTable = toVector(seq.getBlockTable());
    step.logits = decodeLogitsFor(seq.getLogits());
    batch.sequences.push_back(std::move(step));
  }
  batch.candidates = in.getCandidates();
  return batch;
}

void encodeStepOutput(const StepOutput& output, proto::StepOutput::Builder out) {
  out.setVocabBegin(output.vocabBegin);
  out.setVocabCount(output.vocabCount);
  out.setRows(output.rows);
  out.setLogits(floatData(output.logits.data(), output.logits.size()));
  auto candidates = out.initCandidates(unsigned(output.candidates.size()));
  for (size_t r = 0; r < output.candidates.size(); ++r) {
    const LogitCandidates& row = output.candidates[r];
    auto encoded = candidates[unsigned(r)];
    auto ids = encoded.initIds(unsigned(row.ids.size()));
    for (size_t i = 0; i < row.ids.size(); ++i) ids.set(unsigned(i), row.ids[i]);
    encoded.setLogits(floatData(row.logits.data(), row.logits.size()));
    encoded.setLogSumExp(row.logSumExp);
  }
}

void decodeStepOutput(proto::StepOutput::Reader in, StepOutput& out) {
  out.vocabBegin = in.getVocabBegin();
  out.vocabCount = in.getVocabCount();
  out.rows = in.getRows();
  if (out.rows < 0 || out.vocabCount < 0) {
    throwInvalidArgument("control plane: step output has " + std::to_string(out.rows) + " rows of " +
                         std::to_string(out.vocabCount) + " logits; expected non-negative counts");
  }
  const auto candidates = in.getCandidates();
  if (candidates.size() > 0) {
    if (int64_t(candidates.size()) != out.rows) {
      throwInvalidArgument("control plane: step output has " + std::to_string(candidates.size()) +
                           " candidate rows, expected " + std::to_string(out.rows));
    }
    out.logits.clear();
    out.candidates.resize(candidates.size());
    for (size_t r = 0; r < candidates.size(); ++r) {
      auto row = candidates[unsigned(r)];
      LogitCandidates& decoded = out.candidates[r];
      decoded.ids = toVector(row.getIds());
      copyFloats(row.getLogits(), decoded.ids.size(), decoded.logits, "candidates.logits");
      decoded.logSumExp = row.getLogSumExp();
    }
    return;
  }
  out.candidates.clear();
  copyFloats(in.getLogits(), size_t(out.rows * out.vocabCount), out.logits, "logits");
}

}  // namespace phx
