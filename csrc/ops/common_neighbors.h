// Common-neighbour ops over a sorted CSR adjacency: input checks shared by every backend.
#pragma once

#include <torch/types.h>

#include <tuple>

namespace gnnlab {

// Checks shapes, dtypes and devices, and that every query node lies in [0, num_nodes).
// Raises ValueError (TORCH_CHECK_VALUE) naming the problem. The adjacency itself (sorted,
// duplicate-free rows with entries in range) is validated once when it is built in Python.
void check_common_neighbor_inputs(const at::Tensor& rowptr, const at::Tensor& col, const at::Tensor& src,
                                  const at::Tensor& dst, const c10::optional<at::Tensor>& edge_mask, int64_t mode,
                                  const char* op);

std::tuple<at::Tensor, at::Tensor> common_neighbor_count_cpu(const at::Tensor& rowptr, const at::Tensor& col,
                                                             const at::Tensor& src, const at::Tensor& dst,
                                                             const c10::optional<at::Tensor>& node_weight,
                                                             const c10::optional<at::Tensor>& edge_mask, int64_t mode);

std::tuple<at::Tensor, at::Tensor> common_neighbor_sets_cpu(const at::Tensor& rowptr, const at::Tensor& col,
                                                            const at::Tensor& src, const at::Tensor& dst,
                                                            const c10::optional<at::Tensor>& edge_mask, int64_t mode);

}  // namespace gnnlab
