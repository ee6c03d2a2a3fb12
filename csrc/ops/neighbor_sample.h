// neighbor_sample: multi-hop uniform neighbour sampling over a CSR adjacency (gnnlab.ops.neighbor_sample).
#pragma once

#include <torch/types.h>

#include <tuple>
#include <vector>

namespace gnnlab {

// Checks rowptr [N+1] int64 CSR offsets over col (0 .. E, non-decreasing); col [E] and seeds [S]
// int32/int64 with entries in [0, N); every fan-out -1 (all) or >= 0; all on the CPU. Raises
// ValueError (TORCH_CHECK_VALUE) naming the argument. Without check_graph, rowptr and col get only the
// O(1) checks (dtype, shape, rowptr's two ends): the caller vouches for their values.
void check_neighbor_sample_inputs(const at::Tensor& rowptr, const at::Tensor& col, const at::Tensor& seeds,
                                  at::IntArrayRef num_neighbors, bool check_graph);

// -> (node [M] int64, src [S] int64, dst [S] int64, edge [S] int64, num_sampled_nodes [hops+1] int64,
//     num_sampled_edges [hops] int64); the order and meaning are those of _reference.neighbor_sample.
std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor> neighbor_sample_cpu(
    const at::Tensor& rowptr, const at::Tensor& col, const at::Tensor& seeds, at::IntArrayRef num_neighbors,
    bool replace, int64_t seed, bool check_graph);

}  // namespace gnnlab
