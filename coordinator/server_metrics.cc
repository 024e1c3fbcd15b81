#include "coordinator/server_metrics.h"

namespace phx {
namespace {

// The metric's type for a failed request's kind: the same kinds that chose its HTTP status (apiErrorFor).
RequestErrorType requestErrorType(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::kDisconnected: return RequestErrorType::kWorkerDisconnected;
    case ErrorKind::kOverloaded: return RequestErrorType::kOverloaded;
    case ErrorKind::kInvalidArgument:
    case ErrorKind::kUnsupported: return RequestErrorType::kInvalidRequest;
    default: return RequestErrorType::kInternal;
  }
}

}  // namespace

void attachMetrics(ServerOptions& options, CoordinatorMetrics& metrics, std::function<void()> afterStep) {
  options.hooks.onStep = [&metrics, afterStep](const StepReport& step) {
    metrics.onStep({.sequences = step.sequences, .tokens = step.decodeTokens + step.prefillTokens,
                    .seconds = step.seconds});
    if (afterStep) afterStep();
  };
  options.hooks.onInterToken = [&metrics](double seconds) { metrics.onInterToken(seconds); };
  options.hooks.onReplay = [&metrics](int64_t sequences) { metrics.onReplay(sequences); };
  options.hooks.onSequenceEnd = [&metrics](const SequenceReport& report) {
    if (report.queueSeconds > 0) metrics.onAdmitted(report.queueSeconds);
    if (report.generatedTokens > 0) metrics.onFirstToken(report.ttftSeconds);
    metrics.onPrefixLookup(report.promptTokens, report.cachedPromptTokens);
    metrics.onRequestEnd({.finishReason = report.failed ? "error" : finishReasonName(report.finishReason),
                          .promptTokens = report.promptTokens,
                          .generationTokens = report.generatedTokens,
                          .e2eSeconds = report.e2eSeconds});
    if (report.failed) metrics.onError(requestErrorType(report.failure));
  };
  // 5xx responses come from failed sequences, counted above; here the requests refused before they ran.
  options.onError = [&metrics](const ApiError& error) {
    if (error.status >= 500 && error.status != 503) return;
    if (error.code == "context_length_exceeded") {
      metrics.onError(RequestErrorType::kContextTooLong);
    } else if (error.status == 429 || error.status == 503) {
      metrics.onError(RequestErrorType::kOverloaded);
    } else {
      metrics.onError(RequestErrorType::kInvalidRequest);
    }
  };
  options.metrics = [&metrics](const SchedulerStats& stats) {
    metrics.setQueue(stats.running, stats.waiting);
    metrics.setKvCache(stats.kvBlocksUsed, stats.kvBlocksTotal);
    return metrics.serialize();
  };
}

}  // namespace phx
