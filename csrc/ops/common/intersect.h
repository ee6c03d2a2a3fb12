// Per-pair set logic over a sorted CSR adjacency, shared by the CPU and CUDA kernels.
//
// For a query pair (u, v) the neighbour lists A = N(u) and B = N(v) are the sorted, duplicate-free
// rows col[rowptr[u] .. rowptr[u+1]) and col[rowptr[v] .. rowptr[v+1]). An optional edge mask
// (one byte per CSR entry, 0 = absent) hides entries without rebuilding the adjacency: that is how
// a training batch removes its own target links.
//
// Three set modes:
//   kBoth:      A ∩ B            (common neighbours)
//   kOnlyFirst: A \ B            (neighbours of u that are not neighbours of v)
//   kOnlySecond: B \ A
// Every kernel visits the selected nodes in ascending order through one function, for_each_member,
// so counting, scoring and filling (count -> scan -> fill) agree element for element.
//
// Merge vs galloping: a linear merge costs |A| + |B| steps; galloping (exponential then binary
// search of each element of the shorter list in the longer one) costs about
// |small| * log2(|large| / |small|) steps. On power-law graphs a pair often joins a hub with
// thousands of neighbours and a leaf with a handful, where galloping is far cheaper; for lists of
// similar length the merge wins (sequential, branch-predictable). The switch is at a length ratio
// of kGallopRatio = 16, where |small| * (log2(16) + 2) ≈ |small| * 6 < |small| * 17 = the merge's cost.
#pragma once

#include <cstdint>

#include "ops/common/macros.h"

namespace gnnlab {
namespace cn {

enum Mode : int { kBoth = 0, kOnlyFirst = 1, kOnlySecond = 2 };

constexpr int64_t kGallopRatio = 16;

// A neighbour list: sorted entries col[begin, end), masked by mask (may be null).
template <typename index_t>
struct Row {
  const index_t* col;
  const uint8_t* mask;
  int64_t begin;
  int64_t end;

  GNNLAB_HD int64_t size() const { return end - begin; }
  GNNLAB_HD int64_t at(int64_t p) const { return static_cast<int64_t>(col[p]); }
  GNNLAB_HD bool live(int64_t p) const { return mask == nullptr || mask[p] != 0; }
};

template <typename index_t>
GNNLAB_HD Row<index_t> row_of(const int64_t* rowptr, const index_t* col, const uint8_t* mask, int64_t node) {
  return Row<index_t>{col, mask, rowptr[node], rowptr[node + 1]};
}

// First position p in [lo, row.end) with row.at(p) >= value, searching exponentially from lo.
template <typename index_t>
GNNLAB_HD int64_t gallop(const Row<index_t>& row, int64_t lo, int64_t value) {
  int64_t step = 1, hi = lo;
  while (hi < row.end && row.at(hi) < value) {
    lo = hi + 1;
    hi += step;
    step <<= 1;
  }
  if (hi > row.end) hi = row.end;
  while (lo < hi) {  // binary search in [lo, hi)
    const int64_t mid = lo + (hi - lo) / 2;
    if (row.at(mid) < value) {
      lo = mid + 1;
    } else {
      hi = mid;
    }
  }
  return lo;
}

// Whether `value` is a live member of `row`, searching from *cursor (advanced past smaller entries).
template <typename index_t>
GNNLAB_HD bool contains_from(const Row<index_t>& row, int64_t* cursor, int64_t value) {
  *cursor = gallop(row, *cursor, value);
  return *cursor < row.end && row.at(*cursor) == value && row.live(*cursor);
}

// Calls visit(node) for every node of the selected set, in ascending order.
//   kBoth: nodes live in both rows. kOnlyFirst: live in a and not live in b.
template <typename index_t, typename Visit>
GNNLAB_HD void for_each_member(const Row<index_t>& a, const Row<index_t>& b, int mode, Visit&& visit) {
  if (mode == kOnlySecond) {
    for_each_member(b, a, kOnlyFirst, visit);
    return;
  }
  const int64_t na = a.size(), nb = b.size();
  if (mode == kBoth && na > 0 && nb > 0 && (na * kGallopRatio < nb || nb * kGallopRatio < na)) {
    // Galloping: walk the shorter list, search the longer one.
    const Row<index_t>& small = na <= nb ? a : b;
    const Row<index_t>& large = na <= nb ? b : a;
    int64_t cursor = large.begin;
    for (int64_t p = small.begin; p < small.end && cursor < large.end; ++p) {
      if (!small.live(p)) continue;
      const int64_t value = small.at(p);
      if (contains_from(large, &cursor, value)) visit(value);
    }
    return;
  }
  if (mode == kOnlyFirst && nb > 0 && na * kGallopRatio < nb) {
    // a is much shorter: search each of its entries in b.
    int64_t cursor = b.begin;
    for (int64_t p = a.begin; p < a.end; ++p) {
      if (!a.live(p)) continue;
      const int64_t value = a.at(p);
      if (!contains_from(b, &cursor, value)) visit(value);
    }
    return;
  }
  // Linear merge.
  int64_t p = a.begin, q = b.begin;
  while (p < a.end) {
    const int64_t va = a.at(p);
    while (q < b.end && b.at(q) < va) ++q;
    const bool in_b = q < b.end && b.at(q) == va && b.live(q);
    if (a.live(p) && (mode == kBoth ? in_b : !in_b)) visit(va);
    ++p;
  }
}

// Number of members and, when node_weight is given, the sum of their weights.
template <typename index_t, typename weight_t>
GNNLAB_HD int64_t count_members(const Row<index_t>& a, const Row<index_t>& b, int mode, const weight_t* node_weight,
                                double* weight_sum) {
  int64_t count = 0;
  double total = 0.0;
  for_each_member(a, b, mode, [&](int64_t k) {
    ++count;
    if (node_weight != nullptr) total += static_cast<double>(node_weight[k]);
  });
  if (weight_sum != nullptr) *weight_sum = total;
  return count;
}

// Writes the members to out[0, count) (count from count_members with the same arguments).
template <typename index_t>
GNNLAB_HD void fill_members(const Row<index_t>& a, const Row<index_t>& b, int mode, int64_t* out) {
  int64_t n = 0;
  for_each_member(a, b, mode, [&](int64_t k) { out[n++] = k; });
}

}  // namespace cn
}  // namespace gnnlab
