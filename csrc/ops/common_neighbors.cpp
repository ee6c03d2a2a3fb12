#include "ops/common_neighbors.h"

#include <ATen/ATen.h>

namespace gnnlab {

void check_common_neighbor_inputs(const at::Tensor& rowptr, const at::Tensor& col, const at::Tensor& src,
                                  const at::Tensor& dst, const c10::optional<at::Tensor>& edge_mask, int64_t mode,
                                  const char* op) {
  TORCH_CHECK_VALUE(mode >= 0 && mode <= 2, op, ": mode must be 0 (both), 1 (first only) or 2 (second only), got ",
                    mode);
  TORCH_CHECK_VALUE(rowptr.dim() == 1 && rowptr.size(0) >= 1 && rowptr.scalar_type() == at::kLong, op,
                    ": rowptr must be a 1-D int64 tensor with at least one entry");
  TORCH_CHECK_VALUE(col.dim() == 1 && (col.scalar_type() == at::kLong || col.scalar_type() == at::kInt), op,
                    ": col must be a 1-D int32 or int64 tensor");
  TORCH_CHECK_VALUE(src.dim() == 1 && dst.dim() == 1 && src.size(0) == dst.size(0), op,
                    ": src and dst must be 1-D with one entry per query pair, got shapes ", src.sizes(), " and ",
                    dst.sizes());
  TORCH_CHECK_VALUE(src.scalar_type() == at::kLong && dst.scalar_type() == at::kLong, op,
                    ": src and dst must be int64");
  TORCH_CHECK_VALUE(rowptr.device() == col.device() && src.device() == col.device() && dst.device() == col.device(),
                    op, ": rowptr, col, src and dst must be on the same device");
  if (edge_mask.has_value()) {
    TORCH_CHECK_VALUE(edge_mask->dim() == 1 && edge_mask->size(0) == col.size(0), op,
                      ": edge_mask must have one entry per adjacency entry (", col.size(0), "), got shape ",
                      edge_mask->sizes());
    TORCH_CHECK_VALUE(edge_mask->scalar_type() == at::kByte || edge_mask->scalar_type() == at::kBool, op,
                      ": edge_mask must be bool or uint8");
    TORCH_CHECK_VALUE(edge_mask->device() == col.device(), op, ": edge_mask must be on the adjacency's device");
  }
  const int64_t num_nodes = rowptr.size(0) - 1;
  if (src.numel() > 0) {
    const auto both = at::cat({src, dst});
    const int64_t lo = both.min().item<int64_t>();
    const int64_t hi = both.max().item<int64_t>();
    TORCH_CHECK_VALUE(lo >= 0 && hi < num_nodes, op, ": query node ", lo < 0 ? lo : hi, " is out of range [0, ",
                      num_nodes, ")");
  }
}

}  // namespace gnnlab
