// Waiting for SIGINT/SIGTERM in long-running subcommands (actor, learner, cache service).
//
//   BlockTerminationSignals();   // first thing, before any thread starts: threads inherit it
//   ... start the service ...
//   const int signal = WaitForTerminationSignal();  // blocks the calling thread
//   ... graceful shutdown ...
#pragma once

namespace deepsearch::cli {

// Blocks SIGINT and SIGTERM in the calling thread (and the threads it starts later), so that
// they are only ever received by WaitForTerminationSignal.
void BlockTerminationSignals();
// Waits for SIGINT or SIGTERM and returns its number.
int WaitForTerminationSignal();

}  // namespace deepsearch::cli
