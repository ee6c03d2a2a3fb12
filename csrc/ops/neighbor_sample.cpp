#include "ops/neighbor_sample.h"

#include <ATen/ATen.h>

#include "ops/checks.h"

namespace gnnlab {

void check_neighbor_sample_inputs(const at::Tensor& rowptr, const at::Tensor& col, const at::Tensor& seeds,
                                  at::IntArrayRef num_neighbors, bool check_graph) {
  const char* op = "neighbor_sample";
  TORCH_CHECK_VALUE(col.dim() == 1, op, ": col must be 1-D, got shape ", col.sizes());
  const auto cpu = at::Device(at::kCPU);
  check_device(col, cpu, "col", op);
  check_device(rowptr, cpu, "rowptr", op);
  check_device(seeds, cpu, "seeds", op);
  const int64_t num_nodes = rowptr.size(0) - 1;
  if (check_graph) {
    check_offsets(rowptr, col.size(0), "rowptr", op);
    check_indices(col, -1, num_nodes, /*allow_int32=*/true, "col", "num_nodes", op);
  } else {
    TORCH_CHECK_VALUE(rowptr.dim() == 1 && rowptr.size(0) >= 1 && rowptr.scalar_type() == at::kLong, op,
                      ": rowptr must be 1-D int64 with at least one entry, got ", rowptr.scalar_type(), " of shape ",
                      rowptr.sizes());
    TORCH_CHECK_VALUE(col.scalar_type() == at::kLong || col.scalar_type() == at::kInt, op,
                      ": col must be int32 or int64, got ", col.scalar_type());
    const auto first = rowptr[0].item<int64_t>(), last = rowptr[-1].item<int64_t>();
    TORCH_CHECK_VALUE(first == 0 && last == col.size(0), op, ": rowptr must start at 0 and end at num_edges=",
                      col.size(0), ", got ", first, " .. ", last);
  }
  check_indices(seeds, -1, num_nodes, /*allow_int32=*/true, "seeds", "num_nodes", op);
  for (size_t hop = 0; hop < num_neighbors.size(); ++hop) {
    TORCH_CHECK_VALUE(num_neighbors[hop] >= -1, op, ": num_neighbors[", hop,
                      "] must be -1 (all neighbours) or >= 0, got ", num_neighbors[hop]);
  }
}

}  // namespace gnnlab
