// Fused CSR aggregation: input checks shared by every backend, and the CPU entry points.
#pragma once

#include <torch/types.h>

#include <string>
#include <tuple>

namespace gnnlab {

// Maps "sum" | "mean" | "max" | "min" to agg::Reduce; raises ValueError otherwise.
int parse_reduce(const std::string& reduce);

// Checks a CSR (rowptr [R+1] int64 starting at 0 and ending at E, col [E] int32/int64 with
// entries in [0, num_cols)), x [num_cols, F] floating, optional weight [E] of x's dtype.
// max/min record a 32-bit slot per row: reject rows with 2^31 edges or more.
void check_extremum_degree(const at::Tensor& rowptr, const char* op);

void check_aggregate_inputs(const at::Tensor& rowptr, const at::Tensor& col, const at::Tensor& x,
                            const c10::optional<at::Tensor>& weight, const char* op);

std::tuple<at::Tensor, at::Tensor> aggregate_cpu(const at::Tensor& rowptr, const at::Tensor& col,
                                                 const at::Tensor& rowptr_t, const at::Tensor& col_t,
                                                 const at::Tensor& perm_t, const at::Tensor& x,
                                                 const c10::optional<at::Tensor>& weight, c10::string_view reduce);

}  // namespace gnnlab
