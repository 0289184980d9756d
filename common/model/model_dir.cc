#include "common/model/model_dir.h"

#include <filesystem>
#include <map>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

#include "common/core/files.h"
#include "common/core/logging.h"
#include "common/core/status.h"
#include "common/model/weight_export.h"
#include "common/tokenizer/char_tokenizer.h"
#include "common/weights/checkpoint_files.h"
#include "common/weights/safetensors.h"

namespace deepsearch {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;

}  // namespace

absl::StatusOr<GenerationConfig> GenerationConfig::FromJson(std::string_view json,
                                                            std::string_view source) {
  const std::string where(source);
  Json j = Json::parse(json.begin(), json.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) {
    return absl::InvalidArgumentError(absl::StrCat(where, ": not a JSON object"));
  }
  GenerationConfig g;
  auto ids = [&](const char* field, std::vector<int32_t>& out) -> absl::Status {
    if (!j.contains(field) || j[field].is_null()) return absl::OkStatus();
    const Json& v = j[field];
    if (v.is_number_integer()) {
      out.push_back(v.get<int32_t>());
      return absl::OkStatus();
    }
    if (v.is_array()) {
      for (const Json& x : v) {
        if (!x.is_number_integer()) break;
        out.push_back(x.get<int32_t>());
      }
      if (out.size() == v.size()) return absl::OkStatus();
    }
    return absl::InvalidArgumentError(
        absl::StrCat(where, ": field '", field, "' must be an integer or a list of integers"));
  };
  std::vector<int32_t> bos, pad;
  DS_RETURN_IF_ERROR(ids("eos_token_id", g.eos_token_ids));
  DS_RETURN_IF_ERROR(ids("bos_token_id", bos));
  DS_RETURN_IF_ERROR(ids("pad_token_id", pad));
  if (!bos.empty()) g.bos_token_id = bos.front();
  if (!pad.empty()) g.pad_token_id = pad.front();
  auto number = [&](const char* field, float& out) -> absl::Status {
    if (!j.contains(field) || j[field].is_null()) return absl::OkStatus();
    if (!j[field].is_number()) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ": field '", field, "' must be a number"));
    }
    out = j[field].get<float>();
    return absl::OkStatus();
  };
  DS_RETURN_IF_ERROR(number("temperature", g.temperature));
  DS_RETURN_IF_ERROR(number("top_p", g.top_p));
  if (j.contains("top_k") && j["top_k"].is_number_integer()) g.top_k = j["top_k"].get<int32_t>();
  return g;
}

std::string GenerationConfig::ToJson() const {
  Json j;
  if (bos_token_id >= 0) j["bos_token_id"] = bos_token_id;
  if (eos_token_ids.size() == 1) {
    j["eos_token_id"] = eos_token_ids.front();
  } else if (!eos_token_ids.empty()) {
    j["eos_token_id"] = eos_token_ids;
  }
  if (pad_token_id >= 0) j["pad_token_id"] = pad_token_id;
  j["do_sample"] = true;
  j["temperature"] = temperature;
  j["top_p"] = top_p;
  if (top_k > 0) j["top_k"] = top_k;
  return j.dump(2) + "\n";
}

absl::StatusOr<LoadedModel> LoadModelDirectory(const std::string& dir,
                                               const ModelOptions& options) {
  const fs::path root(dir);
  if (!fs::is_directory(root))
    return absl::NotFoundError(absl::StrCat("model directory ", dir, " does not exist"));
  LoadedModel loaded;
  DS_ASSIGN_OR_RETURN(std::string config_text, ReadFileToString((root / "config.json").string()));
  DS_ASSIGN_OR_RETURN(loaded.config,
                      Qwen2Config::FromJson(config_text, (root / "config.json").string()));
  const fs::path generation_path = root / "generation_config.json";
  if (fs::exists(generation_path)) {
    DS_ASSIGN_OR_RETURN(std::string text, ReadFileToString(generation_path.string()));
    DS_ASSIGN_OR_RETURN(loaded.generation,
                        GenerationConfig::FromJson(text, generation_path.string()));
  }
  if (loaded.generation.eos_token_ids.empty()) {
    for (int64_t id : loaded.config.eos_token_ids)
      loaded.generation.eos_token_ids.push_back(static_cast<int32_t>(id));
  }
  DS_ASSIGN_OR_RETURN(loaded.tokenizer, LoadTokenizer((root / "tokenizer.json").string()));
  if (loaded.tokenizer->vocab_size() > loaded.config.vocab_size) {
    return absl::InvalidArgumentError(
        absl::StrCat(dir, ": the tokenizer has ", loaded.tokenizer->vocab_size(),
                     " tokens but the model only ", loaded.config.vocab_size));
  }
  DS_ASSIGN_OR_RETURN(loaded.model, Qwen2Model::Create(loaded.config, options));
  DS_ASSIGN_OR_RETURN(std::unique_ptr<CheckpointFiles> files, CheckpointFiles::Open(dir));

  // Every tensor of the checkpoint must be one the model expects, and the other way round.
  std::vector<std::string> expected = loaded.model->ParameterNames();
  const std::vector<std::string> present = files->names();
  const bool base_layout = !present.empty() &&
                           files->Find("model.embed_tokens.weight") == nullptr &&
                           files->Find("embed_tokens.weight") != nullptr;
  if (base_layout) {
    for (std::string& name : expected) {
      if (name.rfind("model.", 0) == 0) name = name.substr(6);
    }
  }
  DS_RETURN_IF_ERROR(Annotate(CheckTensorNames(expected, present), dir));

  absl::Status conversion;
  DS_RETURN_IF_ERROR(Annotate(loaded.model->LoadTensors([&](const std::string& name) -> at::Tensor {
    const SafetensorsFile::TensorView* view = files->Find(name);
    if (view == nullptr) return at::Tensor();
    absl::StatusOr<at::ScalarType> dtype = TorchDtype(view->dtype, name);
    if (!dtype.ok()) {
      conversion.Update(dtype.status());
      return at::Tensor();
    }
    // A view of the mapped bytes; LoadTensors copies it into the model before `files` closes.
    return at::from_blob(const_cast<uint8_t*>(view->data), view->shape,
                         at::TensorOptions().dtype(*dtype));
  }),
                              dir));
  DS_RETURN_IF_ERROR(conversion);
  // Files from outside: a broken one (random bytes, a diverged export) must not load as a
  // model. (Published versions, ImportWeights, come from the learner's own model.)
  std::vector<std::string> non_finite;
  for (const auto& [name, param] : loaded.model->NamedParameters()) {
    if (!at::isfinite(param).all().item<bool>()) non_finite.push_back(name);
  }
  if (!non_finite.empty()) {
    return absl::DataLossError(
        absl::StrCat(dir, ": ", non_finite.size(),
                     " tensor(s) hold NaN or Inf values: ", absl::StrJoin(non_finite, ", ")));
  }
  return loaded;
}

absl::Status SaveModelDirectory(const std::string& dir, const Qwen2Model& model,
                                std::string_view tokenizer_json,
                                const GenerationConfig& generation) {
  DS_ASSIGN_OR_RETURN(const std::string scratch, MakeScratchDirectory(dir));
  const fs::path temp(scratch);
  const Qwen2Config& config = model.config();
  DS_ASSIGN_OR_RETURN(const Dtype dtype, WeightDtype(config.dtype));
  DS_ASSIGN_OR_RETURN(const at::ScalarType torch_dtype, TorchDtype(dtype, "weights"));
  std::vector<at::Tensor> keep_alive;  // the CPU copies whose bytes the writer reads
  std::vector<TensorToWrite> tensors;
  for (const auto& [name, tensor] : model.NamedParameters()) {
    at::Tensor cpu = tensor.detach().to(at::kCPU, torch_dtype).contiguous();
    keep_alive.push_back(cpu);
    tensors.push_back(
        TensorToWrite{name, dtype, cpu.sizes().vec(),
                      absl::Span<const uint8_t>(static_cast<const uint8_t*>(cpu.data_ptr()),
                                                static_cast<size_t>(cpu.nbytes()))});
  }
  DS_RETURN_IF_ERROR(WriteSafetensors((temp / "model.safetensors").string(), std::move(tensors),
                                      {{"format", "pt"}}));
  DS_RETURN_IF_ERROR(WriteFileAtomically((temp / "config.json").string(), config.ToJson()));
  DS_RETURN_IF_ERROR(
      WriteFileAtomically((temp / "generation_config.json").string(), generation.ToJson()));
  DS_RETURN_IF_ERROR(WriteFileAtomically((temp / "tokenizer.json").string(), tokenizer_json));
  return ReplaceDirectory(scratch, dir);
}

absl::Status InitModelDirectory(std::string_view preset, const std::string& dir, uint64_t seed,
                                bool overwrite) {
  const fs::path target(dir);
  if (!overwrite && fs::exists(target) && !(fs::is_directory(target) && fs::is_empty(target))) {
    return absl::AlreadyExistsError(
        absl::StrCat(dir, " already exists and is not empty (pass --force to replace it)"));
  }
  DS_ASSIGN_OR_RETURN(const std::string tokenizer_json, DefaultTaskTokenizerJson());
  DS_ASSIGN_OR_RETURN(std::unique_ptr<Tokenizer> tokenizer,
                      ParseTokenizerJson(tokenizer_json, "task tokenizer"));
  // Round the embedding up to a multiple of 64 rows, as real checkpoints do; sampling masks
  // the ids the tokenizer does not have.
  const int64_t vocab = (tokenizer->vocab_size() + 63) / 64 * 64;
  DS_ASSIGN_OR_RETURN(Qwen2Config config, Qwen2Config::Preset(preset, vocab));
  const std::optional<TokenId> bos = tokenizer->TokenToId("<bos>");
  const std::optional<TokenId> eos = tokenizer->TokenToId("<eos>");
  const std::optional<TokenId> pad = tokenizer->TokenToId("<pad>");
  DS_CHECK(bos && eos && pad) << "the task tokenizer lacks its special tokens";
  config.bos_token_id = *bos;
  config.eos_token_ids = {*eos};
  DS_ASSIGN_OR_RETURN(std::unique_ptr<Qwen2Model> model, Qwen2Model::Create(config, {}));
  model->InitializeRandom(seed);
  GenerationConfig generation;
  generation.bos_token_id = *bos;
  generation.eos_token_ids = {*eos};
  generation.pad_token_id = *pad;
  return SaveModelDirectory(dir, *model, tokenizer_json, generation);
}

}  // namespace deepsearch
