// Torch glue for the CUDA coo_to_csr kernels; compiled only when torch has CUDA (GNNLAB_WITH_CUDA).
// Unverified on a GPU.
#ifdef GNNLAB_WITH_CUDA
#include <ATen/ATen.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include "ops/coo_to_csr.h"
#include "ops/cuda/coo_to_csr_kernel.cuh"

namespace gnnlab {

std::tuple<at::Tensor, at::Tensor, at::Tensor> coo_to_csr_cuda(const at::Tensor& edge_index, int64_t num_nodes) {
  check_coo_to_csr_shape(edge_index, num_nodes);
  const c10::cuda::CUDAGuard guard(edge_index.device());
  const auto stream = c10::cuda::getCurrentCUDAStream().stream();
  const auto ei = edge_index.contiguous();
  const int64_t num_edges = ei.size(1);
  auto rowptr = at::empty({num_nodes + 1}, ei.options().dtype(at::kLong));
  auto col = at::empty({num_edges}, ei.options());
  auto perm = at::empty({num_edges}, ei.options().dtype(at::kLong));
  AT_DISPATCH_INDEX_TYPES(ei.scalar_type(), "coo_to_csr_cuda", [&] {
    const index_t* data = ei.data_ptr<index_t>();
    auto flag = at::zeros({1}, ei.options().dtype(at::kInt));
    C10_CUDA_CHECK(cuda::find_out_of_range<index_t>(data, 2 * num_edges, num_nodes, flag.data_ptr<int>(), stream));
    TORCH_CHECK_VALUE(flag.item<int>() == 0, "coo_to_csr: edge_index has an entry out of range [0, ", num_nodes, ")");
    auto sorted_rows = at::empty({num_edges}, ei.options());
    auto iota = at::empty({num_edges}, ei.options().dtype(at::kLong));
    const size_t temp_bytes = cuda::coo_to_csr_temp_bytes<index_t>(num_edges);
    auto temp = at::empty({static_cast<int64_t>(temp_bytes)}, ei.options().dtype(at::kByte));
    C10_CUDA_CHECK(cuda::coo_to_csr<index_t>(data, data + num_edges, num_edges, num_nodes, rowptr.data_ptr<int64_t>(),
                                             col.data_ptr<index_t>(), perm.data_ptr<int64_t>(),
                                             sorted_rows.data_ptr<index_t>(), iota.data_ptr<int64_t>(),
                                             temp.data_ptr(), temp_bytes, stream));
  });
  return {rowptr, col, perm};
}

TORCH_LIBRARY_IMPL(gnnlab, CUDA, m) { m.impl("coo_to_csr", &coo_to_csr_cuda); }

}  // namespace gnnlab
#endif  // GNNLAB_WITH_CUDA
