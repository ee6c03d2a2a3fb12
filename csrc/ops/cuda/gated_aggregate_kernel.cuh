// CUDA edge-gated aggregation on raw pointers (see ops/common/gated_aggregate.h for the definition).
// Includes only CUDA headers, so it compiles with plain nvcc; the torch glue (gated_aggregate_cuda.cpp)
// is built only when torch has CUDA. Unverified on a GPU: compiled for sm_80/sm_90 in CI only.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

namespace gnnlab {
namespace cuda {

// e_hat [E, F], num and den [R, F]. One thread per (target row, feature): no atomics.
template <typename scalar_t, typename index_t>
cudaError_t gated_aggregate(const int64_t* rowptr, const index_t* col, const int64_t* edge_id,
                            const scalar_t* edge_in, const scalar_t* x_dst, const scalar_t* x_src,
                            const scalar_t* values, int64_t R, int64_t F, scalar_t* e_hat, scalar_t* num,
                            scalar_t* den, cudaStream_t stream);

// The backward: by target rows, d_e [E, F] and d_dst [R, F] (when d_dst is not null) and w [E, F]
// (when d_val is not null); then by source rows over the transposed CSR, d_src (the sums of d_e) and
// d_val [S, F] (the sums of w), each when not null; on one stream. Pointers of empty tensors may be null.
template <typename scalar_t, typename index_t>
cudaError_t gated_aggregate_backward(const int64_t* rowptr, const index_t* col, const int64_t* edge_id,
                                     const int64_t* rowptr_t, const int64_t* edge_id_t, const scalar_t* e_hat,
                                     const scalar_t* values, const scalar_t* g_e, const scalar_t* g_num,
                                     const scalar_t* g_den, int64_t R, int64_t S, int64_t F, scalar_t* d_e,
                                     scalar_t* d_dst, scalar_t* w, scalar_t* d_src, scalar_t* d_val,
                                     cudaStream_t stream);

}  // namespace cuda
}  // namespace gnnlab
