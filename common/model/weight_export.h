// A model's parameters as a WeightSet (common/weights/weight_set.h) and back: what the
// learner publishes and what an actor installs into its engine.
//
//   DS_ASSIGN_OR_RETURN(WeightSet set, ExportWeights(model, /*version=*/3, Dtype::kBF16));
//   DS_ASSIGN_OR_RETURN(std::unique_ptr<Qwen2Model> copy, ImportWeights(set, options));
//
// Tensors carry their Hugging Face names (Qwen2Model::NamedParameters), so a set is the
// same content as the model's model.safetensors. The set's model_config_json is the model's
// config.json with `torch_dtype` set to the exported dtype.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

#include "common/model/qwen2_model.h"
#include "common/weights/weight_set.h"

namespace deepsearch {

// Exports every parameter, converted to `dtype` (kF32, kBF16 or kF16), from any device.
absl::StatusOr<WeightSet> ExportWeights(const Qwen2Model& model, int64_t version, Dtype dtype);

// A new model with the set's architecture (its model_config_json) and weights, on the device
// and in the dtype `options` names. Errors name a missing, unexpected or misshapen tensor or
// a config that does not parse.
absl::StatusOr<std::unique_ptr<Qwen2Model>> ImportWeights(const WeightSet& set,
                                                          const ModelOptions& options);

// The torch dtype of a floating-point weight dtype (kF32, kBF16, kF16); InvalidArgument naming
// `tensor` for any other.
absl::StatusOr<at::ScalarType> TorchDtype(Dtype dtype, std::string_view tensor);
// The weight dtype named by a config.json dtype ("float32", "bfloat16", "float16"), and back.
absl::StatusOr<Dtype> WeightDtype(std::string_view config_dtype);
absl::StatusOr<std::string> ConfigDtypeName(Dtype dtype);

// Whether `set` fits `config` (the same architecture: every field that shapes a tensor):
// FailedPrecondition naming the first field that differs, InvalidArgument for a set whose
// config does not parse.
absl::Status CheckSameArchitecture(const WeightSet& set, const Qwen2Config& config);

}  // namespace deepsearch
