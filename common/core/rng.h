// Seeded, reproducible random numbers.
//
// Rng is xoshiro256** (Blackman & Vigna, 2018) seeded through SplitMix64, with its own
// uniform, integer and normal draws, so a seed gives the same numbers on every platform,
// compiler and standard library (std::*_distribution does not promise that).
//
// Streams: Rng(seed).Fork(k) gives a generator for sub-stream k that is independent of the
// parent's own sequence and of every other k (the child seed is a SplitMix64 hash of the
// parent's seed and k). Use it to give each tree, actor or problem its own stream:
//   Rng tree_rng = Rng(run_seed).Fork(tree_id);
//
// Not thread-safe: one Rng per thread (fork one for each).
#pragma once

#include <array>
#include <cstdint>
#include <limits>
#include <string_view>

namespace deepsearch {

// SplitMix64 finaliser: a bijective 64-bit mix with good avalanche.
uint64_t SplitMix64(uint64_t x);

// A seed for a named purpose, stable across runs: DeriveSeed(run_seed, "sampling").
uint64_t DeriveSeed(uint64_t seed, std::string_view purpose);

class Rng {
 public:
  using result_type = uint64_t;
  using State = std::array<uint64_t, 4>;

  explicit Rng(uint64_t seed);

  // The next raw 64-bit output.
  uint64_t Next();
  uint64_t operator()() { return Next(); }
  static constexpr uint64_t min() { return 0; }
  static constexpr uint64_t max() { return std::numeric_limits<uint64_t>::max(); }

  // Uniform in [0, 1) with 53 random bits.
  double Uniform();
  // Uniform integer in [lo, hi], inclusive, without modulo bias (Lemire's method).
  // Requires lo <= hi.
  int64_t UniformInt(int64_t lo, int64_t hi);
  // Standard normal (Marsaglia polar method).
  double Normal();
  // true with probability p.
  bool Bernoulli(double p) { return Uniform() < p; }

  // An independent generator for sub-stream `stream` (see the file comment).
  Rng Fork(uint64_t stream) const;

  uint64_t seed() const { return seed_; }
  // The full generator state, for checkpoints; SetState(GetState()) resumes exactly.
  State GetState() const { return state_; }
  void SetState(const State& state) { state_ = state; }

 private:
  uint64_t seed_;
  State state_;
};

}  // namespace deepsearch
