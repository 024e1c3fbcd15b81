// Codecs between the control plane's Cap'n Proto messages (rpc/phalanx.capnp) and the plain C++ types the engine
// uses (rpc/step.h, partition/rank_shard.h). Float arrays travel as Data (little-endian float32) to keep a step's
// reply compact: a list of Float32 would cost the same bytes but a bounds-checked accessor per element.
#pragma once

#include <optional>

#include "common/error.h"
#include "kernels/cpu_identity.h"
#include "kernels/kv_cache.h"
#include "kernels/packed_weight.h"
#include "partition/rank_shard.h"
#include "rpc/communicator.h"
#include "rpc/phalanx.capnp.h"
#include "rpc/step.h"

namespace phx {

// A List(Int32) as a vector (capnp's iterators are not standard iterators).
std::vector<int32_t> toVector(capnp::List<int32_t>::Reader list);

void encodeRankShard(const RankShard& shard, proto::RankShard::Builder out);
RankShard decodeRankShard(proto::RankShard::Reader in);

// A load's matrix dtype: nullopt is the worker's own default (proto::WeightDtype::WORKER_DEFAULT).
proto::WeightDtype encodeWeightDtype(std::optional<WeightType> type);
// Throws phx::Error (invalid argument) for a value this build does not know.
std::optional<WeightType> decodeWeightDtype(proto::WeightDtype dtype);
proto::KvDtype encodeKvDtype(KvType type);
KvType decodeKvDtype(proto::KvDtype dtype);

// Error kinds as the schema's enum (one mapping, both directions; unknown values decode as kInternal).
proto::ErrorKind encodeErrorKind(ErrorKind kind);
ErrorKind decodeErrorKind(proto::ErrorKind kind);
void encodeFailure(const Error& error, proto::Failure::Builder out);
Error decodeFailure(proto::Failure::Reader in);
// Any exception as the Error a reply carries: phx::Error keeps its kind, anything else is kInternal.
Error errorFromException(std::exception_ptr error);

// nullopt: the worker's own choice (proto::MatmulCompute::WORKER_DEFAULT).
proto::AllReducePayload encodeAllReducePayload(AllReducePayload payload);
AllReducePayload decodeAllReducePayload(proto::AllReducePayload payload);
proto::MatmulCompute encodeMatmulCompute(std::optional<MatmulCompute> compute);
// Throws phx::Error (invalid argument) for a value this build does not know.
std::optional<MatmulCompute> decodeMatmulCompute(proto::MatmulCompute compute);

void encodeStepBatch(const StepBatch& batch, proto::StepBatch::Builder out);
// Throws phx::Error (invalid argument) for a field out of range (e.g. an unknown LogitsFor).
StepBatch decodeStepBatch(proto::StepBatch::Reader in);

void encodeStepOutput(const StepOutput& output, proto::StepOutput::Builder out);
// Decodes into `out`, reusing its buffers. Throws phx::Error (invalid argument) when the Data sizes do not match
// rows x vocabCount (dense) or the candidate ids (candidates), naming the field.
void decodeStepOutput(proto::StepOutput::Reader in, StepOutput& out);

}  // namespace phx
