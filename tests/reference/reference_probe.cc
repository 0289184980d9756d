// reference_probe: the project's implementation seen from outside, for the tests that hold it
// against Hugging Face's own libraries (tests/reference/*.py) and for the GPU check
// (scripts/gpu_check.sh). Each subcommand reads files, runs one piece of the project and
// writes what it computed; the Python side compares.
//
//   reference_probe logits --model DIR --batch FILE.json --out FILE.safetensors
//                          [--dtype float32|bfloat16|float16] [--device cpu|cuda]
//       FILE.json: [[id, ...], ...], rows of any lengths. The rows are right-padded into one
//       batch and run through Qwen2Model::Forward (no cache); the output holds "logits"
//       F32 [B, T, V] (zero at padded positions) and "lengths" I64 [B].
//   reference_probe decode --model DIR --batch FILE.json --out FILE.safetensors [...]
//       The same rows through the KV-cached path instead: each row prefilled up to its last
//       token, then the last token decoded alone (Qwen2Model::Step); "logits" F32 [B, V] holds
//       the logits after each row's last token, comparable to Forward's at length - 1.
//   reference_probe safetensors-dump FILE
//       One JSON object: header_size, metadata, and per tensor (in file order) its dtype,
//       shape, byte offsets and the XXH3-64 of its bytes (hex).
//   reference_probe safetensors-copy IN OUT
//       Reads IN with the project's reader and writes every tensor and the metadata to OUT
//       with the project's writer.
//
// Exit codes: 0 done, 1 failed (the message names what), 2 usage.
#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"

#include "common/core/files.h"
#include "common/core/hash.h"
#include "common/core/status.h"
#include "common/model/model_dir.h"
#include "common/model/torch_pch.h"
#include "common/model/torch_runtime.h"
#include "common/weights/safetensors.h"

namespace deepsearch {
namespace {

struct ModelArgs {
  std::string model, batch, out;
  std::string dtype = "float32";
  std::string device = "cpu";
};

absl::StatusOr<std::vector<std::vector<int64_t>>> ReadBatch(const std::string& path) {
  DS_ASSIGN_OR_RETURN(const std::string text, ReadFileToString(path));
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": not JSON: ", e.what()));
  }
  if (!j.is_array() || j.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": expected a non-empty array of rows"));
  }
  std::vector<std::vector<int64_t>> rows;
  for (size_t r = 0; r < j.size(); ++r) {
    if (!j[r].is_array() || j[r].empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": row ", r, " is not a non-empty array"));
    }
    std::vector<int64_t>& row = rows.emplace_back();
    for (const nlohmann::json& v : j[r]) {
      if (!v.is_number_integer()) {
        return absl::InvalidArgumentError(absl::StrCat(path, ": row ", r, " holds ", v.dump()));
      }
      row.push_back(v.get<int64_t>());
    }
  }
  return rows;
}

absl::StatusOr<LoadedModel> Load(const ModelArgs& args) {
  DS_RETURN_IF_ERROR(ConfigureTorchRuntime(RuntimeConfig{}));
  ModelOptions options;
  DS_ASSIGN_OR_RETURN(options.dtype, ParseModelDtype(args.dtype));
  DS_ASSIGN_OR_RETURN(options.device, ParseDevice(args.device));
  return LoadModelDirectory(args.model, options);
}

absl::Status WriteTensors(const std::string& path, const std::vector<at::Tensor>& tensors,
                          const std::vector<std::string>& names) {
  std::vector<at::Tensor> host;
  std::vector<TensorToWrite> out;
  for (size_t i = 0; i < tensors.size(); ++i) {
    host.push_back(tensors[i].to(at::kCPU).contiguous());
    const at::Tensor& t = host.back();
    const Dtype dtype = t.scalar_type() == at::kFloat ? Dtype::kF32 : Dtype::kI64;
    out.push_back({names[i], dtype, t.sizes().vec(),
                   absl::Span<const uint8_t>(static_cast<const uint8_t*>(t.data_ptr()),
                                             static_cast<size_t>(t.nbytes()))});
  }
  return WriteSafetensors(path, std::move(out));
}

// Right-padded [B, T] ids and [B] lengths on `device`.
std::pair<at::Tensor, at::Tensor> Pad(const std::vector<std::vector<int64_t>>& rows,
                                      at::Device device) {
  size_t longest = 0;
  for (const auto& r : rows) longest = std::max(longest, r.size());
  at::Tensor ids =
      at::zeros({static_cast<int64_t>(rows.size()), static_cast<int64_t>(longest)}, at::kLong);
  at::Tensor lengths = at::zeros({static_cast<int64_t>(rows.size())}, at::kLong);
  for (size_t b = 0; b < rows.size(); ++b) {
    for (size_t t = 0; t < rows[b].size(); ++t) {
      ids[static_cast<int64_t>(b)][static_cast<int64_t>(t)] = rows[b][t];
    }
    lengths[static_cast<int64_t>(b)] = static_cast<int64_t>(rows[b].size());
  }
  return {ids.to(device), lengths.to(device)};
}

absl::Status Logits(const ModelArgs& args) {
  DS_ASSIGN_OR_RETURN(const auto rows, ReadBatch(args.batch));
  DS_ASSIGN_OR_RETURN(LoadedModel loaded, Load(args));
  c10::NoGradGuard no_grad;
  const auto [ids, lengths] = Pad(rows, loaded.model->options().device);
  const at::Tensor logits = loaded.model->Forward(ids, lengths);
  return WriteTensors(args.out, {logits, lengths}, {"logits", "lengths"});
}

absl::Status Decode(const ModelArgs& args) {
  DS_ASSIGN_OR_RETURN(const auto rows, ReadBatch(args.batch));
  DS_ASSIGN_OR_RETURN(LoadedModel loaded, Load(args));
  c10::NoGradGuard no_grad;
  KvCache cache = loaded.model->NewCache();
  std::vector<std::vector<int32_t>> tokens;
  for (const auto& r : rows) tokens.emplace_back(r.begin(), r.end());
  std::vector<StepInput> prefill, last;
  for (const auto& t : tokens) {
    const KvCache::SequenceId sequence = cache.Create();
    if (t.size() > 1) prefill.push_back({sequence, absl::MakeConstSpan(t).first(t.size() - 1)});
    last.push_back({sequence, absl::MakeConstSpan(t).last(1)});
  }
  if (!prefill.empty()) DS_RETURN_IF_ERROR(loaded.model->Step(cache, prefill).status());
  DS_ASSIGN_OR_RETURN(const at::Tensor logits, loaded.model->Step(cache, last));
  return WriteTensors(args.out, {logits}, {"logits"});
}

absl::Status Dump(const std::string& path) {
  DS_ASSIGN_OR_RETURN(const auto file, SafetensorsFile::Open(path));
  nlohmann::json out;
  out["header_size"] = file->header_size();
  out["metadata"] = file->metadata();
  out["tensors"] = nlohmann::json::array();
  const uint8_t* base = file->tensors().empty() ? nullptr : file->tensors().front().data;
  for (const SafetensorsFile::TensorView& t : file->tensors()) {
    const size_t begin = base == nullptr ? 0 : static_cast<size_t>(t.data - base);
    out["tensors"].push_back({{"name", t.name},
                              {"dtype", std::string(DtypeName(t.dtype))},
                              {"shape", t.shape},
                              {"data_offsets", {begin, begin + t.size}},
                              {"xxh3", HashHex64(Hash64(std::string_view(
                                           reinterpret_cast<const char*>(t.data), t.size)))}});
  }
  std::cout << out.dump() << "\n";
  return absl::OkStatus();
}

absl::Status Copy(const std::string& in, const std::string& out) {
  DS_ASSIGN_OR_RETURN(const auto file, SafetensorsFile::Open(in));
  std::vector<TensorToWrite> tensors;
  for (const SafetensorsFile::TensorView& t : file->tensors()) {
    tensors.push_back({t.name, t.dtype, t.shape, absl::Span<const uint8_t>(t.data, t.size)});
  }
  return WriteSafetensors(out, std::move(tensors), file->metadata());
}

int Main(int argc, char** argv) {
  CLI::App app{"The project's model, tokenizer-free, seen from outside (tests/reference)"};
  app.require_subcommand(1);
  ModelArgs model_args;
  auto add_model = [&](CLI::App* cmd) {
    cmd->add_option("--model", model_args.model, "A model directory")->required();
    cmd->add_option("--batch", model_args.batch, "JSON rows of token ids")->required();
    cmd->add_option("--out", model_args.out, "The safetensors file to write")->required();
    cmd->add_option("--dtype", model_args.dtype)->capture_default_str();
    cmd->add_option("--device", model_args.device)->capture_default_str();
  };
  CLI::App* logits = app.add_subcommand("logits", "Forward over right-padded rows");
  add_model(logits);
  CLI::App* decode = app.add_subcommand("decode", "Prefill, then decode each row's last token");
  add_model(decode);
  std::string file, copy_out;
  CLI::App* dump = app.add_subcommand("safetensors-dump", "A safetensors file's header as JSON");
  dump->add_option("file", file)->required();
  CLI::App* copy = app.add_subcommand("safetensors-copy", "Read a file and write it again");
  copy->add_option("in", file)->required();
  copy->add_option("out", copy_out)->required();
  CLI11_PARSE(app, argc, argv);

  absl::Status status;
  if (logits->parsed()) status = Logits(model_args);
  if (decode->parsed()) status = Decode(model_args);
  if (dump->parsed()) status = Dump(file);
  if (copy->parsed()) status = Copy(file, copy_out);
  if (!status.ok()) {
    std::cerr << "reference_probe: " << status.message() << "\n";
    return 1;
  }
  return 0;
}

}  // namespace
}  // namespace deepsearch

int main(int argc, char** argv) { return deepsearch::Main(argc, argv); }
