// Edge-gated aggregation (GatedGCN's message passing, ops/common/gated_aggregate.h): input checks
// shared by every backend.
//
// Every entry point (CPU and CUDA) calls these checks before touching any data; each raises a
// Python ValueError naming the argument. O(E + R + num_src).
#pragma once

#include <torch/types.h>

namespace gnnlab {

// The forward CSR (rowptr [R+1] int64 from 0 to E, non-decreasing; col [E] int32/int64 in
// [0, num_src)); edge_id [E] int64, a permutation of [0, E) (the edge id of each CSR position);
// x_src and values [num_src, F], x_dst [R, F], edge_in [E, F]: one floating dtype (float32, float64,
// float16, bfloat16), all on one device.
void check_gated_aggregate_op(const at::Tensor& rowptr, const at::Tensor& col, const at::Tensor& edge_id,
                              const at::Tensor& edge_in, const at::Tensor& x_dst, const at::Tensor& x_src,
                              const at::Tensor& values, const char* op);

// The backward: the forward CSR and its tensors as above (x_dst stands for its shape only: g_num),
// the transposed CSR (rowptr_t [num_src+1] from 0 to E, non-decreasing; edge_id_t [E] int64, a
// permutation of [0, E)), e_hat and g_e [E, F], g_num and g_den [R, F].
void check_gated_aggregate_backward_op(const at::Tensor& rowptr, const at::Tensor& col, const at::Tensor& edge_id,
                                       const at::Tensor& rowptr_t, const at::Tensor& edge_id_t, const at::Tensor& e_hat,
                                       const at::Tensor& values, const at::Tensor& g_e, const at::Tensor& g_num,
                                       const at::Tensor& g_den);

// The backward's outputs (empty [0] where not wanted) and its scratch w = sigmoid(e_hat) * g_num[target]
// ([E, F] when need_values), all like `values`.
struct GatedGrads {
  at::Tensor d_e, d_dst, d_src, d_val, w;
};
GatedGrads allocate_gated_grads(const at::Tensor& values, int64_t num_edges, int64_t num_rows, bool need_edge,
                                bool need_values);

}  // namespace gnnlab
