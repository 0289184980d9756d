// Waiting for SIGINT/SIGTERM in long-running subcommands (actor, learner, cache service).
//
//   BlockTerminationSignals();   // first thing, before any thread starts: threads inherit it
//   ... start the service ...
//   const int signal = WaitForTerminationSignal();  // blocks the calling thread
//   ... graceful shutdown ...
#pragma once

#include <functional>

namespace deepsearch::cli {

// Blocks SIGINT and SIGTERM in the calling thread (and the threads it starts later), so that
// they are only ever received by WaitForTerminationSignal.
void BlockTerminationSignals();
// Waits for SIGINT or SIGTERM and returns its number.
int WaitForTerminationSignal();
// Waits for SIGINT or SIGTERM (returns its number) or for `done` to return true (returns 0),
// checking `done` every 200 ms.
int WaitForTerminationSignalOr(const std::function<bool()>& done);

}  // namespace deepsearch::cli
