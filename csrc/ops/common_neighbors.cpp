#include "ops/common_neighbors.h"

#include <ATen/ATen.h>

#include "ops/checks.h"

namespace gnnlab {

void check_common_neighbor_inputs(const at::Tensor& rowptr, const at::Tensor& col, const at::Tensor& src,
                                  const at::Tensor& dst, const c10::optional<at::Tensor>& edge_mask, int64_t mode,
                                  const char* op) {
  TORCH_CHECK_VALUE(mode >= 0 && mode <= 2, op, ": mode must be 0 (both), 1 (first only) or 2 (second only), got ",
                    mode);
  TORCH_CHECK_VALUE(col.dim() == 1, op, ": col must be 1-D, got shape ", col.sizes());
  const auto device = col.device();
  check_device(rowptr, device, "rowptr", op);
  check_device(src, device, "src", op);
  check_device(dst, device, "dst", op);
  TORCH_CHECK_VALUE(src.dim() == 1 && dst.dim() == 1 && src.size(0) == dst.size(0), op,
                    ": src and dst must be 1-D with one entry per query pair, got shapes ", src.sizes(), " and ",
                    dst.sizes());
  const int64_t num_entries = col.size(0);
  check_offsets(rowptr, num_entries, "rowptr", op);
  const int64_t num_nodes = rowptr.size(0) - 1;
  check_indices(col, num_entries, num_nodes, /*allow_int32=*/true, "col", "num_nodes", op);
  if (edge_mask.has_value()) {
    TORCH_CHECK_VALUE(edge_mask->dim() == 1 && edge_mask->size(0) == num_entries, op,
                      ": edge_mask must have one entry per adjacency entry (", num_entries, "), got shape ",
                      edge_mask->sizes());
    TORCH_CHECK_VALUE(edge_mask->scalar_type() == at::kByte || edge_mask->scalar_type() == at::kBool, op,
                      ": edge_mask must be bool or uint8, got ", edge_mask->scalar_type());
    check_device(*edge_mask, device, "edge_mask", op);
  }
  check_indices(src, -1, num_nodes, /*allow_int32=*/false, "src", "num_nodes", op);
  check_indices(dst, -1, num_nodes, /*allow_int32=*/false, "dst", "num_nodes", op);
}

void check_node_weight(const c10::optional<at::Tensor>& node_weight, const at::Tensor& rowptr, const at::Tensor& col,
                       const char* op) {
  if (!node_weight.has_value()) return;
  const int64_t num_nodes = rowptr.size(0) - 1;
  TORCH_CHECK_VALUE(node_weight->dim() == 1 && node_weight->size(0) == num_nodes, op,
                    ": node_weight must have shape [num_nodes=", num_nodes, "], got ", node_weight->sizes());
  TORCH_CHECK_VALUE(at::isFloatingType(node_weight->scalar_type()), op, ": node_weight must be floating point, got ",
                    node_weight->scalar_type());
  check_device(*node_weight, col.device(), "node_weight", op);
}

}  // namespace gnnlab
