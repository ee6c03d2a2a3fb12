// CUDA kernels of the edge-gated aggregation. The per-row logic is the __host__ __device__ code of
// ops/common/gated_aggregate.h that the CPU kernel runs too. Unverified on a GPU.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "ops/common/gated_aggregate.h"
#include "ops/cuda/gated_aggregate_kernel.cuh"
#include "ops/cuda/launch.cuh"

namespace gnnlab {
namespace cuda {

namespace {

template <typename scalar_t, typename index_t>
__global__ void forward_kernel(const int64_t* rowptr, const index_t* col, const int64_t* edge_id,
                               const scalar_t* edge_in, const scalar_t* x_dst, const scalar_t* x_src,
                               const scalar_t* values, int64_t R, int64_t F, scalar_t* e_hat, scalar_t* num,
                               scalar_t* den) {
  using acc_t = typename Acc<scalar_t>::type;
  for (int64_t idx = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; idx < R * F;
       idx += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t i = idx / F, f = idx - i * F;
    acc_t a, b;
    gated::forward_row<0, scalar_t, acc_t, index_t>(rowptr, col, edge_id, edge_in, x_dst, x_src, values, F, i, f, 1,
                                                    e_hat, &a, &b, 0);
    num[idx] = static_cast<scalar_t>(a);
    den[idx] = static_cast<scalar_t>(b);
  }
}

template <typename scalar_t, typename index_t>
__global__ void backward_dst_kernel(const int64_t* rowptr, const index_t* col, const int64_t* edge_id,
                                    const scalar_t* e_hat, const scalar_t* values, const scalar_t* g_e,
                                    const scalar_t* g_num, const scalar_t* g_den, int64_t R, int64_t F, scalar_t* d_e,
                                    scalar_t* d_dst, scalar_t* w) {
  using acc_t = typename Acc<scalar_t>::type;
  for (int64_t idx = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; idx < R * F;
       idx += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t i = idx / F, f = idx - i * F;
    acc_t a;
    gated::backward_dst_row<0, scalar_t, acc_t, index_t>(rowptr, col, edge_id, e_hat, values, g_e, g_num, g_den, F, i,
                                                         f, 1, d_e, d_dst != nullptr ? &a : nullptr, w, 0);
    if (d_dst != nullptr) d_dst[idx] = static_cast<scalar_t>(a);
  }
}

template <typename scalar_t>
__global__ void backward_src_kernel(const int64_t* rowptr_t, const int64_t* edge_id_t, const scalar_t* d_e,
                                    const scalar_t* w, int64_t S, int64_t F, scalar_t* d_src, scalar_t* d_val) {
  using acc_t = typename Acc<scalar_t>::type;
  for (int64_t idx = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; idx < S * F;
       idx += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t j = idx / F, f = idx - j * F;
    acc_t a, b;
    gated::backward_src_row<0, scalar_t, acc_t>(rowptr_t, edge_id_t, d_e, w, F, j, f, 1,
                                                d_src != nullptr ? &a : nullptr, d_val != nullptr ? &b : nullptr, 0);
    if (d_src != nullptr) d_src[idx] = static_cast<scalar_t>(a);
    if (d_val != nullptr) d_val[idx] = static_cast<scalar_t>(b);
  }
}

}  // namespace

template <typename scalar_t, typename index_t>
cudaError_t gated_aggregate(const int64_t* rowptr, const index_t* col, const int64_t* edge_id,
                            const scalar_t* edge_in, const scalar_t* x_dst, const scalar_t* x_src,
                            const scalar_t* values, int64_t R, int64_t F, scalar_t* e_hat, scalar_t* num,
                            scalar_t* den, cudaStream_t stream) {
  if (R * F == 0) return cudaSuccess;
  forward_kernel<scalar_t, index_t><<<blocks_for(R * F), kThreads, 0, stream>>>(rowptr, col, edge_id, edge_in, x_dst,
                                                                               x_src, values, R, F, e_hat, num, den);
  return cudaGetLastError();
}

template <typename scalar_t, typename index_t>
cudaError_t gated_aggregate_backward(const int64_t* rowptr, const index_t* col, const int64_t* edge_id,
                                     const int64_t* rowptr_t, const int64_t* edge_id_t, const scalar_t* e_hat,
                                     const scalar_t* values, const scalar_t* g_e, const scalar_t* g_num,
                                     const scalar_t* g_den, int64_t R, int64_t S, int64_t F, scalar_t* d_e,
                                     scalar_t* d_dst, scalar_t* w, scalar_t* d_src, scalar_t* d_val,
                                     cudaStream_t stream) {
  scalar_t* w_out = d_val != nullptr ? w : nullptr;
  if ((d_dst != nullptr || w_out != nullptr) && R * F > 0) {
    backward_dst_kernel<scalar_t, index_t><<<blocks_for(R * F), kThreads, 0, stream>>>(
        rowptr, col, edge_id, e_hat, values, g_e, g_num, g_den, R, F, d_e, d_dst, w_out);
    const cudaError_t err = cudaGetLastError();
    if (err != cudaSuccess) return err;
  }
  if ((d_src != nullptr || d_val != nullptr) && S * F > 0) {
    // d_e and w are complete here: the same stream orders the two launches.
    backward_src_kernel<scalar_t><<<blocks_for(S * F), kThreads, 0, stream>>>(rowptr_t, edge_id_t, d_e, w, S, F,
                                                                             d_src, d_val);
  }
  return cudaGetLastError();
}

#define GNNLAB_INSTANTIATE(scalar_t, index_t)                                                                         \
  template cudaError_t gated_aggregate<scalar_t, index_t>(const int64_t*, const index_t*, const int64_t*,             \
                                                          const scalar_t*, const scalar_t*, const scalar_t*,          \
                                                          const scalar_t*, int64_t, int64_t, scalar_t*, scalar_t*,    \
                                                          scalar_t*, cudaStream_t);                                   \
  template cudaError_t gated_aggregate_backward<scalar_t, index_t>(                                                   \
      const int64_t*, const index_t*, const int64_t*, const int64_t*, const int64_t*, const scalar_t*, const scalar_t*, \
      const scalar_t*, const scalar_t*, const scalar_t*, int64_t, int64_t, int64_t, scalar_t*, scalar_t*, scalar_t*,  \
      scalar_t*, scalar_t*, cudaStream_t);

#define GNNLAB_INSTANTIATE_ALL(scalar_t) \
  GNNLAB_INSTANTIATE(scalar_t, int32_t)  \
  GNNLAB_INSTANTIATE(scalar_t, int64_t)

GNNLAB_INSTANTIATE_ALL(float)
GNNLAB_INSTANTIATE_ALL(double)
GNNLAB_INSTANTIATE_ALL(__half)
GNNLAB_INSTANTIATE_ALL(__nv_bfloat16)

}  // namespace cuda
}  // namespace gnnlab
