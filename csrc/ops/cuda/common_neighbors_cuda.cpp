// Torch glue for the CUDA common-neighbour kernels; compiled only when torch has CUDA
// (GNNLAB_WITH_CUDA). Unverified on a GPU.
#ifdef GNNLAB_WITH_CUDA
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include "ops/common_neighbors.h"
#include "ops/cuda/common_neighbors_kernel.cuh"

namespace gnnlab {

namespace {

const uint8_t* mask_ptr(const at::Tensor& mask) {
  return mask.defined() ? reinterpret_cast<const uint8_t*>(mask.data_ptr()) : nullptr;
}

}  // namespace

std::tuple<at::Tensor, at::Tensor> common_neighbor_count_cuda(const at::Tensor& rowptr, const at::Tensor& col,
                                                              const at::Tensor& src, const at::Tensor& dst,
                                                              const c10::optional<at::Tensor>& node_weight,
                                                              const c10::optional<at::Tensor>& edge_mask,
                                                              int64_t mode) {
  check_common_neighbor_inputs(rowptr, col, src, dst, edge_mask, mode, "common_neighbor_count");
  check_node_weight(node_weight, rowptr, col, "common_neighbor_count");
  const c10::cuda::CUDAGuard guard(col.device());
  const auto stream = c10::cuda::getCurrentCUDAStream().stream();
  const auto rp = rowptr.contiguous();
  const auto c = col.contiguous();
  const auto s = src.contiguous();
  const auto d = dst.contiguous();
  const auto m = edge_mask.has_value() ? edge_mask->contiguous() : at::Tensor();
  const auto w = node_weight.has_value() ? node_weight->contiguous().to(at::kDouble) : at::Tensor();
  const int64_t B = s.size(0);
  auto count = at::empty({B}, s.options());
  auto total = at::empty({w.defined() ? B : 0}, s.options().dtype(at::kDouble));
  AT_DISPATCH_INDEX_TYPES(c.scalar_type(), "common_neighbor_count_cuda", [&] {
    C10_CUDA_CHECK(cuda::common_neighbor_count(rp.data_ptr<int64_t>(), c.data_ptr<index_t>(), mask_ptr(m),
                                               s.data_ptr<int64_t>(), d.data_ptr<int64_t>(), B, static_cast<int>(mode),
                                               w.defined() ? w.data_ptr<double>() : nullptr, count.data_ptr<int64_t>(),
                                               w.defined() ? total.data_ptr<double>() : nullptr, stream));
  });
  if (node_weight.has_value()) return {count, total.to(node_weight->scalar_type())};
  return {count, total};
}

std::tuple<at::Tensor, at::Tensor> common_neighbor_sets_cuda(const at::Tensor& rowptr, const at::Tensor& col,
                                                             const at::Tensor& src, const at::Tensor& dst,
                                                             const c10::optional<at::Tensor>& edge_mask,
                                                             int64_t mode) {
  check_common_neighbor_inputs(rowptr, col, src, dst, edge_mask, mode, "common_neighbor_sets");
  const c10::cuda::CUDAGuard guard(col.device());
  const auto stream = c10::cuda::getCurrentCUDAStream().stream();
  const auto rp = rowptr.contiguous();
  const auto c = col.contiguous();
  const auto s = src.contiguous();
  const auto d = dst.contiguous();
  const auto m = edge_mask.has_value() ? edge_mask->contiguous() : at::Tensor();
  const int64_t B = s.size(0);
  auto count = at::empty({B}, s.options());
  at::Tensor nodes;
  auto ptr = at::zeros({B + 1}, s.options());
  AT_DISPATCH_INDEX_TYPES(c.scalar_type(), "common_neighbor_sets_cuda", [&] {
    C10_CUDA_CHECK(cuda::common_neighbor_count(rp.data_ptr<int64_t>(), c.data_ptr<index_t>(), mask_ptr(m),
                                               s.data_ptr<int64_t>(), d.data_ptr<int64_t>(), B, static_cast<int>(mode),
                                               nullptr, count.data_ptr<int64_t>(), nullptr, stream));
    ptr.narrow(0, 1, B).copy_(count.cumsum(0));
    const int64_t total = B > 0 ? ptr[B].item<int64_t>() : 0;  // synchronises: the output size
    nodes = at::empty({total}, s.options());
    C10_CUDA_CHECK(cuda::common_neighbor_fill(rp.data_ptr<int64_t>(), c.data_ptr<index_t>(), mask_ptr(m),
                                              s.data_ptr<int64_t>(), d.data_ptr<int64_t>(), B, static_cast<int>(mode),
                                              ptr.data_ptr<int64_t>(), nodes.data_ptr<int64_t>(), stream));
  });
  return {ptr, nodes};
}

TORCH_LIBRARY_IMPL(gnnlab, CUDA, m) {
  m.impl("common_neighbor_count", &common_neighbor_count_cuda);
  m.impl("common_neighbor_sets", &common_neighbor_sets_cuda);
}

}  // namespace gnnlab
#endif  // GNNLAB_WITH_CUDA
