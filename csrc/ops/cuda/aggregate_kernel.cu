// CUDA kernels of the fused CSR aggregation. The per-row logic is the __host__ __device__ code of
// ops/common/aggregate.h that the CPU kernel runs too. Unverified on a GPU.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "ops/common/aggregate.h"
#include "ops/cuda/aggregate_kernel.cuh"
#include "ops/cuda/launch.cuh"

namespace gnnlab {
namespace cuda {

namespace {

template <typename scalar_t, typename index_t>
__global__ void aggregate_kernel(const int64_t* rowptr, const index_t* col, const scalar_t* x, const scalar_t* w,
                                 int64_t R, int64_t F, int reduce, scalar_t* out, int32_t* arg) {
  using acc_t = typename Acc<scalar_t>::type;
  const int64_t total = R * F;
  for (int64_t idx = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; idx < total;
       idx += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t i = idx / F, f = idx - i * F;
    acc_t acc;
    if (reduce == agg::kSum || reduce == agg::kMean) {
      agg::sum_row<scalar_t, acc_t, index_t>(rowptr, col, x, w, F, i, f, f + 1, &acc);
    } else {
      agg::extremum_row<scalar_t, acc_t, index_t>(rowptr, col, x, w, F, i, f, f + 1, reduce, &acc, arg + idx);
    }
    out[idx] = static_cast<scalar_t>(agg::finish<acc_t>(acc, reduce, rowptr[i + 1] - rowptr[i]));
  }
}

template <typename scalar_t, typename index_t>
__global__ void weight_backward_kernel(const int64_t* rowptr, const index_t* col, const scalar_t* x,
                                       const scalar_t* grad_out, const int32_t* arg, int64_t R, int64_t F, int reduce,
                                       scalar_t* grad_w) {
  using acc_t = typename Acc<scalar_t>::type;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < R;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    agg::weight_grad_row<scalar_t, acc_t, index_t>(rowptr, col, x, grad_out, arg, F, i, reduce, grad_w);
  }
}

template <typename scalar_t, typename index_t>
__global__ void extremum_x_backward_kernel(const int64_t* rowptr, const int64_t* rowptr_t, const index_t* col_t,
                                           const int64_t* perm_t, const int32_t* arg, const scalar_t* grad_out, const scalar_t* w,
                                           int64_t num_src, int64_t F, scalar_t* grad_x) {
  using acc_t = typename Acc<scalar_t>::type;
  const int64_t total = num_src * F;
  for (int64_t idx = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; idx < total;
       idx += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t j = idx / F, f = idx - j * F;
    acc_t acc;
    agg::extremum_x_grad_row<scalar_t, acc_t, index_t>(rowptr, rowptr_t, col_t, perm_t, arg, grad_out, w, F, j, f, f + 1, &acc);
    grad_x[idx] = static_cast<scalar_t>(acc);
  }
}

}  // namespace

template <typename scalar_t, typename index_t>
cudaError_t aggregate(const int64_t* rowptr, const index_t* col, const scalar_t* x, const scalar_t* w, int64_t R,
                      int64_t F, int reduce, scalar_t* out, int32_t* arg, cudaStream_t stream) {
  if (R * F == 0) return cudaSuccess;
  aggregate_kernel<scalar_t, index_t><<<blocks_for(R * F), kThreads, 0, stream>>>(rowptr, col, x, w, R, F, reduce, out, arg);
  return cudaGetLastError();
}

template <typename scalar_t, typename index_t>
cudaError_t aggregate_weight_backward(const int64_t* rowptr, const index_t* col, const scalar_t* x,
                                      const scalar_t* grad_out, const int32_t* arg, int64_t R, int64_t F, int reduce,
                                      scalar_t* grad_w, cudaStream_t stream) {
  if (R == 0) return cudaSuccess;
  weight_backward_kernel<scalar_t, index_t><<<blocks_for(R), kThreads, 0, stream>>>(rowptr, col, x, grad_out, arg, R, F,
                                                                                   reduce, grad_w);
  return cudaGetLastError();
}

template <typename scalar_t, typename index_t>
cudaError_t aggregate_extremum_x_backward(const int64_t* rowptr, const int64_t* rowptr_t, const index_t* col_t,
                                          const int64_t* perm_t, const int32_t* arg, const scalar_t* grad_out, const scalar_t* w,
                                          int64_t num_src, int64_t F, scalar_t* grad_x, cudaStream_t stream) {
  if (num_src * F == 0) return cudaSuccess;
  extremum_x_backward_kernel<scalar_t, index_t><<<blocks_for(num_src * F), kThreads, 0, stream>>>(
      rowptr, rowptr_t, col_t, perm_t, arg, grad_out, w, num_src, F, grad_x);
  return cudaGetLastError();
}

#define GNNLAB_INSTANTIATE(scalar_t, index_t)                                                                        \
  template cudaError_t aggregate<scalar_t, index_t>(const int64_t*, const index_t*, const scalar_t*, const scalar_t*, \
                                                    int64_t, int64_t, int, scalar_t*, int32_t*, cudaStream_t);       \
  template cudaError_t aggregate_weight_backward<scalar_t, index_t>(const int64_t*, const index_t*, const scalar_t*, \
                                                                    const scalar_t*, const int32_t*, int64_t, int64_t, \
                                                                    int, scalar_t*, cudaStream_t);                   \
  template cudaError_t aggregate_extremum_x_backward<scalar_t, index_t>(                                             \
      const int64_t*, const int64_t*, const index_t*, const int64_t*, const int32_t*, const scalar_t*, const scalar_t*, \
      int64_t, int64_t, scalar_t*, cudaStream_t);

#define GNNLAB_INSTANTIATE_ALL(scalar_t) \
  GNNLAB_INSTANTIATE(scalar_t, int32_t)  \
  GNNLAB_INSTANTIATE(scalar_t, int64_t)

GNNLAB_INSTANTIATE_ALL(float)
GNNLAB_INSTANTIATE_ALL(double)
GNNLAB_INSTANTIATE_ALL(__half)
GNNLAB_INSTANTIATE_ALL(__nv_bfloat16)

}  // namespace cuda
}  // namespace gnnlab
