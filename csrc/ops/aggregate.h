// Fused CSR aggregation: input checks shared by every backend, and the CPU entry points.
//
// Every entry point (CPU and CUDA) calls the checks below before touching any data; each raises
// a Python ValueError naming the argument. They cost O(E + R + num_src) (plus O(R * F) for the
// max/min `arg` of the backward ops), a few reductions with one host read each.
#pragma once

#include <torch/types.h>

#include <string>
#include <tuple>

namespace gnnlab {

// Maps "sum" | "mean" | "max" | "min" to agg::Reduce; raises ValueError otherwise.
int parse_reduce(const std::string& reduce);

// max/min record a 32-bit slot per row: reject rows with 2^31 edges or more.
void check_extremum_degree(const at::Tensor& rowptr, const char* op);

// Checks a CSR (rowptr [R+1] int64 starting at 0, ending at E, non-decreasing; col [E] int32/int64
// with entries in [0, num_cols)), x [num_cols, F] float/double/half/bfloat16, optional weight [E]
// of x's dtype, all on x's device.
void check_aggregate_inputs(const at::Tensor& rowptr, const at::Tensor& col, const at::Tensor& x,
                            const c10::optional<at::Tensor>& weight, const char* op);

// Checks the transposed CSR that the backward walks: rowptr_t [num_src+1] int64 starting at 0,
// ending at num_edges, non-decreasing; col_t [num_edges] int32/int64 with entries in
// [0, num_rows) (rows of the forward CSR); perm_t [num_edges] int64 with entries in
// [0, num_edges) (positions in the forward CSR); all on `device`. Ranges only: that the arrays
// are the exact transpose of the forward CSR is the caller's contract (CSRGraph builds them).
void check_transposed_csr(const at::Tensor& rowptr_t, const at::Tensor& col_t, const at::Tensor& perm_t,
                          int64_t num_src, int64_t num_rows, int64_t num_edges, const at::Device& device,
                          const char* op);

// Checks the max/min winners: arg [R, F] int32 on `device`, with 0 <= arg[i, f] < degree(i) for a
// row with edges and arg[i, f] == -1 for an empty row (degrees from rowptr, already checked).
void check_extremum_arg(const at::Tensor& arg, const at::Tensor& rowptr, int64_t num_features,
                        const at::Device& device, const char* op);

// aggregate: the forward CSR, x and weight (check_aggregate_inputs), then the transposed CSR
// against x's rows and the forward CSR (check_transposed_csr).
void check_aggregate_op(const at::Tensor& rowptr, const at::Tensor& col, const at::Tensor& rowptr_t,
                        const at::Tensor& col_t, const at::Tensor& perm_t, const at::Tensor& x,
                        const c10::optional<at::Tensor>& weight);

// aggregate_weight_backward: the CSR against x, grad_out [R, F] of x's dtype and device, and arg
// (check_extremum_arg for max/min; empty for sum/mean).
void check_weight_backward_op(const at::Tensor& rowptr, const at::Tensor& col, const at::Tensor& x,
                              const at::Tensor& grad_out, const at::Tensor& arg, int reduce);

// aggregate_extremum_x_backward: num_src >= 0, grad_out [R, F] floating, rowptr [R+1] ending at
// E = col_t.size(0), col [E] in [0, num_src) of col_t's dtype, the transposed CSR
// (check_transposed_csr), arg (check_extremum_arg) and weight [E] of grad_out's dtype, all on
// grad_out's device.
void check_extremum_x_backward_op(const at::Tensor& rowptr, const at::Tensor& col, const at::Tensor& rowptr_t,
                                  const at::Tensor& col_t,
                                  const at::Tensor& perm_t, const at::Tensor& arg, const at::Tensor& grad_out,
                                  const c10::optional<at::Tensor>& weight, int64_t num_src);

std::tuple<at::Tensor, at::Tensor> aggregate_cpu(const at::Tensor& rowptr, const at::Tensor& col,
                                                 const at::Tensor& rowptr_t, const at::Tensor& col_t,
                                                 const at::Tensor& perm_t, const at::Tensor& x,
                                                 const c10::optional<at::Tensor>& weight, c10::string_view reduce);

}  // namespace gnnlab
