#include "model/config.h"

#include <fstream>

#include "common/error.h"
#include "model/json_preview.h"

namespace phx {
namespace {

using nlohmann::json;

// Each getter names the file and the field, and says what was expected.
int64_t requirePositiveInt(const json& j, const char* field, const std::string& source) {
  if (!j.contains(field)) throwInvalidCheckpoint(source + ": missing field '" + field + "'");
  const json& v = j.at(field);
  if (!v.is_number_integer() || v.get<int64_t>() <= 0) {
    throwInvalidCheckpoint(source + ": field '" + field + "' must be a positive integer, got " + jsonPreview(v));
  }
  return v.get<int64_t>();
}

double requirePositiveNumber(const json& j, const char* field, const std::string& source) {
  if (!j.contains(field)) throwInvalidCheckpoint(source + ": missing field '" + field + "'");
  const json& v = j.at(field);
  if (!v.is_number() || v.get<double>() <= 0) {
    throwInvalidCheckpoint(source + ": field '" + field + "' must be a positive number, got " + jsonPreview(v));
  }
  return v.get<double>();
}

int64_t optionalTokenId(const json& j, const char* field, int64_t fallback, const std::string& source) {
  if (!j.contains(field) || j.at(field).is_null()) return fallback;
  const json& v = j.at(field);
  // eos_token_id may be a list in some Phi-3 configs; the first entry is the primary one.
  if (v.is_array() && !v.empty() && v[0].is_number_integer()) return v[0].get<int64_t>();
  if (!v.is_number_integer())
    throwInvalidCheckpoint(source + ": field '" + field + "' must be a token id, got " + jsonPreview(v));
  return v.get<int64_t>();
}

// j.value() would throw nlohmann's type_error, which names neither the file nor the field.
std::string optionalString(const json& j, const char* field, const std::string& fallback, const std::string& source) {
  if (!j.contains(field) || j.at(field).is_null()) return fallback;
  const json& v = j.at(field);
  if (!v.is_string()) throwInvalidCheckpoint(source + ": field '" + field + "' must be a string, got " + jsonPreview(v));
  return v.get<std::string>();
}

bool optionalBool(const json& j, const char* field, bool fallback, const std::string& source) {
  if (!j.contains(field) || j.at(field).is_null()) return fallback;
  const json& v = j.at(field);
  if (!v.is_boolean())
    throwInvalidCheckpoint(source + ": field '" + field + "' must be true or false, got " + jsonPreview(v));
  return v.get<bool>();
}

// The field as written, for messages; "null" when absent.
std::string shown(const json& j, const char* field) { return j.contains(field) ? jsonPreview(j.at(field)) : "null"; }

void refuseUnless(bool supported, const std::string& source, const std::string& what) {
  if (!supported) throwUnsupported(source + ": " + what);
}

}  // namespace

ModelConfig parseModelConfig(const json& j, const std::string& source) {
  if (!j.is_object()) throwInvalidCheckpoint(source + ": expected a JSON object");
  const bool isPhi3Arch = j.contains("architectures") && j["architectures"].is_array() &&
                          std::find(j["architectures"].begin(), j["architectures"].end(), "Phi3ForCausalLM") !=
                              j["architectures"].end();
  const bool isPhi3Type = optionalString(j, "model_type", "", source) == "phi3";
  refuseUnless(isPhi3Arch || isPhi3Type, source,
               "architecture must be Phi3ForCausalLM (model_type \"phi3\"), got architectures=" +
                   shown(j, "architectures") + " model_type=" + shown(j, "model_type"));

  ModelConfig c;
  c.hiddenSize = requirePositiveInt(j, "hidden_size", source);
  c.numLayers = requirePositiveInt(j, "num_hidden_layers", source);
  c.numHeads = requirePositiveInt(j, "num_attention_heads", source);
  c.numKvHeads = j.contains("num_key_value_heads") && !j["num_key_value_heads"].is_null()
                     ? requirePositiveInt(j, "num_key_value_heads", source)
                     : c.numHeads;
  c.intermediateSize = requirePositiveInt(j, "intermediate_size", source);
  c.vocabSize = requirePositiveInt(j, "vocab_size", source);
  c.maxPositionEmbeddings = requirePositiveInt(j, "max_position_embeddings", source);
  c.rmsNormEps = requirePositiveNumber(j, "rms_norm_eps", source);
  c.ropeTheta = j.contains("rope_theta") ? requirePositiveNumber(j, "rope_theta", source) : 10000.0;
  c.bosTokenId = optionalTokenId(j, "bos_token_id", 0, source);
  c.eosTokenId = optionalTokenId(j, "eos_token_id", 0, source);
  c.padTokenId = optionalTokenId(j, "pad_token_id", c.eosTokenId, source);
  if (j.contains("torch_dtype") && j["torch_dtype"].is_string()) c.torchDtype = j["torch_dtype"];

  if (c.hiddenSize % c.numHeads != 0) {
    throwInvalidCheckpoint(source + ": hidden_size " + std::to_string(c.hiddenSize) +
                           " is not divisible by num_attention_heads " + std::to_string(c.numHeads));
  }
  if (c.numHeads % c.numKvHeads != 0) {
    throwInvalidCheckpoint(source + ": num_attention_heads " + std::to_string(c.numHeads) +
                           " is not a multiple of num_key_value_heads " + std::to_string(c.numKvHeads));
  }
  if (c.headDim() % 2 != 0) throwInvalidCheckpoint(source + ": head dim must be even for rotate-half RoPE");
  if (j.contains("head_dim") && !j["head_dim"].is_null() && j["head_dim"] != c.headDim()) {
    throwUnsupported(source + ": head_dim " + jsonPreview(j["head_dim"]) + " differs from hidden_size/num_attention_heads " +
                     std::to_string(c.headDim()));
  }
  for (int64_t id : {c.bosTokenId, c.eosTokenId, c.padTokenId}) {
    if (id < 0 || id >= c.vocabSize) {
      throwInvalidCheckpoint(source + ": token id " + std::to_string(id) + " is outside vocab_size " +
                             std::to_string(c.vocabSize));
    }
  }

  refuseUnless(!j.contains("rope_scaling") || j["rope_scaling"].is_null(), source,
               "rope_scaling " + shown(j, "rope_scaling") +
                   " (LongRoPE/su/yarn) is not supported; only plain RoPE (rope_scaling: null)");
  refuseUnless(!j.contains("partial_rotary_factor") || j["partial_rotary_factor"] == 1.0, source,
               "partial_rotary_factor " + shown(j, "partial_rotary_factor") +
                   " is not supported; RoPE must rotate all head dims (1.0)");
  refuseUnless(optionalString(j, "hidden_act", "silu", source) == "silu", source,
               "hidden_act " + shown(j, "hidden_act") + " is not supported; expected \"silu\"");
  refuseUnless(!optionalBool(j, "tie_word_embeddings", false, source), source,
               "tie_word_embeddings true is not supported; Phi-4 has an untied lm_head");
  refuseUnless(!optionalBool(j, "attention_bias", false, source), source, "attention_bias true is not supported");
  if (j.contains("sliding_window") && !j["sliding_window"].is_null()) {
    const json& window = j["sliding_window"];
    refuseUnless(window.is_number_integer() && window.get<int64_t>() >= c.maxPositionEmbeddings, source,
                 "sliding_window " + jsonPreview(window) + " is not supported; only full attention");
  }
  return c;
}

ModelConfig loadModelConfig(const std::filesystem::path& configFile) {
  std::ifstream in(configFile);
  if (!in) throwInvalidCheckpoint(configFile.string() + ": cannot open (missing or unreadable)");
  json j = json::parse(in, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) throwInvalidCheckpoint(configFile.string() + ": not valid JSON");
  return parseModelConfig(j, configFile.string());
}

json modelConfigToJson(const ModelConfig& c) {
  return json{
      {"_name_or_path", "microsoft/phi-4"},
      {"architectures", {"Phi3ForCausalLM"}},
      {"attention_bias", false},
      {"attention_dropout", 0.0},
      {"bos_token_id", c.bosTokenId},
      {"embd_pdrop", 0.0},
      {"eos_token_id", c.eosTokenId},
      {"hidden_act", "silu"},
      {"hidden_size", c.hiddenSize},
      {"initializer_range", 0.02},
      {"intermediate_size", c.intermediateSize},
      {"max_position_embeddings", c.maxPositionEmbeddings},
      {"model_type", "phi3"},
      {"num_attention_heads", c.numHeads},
      {"num_hidden_layers", c.numLayers},
      {"num_key_value_heads", c.numKvHeads},
      {"original_max_position_embeddings", c.maxPositionEmbeddings},
      {"pad_token_id", c.padTokenId},
      {"resid_pdrop", 0.0},
      {"rms_norm_eps", c.rmsNormEps},
      {"rope_scaling", nullptr},
      {"rope_theta", c.ropeTheta},
      {"sliding_window", nullptr},
      {"tie_word_embeddings", false},
      {"torch_dtype", c.torchDtype},
      {"transformers_version", "4.47.0"},
      {"use_cache", true},
      {"vocab_size", c.vocabSize},
  };
}

}  // namespace phx
