// Byte planes, the transform under the delta encoding of weight_set.h. The n elements of E
// bytes of a tensor become E planes of n bytes: plane p holds byte p (little-endian, so plane
// 0 is the least significant byte) of every element of target XOR base. After a small update
// the planes of sign and exponent bytes are mostly zeros, which zstd compresses to almost
// nothing.
//
// The loops work on whole elements (E-byte words) with contiguous loads and stores, so the
// compiler vectorises them; E is a template argument (WithElementSize picks it at run time).
// Internal to deepsearch_weights. Little-endian hosts only, like the rest of the weights code.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <type_traits>

#include "common/core/logging.h"

namespace deepsearch::weights_internal {

template <size_t E>
using Word = std::conditional_t<
    E == 1, uint8_t,
    std::conditional_t<E == 2, uint16_t, std::conditional_t<E == 4, uint32_t, uint64_t>>>;

template <size_t E>
Word<E> Load(const uint8_t* p) {
  Word<E> w;
  std::memcpy(&w, p, E);
  return w;
}

template <size_t E>
void Store(uint8_t* p, Word<E> w) {
  std::memcpy(p, &w, E);
}

// All planes of n elements: planes[p * n + i] = byte p of a[i] ^ b[i].
template <size_t E>
void SplitPlanes(const uint8_t* a, const uint8_t* b, size_t n, uint8_t* planes) {
  for (size_t i = 0; i < n; ++i) {
    const Word<E> x = Load<E>(a + i * E) ^ Load<E>(b + i * E);
    for (size_t p = 0; p < E; ++p) planes[p * n + i] = static_cast<uint8_t>(x >> (8 * p));
  }
}

// One piece of plane p: out[i] = byte p of a[first + i] ^ b[first + i], for i < count.
template <size_t E>
void SplitPlane(const uint8_t* a, const uint8_t* b, size_t p, size_t first, size_t count,
                uint8_t* out) {
  a += first * E;
  b += first * E;
  for (size_t i = 0; i < count; ++i)
    out[i] = static_cast<uint8_t>((Load<E>(a + i * E) ^ Load<E>(b + i * E)) >> (8 * p));
}

// The inverse of SplitPlanes: target[i] = base[i] ^ (the bytes planes[p * n + i], p < E).
template <size_t E>
void JoinPlanes(const uint8_t* planes, const uint8_t* base, size_t n, uint8_t* target) {
  for (size_t i = 0; i < n; ++i) {
    Word<E> x = 0;
    for (size_t p = 0; p < E; ++p) x |= static_cast<Word<E>>(Word<E>{planes[p * n + i]} << (8 * p));
    Store<E>(target + i * E, x ^ Load<E>(base + i * E));
  }
}

// The inverse of SplitPlane: byte p of target[first + i] = plane[i] ^ byte p of
// base[first + i]; the other bytes of target are kept.
template <size_t E>
void JoinPlane(const uint8_t* plane, const uint8_t* base, size_t p, size_t first, size_t count,
               uint8_t* target) {
  base += first * E;
  target += first * E;
  const auto mask = static_cast<Word<E>>(Word<E>{0xFF} << (8 * p));
  for (size_t i = 0; i < count; ++i) {
    const auto byte = static_cast<Word<E>>(Word<E>{plane[i]} << (8 * p));
    const Word<E> t = Load<E>(target + i * E) & static_cast<Word<E>>(~mask);
    Store<E>(target + i * E, static_cast<Word<E>>(t | (byte ^ (Load<E>(base + i * E) & mask))));
  }
}

// f(std::integral_constant<size_t, E>()) for E = `element` (1, 2, 4 or 8), so the loops above
// see a constant element size. Returns what f returns.
template <typename F>
auto WithElementSize(size_t element, F&& f) {
  switch (element) {
    case 1:
      return f(std::integral_constant<size_t, 1>());
    case 2:
      return f(std::integral_constant<size_t, 2>());
    case 4:
      return f(std::integral_constant<size_t, 4>());
    case 8:
      return f(std::integral_constant<size_t, 8>());
    default:
      DS_CHECK(false) << "element size " << element;
      std::abort();
  }
}

}  // namespace deepsearch::weights_internal
