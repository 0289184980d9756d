// The precompiled header shared by every translation unit that uses LibTorch.
//
// ATen is the tensor library under torch::; the model, engine and learner are written
// against it directly. It costs about a quarter of <torch/torch.h> to parse, and the PCH
// removes even that from each translation unit after the first.
#pragma once

#include <ATen/ATen.h>
#include <c10/core/GradMode.h>  // c10::NoGradGuard (ATen.h no longer brings it in 2.x)
#include <c10/util/Exception.h>
