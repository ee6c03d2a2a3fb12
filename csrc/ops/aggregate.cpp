#include "ops/aggregate.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <atomic>

#include <limits>

#include "ops/checks.h"
#include "ops/common/aggregate.h"

namespace gnnlab {

namespace {

// The dtypes the kernels are compiled for.
void check_features(const at::Tensor& t, const char* name, const char* op) {
  TORCH_CHECK_VALUE(t.dim() == 2, op, ": ", name, " must be 2-D [rows, features], got shape ", t.sizes());
  const auto dtype = t.scalar_type();
  TORCH_CHECK_VALUE(dtype == at::kFloat || dtype == at::kDouble || dtype == at::kHalf || dtype == at::kBFloat16, op,
                    ": ", name, " must be floating point (float32, float64, float16 or bfloat16), got ", dtype);
}

void check_weight(const c10::optional<at::Tensor>& weight, int64_t num_edges, const at::Tensor& like,
                  const char* like_name, const char* op) {
  if (!weight.has_value()) return;
  const auto& w = *weight;
  TORCH_CHECK_VALUE(w.dim() == 1 && w.size(0) == num_edges, op, ": weight must have shape [", num_edges,
                    "] (one per edge), got ", w.sizes());
  TORCH_CHECK_VALUE(w.scalar_type() == like.scalar_type(), op, ": weight dtype ", w.scalar_type(), " does not match ",
                    like_name, " dtype ", like.scalar_type());
  check_device(w, like.device(), "weight", op);
}

}  // namespace

int parse_reduce(const std::string& reduce) {
  if (reduce == "sum" || reduce == "add") return agg::kSum;
  if (reduce == "mean") return agg::kMean;
  if (reduce == "max" || reduce == "amax") return agg::kMax;
  if (reduce == "min" || reduce == "amin") return agg::kMin;
  TORCH_CHECK_VALUE(false, "aggregate: reduce must be 'sum', 'mean', 'max' or 'min', got '", reduce, "'");
  return -1;
}

void check_extremum_degree(const at::Tensor& rowptr, const char* op) {
  if (rowptr.size(0) < 2) return;
  int64_t max_degree = 0;
  if (rowptr.device().is_cpu()) {
    const auto r = rowptr.contiguous();
    const int64_t* p = r.data_ptr<int64_t>();
    for (int64_t i = 1, n = r.numel(); i < n; ++i) max_degree = std::max(max_degree, p[i] - p[i - 1]);
  } else {
    max_degree = rowptr.diff().max().item<int64_t>();
  }
  TORCH_CHECK_VALUE(max_degree <= std::numeric_limits<int32_t>::max(), op,
                    ": max/min support rows of fewer than 2^31 edges, got a row with ", max_degree);
}

void check_aggregate_inputs(const at::Tensor& rowptr, const at::Tensor& col, const at::Tensor& x,
                            const c10::optional<at::Tensor>& weight, const char* op) {
  check_features(x, "x", op);
  TORCH_CHECK_VALUE(col.dim() == 1, op, ": col must be 1-D, got shape ", col.sizes());
  const int64_t num_edges = col.size(0);
  check_device(rowptr, x.device(), "rowptr", op);
  check_device(col, x.device(), "col", op);
  check_offsets(rowptr, num_edges, "rowptr", op);
  check_weight(weight, num_edges, x, "x", op);
  check_indices(col, num_edges, x.size(0), /*allow_int32=*/true, "col", "rows of x", op);
}

void check_transposed_csr(const at::Tensor& rowptr_t, const at::Tensor& col_t, const at::Tensor& perm_t,
                          int64_t num_src, int64_t num_rows, int64_t num_edges, const at::Device& device,
                          const char* op) {
  check_device(rowptr_t, device, "rowptr_t", op);
  check_device(col_t, device, "col_t", op);
  check_device(perm_t, device, "perm_t", op);
  TORCH_CHECK_VALUE(rowptr_t.dim() == 1 && rowptr_t.size(0) == num_src + 1, op,
                    ": rowptr_t must have num_src + 1 = ", num_src + 1, " entries (one row per source node), got shape ",
                    rowptr_t.sizes());
  check_offsets(rowptr_t, num_edges, "rowptr_t", op);
  check_indices(col_t, num_edges, num_rows, /*allow_int32=*/true, "col_t", "rows of the CSR", op);
  check_indices(perm_t, num_edges, num_edges, /*allow_int32=*/false, "perm_t", "positions of the CSR", op);
}

void check_extremum_arg(const at::Tensor& arg, const at::Tensor& rowptr, int64_t num_features,
                        const at::Device& device, const char* op) {
  const int64_t num_rows = rowptr.size(0) - 1;
  TORCH_CHECK_VALUE(arg.scalar_type() == at::kInt, op, ": arg must be int32 (from the max/min forward), got ",
                    arg.scalar_type());
  TORCH_CHECK_VALUE(arg.dim() == 2 && arg.size(0) == num_rows && arg.size(1) == num_features, op,
                    ": arg must have shape [", num_rows, ", ", num_features, "] (rows, features), got ", arg.sizes());
  check_device(arg, device, "arg", op);
  if (arg.numel() == 0) return;
  bool ok = true;
  if (arg.device().is_cpu()) {
    // One pass, rows in parallel, no temporaries.
    const auto a = arg.contiguous();
    const auto r = rowptr.contiguous();
    const int32_t* ap = a.data_ptr<int32_t>();
    const int64_t* rp = r.data_ptr<int64_t>();
    std::atomic<bool> all_valid{true};
    at::parallel_for(0, num_rows, std::max<int64_t>(1, (1 << 14) / std::max<int64_t>(num_features, 1)),
                     [&](int64_t begin, int64_t end) {
                       bool local = true;
                       for (int64_t i = begin; i < end && local; ++i) {
                         const int64_t degree = rp[i + 1] - rp[i];
                         const int32_t* row = ap + i * num_features;
                         for (int64_t f = 0; f < num_features; ++f) {
                           const int64_t slot = row[f];
                           local &= degree > 0 ? (slot >= 0 && slot < degree) : slot == -1;
                         }
                       }
                       if (!local) all_valid.store(false, std::memory_order_relaxed);
                     });
    ok = all_valid.load();
  } else {
    const auto degree = rowptr.diff().unsqueeze(1);  // [R, 1]
    const auto valid = ((arg >= 0) & (arg < degree)) | ((arg == -1) & (degree == 0));
    ok = valid.all().item<bool>();
  }
  TORCH_CHECK_VALUE(ok, op,
                    ": arg must hold, per row and feature, the winning edge's slot in [0, degree) of its row, "
                    "or -1 for a row without edges");
}

void check_aggregate_op(const at::Tensor& rowptr, const at::Tensor& col, const at::Tensor& rowptr_t,
                        const at::Tensor& col_t, const at::Tensor& perm_t, const at::Tensor& x,
                        const c10::optional<at::Tensor>& weight) {
  check_aggregate_inputs(rowptr, col, x, weight, "aggregate");
  check_transposed_csr(rowptr_t, col_t, perm_t, x.size(0), rowptr.size(0) - 1, col.size(0), x.device(), "aggregate");
}

void check_weight_backward_op(const at::Tensor& rowptr, const at::Tensor& col, const at::Tensor& x,
                              const at::Tensor& grad_out, const at::Tensor& arg, int reduce) {
  const char* op = "aggregate_weight_backward";
  check_aggregate_inputs(rowptr, col, x, c10::nullopt, op);
  const int64_t num_rows = rowptr.size(0) - 1;
  TORCH_CHECK_VALUE(grad_out.dim() == 2 && grad_out.size(0) == num_rows && grad_out.size(1) == x.size(1), op,
                    ": grad_out must have shape [", num_rows, ", ", x.size(1), "] (rows, features of x), got ",
                    grad_out.sizes());
  TORCH_CHECK_VALUE(grad_out.scalar_type() == x.scalar_type(), op, ": grad_out dtype ", grad_out.scalar_type(),
                    " does not match x dtype ", x.scalar_type());
  check_device(grad_out, x.device(), "grad_out", op);
  if (reduce == agg::kMax || reduce == agg::kMin) {
    check_extremum_arg(arg, rowptr, x.size(1), x.device(), op);
  } else {
    TORCH_CHECK_VALUE(arg.numel() == 0, op, ": arg must be empty for sum/mean, got shape ", arg.sizes());
  }
}

void check_extremum_x_backward_op(const at::Tensor& rowptr, const at::Tensor& col, const at::Tensor& rowptr_t,
                                  const at::Tensor& col_t,
                                  const at::Tensor& perm_t, const at::Tensor& arg, const at::Tensor& grad_out,
                                  const c10::optional<at::Tensor>& weight, int64_t num_src) {
  const char* op = "aggregate_extremum_x_backward";
  TORCH_CHECK_VALUE(num_src >= 0, op, ": num_src must be non-negative, got ", num_src);
  check_features(grad_out, "grad_out", op);
  TORCH_CHECK_VALUE(col_t.dim() == 1, op, ": col_t must be 1-D, got shape ", col_t.sizes());
  TORCH_CHECK_VALUE(rowptr_t.dim() == 1 && rowptr_t.size(0) == num_src + 1, op, ": rowptr_t has ",
                    rowptr_t.numel(), " entries but num_src = ", num_src, " needs num_src + 1 = ", num_src + 1);
  const int64_t num_edges = col_t.size(0);
  check_device(rowptr, grad_out.device(), "rowptr", op);
  check_offsets(rowptr, num_edges, "rowptr", op);
  const int64_t num_rows = rowptr.size(0) - 1;
  TORCH_CHECK_VALUE(grad_out.size(0) == num_rows, op, ": grad_out has ", grad_out.size(0), " rows but rowptr describes ",
                    num_rows);
  check_transposed_csr(rowptr_t, col_t, perm_t, num_src, num_rows, num_edges, grad_out.device(), op);
  check_device(col, grad_out.device(), "col", op);
  check_indices(col, num_edges, num_src, /*allow_int32=*/true, "col", "source nodes (num_src)", op);
  TORCH_CHECK_VALUE(col.scalar_type() == col_t.scalar_type(), op, ": col (", col.scalar_type(), ") and col_t (",
                    col_t.scalar_type(), ") must have the same dtype");
  check_extremum_arg(arg, rowptr, grad_out.size(1), grad_out.device(), op);
  check_weight(weight, num_edges, grad_out, "grad_out", op);
}

}  // namespace gnnlab
