#include "engine/radix_cache.h"

#include <algorithm>

#include "common/core/logging.h"

namespace deepsearch {

RadixCache::RadixCache(BlockRefs* refs, int64_t block_size) : refs_(refs), block_size_(block_size) {
  DS_CHECK(refs_ != nullptr && block_size_ > 0)
      << "RadixCache needs block references and a block size";
}

RadixCache::~RadixCache() { Clear(); }

void RadixCache::Hold(const std::vector<int32_t>& blocks) {
  refs_->Retain(blocks);
  for (int32_t b : blocks) ++held_[b];
  stats_.blocks_held = static_cast<int64_t>(held_.size());
}

void RadixCache::Drop(const std::vector<int32_t>& blocks) {
  refs_->Release(blocks);
  for (int32_t b : blocks) {
    auto it = held_.find(b);
    if (--it->second == 0) held_.erase(it);
  }
  stats_.blocks_held = static_cast<int64_t>(held_.size());
}

void RadixCache::SetLeaf(Node* node, bool leaf) {
  if (leaf) {
    leaves_.insert({node->last_use, node});
  } else {
    leaves_.erase({node->last_use, node});
  }
}

void RadixCache::Touch(Node* node) {
  const int64_t tick = ++tick_;
  for (Node* n = node; n != nullptr && n != &root_; n = n->parent) {
    const bool leaf = n->children.empty();
    if (leaf) leaves_.erase({n->last_use, n});
    n->last_use = tick;
    if (leaf) leaves_.insert({n->last_use, n});
  }
}

RadixCache::Match RadixCache::Lookup(absl::Span<const int32_t> tokens, int64_t max_length) {
  const int64_t limit = std::min<int64_t>(static_cast<int64_t>(tokens.size()), max_length);
  ++stats_.lookups;
  stats_.tokens_looked_up += std::max<int64_t>(limit, 0);
  Match match;
  Node* node = &root_;
  Node* deepest = nullptr;  // the node whose edge holds the last matched token
  int64_t pos = 0;
  while (pos < limit) {
    const auto it = node->children.find(tokens[static_cast<size_t>(pos)]);
    if (it == node->children.end()) break;
    Node* child = it->second.get();
    int64_t k = 0;
    const int64_t edge = static_cast<int64_t>(child->edge.size());
    while (k < edge && pos + k < limit &&
           child->edge[static_cast<size_t>(k)] == tokens[static_cast<size_t>(pos + k)]) {
      ++k;
    }
    pos += k;
    deepest = child;
    if (k < edge) break;
    node = child;
  }
  match.length = pos;
  if (deepest != nullptr) {
    const int64_t n = (pos + block_size_ - 1) / block_size_;
    match.blocks.assign(deepest->blocks.begin(), deepest->blocks.begin() + n);
    Touch(deepest);
    ++stats_.hits;
    stats_.tokens_matched += pos;
  }
  return match;
}

void RadixCache::Insert(absl::Span<const int32_t> tokens, absl::Span<const int32_t> blocks) {
  const int64_t n = static_cast<int64_t>(tokens.size());
  const int64_t need = (n + block_size_ - 1) / block_size_;
  DS_CHECK(static_cast<int64_t>(blocks.size()) >= need)
      << blocks.size() << " blocks for " << n << " tokens";
  ++stats_.inserts;
  if (n == 0) return;
  Node* node = &root_;
  int64_t pos = 0;
  while (pos < n) {
    const auto it = node->children.find(tokens[static_cast<size_t>(pos)]);
    if (it == node->children.end()) {
      // A new leaf for the rest of the tokens.
      auto leaf = std::make_unique<Node>();
      leaf->parent = node;
      leaf->edge.assign(tokens.begin() + pos, tokens.end());
      leaf->end = n;
      leaf->blocks.assign(blocks.begin(), blocks.begin() + need);
      Hold(leaf->blocks);
      if (node != &root_ && node->children.empty()) SetLeaf(node, false);
      Node* raw = leaf.get();
      node->children.emplace(tokens[static_cast<size_t>(pos)], std::move(leaf));
      ++stats_.nodes;
      SetLeaf(raw, true);
      Touch(raw);
      return;
    }
    Node* child = it->second.get();
    const int64_t edge = static_cast<int64_t>(child->edge.size());
    int64_t k = 0;
    while (k < edge && pos + k < n &&
           child->edge[static_cast<size_t>(k)] == tokens[static_cast<size_t>(pos + k)])
      ++k;
    if (k == edge) {
      node = child;
      pos += k;
      continue;
    }
    if (pos + k == n) {
      // The sequence is a prefix of one already cached.
      Touch(child);
      return;
    }
    // Diverges inside the edge: split it at k. The middle node takes its blocks from the
    // child, whose table covers every position up to its end.
    auto middle = std::make_unique<Node>();
    middle->parent = node;
    middle->edge.assign(child->edge.begin(), child->edge.begin() + k);
    middle->end = pos + k;
    middle->blocks.assign(child->blocks.begin(),
                          child->blocks.begin() + (middle->end + block_size_ - 1) / block_size_);
    middle->last_use = child->last_use;
    Hold(middle->blocks);
    child->edge.erase(child->edge.begin(), child->edge.begin() + k);
    child->parent = middle.get();
    Node* raw = middle.get();
    raw->children.emplace(child->edge.front(), std::move(it->second));
    it->second = std::move(middle);
    ++stats_.nodes;
    node = raw;
    pos += k;
  }
  if (node != &root_) Touch(node);
}

bool RadixCache::EvictLeastRecentlyUsed() {
  if (leaves_.empty()) return false;
  Node* leaf = leaves_.begin()->second;
  leaves_.erase(leaves_.begin());
  Drop(leaf->blocks);
  Node* parent = leaf->parent;
  parent->children.erase(leaf->edge.front());  // destroys the leaf
  --stats_.nodes;
  ++stats_.evictions;
  if (parent != &root_ && parent->children.empty()) SetLeaf(parent, true);
  return true;
}

void RadixCache::RemoveSubtree(Node* node) {
  for (auto& [token, child] : node->children) {
    RemoveSubtree(child.get());
    Drop(child->blocks);
    --stats_.nodes;
  }
  node->children.clear();
}

void RadixCache::Clear() {
  RemoveSubtree(&root_);
  leaves_.clear();
}

}  // namespace deepsearch
