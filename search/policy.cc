#include "search/policy.h"

#include "absl/synchronization/notification.h"

namespace deepsearch {

ExpansionResult Policy::Expand(ExpansionRequest request) {
  absl::Notification done;
  ExpansionResult result;
  Submit(std::move(request), [&](ExpansionResult r) {
    result = std::move(r);
    done.Notify();
  });
  done.WaitForNotification();
  return result;
}

}  // namespace deepsearch
