// Work split of the row-parallel CPU kernels (at::parallel_for over CSR rows).
#pragma once

#include <algorithm>
#include <cstdint>

namespace gnnlab {

// Rows per parallel task: about 32k feature-edge visits per task, enough work to amortise scheduling.
inline int64_t row_grain(int64_t num_rows, int64_t num_edges, int64_t F) {
  const int64_t per_row = std::max<int64_t>(1, (num_edges / std::max<int64_t>(num_rows, 1) + 1) * F);
  return std::max<int64_t>(1, (1 << 15) / per_row);
}

}  // namespace gnnlab
