// CUDA common-neighbour kernels on raw pointers (see ops/common/intersect.h for the definitions).
// Includes only CUDA headers, so it compiles with plain nvcc; the torch glue
// (common_neighbors_cuda.cpp) is built only when torch has CUDA. Unverified on a GPU: compiled for
// sm_80/sm_90 in CI only. One thread per query pair; sets are built count -> scan -> fill, the scan
// being done by the caller between the two launches.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

namespace gnnlab {
namespace cuda {

// count[p] = |set(p)|; weight_sum[p] = sum of node_weight over set(p) when node_weight is non-null.
template <typename index_t>
cudaError_t common_neighbor_count(const int64_t* rowptr, const index_t* col, const uint8_t* mask, const int64_t* src,
                                  const int64_t* dst, int64_t B, int mode, const double* node_weight, int64_t* count,
                                  double* weight_sum, cudaStream_t stream);

// nodes[ptr[p] .. ptr[p+1]) = set(p) in ascending order; ptr is the inclusive scan of the counts
// with ptr[0] = 0.
template <typename index_t>
cudaError_t common_neighbor_fill(const int64_t* rowptr, const index_t* col, const uint8_t* mask, const int64_t* src,
                                 const int64_t* dst, int64_t B, int mode, const int64_t* ptr, int64_t* nodes,
                                 cudaStream_t stream);

}  // namespace cuda
}  // namespace gnnlab
