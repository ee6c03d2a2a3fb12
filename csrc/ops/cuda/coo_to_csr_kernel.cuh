// CUDA coo_to_csr on raw pointers. Includes only CUDA headers, so it compiles with plain nvcc;
// the torch glue (coo_to_csr_cuda.cpp) is built only when torch has CUDA.
// Unverified on a GPU: compiled for sm_80/sm_90 in CI, never run there.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

namespace gnnlab {
namespace cuda {

// Bytes of scratch memory coo_to_csr needs for num_edges edges (radix sort storage).
template <typename index_t>
size_t coo_to_csr_temp_bytes(int64_t num_edges);

// Writes 1 to *flag (device memory, zeroed by the caller) if any of data[0, n) is outside [0, bound).
template <typename index_t>
cudaError_t find_out_of_range(const index_t* data, int64_t n, int64_t bound, int* flag, cudaStream_t stream);

// Stable sort of edges by row, then rowptr by binary search per row and col gathered through perm.
// sorted_rows and iota are scratch buffers of num_edges entries; temp has coo_to_csr_temp_bytes bytes.
template <typename index_t>
cudaError_t coo_to_csr(const index_t* row, const index_t* col, int64_t num_edges, int64_t num_nodes, int64_t* rowptr,
                       index_t* col_out, int64_t* perm, index_t* sorted_rows, int64_t* iota, void* temp,
                       size_t temp_bytes, cudaStream_t stream);

}  // namespace cuda
}  // namespace gnnlab
