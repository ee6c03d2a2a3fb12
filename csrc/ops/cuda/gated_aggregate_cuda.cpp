// Torch glue for the CUDA edge-gated aggregation kernels; compiled only when torch has CUDA
// (GNNLAB_WITH_CUDA). Unverified on a GPU.
#ifdef GNNLAB_WITH_CUDA
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include "ops/cuda/cuda_ptr.h"
#include "ops/cuda/gated_aggregate_kernel.cuh"
#include "ops/gated_aggregate.h"

namespace gnnlab {

std::tuple<at::Tensor, at::Tensor, at::Tensor> gated_aggregate_cuda(
    const at::Tensor& rowptr, const at::Tensor& col, const at::Tensor& edge_id, const at::Tensor& /*rowptr_t*/,
    const at::Tensor& /*edge_id_t*/, const at::Tensor& edge_in, const at::Tensor& x_dst,
    const at::Tensor& x_src, const at::Tensor& values) {
  check_gated_aggregate_op(rowptr, col, edge_id, edge_in, x_dst, x_src, values, "gated_aggregate");
  const c10::cuda::CUDAGuard guard(x_src.device());
  const auto stream = c10::cuda::getCurrentCUDAStream().stream();
  const auto rp = rowptr.contiguous(), c = col.contiguous(), ids = edge_id.contiguous();
  const auto ein = edge_in.contiguous(), xd = x_dst.contiguous(), xs = x_src.contiguous(), v = values.contiguous();
  const int64_t R = rp.size(0) - 1, E = c.size(0), F = xs.size(1);
  auto e_hat = at::empty({E, F}, xs.options());
  auto num = at::empty({R, F}, xs.options());
  auto den = at::empty({R, F}, xs.options());
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, xs.scalar_type(), "gated_aggregate_cuda", [&] {
    AT_DISPATCH_INDEX_TYPES(c.scalar_type(), "gated_aggregate_cuda_index", [&] {
      C10_CUDA_CHECK(cuda::gated_aggregate(rp.data_ptr<int64_t>(), c.data_ptr<index_t>(), ids.data_ptr<int64_t>(),
                                           cuda_ptr<scalar_t>(ein), cuda_ptr<scalar_t>(xd), cuda_ptr<scalar_t>(xs),
                                           cuda_ptr<scalar_t>(v), R, F, cuda_ptr<scalar_t>(e_hat),
                                           cuda_ptr<scalar_t>(num), cuda_ptr<scalar_t>(den), stream));
    });
  });
  return {e_hat, num, den};
}

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> gated_aggregate_backward_cuda(
    const at::Tensor& rowptr, const at::Tensor& col, const at::Tensor& edge_id, const at::Tensor& rowptr_t,
    const at::Tensor& edge_id_t, const at::Tensor& e_hat_in, const at::Tensor& values_in,
    const at::Tensor& g_e_in, const at::Tensor& g_num_in, const at::Tensor& g_den_in, bool need_edge,
    bool need_values) {
  check_gated_aggregate_backward_op(rowptr, col, edge_id, rowptr_t, edge_id_t, e_hat_in, values_in, g_e_in, g_num_in,
                                    g_den_in);
  const c10::cuda::CUDAGuard guard(values_in.device());
  const auto stream = c10::cuda::getCurrentCUDAStream().stream();
  const auto rp = rowptr.contiguous(), c = col.contiguous(), ids = edge_id.contiguous();
  const auto rp_t = rowptr_t.contiguous(), ids_t = edge_id_t.contiguous();
  const auto e_hat = e_hat_in.contiguous(), v = values_in.contiguous(), g_e = g_e_in.contiguous();
  const auto g_num = g_num_in.contiguous(), g_den = g_den_in.contiguous();
  const int64_t R = rp.size(0) - 1, E = c.size(0), F = v.size(1), S = v.size(0);
  const GatedGrads grads = allocate_gated_grads(v, E, R, need_edge, need_values);
  const at::Tensor &d_e = grads.d_e, &d_dst = grads.d_dst, &d_src = grads.d_src, &d_val = grads.d_val, &w = grads.w;
  if (!need_edge && !need_values) return {d_e, d_dst, d_src, d_val};
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, v.scalar_type(), "gated_aggregate_backward_cuda", [&] {
    AT_DISPATCH_INDEX_TYPES(c.scalar_type(), "gated_aggregate_backward_cuda_index", [&] {
      C10_CUDA_CHECK(cuda::gated_aggregate_backward(
          rp.data_ptr<int64_t>(), c.data_ptr<index_t>(), ids.data_ptr<int64_t>(), rp_t.data_ptr<int64_t>(),
          ids_t.data_ptr<int64_t>(), cuda_ptr<scalar_t>(e_hat), cuda_ptr<scalar_t>(v), cuda_ptr<scalar_t>(g_e),
          cuda_ptr<scalar_t>(g_num), cuda_ptr<scalar_t>(g_den), R, S, F, cuda_ptr<scalar_t>(d_e),
          need_edge ? cuda_ptr<scalar_t>(d_dst) : nullptr, cuda_ptr<scalar_t>(w),
          need_edge ? cuda_ptr<scalar_t>(d_src) : nullptr, need_values ? cuda_ptr<scalar_t>(d_val) : nullptr, stream));
    });
  });
  return {d_e, d_dst, d_src, d_val};
}

TORCH_LIBRARY_IMPL(gnnlab, CUDA, m) {
  m.impl("gated_aggregate", &gated_aggregate_cuda);
  m.impl("gated_aggregate_backward", &gated_aggregate_backward_cuda);
}

}  // namespace gnnlab
#endif  // GNNLAB_WITH_CUDA
