// deepsearch model init --preset tiny|small --out DIR: a randomly initialised model directory.
// deepsearch generate --model DIR --prompt TEXT [...]: sample continuations from a model.
#include <filesystem>
#include <iostream>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "common/model/generator.h"
#include "common/model/model_dir.h"
#include "common/model/torch_runtime.h"

namespace deepsearch::cli {
namespace {

namespace fs = std::filesystem;

struct InitArgs {
  std::string preset = "tiny";
  std::string out;
  uint64_t seed = 0;
  bool force = false;
  bool if_missing = false;
};

struct GenerateArgs {
  std::string model;
  std::string prompt;
  int32_t n = 1;
  int32_t max_tokens = 64;
  float temperature = 1.0f;
  float top_p = 1.0f;
  int32_t top_k = 0;
  uint64_t seed = 0;
  std::string device = "cpu";
  std::string dtype = "float32";
  bool json = false;
};

int RunGenerate(const GenerateArgs& args) {
  auto fail = [](const absl::Status& s) {
    std::cerr << "deepsearch generate: " << s.message() << "\n";
    return kExitFailure;
  };
  if (absl::Status s = ConfigureTorchRuntime(RuntimeConfig{}); !s.ok()) return fail(s);
  ModelOptions options;
  absl::StatusOr<at::ScalarType> dtype = ParseModelDtype(args.dtype);
  if (!dtype.ok()) return fail(dtype.status());
  absl::StatusOr<at::Device> device = ParseDevice(args.device);
  if (!device.ok()) return fail(device.status());
  options.dtype = *dtype;
  options.device = *device;
  absl::StatusOr<LoadedModel> loaded = LoadModelDirectory(args.model, options);
  if (!loaded.ok()) return fail(loaded.status());
  // Special tokens may be written in the prompt ("<bos>1+2=").
  absl::StatusOr<std::vector<TokenId>> prompt =
      loaded->tokenizer->Encode(args.prompt, /*allow_special=*/true);
  if (!prompt.ok()) return fail(prompt.status());
  if (prompt->empty()) return fail(absl::InvalidArgumentError("the prompt is empty"));

  GenerationRequest request;
  request.prompt = *prompt;
  request.num_samples = args.n;
  request.sampling.temperature = args.temperature;
  request.sampling.top_p = args.top_p;
  request.sampling.top_k = args.top_k;
  request.sampling.seed = args.seed;
  request.sampling.max_new_tokens = args.max_tokens;
  const Tokenizer& tokenizer = *loaded->tokenizer;
  Generator generator(*loaded->model,
                      {.eos_token_ids = loaded->generation.eos_token_ids,
                       .vocab_limit = tokenizer.vocab_size(),
                       .token_bytes = [&](int32_t id) { return tokenizer.TokenBytes(id); }});
  absl::StatusOr<std::vector<std::vector<GeneratedSample>>> out = generator.Generate({&request, 1});
  if (!out.ok()) return fail(out.status());
  const std::vector<GeneratedSample>& samples = (*out)[0];
  for (size_t i = 0; i < samples.size(); ++i) {
    const GeneratedSample& s = samples[i];
    const std::string text = tokenizer.Decode(s.tokens, /*skip_special=*/true);
    double sum = 0;
    for (float lp : s.logprobs) sum += lp;
    if (args.json) {
      nlohmann::json j;
      j["sample"] = i;
      j["text"] = text;
      j["tokens"] = s.tokens;
      j["logprobs"] = s.logprobs;
      j["entropies"] = s.entropies;
      j["finish"] = FinishReasonName(s.finish);
      std::cout << j.dump() << "\n";
    } else {
      std::cout << "--- sample " << i + 1 << "/" << samples.size() << " (" << s.tokens.size()
                << " tokens, finish " << FinishReasonName(s.finish) << ", mean log-prob "
                << (s.tokens.empty() ? 0.0 : sum / s.tokens.size()) << ") ---\n"
                << text << "\n";
    }
  }
  return kExitOk;
}

}  // namespace

void AddModelCommand(CLI::App& app, int& exit_code) {
  CLI::App* model = app.add_subcommand("model", "Create model directories");
  model->require_subcommand(1);
  auto init = std::make_shared<InitArgs>();
  CLI::App* init_cmd = model->add_subcommand(
      "init",
      "Write a randomly initialised model (config.json, model.safetensors, tokenizer.json, "
      "generation_config.json) with the built-in task tokenizer");
  init_cmd->add_option("--preset", init->preset, "tiny (~0.4M parameters) or small (~6M)")
      ->check(CLI::IsMember({"tiny", "small"}))
      ->capture_default_str();
  init_cmd->add_option("--out", init->out, "The model directory to create")->required();
  init_cmd->add_option("--seed", init->seed, "Initialisation seed")->capture_default_str();
  init_cmd->add_flag("--force", init->force, "Replace an existing directory");
  init_cmd->add_flag("--if-missing", init->if_missing,
                     "Do nothing when --out already holds a model (config.json): for init "
                     "containers and scripts that run on every start");
  init_cmd->callback([init, &exit_code] {
    if (init->if_missing && !init->force && fs::exists(fs::path(init->out) / "config.json")) {
      std::cout << init->out << " already holds a model; left as it is\n";
      exit_code = kExitOk;
      return;
    }
    if (absl::Status s = InitModelDirectory(init->preset, init->out, init->seed, init->force);
        !s.ok()) {
      std::cerr << "deepsearch model init: " << s.message() << "\n";
      exit_code = kExitFailure;
      return;
    }
    std::cout << "wrote a " << init->preset << " model to " << init->out << "\n";
    exit_code = kExitOk;
  });

  auto gen = std::make_shared<GenerateArgs>();
  CLI::App* generate =
      app.add_subcommand("generate", "Sample continuations of a prompt from a model directory");
  generate->add_option("--model", gen->model, "Model directory (Hugging Face layout)")->required();
  generate
      ->add_option("--prompt", gen->prompt,
                   "Prompt text; special tokens such as <bos> are recognised")
      ->required();
  generate->add_option("--n", gen->n, "Samples")->check(CLI::Range(1, 4096))->capture_default_str();
  generate->add_option("--max-tokens", gen->max_tokens, "Most new tokens per sample")
      ->check(CLI::Range(1, 1 << 20))
      ->capture_default_str();
  generate->add_option("--temperature", gen->temperature, "Sampling temperature (> 0)")
      ->capture_default_str();
  generate->add_option("--top-p", gen->top_p, "Nucleus sampling mass in (0, 1]")
      ->capture_default_str();
  generate->add_option("--top-k", gen->top_k, "Keep the k most likely tokens (0: off; 1: greedy)")
      ->capture_default_str();
  generate->add_option("--seed", gen->seed, "Sampling seed")->capture_default_str();
  generate->add_option("--device", gen->device, "cpu, cuda or cuda:N")->capture_default_str();
  generate->add_option("--dtype", gen->dtype, "float32, bfloat16 or float16")
      ->capture_default_str();
  generate->add_flag("--json", gen->json,
                     "One JSON object per sample, with tokens, log-probs and entropies");
  generate->callback([gen, &exit_code] { exit_code = RunGenerate(*gen); });
}

}  // namespace deepsearch::cli
