#include "model/random_weights.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <string>
#include <thread>
#include <vector>

#include "common/error.h"

namespace phx {
namespace {

constexpr uint64_t kGolden = 0x9E3779B97F4A7C15ull;  // SplitMix64's increment

// SplitMix64's output function (Steele, Lea, Flood 2014): a bijective mix that passes BigCrush when fed an
// arithmetic sequence, which is exactly what a counter gives it.
inline uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

bool endsWith(std::string_view text, std::string_view suffix) {
  return text.size() >= suffix.size() && text.substr(text.size() - suffix.size()) == suffix;
}

// Uniform with the given standard deviation, centred on 0.
UniformInit withStd(double stddev) { return {0.0f, float(stddev * std::sqrt(3.0))}; }

}  // namespace

UniformInit weightInit(const ModelConfig& c, std::string_view name) {
  const double residualAdds = 2.0 * double(c.numLayers);  // one attention and one MLP output per layer
  // Norm weights near 1 with a visible jitter, so a test that ignores them (or applies the wrong one) fails.
  if (endsWith(name, "layernorm.weight") || name == "model.norm.weight") return {1.0f, 0.1f};
  // Embedding rows of unit variance: the residual stream starts at RMS 1.
  if (name == "model.embed_tokens.weight") return withStd(1.0);
  // Input projections read a normalised (RMS ~1) vector: 1/sqrt(fan_in) keeps their outputs at unit variance.
  if (endsWith(name, "self_attn.qkv_proj.weight") || endsWith(name, "mlp.gate_up_proj.weight")) {
    return withStd(1.0 / std::sqrt(double(c.hiddenSize)));
  }
  // Output projections add to the residual stream 2L times: each adds ~1/(2L) of its variance, so after all
  // layers the stream has grown to about twice its initial variance instead of exploding.
  if (endsWith(name, "self_attn.o_proj.weight")) return withStd(1.0 / std::sqrt(double(c.qDim()) * residualAdds));
  if (endsWith(name, "mlp.down_proj.weight")) {
    return withStd(1.0 / std::sqrt(double(c.intermediateSize) * residualAdds));
  }
  // Logits of std ~2.5: clear top-1/top-2 margins, so greedy comparisons between implementations are stable.
  if (name == "lm_head.weight") return withStd(2.5 / std::sqrt(double(c.hiddenSize)));
  throwInvalidArgument("no initialisation for tensor '" + std::string(name) + "': not a Phi3ForCausalLM weight");
}

uint64_t randomStreamKey(uint64_t seed, std::string_view tensorName) {
  uint64_t hash = 0xCBF29CE484222325ull;  // FNV-1a over the name, then mixed with the seed
  for (unsigned char ch : tensorName) hash = (hash ^ ch) * 0x100000001B3ull;
  return mix64(mix64(seed + kGolden) ^ hash);
}

void fillUniformBf16(uint64_t key, UniformInit init, int64_t first, int64_t count, uint16_t* out) {
  // The loop body is branch-free integer and float arithmetic so the compiler vectorises it (AVX-512: vpmullq).
  const float scale = init.halfWidth * 0x1p-23f;  // (z >> 40) in [0, 2^24): value = center + scale*(z>>40) - halfWidth
  const float offset = init.center - init.halfWidth;
  const uint64_t base = key + uint64_t(first + 1) * kGolden;
  for (int64_t i = 0; i < count; ++i) {
    const uint64_t z = mix64(base + uint64_t(i) * kGolden);
    // An explicit fma: one rounding whether or not the loop is vectorised, so the bytes never depend on the build.
    const float value = std::fma(scale, float(uint32_t(z >> 40)), offset);
    // Round to nearest even; values are finite, so no NaN case.
    const uint32_t bits = std::bit_cast<uint32_t>(value);
    out[i] = uint16_t((bits + 0x7FFFu + ((bits >> 16) & 1u)) >> 16);
  }
}

void fillUniformBf16Parallel(uint64_t key, UniformInit init, int64_t first, int64_t count, uint16_t* out,
                             int threads) {
  constexpr int64_t kMinPerThread = 1 << 16;  // below this a thread costs more than it saves
  const int64_t parts = std::max<int64_t>(1, std::min<int64_t>(threads, count / kMinPerThread));
  std::vector<std::jthread> workers;
  const int64_t step = (count + parts - 1) / parts;
  for (int64_t part = 1; part < parts; ++part) {
    const int64_t begin = part * step, end = std::min(count, begin + step);
    workers.emplace_back([=] { fillUniformBf16(key, init, first + begin, end - begin, out + begin); });
  }
  fillUniformBf16(key, init, first, std::min(count, step), out);
}

}  // namespace phx
