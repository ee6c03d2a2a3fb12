// CUDA kernels for coo_to_csr (see coo_to_csr_kernel.cuh). Unverified on a GPU.
#include <cub/device/device_radix_sort.cuh>

#include "ops/common/csr.h"
#include "ops/cuda/coo_to_csr_kernel.cuh"
#include "ops/cuda/launch.cuh"

namespace gnnlab {
namespace cuda {

namespace {

template <typename index_t>
__global__ void out_of_range_kernel(const index_t* data, int64_t n, int64_t bound, int* flag) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    if (!csr::in_range(data[i], bound)) {
      *flag = 1;  // benign race: every writer stores the same value
    }
  }
}

__global__ void iota_kernel(int64_t* out, int64_t n) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    out[i] = i;
  }
}

template <typename index_t>
__global__ void rowptr_kernel(const index_t* sorted_rows, int64_t num_edges, int64_t num_nodes, int64_t* rowptr) {
  for (int64_t r = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; r <= num_nodes;
       r += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    rowptr[r] = csr::rowptr_entry(sorted_rows, num_edges, r);
  }
}

template <typename index_t>
__global__ void gather_kernel(const index_t* col, const int64_t* perm, int64_t n, index_t* col_out) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    col_out[i] = col[perm[i]];
  }
}

}  // namespace

template <typename index_t>
size_t coo_to_csr_temp_bytes(int64_t num_edges) {
  size_t bytes = 0;
  cub::DeviceRadixSort::SortPairs(nullptr, bytes, static_cast<const index_t*>(nullptr), static_cast<index_t*>(nullptr),
                                  static_cast<const int64_t*>(nullptr), static_cast<int64_t*>(nullptr), num_edges);
  return bytes;
}

template <typename index_t>
cudaError_t find_out_of_range(const index_t* data, int64_t n, int64_t bound, int* flag, cudaStream_t stream) {
  if (n == 0) return cudaSuccess;
  out_of_range_kernel<index_t><<<blocks_for(n), kThreads, 0, stream>>>(data, n, bound, flag);
  return cudaGetLastError();
}

template <typename index_t>
cudaError_t coo_to_csr(const index_t* row, const index_t* col, int64_t num_edges, int64_t num_nodes, int64_t* rowptr,
                       index_t* col_out, int64_t* perm, index_t* sorted_rows, int64_t* iota, void* temp,
                       size_t temp_bytes, cudaStream_t stream) {
  if (num_edges > 0) {
    iota_kernel<<<blocks_for(num_edges), kThreads, 0, stream>>>(iota, num_edges);
    // Radix sort is stable, so edges of one row keep their input order (same as the CPU kernel).
    cudaError_t err = cub::DeviceRadixSort::SortPairs(temp, temp_bytes, row, sorted_rows, iota, perm, num_edges, 0,
                                                      static_cast<int>(sizeof(index_t) * 8), stream);
    if (err != cudaSuccess) return err;
    gather_kernel<index_t><<<blocks_for(num_edges), kThreads, 0, stream>>>(col, perm, num_edges, col_out);
  }
  rowptr_kernel<index_t><<<blocks_for(num_nodes + 1), kThreads, 0, stream>>>(sorted_rows, num_edges, num_nodes, rowptr);
  return cudaGetLastError();
}

#define GNNLAB_INSTANTIATE(index_t)                                                                                  \
  template size_t coo_to_csr_temp_bytes<index_t>(int64_t);                                                          \
  template cudaError_t find_out_of_range<index_t>(const index_t*, int64_t, int64_t, int*, cudaStream_t);          \
  template cudaError_t coo_to_csr<index_t>(const index_t*, const index_t*, int64_t, int64_t, int64_t*, index_t*, \
                                           int64_t*, index_t*, int64_t*, void*, size_t, cudaStream_t);

GNNLAB_INSTANTIATE(int32_t)
GNNLAB_INSTANTIATE(int64_t)

}  // namespace cuda
}  // namespace gnnlab
