#include "common/core/hash.h"

#include <xxhash.h>

#include "absl/strings/str_format.h"

#include "common/core/logging.h"

namespace deepsearch {

std::string Hash128::Hex() const { return absl::StrFormat("%016x%016x", high, low); }

uint64_t Hash64(std::string_view data, uint64_t seed) {
  return XXH3_64bits_withSeed(data.data(), data.size(), seed);
}

Hash128 Hash128Of(std::string_view data) {
  const XXH128_hash_t h = XXH3_128bits(data.data(), data.size());
  return Hash128{h.high64, h.low64};
}

std::string HashHex64(uint64_t hash) { return absl::StrFormat("%016x", hash); }

StreamingHash64::StreamingHash64() : state_(XXH3_createState()) {
  DS_CHECK(state_ != nullptr) << "XXH3_createState failed";
  XXH3_64bits_reset(static_cast<XXH3_state_t*>(state_));
}

StreamingHash64::~StreamingHash64() { XXH3_freeState(static_cast<XXH3_state_t*>(state_)); }

void StreamingHash64::Update(std::string_view data) { Update(data.data(), data.size()); }

void StreamingHash64::Update(const void* data, size_t size) {
  XXH3_64bits_update(static_cast<XXH3_state_t*>(state_), data, size);
}

uint64_t StreamingHash64::Digest() const {
  return XXH3_64bits_digest(static_cast<const XXH3_state_t*>(state_));
}

}  // namespace deepsearch
