#include "ops/coo_to_csr.h"

#include <ATen/ATen.h>

namespace gnnlab {

void check_coo_to_csr_shape(const at::Tensor& edge_index, int64_t num_nodes) {
  TORCH_CHECK_VALUE(edge_index.scalar_type() == at::kLong || edge_index.scalar_type() == at::kInt,
                    "coo_to_csr: edge_index must have dtype int32 or int64, got ", edge_index.scalar_type());
  TORCH_CHECK_VALUE(edge_index.dim() == 2 && edge_index.size(0) == 2,
                    "coo_to_csr: edge_index must have shape [2, num_edges], got ", edge_index.sizes());
  TORCH_CHECK_VALUE(num_nodes >= 0, "coo_to_csr: num_nodes must be non-negative, got ", num_nodes);
}

}  // namespace gnnlab
