#include "ops/aggregate.h"

#include <ATen/ATen.h>

#include <limits>

#include "ops/common/aggregate.h"

namespace gnnlab {

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
  const int64_t max_degree = rowptr.diff().max().item<int64_t>();
  TORCH_CHECK_VALUE(max_degree <= std::numeric_limits<int32_t>::max(), op,
                    ": max/min support rows of fewer than 2^31 edges, got a row with ", max_degree);
}

void check_aggregate_inputs(const at::Tensor& rowptr, const at::Tensor& col, const at::Tensor& x,
                            const c10::optional<at::Tensor>& weight, const char* op) {
  TORCH_CHECK_VALUE(rowptr.dim() == 1 && rowptr.size(0) >= 1, op, ": rowptr must be 1-D with at least one entry, got shape ",
                    rowptr.sizes());
  TORCH_CHECK_VALUE(rowptr.scalar_type() == at::kLong, op, ": rowptr must be int64, got ", rowptr.scalar_type());
  TORCH_CHECK_VALUE(col.dim() == 1, op, ": col must be 1-D, got shape ", col.sizes());
  TORCH_CHECK_VALUE(col.scalar_type() == at::kLong || col.scalar_type() == at::kInt, op,
                    ": col must be int32 or int64, got ", col.scalar_type());
  TORCH_CHECK_VALUE(x.dim() == 2, op, ": x must be 2-D [num_nodes, features], got shape ", x.sizes());
  TORCH_CHECK_VALUE(at::isFloatingType(x.scalar_type()), op, ": x must be floating point, got ", x.scalar_type());
  TORCH_CHECK_VALUE(rowptr.device() == x.device() && col.device() == x.device(), op,
                    ": rowptr, col and x must be on the same device");
  const int64_t num_edges = col.size(0);
  if (weight.has_value()) {
    const auto& w = *weight;
    TORCH_CHECK_VALUE(w.dim() == 1 && w.size(0) == num_edges, op, ": weight must have shape [", num_edges,
                      "] (one per edge), got ", w.sizes());
    TORCH_CHECK_VALUE(w.scalar_type() == x.scalar_type(), op, ": weight dtype ", w.scalar_type(),
                      " does not match x dtype ", x.scalar_type());
    TORCH_CHECK_VALUE(w.device() == x.device(), op, ": weight must be on x's device");
  }
  const int64_t first = rowptr[0].item<int64_t>();
  const int64_t last = rowptr[-1].item<int64_t>();
  TORCH_CHECK_VALUE(first == 0 && last == num_edges, op, ": rowptr must start at 0 and end at num_edges=", num_edges,
                    ", got ", first, " .. ", last);
  if (rowptr.size(0) > 1) {
    TORCH_CHECK_VALUE((rowptr.diff() >= 0).all().item<bool>(), op, ": rowptr must be non-decreasing");
  }
  if (num_edges > 0) {
    auto [lo, hi] = at::aminmax(col);
    const int64_t lo_v = lo.item<int64_t>(), hi_v = hi.item<int64_t>();
    TORCH_CHECK_VALUE(lo_v >= 0, op, ": col has a negative entry ", lo_v);
    TORCH_CHECK_VALUE(hi_v < x.size(0), op, ": col has entry ", hi_v, " out of range for x with ", x.size(0), " rows");
  }
}

}  // namespace gnnlab
