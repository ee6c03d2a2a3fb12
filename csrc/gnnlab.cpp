// Schemas of every gnnlab op, and the Python module object `gnnlab._C`.
// Kernels are registered per device in csrc/ops/<device>/; fake (meta) kernels and autograd
// formulas are registered from Python (gnnlab/ops/*.py).
#include <Python.h>
#include <torch/library.h>

extern "C" {
// Importing gnnlab._C runs the static TORCH_LIBRARY initialisers below; the module itself is empty.
PyObject* PyInit__C(void) {
  static struct PyModuleDef module_def = {PyModuleDef_HEAD_INIT, "_C", nullptr, -1, nullptr};
  return PyModule_Create(&module_def);
}
}

TORCH_LIBRARY(gnnlab, m) {
  // Stable COO -> CSR grouping by edge_index[0]: (rowptr [N+1] int64, col [E], perm [E] int64).
  m.def("coo_to_csr(Tensor edge_index, int num_nodes) -> (Tensor, Tensor, Tensor)");
  // Fused CSR aggregation out[i] = reduce_{e in row i} w[e] * x[col[e]] -> (out [R, F], arg).
  // arg is [R, F] int32 for max/min (the winning edge's slot in its row, -1 if empty), else [0].
  // The transposed CSR (rowptr_t, col_t, perm_t) is unused by the forward and feeds the backward.
  m.def(
      "aggregate(Tensor rowptr, Tensor col, Tensor rowptr_t, Tensor col_t, Tensor perm_t, Tensor x, Tensor? weight, "
      "str reduce) -> (Tensor, Tensor)");
  // d out / d weight: [E].
  m.def(
      "aggregate_weight_backward(Tensor rowptr, Tensor col, Tensor x, Tensor grad_out, Tensor arg, str reduce) -> "
      "Tensor");
  // d out / d x for max/min: [num_src, F]. The CPU kernel sends each winner to its source through
  // col; the CUDA kernel gathers them through the transposed CSR.
  m.def(
      "aggregate_extremum_x_backward(Tensor rowptr, Tensor col, Tensor rowptr_t, Tensor col_t, Tensor perm_t, "
      "Tensor arg, Tensor grad_out, Tensor? weight, int num_src) -> Tensor");
  // Edge-gated aggregation (GatedGCN), ops/common/gated_aggregate.h: e_hat [E, F] = edge_in[e] + x_dst[i] +
  // x_src[j]; num [R, F] = sum sigmoid(e_hat) * values[j]; den [R, F] = sum sigmoid(e_hat); edge_id [E] is the
  // edge id (row of edge_in / e_hat) of each CSR position. -> (e_hat, num, den). The transposed CSR
  // (rowptr_t, and edge_id_t the edge id of each of its positions) is unused by the forward and feeds
  // the backward.
  m.def(
      "gated_aggregate(Tensor rowptr, Tensor col, Tensor edge_id, Tensor rowptr_t, Tensor edge_id_t, "
      "Tensor edge_in, Tensor x_dst, Tensor x_src, Tensor values) -> (Tensor, Tensor, Tensor)");
  // Its backward from the cotangents of (e_hat, num, den), over both CSR orientations. -> (d_edge_in [E, F], d_x_dst [R, F], d_x_src [S, F], d_values [S, F]),
  // the first three empty unless need_edge, the last empty unless need_values.
  m.def(
      "gated_aggregate_backward(Tensor rowptr, Tensor col, Tensor edge_id, Tensor rowptr_t, Tensor edge_id_t, "
      "Tensor e_hat, Tensor values, Tensor g_e, Tensor g_num, Tensor g_den, bool need_edge, "
      "bool need_values) -> (Tensor, Tensor, Tensor, Tensor)");
  // Selective scan (Mamba) on [batch, D, L] inputs; B, C as [batch, G, N, L] views; reset [L] uint8 marks
  // the first step of each packed sequence; h0 [batch, D, N] (optional) is the state before step 0. fwd ->
  // (out, last_state [batch, D, N], checkpoints [batch, D, chunks, N]); bwd (grad_last: optional
  // gradient of last_state) -> (du, ddelta, dA, dB, dC, dD, dz, ddelta_bias, dh0), dB/dC as
  // [batch, D, N] for a time-invariant B/C (to be summed over batch) and [batch, G, N, L] otherwise.
  m.def(
      "selective_scan_fwd(Tensor u, Tensor delta, Tensor A, Tensor B, Tensor C, Tensor? D, Tensor? z, "
      "Tensor? delta_bias, bool delta_softplus, Tensor? reset, int chunk, Tensor? h0=None) -> (Tensor, Tensor, Tensor)");
  m.def(
      "selective_scan_bwd(Tensor u, Tensor delta, Tensor A, Tensor B, Tensor C, Tensor? D, Tensor? z, "
      "Tensor? delta_bias, bool delta_softplus, Tensor? reset, int chunk, Tensor checkpoints, Tensor grad_out, "
      "Tensor? grad_last=None) -> Tensor[]");
  // Common neighbours over a sorted, duplicate-free CSR adjacency, for query pairs (src[p], dst[p]);
  // mode 0: N(src) & N(dst), 1: N(src) \ N(dst), 2: N(dst) \ N(src); edge_mask (0 = absent) hides entries.
  // count -> (count [B] int64, sum of node_weight over the set [B] or [0]).
  m.def(
      "common_neighbor_count(Tensor rowptr, Tensor col, Tensor src, Tensor dst, Tensor? node_weight, "
      "Tensor? edge_mask, int mode) -> (Tensor, Tensor)");
  // sets -> (ptr [B+1] int64, nodes [M] int64): pair p's members are nodes[ptr[p]:ptr[p+1]], ascending.
  m.def(
      "common_neighbor_sets(Tensor rowptr, Tensor col, Tensor src, Tensor dst, Tensor? edge_mask, int mode) -> "
      "(Tensor, Tensor)");
  // Multi-hop uniform neighbour sampling over a CSR adjacency (row v lists the nodes v may draw);
  // num_neighbors[h] per frontier entry in hop h (-1: all), with or without replacement, random
  // stream from `seed`. -> (node [M], src [S], dst [S], edge [S] CSR position, num_sampled_nodes
  // [hops+1], num_sampled_edges [hops]), all int64; order as gnnlab/ops/_reference.py states. CPU only.
  // check_graph=false skips the O(N + E) range checks of rowptr and col (a graph checked once by its
  // owner, e.g. a sampler); seeds and fan-outs are always checked.
  m.def(
      "neighbor_sample(Tensor rowptr, Tensor col, Tensor seeds, int[] num_neighbors, bool replace, int seed, "
      "bool check_graph=True) -> (Tensor, Tensor, Tensor, Tensor, Tensor, Tensor)");
}
