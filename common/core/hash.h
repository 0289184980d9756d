// Stable content hashes: XXH3 (xxHash 0.8), the same value on every platform and run.
//
// Used for content-derived ids (problems without an id, solution dedupe keys) and for
// checksums of weight chunks. Not cryptographic: do not use against an adversary.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace deepsearch {

struct Hash128 {
  uint64_t high = 0;
  uint64_t low = 0;
  // 32 lowercase hex digits, high word first.
  std::string Hex() const;
  friend bool operator==(const Hash128&, const Hash128&) = default;
};

uint64_t Hash64(std::string_view data, uint64_t seed = 0);
Hash128 Hash128Of(std::string_view data);
// 16 lowercase hex digits.
std::string HashHex64(uint64_t hash);

// Incremental XXH3-64 over a stream of pieces; equals Hash64 of their concatenation.
class StreamingHash64 {
 public:
  StreamingHash64();
  ~StreamingHash64();
  StreamingHash64(const StreamingHash64&) = delete;
  StreamingHash64& operator=(const StreamingHash64&) = delete;
  void Update(std::string_view data);
  void Update(const void* data, size_t size);
  uint64_t Digest() const;

 private:
  void* state_;  // XXH3_state_t, kept out of this header
};

}  // namespace deepsearch
