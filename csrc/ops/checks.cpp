#include "ops/checks.h"

#include <ATen/ATen.h>

#include <algorithm>

namespace gnnlab {

void check_device(const at::Tensor& t, const at::Device& device, const char* name, const char* op) {
  TORCH_CHECK_VALUE(t.device() == device, op, ": ", name, " must be on ", device, ", got ", t.device());
}

namespace {

// On the CPU the checks read the data in one plain pass: a handful of ATen reductions (each with
// its own allocation and dispatch) cost more than the kernel on a small graph.
void offsets_summary_cpu(const at::Tensor& rowptr, int64_t* v) {
  const auto r = rowptr.contiguous();
  const int64_t* p = r.data_ptr<int64_t>();
  const int64_t n = r.numel();
  int64_t min_step = 0;
  for (int64_t i = 1; i < n; ++i) min_step = std::min(min_step, p[i] - p[i - 1]);
  v[0] = p[0];
  v[1] = p[n - 1];
  v[2] = min_step;
}

template <typename index_t>
void min_max_cpu(const at::Tensor& index, int64_t* lo, int64_t* hi) {
  const auto c = index.contiguous();
  const index_t* p = c.data_ptr<index_t>();
  int64_t l = p[0], h = p[0];
  for (int64_t i = 1, n = c.numel(); i < n; ++i) {
    const int64_t v = static_cast<int64_t>(p[i]);
    l = v < l ? v : l;
    h = v > h ? v : h;
  }
  *lo = l;
  *hi = h;
}

}  // namespace

void check_offsets(const at::Tensor& rowptr, int64_t num_entries, const char* name, const char* op) {
  TORCH_CHECK_VALUE(rowptr.dim() == 1 && rowptr.size(0) >= 1, op, ": ", name,
                    " must be 1-D with at least one entry, got shape ", rowptr.sizes());
  TORCH_CHECK_VALUE(rowptr.scalar_type() == at::kLong, op, ": ", name, " must be int64, got ", rowptr.scalar_type());
  int64_t v[3];
  if (rowptr.device().is_cpu()) {
    offsets_summary_cpu(rowptr, v);
  } else {
    // One host read for the ends and the smallest step.
    const auto ends = at::stack({rowptr[0], rowptr[-1],
                                 rowptr.size(0) > 1 ? rowptr.diff().min() : at::zeros({}, rowptr.options())})
                          .cpu();
    std::copy(ends.data_ptr<int64_t>(), ends.data_ptr<int64_t>() + 3, v);
  }
  TORCH_CHECK_VALUE(v[0] == 0 && v[1] == num_entries, op, ": ", name, " must start at 0 and end at num_edges=",
                    num_entries, ", got ", v[0], " .. ", v[1]);
  TORCH_CHECK_VALUE(v[2] >= 0, op, ": ", name, " must be non-decreasing");
}

void check_indices(const at::Tensor& index, int64_t length, int64_t bound, bool allow_int32, const char* name,
                   const char* bound_name, const char* op) {
  TORCH_CHECK_VALUE(index.dim() == 1, op, ": ", name, " must be 1-D, got shape ", index.sizes());
  const auto dtype = index.scalar_type();
  TORCH_CHECK_VALUE(dtype == at::kLong || (allow_int32 && dtype == at::kInt), op, ": ", name, " must be ",
                    allow_int32 ? "int32 or int64" : "int64", ", got ", dtype);
  TORCH_CHECK_VALUE(length < 0 || index.size(0) == length, op, ": ", name, " must have ", length,
                    " entries, got ", index.size(0));
  if (index.numel() == 0) return;
  int64_t lo = 0, hi = 0;
  if (index.device().is_cpu()) {
    if (dtype == at::kLong) {
      min_max_cpu<int64_t>(index, &lo, &hi);
    } else {
      min_max_cpu<int32_t>(index, &lo, &hi);
    }
  } else {
    auto [lo_t, hi_t] = at::aminmax(index);
    const auto bounds = at::stack({lo_t.to(at::kLong), hi_t.to(at::kLong)}).cpu();
    lo = bounds.data_ptr<int64_t>()[0];
    hi = bounds.data_ptr<int64_t>()[1];
  }
  TORCH_CHECK_VALUE(lo >= 0, op, ": ", name, " has a negative entry ", lo, " (out of range [0, ", bound, "), ",
                    bound_name, ")");
  TORCH_CHECK_VALUE(hi < bound, op, ": ", name, " has entry ", hi, " out of range [0, ", bound, ") (", bound_name,
                    ")");
}

}  // namespace gnnlab
