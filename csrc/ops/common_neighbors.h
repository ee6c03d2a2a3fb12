// Common-neighbour ops over a sorted CSR adjacency: input checks shared by every backend.
#pragma once

#include <torch/types.h>

#include <tuple>

namespace gnnlab {

// Checks mode; the adjacency rowptr [N+1] int64 (starting at 0, ending at E, non-decreasing) and
// col [E] int32/int64 with entries in [0, N); src and dst [B] int64 with entries in [0, N); and
// edge_mask [E] bool/uint8; all on col's device. Raises ValueError (TORCH_CHECK_VALUE) naming the
// argument. O(E + B). That rows are sorted and duplicate-free is not checked here (unsorted rows
// give wrong sets but no out-of-range access); the Python ops check it once per Graph.
void check_common_neighbor_inputs(const at::Tensor& rowptr, const at::Tensor& col, const at::Tensor& src,
                                  const at::Tensor& dst, const c10::optional<at::Tensor>& edge_mask, int64_t mode,
                                  const char* op);

// node_weight: floating [N] on col's device, where N = rowptr.size(0) - 1.
void check_node_weight(const c10::optional<at::Tensor>& node_weight, const at::Tensor& rowptr, const at::Tensor& col,
                       const char* op);

std::tuple<at::Tensor, at::Tensor> common_neighbor_count_cpu(const at::Tensor& rowptr, const at::Tensor& col,
                                                             const at::Tensor& src, const at::Tensor& dst,
                                                             const c10::optional<at::Tensor>& node_weight,
                                                             const c10::optional<at::Tensor>& edge_mask, int64_t mode);

std::tuple<at::Tensor, at::Tensor> common_neighbor_sets_cpu(const at::Tensor& rowptr, const at::Tensor& col,
                                                            const at::Tensor& src, const at::Tensor& dst,
                                                            const c10::optional<at::Tensor>& edge_mask, int64_t mode);

}  // namespace gnnlab
