// coo_to_csr: input checks shared by every backend.
#pragma once

#include <torch/types.h>

#include <tuple>

namespace gnnlab {

// Checks dtype, shape and num_nodes. Raises ValueError (TORCH_CHECK_VALUE) naming the problem.
// The range of the entries is checked by each backend's kernel before anything is written.
void check_coo_to_csr_shape(const at::Tensor& edge_index, int64_t num_nodes);

std::tuple<at::Tensor, at::Tensor, at::Tensor> coo_to_csr_cpu(const at::Tensor& edge_index, int64_t num_nodes);

}  // namespace gnnlab
