#include "common/model/weight_export.h"

#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"

#include "common/core/status.h"
#include "common/weights/checkpoint_files.h"

namespace deepsearch {

absl::StatusOr<at::ScalarType> TorchDtype(Dtype dtype, std::string_view tensor) {
  switch (dtype) {
    case Dtype::kF32:
      return at::kFloat;
    case Dtype::kBF16:
      return at::kBFloat16;
    case Dtype::kF16:
      return at::kHalf;
    default:
      return absl::InvalidArgumentError(absl::StrCat("tensor ", std::string(tensor), ": dtype ",
                                                     std::string(DtypeName(dtype)),
                                                     " is not a floating-point weight type"));
  }
}

absl::StatusOr<Dtype> WeightDtype(std::string_view config_dtype) {
  if (config_dtype == "float32") return Dtype::kF32;
  if (config_dtype == "bfloat16") return Dtype::kBF16;
  if (config_dtype == "float16") return Dtype::kF16;
  return absl::InvalidArgumentError(
      absl::StrCat("cannot store weights as ", std::string(config_dtype)));
}

absl::StatusOr<std::string> ConfigDtypeName(Dtype dtype) {
  switch (dtype) {
    case Dtype::kF32:
      return "float32";
    case Dtype::kBF16:
      return "bfloat16";
    case Dtype::kF16:
      return "float16";
    default:
      return absl::InvalidArgumentError(absl::StrCat(
          "cannot export weights as ", std::string(DtypeName(dtype)), " (F32, BF16 or F16 only)"));
  }
}

absl::StatusOr<WeightSet> ExportWeights(const Qwen2Model& model, int64_t version, Dtype dtype) {
  DS_ASSIGN_OR_RETURN(std::string dtype_name, ConfigDtypeName(dtype));
  DS_ASSIGN_OR_RETURN(const at::ScalarType torch_dtype, TorchDtype(dtype, "weights"));
  WeightSet set;
  set.version = version;
  Qwen2Config config = model.config();
  config.dtype = std::move(dtype_name);
  set.model_config_json = config.ToJson();
  try {
    const std::vector<std::pair<std::string, at::Tensor>> parameters = model.NamedParameters();
    size_t total = 0;
    for (const auto& [name, tensor] : parameters)
      total += static_cast<size_t>(tensor.numel()) * DtypeSize(dtype);
    set.payload.reserve(total);
    set.tensors.reserve(parameters.size());
    for (const auto& [name, tensor] : parameters) {
      // A no-op for a contiguous CPU tensor already in `dtype`: Add makes the one copy.
      const at::Tensor cpu = tensor.detach().to(at::kCPU, torch_dtype).contiguous();
      DS_RETURN_IF_ERROR(
          set.Add(name, dtype, cpu.sizes().vec(),
                  std::string_view(static_cast<const char*>(cpu.data_ptr()), cpu.nbytes())));
    }
  } catch (const c10::Error& e) {
    return absl::InternalError(
        absl::StrCat("exporting weights (version ", version, "): ", e.what_without_backtrace()));
  }
  return set;
}

absl::StatusOr<std::unique_ptr<Qwen2Model>> ImportWeights(const WeightSet& set,
                                                          const ModelOptions& options) {
  const std::string what = absl::StrCat("weight set version ", set.version);
  DS_RETURN_IF_ERROR(Annotate(set.Validate(/*verify_checksums=*/false), what));
  DS_ASSIGN_OR_RETURN(const Qwen2Config config,
                      Qwen2Config::FromJson(set.model_config_json, what + " config"));
  DS_ASSIGN_OR_RETURN(std::unique_ptr<Qwen2Model> model, Qwen2Model::Create(config, options));
  std::vector<std::string> present;
  present.reserve(set.tensors.size());
  for (const WeightTensor& t : set.tensors) present.push_back(t.name);
  DS_RETURN_IF_ERROR(Annotate(CheckTensorNames(model->ParameterNames(), present), what));

  for (const WeightTensor& t : set.tensors)
    DS_RETURN_IF_ERROR(Annotate(TorchDtype(t.dtype, t.name).status(), what));
  DS_RETURN_IF_ERROR(Annotate(model->LoadTensors([&](const std::string& name) -> at::Tensor {
    const WeightTensor* t = set.Find(name);
    if (t == nullptr) return at::Tensor();
    // A view of the set's bytes; LoadTensors copies it into the model, and never writes it.
    return at::from_blob(const_cast<char*>(set.data().data() + t->offset), t->shape,
                         at::TensorOptions().dtype(TorchDtype(t->dtype, name).value()));
  }),
                              what));
  return model;
}

absl::Status CheckSameArchitecture(const WeightSet& set, const Qwen2Config& config) {
  const std::string what = absl::StrCat("weight set version ", set.version);
  DS_ASSIGN_OR_RETURN(const Qwen2Config theirs,
                      Qwen2Config::FromJson(set.model_config_json, what + " config"));
  return Annotate(theirs.CheckSameArchitecture(config), absl::StrCat(what, " vs the model"));
}

}  // namespace deepsearch
