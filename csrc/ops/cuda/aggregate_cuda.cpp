// Torch glue for the CUDA aggregation kernels; compiled only when torch has CUDA (GNNLAB_WITH_CUDA).
// Unverified on a GPU.
#ifdef GNNLAB_WITH_CUDA
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include "ops/cuda/cuda_ptr.h"
#include "ops/aggregate.h"
#include "ops/common/aggregate.h"
#include "ops/cuda/aggregate_kernel.cuh"

namespace gnnlab {

std::tuple<at::Tensor, at::Tensor> aggregate_cuda(const at::Tensor& rowptr, const at::Tensor& col,
                                                  const at::Tensor& rowptr_t, const at::Tensor& col_t,
                                                  const at::Tensor& perm_t, const at::Tensor& x_in,
                                                  const c10::optional<at::Tensor>& weight, c10::string_view reduce_name) {
  const int reduce = parse_reduce(std::string(reduce_name));
  check_aggregate_op(rowptr, col, rowptr_t, col_t, perm_t, x_in, weight);
  const c10::cuda::CUDAGuard guard(x_in.device());
  const auto stream = c10::cuda::getCurrentCUDAStream().stream();
  const auto rp = rowptr.contiguous();
  const auto c = col.contiguous();
  const auto x = x_in.contiguous();
  const auto w = weight.has_value() ? weight->contiguous() : at::Tensor();
  const int64_t R = rp.size(0) - 1, F = x.size(1);
  auto out = at::empty({R, F}, x.options());
  const bool extremum = reduce == agg::kMax || reduce == agg::kMin;
  if (extremum) check_extremum_degree(rp, "aggregate");
  auto arg = at::empty(extremum ? at::IntArrayRef{R, F} : at::IntArrayRef{0}, x.options().dtype(at::kInt));
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "aggregate_cuda", [&] {
    AT_DISPATCH_INDEX_TYPES(c.scalar_type(), "aggregate_cuda_index", [&] {
      C10_CUDA_CHECK(cuda::aggregate(rp.data_ptr<int64_t>(), c.data_ptr<index_t>(), cuda_ptr<scalar_t>(x),
                                     cuda_ptr<scalar_t>(w), R, F, reduce, cuda_ptr<scalar_t>(out),
                                     extremum ? arg.data_ptr<int32_t>() : nullptr, stream));
    });
  });
  return {out, arg};
}

at::Tensor aggregate_weight_backward_cuda(const at::Tensor& rowptr, const at::Tensor& col, const at::Tensor& x_in,
                                          const at::Tensor& grad_out_in, const at::Tensor& arg_in,
                                          c10::string_view reduce_name) {
  const int reduce = parse_reduce(std::string(reduce_name));
  check_weight_backward_op(rowptr, col, x_in, grad_out_in, arg_in, reduce);
  const c10::cuda::CUDAGuard guard(x_in.device());
  const auto stream = c10::cuda::getCurrentCUDAStream().stream();
  const auto rp = rowptr.contiguous();
  const auto c = col.contiguous();
  const auto x = x_in.contiguous();
  const auto g = grad_out_in.contiguous();
  const auto arg = arg_in.contiguous();
  const int64_t R = rp.size(0) - 1, F = x.size(1);
  auto grad_w = at::empty({c.size(0)}, x.options());
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "aggregate_weight_backward_cuda", [&] {
    AT_DISPATCH_INDEX_TYPES(c.scalar_type(), "aggregate_weight_backward_cuda_index", [&] {
      C10_CUDA_CHECK(cuda::aggregate_weight_backward(rp.data_ptr<int64_t>(), c.data_ptr<index_t>(),
                                                     cuda_ptr<scalar_t>(x), cuda_ptr<scalar_t>(g),
                                                     arg.numel() ? arg.data_ptr<int32_t>() : nullptr, R, F, reduce,
                                                     cuda_ptr<scalar_t>(grad_w), stream));
    });
  });
  return grad_w;
}

at::Tensor aggregate_extremum_x_backward_cuda(const at::Tensor& rowptr, const at::Tensor& col, const at::Tensor& rowptr_t,
                                              const at::Tensor& col_t, const at::Tensor& perm_t, const at::Tensor& arg_in,
                                              const at::Tensor& grad_out_in, const c10::optional<at::Tensor>& weight,
                                              int64_t num_src) {
  check_extremum_x_backward_op(rowptr, col, rowptr_t, col_t, perm_t, arg_in, grad_out_in, weight, num_src);
  const c10::cuda::CUDAGuard guard(grad_out_in.device());
  const auto stream = c10::cuda::getCurrentCUDAStream().stream();
  const auto rp_fwd = rowptr.contiguous();
  const auto rp = rowptr_t.contiguous();
  const auto c = col_t.contiguous();
  const auto perm = perm_t.contiguous();
  const auto arg = arg_in.contiguous();
  const auto g = grad_out_in.contiguous();
  const auto w = weight.has_value() ? weight->contiguous() : at::Tensor();
  const int64_t F = g.size(1);
  auto grad_x = at::empty({num_src, F}, g.options());
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, g.scalar_type(), "aggregate_extremum_x_backward_cuda", [&] {
    AT_DISPATCH_INDEX_TYPES(c.scalar_type(), "aggregate_extremum_x_backward_cuda_index", [&] {
      C10_CUDA_CHECK(cuda::aggregate_extremum_x_backward(rp_fwd.data_ptr<int64_t>(), rp.data_ptr<int64_t>(),
                                                         c.data_ptr<index_t>(), perm.data_ptr<int64_t>(),
                                                         arg.data_ptr<int32_t>(),
                                                         cuda_ptr<scalar_t>(g), cuda_ptr<scalar_t>(w), num_src, F,
                                                         cuda_ptr<scalar_t>(grad_x), stream));
    });
  });
  return grad_x;
}

TORCH_LIBRARY_IMPL(gnnlab, CUDA, m) {
  m.impl("aggregate", &aggregate_cuda);
  m.impl("aggregate_weight_backward", &aggregate_weight_backward_cuda);
  m.impl("aggregate_extremum_x_backward", &aggregate_extremum_x_backward_cuda);
}

}  // namespace gnnlab
#endif  // GNNLAB_WITH_CUDA
