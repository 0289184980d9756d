// The built-in task families' factories (each family's .cc defines one), for the registry.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "common/tasks/task.h"

namespace deepsearch {

// Each factory reads its knobs from the options (TaskOptions::Int etc.) and returns the
// family, or an error naming the bad knob.
absl::StatusOr<std::unique_ptr<TaskFamily>> MakeMathTask(TaskOptions& options);
absl::StatusOr<std::unique_ptr<TaskFamily>> MakeAdditionTask(TaskOptions& options);
absl::StatusOr<std::unique_ptr<TaskFamily>> MakeCountdownTask(TaskOptions& options);
absl::StatusOr<std::unique_ptr<TaskFamily>> MakeModularTask(TaskOptions& options);
absl::StatusOr<std::unique_ptr<TaskFamily>> MakePathTask(TaskOptions& options);
absl::StatusOr<std::unique_ptr<TaskFamily>> MakeWordTask(TaskOptions& options);

inline std::vector<std::pair<std::string, TaskFactory>> BuiltinTaskFamilies() {
  return {{"math", MakeMathTask},           {"addition", MakeAdditionTask},
          {"countdown", MakeCountdownTask}, {"modular", MakeModularTask},
          {"path", MakePathTask},           {"word", MakeWordTask}};
}

}  // namespace deepsearch
