// CPU coo_to_csr: stable counting sort by row. O(E + N), no comparisons.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <atomic>
#include <vector>

#include "ops/common/csr.h"
#include "ops/coo_to_csr.h"

namespace gnnlab {

namespace {

// Validates every entry with the same predicate the CUDA kernel uses (parallel over chunks).
template <typename index_t>
void check_range(const index_t* data, int64_t n, int64_t bound) {
  std::atomic<int64_t> bad{-1};
  at::parallel_for(0, n, 1 << 14, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      if (!csr::in_range(data[i], bound)) {
        int64_t expected = -1;
        bad.compare_exchange_strong(expected, i);
        return;
      }
    }
  });
  const int64_t i = bad.load();
  TORCH_CHECK_VALUE(i < 0, "coo_to_csr: edge_index entry ", static_cast<int64_t>(data[i]), " at flat position ", i,
                    " is out of range [0, ", bound, ")");
}

template <typename index_t>
void counting_sort(const index_t* row, const index_t* col, int64_t num_edges, int64_t num_nodes, int64_t* rowptr,
                   index_t* col_out, int64_t* perm) {
  std::fill(rowptr, rowptr + num_nodes + 1, 0);
  for (int64_t e = 0; e < num_edges; ++e) {
    rowptr[static_cast<int64_t>(row[e]) + 1] += 1;
  }
  for (int64_t r = 0; r < num_nodes; ++r) {
    rowptr[r + 1] += rowptr[r];
  }
  // Scatter in input order so edges of one row keep their relative order (stable).
  std::vector<int64_t> cursor(rowptr, rowptr + num_nodes);
  for (int64_t e = 0; e < num_edges; ++e) {
    const int64_t pos = cursor[static_cast<int64_t>(row[e])]++;
    col_out[pos] = col[e];
    perm[pos] = e;
  }
}

}  // namespace

std::tuple<at::Tensor, at::Tensor, at::Tensor> coo_to_csr_cpu(const at::Tensor& edge_index, int64_t num_nodes) {
  check_coo_to_csr_shape(edge_index, num_nodes);
  const auto ei = edge_index.contiguous();
  const int64_t num_edges = ei.size(1);
  auto rowptr = at::empty({num_nodes + 1}, ei.options().dtype(at::kLong));
  auto col = at::empty({num_edges}, ei.options());
  auto perm = at::empty({num_edges}, ei.options().dtype(at::kLong));
  AT_DISPATCH_INDEX_TYPES(ei.scalar_type(), "coo_to_csr_cpu", [&] {
    const index_t* data = ei.data_ptr<index_t>();
    check_range<index_t>(data, 2 * num_edges, num_nodes);
    counting_sort<index_t>(data, data + num_edges, num_edges, num_nodes, rowptr.data_ptr<int64_t>(),
                           col.data_ptr<index_t>(), perm.data_ptr<int64_t>());
  });
  return {rowptr, col, perm};
}

TORCH_LIBRARY_IMPL(gnnlab, CPU, m) { m.impl("coo_to_csr", &coo_to_csr_cpu); }

}  // namespace gnnlab
