#include "common/tasks/problem.h"

#include <cstdint>
#include <string>

#include "common/core/hash.h"

namespace deepsearch {

std::string StableProblemId(std::string_view prompt, std::string_view answer) {
  StreamingHash64 h;
  const uint64_t prompt_size = prompt.size(), answer_size = answer.size();
  h.Update(&prompt_size, sizeof(prompt_size));
  h.Update(prompt);
  h.Update(&answer_size, sizeof(answer_size));
  h.Update(answer);
  return "p-" + HashHex64(h.Digest());
}

}  // namespace deepsearch
