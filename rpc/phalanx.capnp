# The control plane between the coordinator and every worker (docs/cluster.md): one Cap'n Proto RPC connection
# per worker. Bulk data never travels here except a step's tokens and its logits (or candidates): hidden states
# and all-reduces go over the data plane (UCX or MPI), whose addresses are swapped through connectPeers.
@0x9fadcef3ff1fa46a;

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("phx::proto");

# Bumped on every incompatible change; hello refuses a peer speaking another version.
const protocolVersion :UInt32 = 3;

# common/error.h ErrorKind. A failed call answers with `failure` set in its results (the RPC itself succeeds):
# the kind travels as this enum, never inside the message text. A call that fails at the RPC level (the connection
# broke) is a disconnect.
enum ErrorKind {
  invalidArgument @0;
  invalidCheckpoint @1;
  unsupported @2;
  io @3;
  disconnected @4;
  overloaded @5;
  internal @6;
  permissionDenied @7;  # not authenticated, fenced by a newer coordinator, or a path outside --model-root
}

struct Failure {
  kind @0 :ErrorKind;
  message @1 :Text;
}

# kernels/cpu_identity.h MatmulCompute: how BF16 weights are multiplied. Every worker of a cluster uses the one the
# coordinator names in loadShard, so a tensor-parallel group never mixes them.
# What a tensor-parallel all-reduce sends between ranks: f32 vectors, or BF16 ones (half the bytes, sums in f32).
enum AllReducePayload {
  f32 @0;
  bf16 @1;
}

enum MatmulCompute {
  workerDefault @0;  # the worker's CPU table choice (or PHX_MATMUL_COMPUTE)
  bf16dot @1;
  f32fma @2;
}

struct Range {
  begin @0 :Int64;
  count @1 :Int64;
}

# partition/rank_shard.h RankShard
struct RankShard {
  layers @0 :Range;
  queryHeads @1 :Range;
  kvHeads @2 :Range;
  mlpColumns @3 :Range;
  vocabRows @4 :Range;
  firstStage @5 :Bool;
  lastStage @6 :Bool;
}

enum KvDtype {
  bf16 @0;
  int8 @1;  # per token and head scales
  f32 @2;
}

struct KvConfig {
  blockSize @0 :Int64;  # tokens per block
  blocks @1 :Int64;     # blocks in the pool; every worker holds the same block ids for its own heads
  dtype @2 :KvDtype;
}

# How a worker holds its shard's matrices.
enum WeightDtype {
  workerDefault @0;  # the worker's own --dtype (by default the checkpoint's: INT8 for a quantized one, else BF16)
  bf16 @1;
  int8 @2;           # per-output-channel INT8, quantized while loading (or as stored in a quantized checkpoint)
}

enum LogitsFor {
  none @0;
  last @1;
  all @2;
}

# rpc/step.h SequenceStep
struct SequenceStep {
  cachedTokens @0 :Int64;
  newTokens @1 :Int64;
  blockTable @2 :List(Int32);
  logits @3 :LogitsFor;
  candidates @4 :Int32;  # > the batch's: this sequence's rows carry this many candidates
}

# rpc/step.h StepBatch
struct StepBatch {
  tokens @0 :List(Int32);
  sequences @1 :List(SequenceStep);
  candidates @2 :Int32;  # 0: dense logits; K > 0: each row's top K and the slice's log-sum-exp
}

struct LogitCandidates {
  ids @0 :List(Int32);
  logits @1 :Data;       # float32, little-endian, one per id
  logSumExp @2 :Float32;
}

# rpc/step.h StepOutput: a vocab slice's logits (last stage only; an earlier stage returns rows = 0)
struct StepOutput {
  vocabBegin @0 :Int64;
  vocabCount @1 :Int64;
  rows @2 :Int64;
  logits @3 :Data;                           # float32 [rows, vocabCount], when the batch asked for dense logits
  candidates @4 :List(LogitCandidates);      # [rows], when the batch asked for candidates
}

struct StepTimings {
  computeSeconds @0 :Float64;  # on the compute thread, outside the communicator
  commSeconds @1 :Float64;     # inside allReduceSum / send / recv
  waitSeconds @2 :Float64;     # from the request's arrival until the compute thread took it
}

enum WorkerState {
  idle @0;      # nothing loaded
  loading @1;
  loaded @2;    # weights and KV cache ready, data plane not connected
  ready @3;     # connected: steps run
  failed @4;    # the last load or connect failed (see lastError)
}

# The coordinator's callback during loadShard (one call per tensor).
interface LoadProgress {
  progress @0 (bytesDone :Int64, bytesTotal :Int64, tensor :Text) -> ();
}

# Every call but hello and authenticate is refused (permissionDenied) on a connection that has not authenticated
# when the worker has a cluster secret, and on a connection whose coordinator epoch is older than the newest the
# worker has accepted (a stale coordinator is fenced). docs/security.md has the protocol.
interface Worker {
  # First call on every connection. A worker refuses another protocolVersion (and the client refuses a worker
  # answering with another), naming both versions. coordinatorEpoch: the caller's epoch (its start time in ns);
  # the connection acts for it once authenticated. challenge: the worker's nonce for authenticate (32 bytes).
  hello @0 (protocolVersion :UInt32, clientName :Text, coordinatorEpoch :UInt64)
        -> (protocolVersion :UInt32, workerName :Text, pid :Int64, threads :Int32, transport :Text,
            worldRank :Int32, cpu :Text, compute :MatmulCompute, authRequired :Bool, challenge :Data,
            failure :Failure);

  # Challenge-response over the cluster secret, both ways; the secret never crosses the wire.
  # proof = HMAC-SHA256(secret, "phalanx coordinator" | challenge | clientNonce | epoch); the worker answers with
  # HMAC-SHA256(secret, "phalanx worker" | clientNonce | challenge | epoch), which the coordinator checks.
  authenticate @7 (clientNonce :Data, proof :Data) -> (proof :Data, failure :Failure);

  # Reads only this shard's slices from the checkpoint (a path on the worker's file system), packs them in the
  # `weights` dtype (quantizing as it reads) and reserves the KV cache in kv.dtype. Replaces whatever was loaded.
  # A request identical to the one already loaded (same fingerprint: checkpoint files, shard, KV, dtypes, compute)
  # is answered at once with reused = true and bytesRead = 0: a restarted coordinator re-attaches without a reload.
  # The KV cache's contents are then meaningless to the new caller, which starts its block table empty.
  loadShard @1 (checkpointDir :Text, shard :RankShard, kv :KvConfig, threads :Int32, maxStepTokens :Int64,
                progress :LoadProgress, weights :WeightDtype, compute :MatmulCompute)
            -> (weightBytes :Int64, bytesRead :Int64, loadSeconds :Float64, rssBytes :Int64, weights :WeightDtype,
                peakRssBytes :Int64,  # rssBytes: after loading; peakRssBytes: the most it reached while loading
                compute :MatmulCompute, fingerprint :UInt64, reused :Bool, failure :Failure);

  # This worker's data-plane address (UCX worker address; empty under MPI, whose ranks find each other).
  dataPlaneAddress @2 () -> (address :Data, failure :Failure);

  # addresses: every worker's data-plane address by global index; group: the global indices of this worker's
  # tensor-parallel group in rank order; stage peers: global indices (-1: none); payload: what the group's
  # all-reduces carry (the same for the whole group); timeoutMs: how long an all-reduce waits for its group,
  # stageTimeoutMs: how long a stage hand-off waits for its neighbour (which may compute a whole step first).
  # Called again after any peer restarts. After it the worker is ready.
  connectPeers @3 (addresses :List(Data), self :Int32, group :List(Int32), previousStagePeer :Int32,
                   nextStagePeer :Int32, timeoutMs :Int32, payload :AllReducePayload, stageTimeoutMs :Int32)
      -> (failure :Failure);

  step @4 (batch :StepBatch) -> (output :StepOutput, timings :StepTimings, failure :Failure);

  # Answered on the event loop thread, even during a long step.
  health @5 () -> (state :WorkerState, loaded :Bool, rssBytes :Int64, peakRssBytes :Int64, steps :Int64,
                   lastError :Text, compute :MatmulCompute, fingerprint :UInt64, failure :Failure);

  # The worker exits once the reply is sent.
  shutdown @6 () -> (failure :Failure);
}
