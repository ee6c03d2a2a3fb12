// CUDA kernels of the common-neighbour ops. The per-pair logic is the __host__ __device__ code of
// ops/common/intersect.h that the CPU kernels run too. Unverified on a GPU.
#include "ops/common/intersect.h"
#include "ops/cuda/common_neighbors_kernel.cuh"
#include "ops/cuda/launch.cuh"

namespace gnnlab {
namespace cuda {

namespace {

template <typename index_t>
__global__ void count_kernel(const int64_t* rowptr, const index_t* col, const uint8_t* mask, const int64_t* src,
                             const int64_t* dst, int64_t B, int mode, const double* node_weight, int64_t* count,
                             double* weight_sum) {
  for (int64_t p = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; p < B;
       p += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const auto a = cn::row_of(rowptr, col, mask, src[p]);
    const auto b = cn::row_of(rowptr, col, mask, dst[p]);
    double sum = 0.0;
    count[p] = cn::count_members(a, b, mode, node_weight, weight_sum != nullptr ? &sum : nullptr);
    if (weight_sum != nullptr) weight_sum[p] = sum;
  }
}

template <typename index_t>
__global__ void fill_kernel(const int64_t* rowptr, const index_t* col, const uint8_t* mask, const int64_t* src,
                            const int64_t* dst, int64_t B, int mode, const int64_t* ptr, int64_t* nodes) {
  for (int64_t p = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; p < B;
       p += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const auto a = cn::row_of(rowptr, col, mask, src[p]);
    const auto b = cn::row_of(rowptr, col, mask, dst[p]);
    cn::fill_members(a, b, mode, nodes + ptr[p]);
  }
}

}  // namespace

template <typename index_t>
cudaError_t common_neighbor_count(const int64_t* rowptr, const index_t* col, const uint8_t* mask, const int64_t* src,
                                  const int64_t* dst, int64_t B, int mode, const double* node_weight, int64_t* count,
                                  double* weight_sum, cudaStream_t stream) {
  if (B == 0) return cudaSuccess;
  count_kernel<index_t><<<blocks_for(B), kThreads, 0, stream>>>(rowptr, col, mask, src, dst, B, mode, node_weight,
                                                                count, weight_sum);
  return cudaGetLastError();
}

template <typename index_t>
cudaError_t common_neighbor_fill(const int64_t* rowptr, const index_t* col, const uint8_t* mask, const int64_t* src,
                                 const int64_t* dst, int64_t B, int mode, const int64_t* ptr, int64_t* nodes,
                                 cudaStream_t stream) {
  if (B == 0) return cudaSuccess;
  fill_kernel<index_t><<<blocks_for(B), kThreads, 0, stream>>>(rowptr, col, mask, src, dst, B, mode, ptr, nodes);
  return cudaGetLastError();
}

#define GNNLAB_INSTANTIATE(index_t)                                                                                  \
  template cudaError_t common_neighbor_count<index_t>(const int64_t*, const index_t*, const uint8_t*, const int64_t*, \
                                                      const int64_t*, int64_t, int, const double*, int64_t*, double*, \
                                                      cudaStream_t);                                                 \
  template cudaError_t common_neighbor_fill<index_t>(const int64_t*, const index_t*, const uint8_t*, const int64_t*,  \
                                                     const int64_t*, int64_t, int, const int64_t*, int64_t*,          \
                                                     cudaStream_t);

GNNLAB_INSTANTIATE(int32_t)
GNNLAB_INSTANTIATE(int64_t)

}  // namespace cuda
}  // namespace gnnlab
