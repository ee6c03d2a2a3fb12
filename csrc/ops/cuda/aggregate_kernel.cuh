// CUDA fused CSR aggregation on raw pointers (see ops/common/aggregate.h for the definition).
// Includes only CUDA headers, so it compiles with plain nvcc; the torch glue (aggregate_cuda.cpp)
// is built only when torch has CUDA. Unverified on a GPU: compiled for sm_80/sm_90 in CI only.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

namespace gnnlab {
namespace cuda {

// out [R, F]; arg [R, F] int32 slots for max/min (else unused, may be null). One thread per (row, feature):
// no atomics, threads of a warp read consecutive features of the same source row.
template <typename scalar_t, typename index_t>
cudaError_t aggregate(const int64_t* rowptr, const index_t* col, const scalar_t* x, const scalar_t* w, int64_t R,
                      int64_t F, int reduce, scalar_t* out, int32_t* arg, cudaStream_t stream);

// grad_w [E]: one thread per row.
template <typename scalar_t, typename index_t>
cudaError_t aggregate_weight_backward(const int64_t* rowptr, const index_t* col, const scalar_t* x,
                                      const scalar_t* grad_out, const int32_t* arg, int64_t R, int64_t F, int reduce,
                                      scalar_t* grad_w, cudaStream_t stream);

// grad_x [num_src, F] for max/min through the transposed CSR: one thread per (source, feature).
template <typename scalar_t, typename index_t>
cudaError_t aggregate_extremum_x_backward(const int64_t* rowptr, const int64_t* rowptr_t, const index_t* col_t,
                                          const int64_t* perm_t, const int32_t* arg, const scalar_t* grad_out, const scalar_t* w,
                                          int64_t num_src, int64_t F, scalar_t* grad_x, cudaStream_t stream);

}  // namespace cuda
}  // namespace gnnlab
