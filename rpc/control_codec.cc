#include "rpc/control_codec.h"

#include <bit>
#include <cstdint>
#include <cstring>
#include <string>

#include <kj/exception.h>

#include "common/error.h"

namespace phx {
namespace {

static_assert(std::endian::native == std::endian::little, "Data fields carry little-endian float32");

void encodeRange(const IndexRange& range, proto::Range::Builder out) {
  out.setBegin(range.begin);
  out.setCount(range.count);
}

IndexRange decodeRange(proto::Range::Reader in) { return {in.getBegin(), in.getCount()}; }

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

namespace {

constexpr std::pair<ErrorKind, proto::ErrorKind> kErrorKinds[] = {
    {ErrorKind::kInvalidArgument, proto::ErrorKind::INVALID_ARGUMENT},
    {ErrorKind::kInvalidCheckpoint, proto::ErrorKind::INVALID_CHECKPOINT},
    {ErrorKind::kUnsupported, proto::ErrorKind::UNSUPPORTED},
    {ErrorKind::kIo, proto::ErrorKind::IO},
    {ErrorKind::kDisconnected, proto::ErrorKind::DISCONNECTED},
    {ErrorKind::kOverloaded, proto::ErrorKind::OVERLOADED},
    {ErrorKind::kInternal, proto::ErrorKind::INTERNAL},
    {ErrorKind::kPermissionDenied, proto::ErrorKind::PERMISSION_DENIED},
};

}  // namespace

proto::ErrorKind encodeErrorKind(ErrorKind kind) {
  for (auto [ours, wire] : kErrorKinds) {
    if (ours == kind) return wire;
  }
  return proto::ErrorKind::INTERNAL;
}

ErrorKind decodeErrorKind(proto::ErrorKind kind) {
  for (auto [ours, wire] : kErrorKinds) {
    if (wire == kind) return ours;
  }
  return ErrorKind::kInternal;
}

void encodeFailure(const Error& error, proto::Failure::Builder out) {
  out.setKind(encodeErrorKind(error.kind()));
  out.setMessage(error.what());
}

Error decodeFailure(proto::Failure::Reader in) { return Error(decodeErrorKind(in.getKind()), in.getMessage().cStr()); }

Error errorFromException(std::exception_ptr error) {
  try {
    std::rethrow_exception(error);
  } catch (const Error& e) {
    return e;
  } catch (const kj::Exception& e) {
    return Error(ErrorKind::kInternal, e.getDescription().cStr());
  } catch (const std::exception& e) {
    return Error(ErrorKind::kInternal, e.what());
  } catch (...) {
    return Error(ErrorKind::kInternal, "an exception of unknown type");
  }
}

proto::AllReducePayload encodeAllReducePayload(AllReducePayload payload) {
  return payload == AllReducePayload::kBf16 ? proto::AllReducePayload::BF16 : proto::AllReducePayload::F32;
}

AllReducePayload decodeAllReducePayload(proto::AllReducePayload payload) {
  return payload == proto::AllReducePayload::BF16 ? AllReducePayload::kBf16 : AllReducePayload::kF32;
}

proto::MatmulCompute encodeMatmulCompute(std::optional<MatmulCompute> compute) {
  if (!compute) return proto::MatmulCompute::WORKER_DEFAULT;
  return *compute == MatmulCompute::kBf16Dot ? proto::MatmulCompute::BF16DOT : proto::MatmulCompute::F32FMA;
}

std::optional<MatmulCompute> decodeMatmulCompute(proto::MatmulCompute compute) {
  switch (compute) {
    case proto::MatmulCompute::WORKER_DEFAULT: return std::nullopt;
    case proto::MatmulCompute::BF16DOT: return MatmulCompute::kBf16Dot;
    case proto::MatmulCompute::F32FMA: return MatmulCompute::kF32Fma;
  }
  throwInvalidArgument("control plane: loadShard field compute holds an unknown value " +
                       std::to_string(unsigned(compute)));
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
    encoded.setCandidates(seq.candidates);
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
    step.candidates = seq.getCandidates();
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
  if (out.rows < 0 || out.vocabCount < 0 || out.vocabBegin < 0 || out.vocabBegin > INT32_MAX - out.vocabCount) {
    throwInvalidArgument("control plane: step output has " + std::to_string(out.rows) + " rows of vocab slice [" +
                         std::to_string(out.vocabBegin) + ", +" + std::to_string(out.vocabCount) +
                         "); expected non-negative counts within the int32 id range");
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
      for (int32_t id : decoded.ids) {
        if (id < out.vocabBegin || id >= out.vocabBegin + out.vocabCount) {
          throwInvalidArgument("control plane: step output row " + std::to_string(r) + " names token " +
                               std::to_string(id) + ", outside its vocab slice [" + std::to_string(out.vocabBegin) +
                               ", " + std::to_string(out.vocabBegin + out.vocabCount) + ")");
        }
      }
      copyFloats(row.getLogits(), decoded.ids.size(), decoded.logits, "candidates.logits");
      decoded.logSumExp = row.getLogSumExp();
    }
    return;
  }
  out.candidates.clear();
  // Checked before multiplying: a hostile reply's counts must not wrap the expected size.
  if (out.vocabCount > 0 && out.rows > int64_t(in.getLogits().size() / sizeof(float)) / out.vocabCount) {
    throwInvalidArgument("control plane: step output claims " + std::to_string(out.rows) + " rows of " +
                         std::to_string(out.vocabCount) + " logits but carries " +
                         std::to_string(in.getLogits().size()) + " bytes");
  }
  copyFloats(in.getLogits(), size_t(out.rows * out.vocabCount), out.logits, "logits");
}

}  // namespace phx
