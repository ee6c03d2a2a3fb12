// Per-row CSR logic shared by the CPU and CUDA kernels (both compile these __host__ __device__
// functions, so the CPU tests exercise the same code the GPU runs).
#pragma once

#include <cstdint>

#include "ops/common/macros.h"

namespace gnnlab {
namespace csr {

// First position p in sorted[0, n) with sorted[p] >= value (n when none).
template <typename index_t>
GNNLAB_HD int64_t lower_bound(const index_t* sorted, int64_t n, int64_t value) {
  int64_t lo = 0, hi = n;
  while (lo < hi) {
    const int64_t mid = lo + (hi - lo) / 2;
    if (static_cast<int64_t>(sorted[mid]) < value) {
      lo = mid + 1;
    } else {
      hi = mid;
    }
  }
  return lo;
}

// rowptr[r] for rows given sorted ascending: the number of entries smaller than r.
// Row r = num_rows gives num_entries, closing the CSR offsets.
template <typename index_t>
GNNLAB_HD int64_t rowptr_entry(const index_t* sorted_rows, int64_t num_entries, int64_t r) {
  return lower_bound(sorted_rows, num_entries, r);
}

// Whether an index lies in [0, bound).
template <typename index_t>
GNNLAB_HD bool in_range(index_t value, int64_t bound) {
  return static_cast<int64_t>(value) >= 0 && static_cast<int64_t>(value) < bound;
}

}  // namespace csr
}  // namespace gnnlab
