#include "ops/gated_aggregate.h"

#include <ATen/ATen.h>

#include <vector>

#include "ops/checks.h"

namespace gnnlab {

namespace {

// t is [rows, F] of like's dtype, on like's device.
void check_matrix(const at::Tensor& t, int64_t rows, const at::Tensor& like, const char* name, const char* what,
                  const char* op) {
  TORCH_CHECK_VALUE(t.dim() == 2 && t.size(0) == rows && t.size(1) == like.size(1), op, ": ", name,
                    " must have shape [", rows, ", ", like.size(1), "] (", what, ", features), got ", t.sizes());
  TORCH_CHECK_VALUE(t.scalar_type() == like.scalar_type(), op, ": ", name, " dtype ", t.scalar_type(),
                    " does not match the dtype of the features, ", like.scalar_type());
  check_device(t, like.device(), name, op);
}

// Every edge id appears exactly once: the kernels write one output row per CSR position.
void check_permutation(const at::Tensor& edge_id, const char* name, const char* op) {
  const int64_t n = edge_id.numel();
  bool ok = true;
  if (edge_id.device().is_cpu()) {
    const auto ids = edge_id.contiguous();
    const int64_t* p = ids.data_ptr<int64_t>();
    std::vector<uint8_t> seen(n, 0);
    for (int64_t k = 0; k < n && ok; ++k) {
      ok = seen[p[k]] == 0;  // in range: checked before
      seen[p[k]] = 1;
    }
  } else if (n > 0) {
    auto count = at::zeros({n}, edge_id.options().dtype(at::kInt));
    count.index_put_({edge_id}, at::ones({n}, count.options()), /*accumulate=*/true);
    ok = count.eq(1).all().item<bool>();
  }
  TORCH_CHECK_VALUE(ok, op, ": ", name, " must be a permutation of [0, ", n, ") (each edge once), got a repeated id");
}

// The forward CSR against `features` [num_src, F] (x_src or values), which must be floating point.
void check_csr(const at::Tensor& rowptr, const at::Tensor& col, const at::Tensor& features, const char* name,
               const char* op) {
  TORCH_CHECK_VALUE(features.dim() == 2, op, ": ", name, " must be 2-D [source nodes, features], got shape ",
                    features.sizes());
  const auto dtype = features.scalar_type();
  TORCH_CHECK_VALUE(dtype == at::kFloat || dtype == at::kDouble || dtype == at::kHalf || dtype == at::kBFloat16, op,
                    ": ", name, " must be floating point (float32, float64, float16 or bfloat16), got ", dtype);
  TORCH_CHECK_VALUE(col.dim() == 1, op, ": col must be 1-D, got shape ", col.sizes());
  check_device(rowptr, features.device(), "rowptr", op);
  check_device(col, features.device(), "col", op);
  check_offsets(rowptr, col.size(0), "rowptr", op);
  check_indices(col, col.size(0), features.size(0), /*allow_int32=*/true, "col", "source nodes", op);
}

// ids [E] int64 on like's device, a permutation of [0, E).
void check_edge_ids(const at::Tensor& ids, int64_t num_edges, const at::Tensor& like, const char* name, const char* op) {
  check_device(ids, like.device(), name, op);
  check_indices(ids, num_edges, num_edges, /*allow_int32=*/false, name, "edges", op);
  check_permutation(ids, name, op);
}

}  // namespace

void check_gated_aggregate_op(const at::Tensor& rowptr, const at::Tensor& col, const at::Tensor& edge_id,
                              const at::Tensor& edge_in, const at::Tensor& x_dst, const at::Tensor& x_src,
                              const at::Tensor& values, const char* op) {
  check_csr(rowptr, col, x_src, "x_src", op);
  const int64_t num_edges = col.size(0), num_rows = rowptr.size(0) - 1;
  check_edge_ids(edge_id, num_edges, x_src, "edge_id", op);
  check_matrix(edge_in, num_edges, x_src, "edge_in", "edges", op);
  check_matrix(x_dst, num_rows, x_src, "x_dst", "target nodes", op);
  check_matrix(values, x_src.size(0), x_src, "values", "source nodes", op);
}

void check_gated_aggregate_backward_op(const at::Tensor& rowptr, const at::Tensor& col, const at::Tensor& edge_id,
                                       const at::Tensor& rowptr_t, const at::Tensor& edge_id_t, const at::Tensor& e_hat,
                                       const at::Tensor& values, const at::Tensor& g_e, const at::Tensor& g_num,
                                       const at::Tensor& g_den) {
  const char* op = "gated_aggregate_backward";
  check_csr(rowptr, col, values, "values", op);
  const int64_t num_edges = col.size(0), num_rows = rowptr.size(0) - 1;
  check_edge_ids(edge_id, num_edges, values, "edge_id", op);
  check_matrix(e_hat, num_edges, values, "e_hat", "edges", op);
  check_matrix(g_num, num_rows, values, "g_num", "target nodes", op);
  check_device(rowptr_t, values.device(), "rowptr_t", op);
  TORCH_CHECK_VALUE(rowptr_t.dim() == 1 && rowptr_t.size(0) == values.size(0) + 1, op, ": rowptr_t must have ",
                    values.size(0) + 1, " entries (one row per source node, plus one), got shape ", rowptr_t.sizes());
  check_offsets(rowptr_t, num_edges, "rowptr_t", op);
  check_edge_ids(edge_id_t, num_edges, values, "edge_id_t", op);
  check_matrix(g_e, num_edges, values, "g_e", "edges", op);
  check_matrix(g_den, num_rows, values, "g_den", "target nodes", op);
}

GatedGrads allocate_gated_grads(const at::Tensor& values, int64_t num_edges, int64_t num_rows, bool need_edge,
                                bool need_values) {
  const int64_t S = values.size(0), F = values.size(1);
  const auto opts = values.options();
  const auto maybe = [&](bool wanted, int64_t rows) { return at::empty(wanted ? at::IntArrayRef{rows, F} : at::IntArrayRef{0}, opts); };
  return {maybe(need_edge, num_edges), maybe(need_edge, num_rows), maybe(need_edge, S), maybe(need_values, S),
          maybe(need_values, num_edges)};
}

}  // namespace gnnlab
