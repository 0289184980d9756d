#include "common/model/qwen2_config.h"

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

#include "common/core/status.h"

namespace deepsearch {
namespace {

using Json = nlohmann::json;

class Reader {
 public:
  Reader(const Json& j, std::string source) : j_(j), source_(std::move(source)) {}

  absl::Status Error(std::string_view field, std::string_view message) const {
    return absl::InvalidArgumentError(
        absl::StrCat(source_, ": field '", std::string(field), "' ", std::string(message)));
  }

  // A required positive integer.
  absl::StatusOr<int64_t> PositiveInt(std::string_view field) const {
    const auto it = j_.find(std::string(field));
    if (it == j_.end() || it->is_null()) return Error(field, "is missing");
    if (!it->is_number_integer() || it->get<int64_t>() <= 0) {
      return Error(field, absl::StrCat("must be a positive integer, got ", it->dump()));
    }
    return it->get<int64_t>();
  }

  absl::StatusOr<int64_t> OptionalPositiveInt(std::string_view field, int64_t fallback) const {
    const auto it = j_.find(std::string(field));
    if (it == j_.end() || it->is_null()) return fallback;
    return PositiveInt(field);
  }

  absl::StatusOr<double> OptionalNumber(std::string_view field, double fallback) const {
    const auto it = j_.find(std::string(field));
    if (it == j_.end() || it->is_null()) return fallback;
    if (!it->is_number()) return Error(field, absl::StrCat("must be a number, got ", it->dump()));
    return it->get<double>();
  }

  absl::StatusOr<bool> OptionalBool(std::string_view field, bool fallback) const {
    const auto it = j_.find(std::string(field));
    if (it == j_.end() || it->is_null()) return fallback;
    if (!it->is_boolean())
      return Error(field, absl::StrCat("must be true or false, got ", it->dump()));
    return it->get<bool>();
  }

  // An int, a list of ints, or absent/null (empty).
  absl::StatusOr<std::vector<int64_t>> IntOrList(std::string_view field) const {
    const auto it = j_.find(std::string(field));
    std::vector<int64_t> out;
    if (it == j_.end() || it->is_null()) return out;
    if (it->is_number_integer()) {
      out.push_back(it->get<int64_t>());
      return out;
    }
    if (it->is_array()) {
      for (const Json& v : *it) {
        if (!v.is_number_integer())
          return Error(field, absl::StrCat("must hold integers, got ", it->dump()));
        out.push_back(v.get<int64_t>());
      }
      return out;
    }
    return Error(field, absl::StrCat("must be an integer or a list of integers, got ", it->dump()));
  }

  const Json* Find(std::string_view field) const {
    const auto it = j_.find(std::string(field));
    return (it == j_.end() || it->is_null()) ? nullptr : &*it;
  }

 private:
  const Json& j_;
  std::string source_;
};

// Returns the rope type named by a rope_scaling / rope_parameters object.
std::string RopeType(const Json& rope) {
  if (rope.contains("rope_type") && rope["rope_type"].is_string())
    return rope["rope_type"].get<std::string>();
  if (rope.contains("type") && rope["type"].is_string()) return rope["type"].get<std::string>();
  return "default";
}

}  // namespace

int64_t Qwen2Config::NumParameters() const {
  const int64_t h = hidden_size;
  const int64_t q = num_attention_heads * head_dim;
  const int64_t kv = num_key_value_heads * head_dim;
  const int64_t attention = h * q + q + 2 * (h * kv + kv) + q * h;
  const int64_t mlp = 3 * h * intermediate_size;
  const int64_t norms = 2 * h;
  const int64_t embed = vocab_size * h;
  return embed + num_hidden_layers * (attention + mlp + norms) + h +
         (tie_word_embeddings ? 0 : embed);
}

namespace {

// Only what this implementation computes: Qwen2 with SwiGLU and full attention everywhere.
absl::Status CheckSupported(const Reader& r) {
  if (const Json* type = r.Find("model_type"); type == nullptr || *type != "qwen2") {
    return r.Error("model_type",
                   absl::StrCat("must be \"qwen2\", got ", type ? type->dump() : "nothing"));
  }
  if (const Json* archs = r.Find("architectures")) {
    bool known = false;
    if (archs->is_array()) {
      for (const Json& a : *archs) known = known || a == "Qwen2ForCausalLM" || a == "Qwen2Model";
    }
    if (!known)
      return r.Error("architectures",
                     absl::StrCat("must name Qwen2ForCausalLM, got ", archs->dump()));
  }
  if (const Json* act = r.Find("hidden_act"); act != nullptr && *act != "silu") {
    return r.Error("hidden_act", absl::StrCat("must be \"silu\" (SwiGLU), got ", act->dump()));
  }
  DS_ASSIGN_OR_RETURN(bool sliding, r.OptionalBool("use_sliding_window", false));
  if (sliding)
    return r.Error("use_sliding_window", "is true: sliding-window attention is not supported");
  if (const Json* layer_types = r.Find("layer_types")) {
    if (!layer_types->is_array()) return r.Error("layer_types", "must be a list");
    for (const Json& t : *layer_types) {
      if (t != "full_attention") {
        return r.Error("layer_types",
                       absl::StrCat("has ", t.dump(), ": only full_attention is supported"));
      }
    }
  }
  return absl::OkStatus();
}

// RoPE: classic `rope_theta` + `rope_scaling`, or transformers 5's `rope_parameters`.
absl::Status ReadRope(const Reader& r, Qwen2Config& c) {
  DS_ASSIGN_OR_RETURN(c.rope_theta, r.OptionalNumber("rope_theta", 10000.0));
  if (const Json* params = r.Find("rope_parameters")) {
    if (!params->is_object()) return r.Error("rope_parameters", "must be an object");
    if (const std::string type = RopeType(*params); type != "default") {
      return r.Error("rope_parameters",
                     absl::StrCat("has rope_type \"", type, "\": only \"default\" is supported"));
    }
    if (params->contains("rope_theta")) {
      if (!(*params)["rope_theta"].is_number())
        return r.Error("rope_parameters", "has a non-numeric rope_theta");
      c.rope_theta = (*params)["rope_theta"].get<double>();
    }
  }
  if (const Json* scaling = r.Find("rope_scaling")) {
    if (!scaling->is_object() || RopeType(*scaling) != "default") {
      return r.Error("rope_scaling",
                     absl::StrCat("is ", scaling->dump(), ": rope scaling is not supported"));
    }
  }
  if (!(c.rope_theta > 0)) return r.Error("rope_theta", "must be > 0");
  return absl::OkStatus();
}

// torch_dtype (or transformers 5's dtype), with PyTorch's aliases float and half.
absl::Status ReadDtype(const Reader& r, Qwen2Config& c) {
  const Json* dtype = r.Find("torch_dtype");
  if (dtype == nullptr) dtype = r.Find("dtype");
  if (dtype != nullptr) {
    if (!dtype->is_string())
      return r.Error("torch_dtype", absl::StrCat("must be a string, got ", dtype->dump()));
    c.dtype = dtype->get<std::string>();
    if (c.dtype == "float") c.dtype = "float32";
    if (c.dtype == "half") c.dtype = "float16";
    if (c.dtype != "float32" && c.dtype != "bfloat16" && c.dtype != "float16") {
      return r.Error("torch_dtype",
                     absl::StrCat("is \"", c.dtype, "\": expected float32, bfloat16 or float16"));
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<Qwen2Config> Qwen2Config::FromJson(std::string_view json, std::string_view source) {
  const std::string where(source);
  Json j = Json::parse(json.begin(), json.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return absl::InvalidArgumentError(absl::StrCat(where, ": not valid JSON"));
  if (!j.is_object())
    return absl::InvalidArgumentError(absl::StrCat(where, ": expected a JSON object"));
  Reader r(j, where);
  DS_RETURN_IF_ERROR(CheckSupported(r));
  Qwen2Config c;
  DS_ASSIGN_OR_RETURN(c.vocab_size, r.PositiveInt("vocab_size"));
  DS_ASSIGN_OR_RETURN(c.hidden_size, r.PositiveInt("hidden_size"));
  DS_ASSIGN_OR_RETURN(c.intermediate_size, r.PositiveInt("intermediate_size"));
  DS_ASSIGN_OR_RETURN(c.num_hidden_layers, r.PositiveInt("num_hidden_layers"));
  DS_ASSIGN_OR_RETURN(c.num_attention_heads, r.PositiveInt("num_attention_heads"));
  DS_ASSIGN_OR_RETURN(c.num_key_value_heads,
                      r.OptionalPositiveInt("num_key_value_heads", c.num_attention_heads));
  if (c.hidden_size % c.num_attention_heads != 0 && r.Find("head_dim") == nullptr) {
    return r.Error("head_dim",
                   "is missing and hidden_size is not divisible by num_attention_heads");
  }
  DS_ASSIGN_OR_RETURN(c.head_dim,
                      r.OptionalPositiveInt("head_dim", c.hidden_size / c.num_attention_heads));
  DS_ASSIGN_OR_RETURN(c.rms_norm_eps, r.OptionalNumber("rms_norm_eps", 1e-6));
  DS_ASSIGN_OR_RETURN(c.max_position_embeddings,
                      r.OptionalPositiveInt("max_position_embeddings", 32768));
  DS_ASSIGN_OR_RETURN(c.tie_word_embeddings, r.OptionalBool("tie_word_embeddings", false));
  DS_ASSIGN_OR_RETURN(c.initializer_range, r.OptionalNumber("initializer_range", 0.02));

  DS_RETURN_IF_ERROR(ReadRope(r, c));
  DS_RETURN_IF_ERROR(ReadDtype(r, c));
  DS_ASSIGN_OR_RETURN(std::vector<int64_t> bos, r.IntOrList("bos_token_id"));
  if (!bos.empty()) c.bos_token_id = bos.front();
  DS_ASSIGN_OR_RETURN(c.eos_token_ids, r.IntOrList("eos_token_id"));
  if (absl::Status s = c.Validate(); !s.ok()) return Annotate(s, where);
  return c;
}

absl::Status Qwen2Config::CheckSameArchitecture(const Qwen2Config& other) const {
  auto differs = [](std::string_view field, const auto& a, const auto& b) {
    return absl::FailedPreconditionError(
        absl::StrCat("different architecture: ", std::string(field), " ", a, " vs ", b));
  };
#define DS_SAME_FIELD(f) \
  if (f != other.f) return differs(#f, f, other.f)
  DS_SAME_FIELD(vocab_size);
  DS_SAME_FIELD(hidden_size);
  DS_SAME_FIELD(intermediate_size);
  DS_SAME_FIELD(num_hidden_layers);
  DS_SAME_FIELD(num_attention_heads);
  DS_SAME_FIELD(num_key_value_heads);
  DS_SAME_FIELD(head_dim);
  DS_SAME_FIELD(rms_norm_eps);
  DS_SAME_FIELD(rope_theta);
  DS_SAME_FIELD(max_position_embeddings);
  DS_SAME_FIELD(tie_word_embeddings);
#undef DS_SAME_FIELD
  return absl::OkStatus();
}

absl::Status Qwen2Config::Validate() const {
  auto error = [](std::string message) { return absl::InvalidArgumentError(std::move(message)); };
  if (vocab_size <= 0 || hidden_size <= 0 || intermediate_size <= 0 || num_hidden_layers <= 0 ||
      num_attention_heads <= 0 || num_key_value_heads <= 0 || head_dim <= 0) {
    return error("every size must be positive");
  }
  if (num_attention_heads % num_key_value_heads != 0) {
    return error(absl::StrCat("num_attention_heads (", num_attention_heads,
                              ") is not a multiple of num_key_value_heads (", num_key_value_heads,
                              ")"));
  }
  if (head_dim % 2 != 0)
    return error(absl::StrCat("head_dim must be even for RoPE, got ", head_dim));
  if (!(rms_norm_eps > 0)) return error("rms_norm_eps must be > 0");
  return absl::OkStatus();
}

std::string Qwen2Config::ToJson() const {
  Json j;
  j["architectures"] = {"Qwen2ForCausalLM"};
  j["model_type"] = "qwen2";
  j["vocab_size"] = vocab_size;
  j["hidden_size"] = hidden_size;
  j["intermediate_size"] = intermediate_size;
  j["num_hidden_layers"] = num_hidden_layers;
  j["num_attention_heads"] = num_attention_heads;
  j["num_key_value_heads"] = num_key_value_heads;
  j["head_dim"] = head_dim;
  j["hidden_act"] = "silu";
  j["rms_norm_eps"] = rms_norm_eps;
  j["rope_theta"] = rope_theta;
  j["rope_scaling"] = nullptr;
  j["max_position_embeddings"] = max_position_embeddings;
  j["tie_word_embeddings"] = tie_word_embeddings;
  j["use_sliding_window"] = false;
  j["sliding_window"] = nullptr;
  j["attention_dropout"] = 0.0;
  j["initializer_range"] = initializer_range;
  j["use_cache"] = true;
  j["torch_dtype"] = dtype;
  if (bos_token_id >= 0) j["bos_token_id"] = bos_token_id;
  if (eos_token_ids.size() == 1) {
    j["eos_token_id"] = eos_token_ids.front();
  } else if (!eos_token_ids.empty()) {
    j["eos_token_id"] = eos_token_ids;
  }
  return j.dump(2) + "\n";
}

absl::StatusOr<Qwen2Config> Qwen2Config::Preset(std::string_view name, int64_t vocab_size) {
  if (vocab_size <= 0) return absl::InvalidArgumentError("preset: vocab_size must be positive");
  Qwen2Config c;
  c.vocab_size = vocab_size;
  c.tie_word_embeddings = true;
  c.max_position_embeddings = 4096;
  c.rope_theta = 10000.0;
  c.dtype = "float32";
  if (name == "tiny") {
    c.hidden_size = 128;
    c.intermediate_size = 384;
    c.num_hidden_layers = 2;
    c.num_attention_heads = 4;
    c.num_key_value_heads = 2;
  } else if (name == "small") {
    c.hidden_size = 384;
    c.intermediate_size = 1024;
    c.num_hidden_layers = 4;
    c.num_attention_heads = 6;
    c.num_key_value_heads = 2;
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("unknown model preset '", std::string(name), "' (expected tiny or small)"));
  }
  c.head_dim = c.hidden_size / c.num_attention_heads;
  return c;
}

}  // namespace deepsearch
