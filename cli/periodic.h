// Runs a callback every `interval` on its own thread until destroyed (the status lines of the
// long-running commands). An interval of zero or less runs nothing. The destructor stops the
// thread without waiting out the interval.
#pragma once

#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>
#include <utility>

#include "absl/time/time.h"

namespace deepsearch::cli {

class Periodic {
 public:
  Periodic(absl::Duration interval, std::function<void()> tick)
      : interval_(interval), tick_(std::move(tick)) {
    if (interval_ > absl::ZeroDuration()) thread_ = std::thread([this] { Run(); });
  }
  ~Periodic() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
  }
  Periodic(const Periodic&) = delete;
  Periodic& operator=(const Periodic&) = delete;

 private:
  void Run() {
    std::unique_lock<std::mutex> lock(mu_);
    while (!cv_.wait_for(lock, absl::ToChronoNanoseconds(interval_), [this] { return stop_; })) {
      lock.unlock();
      tick_();
      lock.lock();
    }
  }

  const absl::Duration interval_;
  const std::function<void()> tick_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace deepsearch::cli
