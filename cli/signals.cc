#include "cli/signals.h"

#include <pthread.h>
#include <signal.h>

#include <cerrno>
#include <ctime>

namespace deepsearch::cli {

namespace {
sigset_t TerminationSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  return set;
}
}  // namespace

void BlockTerminationSignals() {
  const sigset_t set = TerminationSignals();
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
}

int WaitForTerminationSignal() {
  const sigset_t set = TerminationSignals();
  int signal = 0;
  while (sigwait(&set, &signal) != 0) {
  }
  return signal;
}

int WaitForTerminationSignalOr(const std::function<bool()>& done) {
  const sigset_t set = TerminationSignals();
  const timespec poll = {0, 200 * 1000 * 1000};
  while (!done()) {
    const int signal = sigtimedwait(&set, nullptr, &poll);
    if (signal > 0) return signal;
  }
  return 0;
}

}  // namespace deepsearch::cli
