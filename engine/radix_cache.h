// A token-level radix tree of cached prefixes over paged KV blocks (SGLang's RadixAttention,
// with 16-token pages): which token sequences already have their keys and values computed,
// and in which blocks.
//
// Each node is an edge of tokens from its parent, ending at absolute position `end`, and
// holds the block table that covers positions [0, end) of any sequence through it (the last
// block possibly partial). Lookup returns the longest cached prefix of a token sequence with
// the blocks that cover it; Insert records a finished sequence's tokens and blocks (splitting
// edges where it diverges). Nodes hold references on their blocks through BlockRefs, so a
// block shared by many cached prefixes lives while any of them is cached.
//
// Eviction is LRU over leaves: EvictLeastRecentlyUsed drops the leaf used longest ago (its
// parent may then become a leaf), releasing its block references. Callers evict until the KV
// pool has room; the tree itself has no byte budget, the pool's budget is the budget.
//
// One tree holds the KV of one weight version; the engine keeps one per version and never
// looks up across versions.
//
// Torch-free. Not thread-safe: the engine's loop owns it.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/types/span.h"

namespace deepsearch {

// Reference counting of KV blocks (implemented by the engine over KvCache).
class BlockRefs {
 public:
  virtual ~BlockRefs() = default;
  virtual void Retain(absl::Span<const int32_t> blocks) = 0;
  virtual void Release(absl::Span<const int32_t> blocks) = 0;
};

class RadixCache {
 public:
  struct Match {
    int64_t length = 0;           // tokens matched
    std::vector<int32_t> blocks;  // ceil(length / block_size) blocks covering [0, length)
  };
  struct Stats {
    int64_t lookups = 0;
    int64_t hits = 0;  // lookups that matched at least one token
    int64_t tokens_looked_up = 0;
    int64_t tokens_matched = 0;
    int64_t inserts = 0;
    int64_t evictions = 0;    // nodes evicted
    int64_t nodes = 0;        // nodes now (the root excluded)
    int64_t blocks_held = 0;  // distinct blocks the tree references now
  };

  RadixCache(BlockRefs* refs, int64_t block_size);
  ~RadixCache();  // releases every block reference
  RadixCache(const RadixCache&) = delete;
  RadixCache& operator=(const RadixCache&) = delete;

  // The longest cached prefix of `tokens`, at most `max_length` tokens; marks it used.
  Match Lookup(absl::Span<const int32_t> tokens, int64_t max_length);

  // Records that positions [0, tokens.size()) of a sequence with these tokens are computed in
  // `blocks` (ceil(size / block_size) of them). Takes references on the blocks it keeps.
  void Insert(absl::Span<const int32_t> tokens, absl::Span<const int32_t> blocks);

  // Drops the least recently used leaf. False when the tree is empty.
  bool EvictLeastRecentlyUsed();
  // Drops everything.
  void Clear();

  const Stats& stats() const { return stats_; }

 private:
  struct Node {
    Node* parent = nullptr;
    std::vector<int32_t> edge;    // tokens from the parent's end to this node's end
    int64_t end = 0;              // absolute position after the edge
    std::vector<int32_t> blocks;  // covering [0, end)
    std::map<int32_t, std::unique_ptr<Node>> children;  // by first edge token
    int64_t last_use = 0;
  };

  void Touch(Node* node);
  void Hold(const std::vector<int32_t>& blocks);
  void Drop(const std::vector<int32_t>& blocks);
  void SetLeaf(Node* node, bool leaf);
  void RemoveSubtree(Node* node);

  BlockRefs* refs_;
  const int64_t block_size_;
  Node root_;
  int64_t tick_ = 0;
  std::set<std::pair<int64_t, Node*>> leaves_;  // (last_use, node), least recent first
  absl::flat_hash_map<int32_t, int64_t> held_;  // block -> references the tree holds on it
  Stats stats_;
};

}  // namespace deepsearch
