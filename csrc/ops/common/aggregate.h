// Per-row logic of the fused CSR aggregation, shared by the CPU and CUDA kernels.
//
//   out[i, f] = reduce_{e in rowptr[i]..rowptr[i+1]} w[e] * x[col[e], f]
//
// reduce is sum, mean (sum / number of edges), max or min. Accumulation is in acc_t (float for
// float/half/bfloat16 inputs, double for double). For max/min, arg[i, f] records the CSR position
// e of the winning edge; ties go to the FIRST edge in CSR order (strict comparison), and a row
// with no edge gives out = 0 and arg = -1.
//
// A CPU caller passes a whole feature range [f0, f1) and an accumulator array; a CUDA thread
// passes a single feature (f1 = f0 + 1) and a register. Only CUDA headers/none are included.
#pragma once

#include <cstdint>

#include "ops/common/macros.h"

namespace gnnlab {
namespace agg {

enum Reduce : int { kSum = 0, kMean = 1, kMax = 2, kMin = 3 };

template <typename acc_t>
GNNLAB_HD acc_t lowest();
template <>
GNNLAB_HD float lowest<float>() { return -3.402823466e+38f; }
template <>
GNNLAB_HD double lowest<double>() { return -1.7976931348623157e+308; }

template <typename acc_t>
GNNLAB_HD acc_t init_value(int reduce) {
  if (reduce == kMax) return lowest<acc_t>();
  if (reduce == kMin) return -lowest<acc_t>();
  return acc_t(0);
}

// Hint the cache about a source row a few edges ahead (CPU only; the gather is latency-bound).
template <typename scalar_t>
GNNLAB_HD void prefetch_row(const scalar_t* row, int64_t n) {
#if !defined(__CUDA_ARCH__) && (defined(__GNUC__) || defined(__clang__))
  for (int64_t k = 0; k < n; k += 64 / static_cast<int64_t>(sizeof(scalar_t))) __builtin_prefetch(row + k);
#endif
}

// Edges ahead to prefetch. The bound is the end of the whole CSR (col_end), not of the row, so the
// first edges of the next row are already in flight when a short row ends.
constexpr int64_t kPrefetchDistance = 8;

// Sum / mean over the edges of `row`, for features [f0, f1).
template <typename scalar_t, typename acc_t, typename index_t>
GNNLAB_HD void sum_row(const int64_t* rowptr, const index_t* col, const scalar_t* x, const scalar_t* w, int64_t F,
                       int64_t row, int64_t f0, int64_t f1, acc_t* __restrict__ acc, int64_t col_end = 0) {
  const int64_t n = f1 - f0;
  const int64_t begin = rowptr[row], end = rowptr[row + 1];
  for (int64_t k = 0; k < n; ++k) acc[k] = acc_t(0);
  for (int64_t e = begin; e < end; ++e) {
#if !defined(__CUDA_ARCH__)
    if (e + kPrefetchDistance < col_end) prefetch_row(x + static_cast<int64_t>(col[e + kPrefetchDistance]) * F + f0, n);
#endif
    const scalar_t* __restrict__ xr = x + static_cast<int64_t>(col[e]) * F + f0;
    if (w != nullptr) {
      const acc_t we = static_cast<acc_t>(w[e]);
#if !defined(__CUDA_ARCH__)
#pragma omp simd
#endif
      for (int64_t k = 0; k < n; ++k) acc[k] += we * static_cast<acc_t>(xr[k]);
    } else {
#if !defined(__CUDA_ARCH__)
#pragma omp simd
#endif
      for (int64_t k = 0; k < n; ++k) acc[k] += static_cast<acc_t>(xr[k]);
    }
  }
}

// Max / min over the edges of `row`, for features [f0, f1); writes the winning CSR position to arg.
template <typename scalar_t, typename acc_t, typename index_t>
GNNLAB_HD void extremum_row(const int64_t* rowptr, const index_t* col, const scalar_t* x, const scalar_t* w, int64_t F,
                            int64_t row, int64_t f0, int64_t f1, int reduce, acc_t* __restrict__ acc,
                            int64_t* __restrict__ arg, int64_t col_end = 0) {
  const int64_t n = f1 - f0;
  const int64_t begin = rowptr[row], end = rowptr[row + 1];
  if (begin == end) {
    for (int64_t k = 0; k < n; ++k) {
      acc[k] = init_value<acc_t>(reduce);
      arg[k] = -1;
    }
    return;
  }
  {  // the first edge initialises every feature
    const scalar_t* xr = x + static_cast<int64_t>(col[begin]) * F + f0;
    const acc_t we = w != nullptr ? static_cast<acc_t>(w[begin]) : acc_t(1);
    for (int64_t k = 0; k < n; ++k) {
      acc[k] = we * static_cast<acc_t>(xr[k]);
      arg[k] = begin;
    }
  }
  // acc * sign turns min into max, so one branch-free loop serves both.
  const acc_t sign = reduce == kMax ? acc_t(1) : acc_t(-1);
  for (int64_t e = begin + 1; e < end; ++e) {
#if !defined(__CUDA_ARCH__)
    if (e + kPrefetchDistance < col_end) prefetch_row(x + static_cast<int64_t>(col[e + kPrefetchDistance]) * F + f0, n);
#endif
    const scalar_t* __restrict__ xr = x + static_cast<int64_t>(col[e]) * F + f0;
    const acc_t we = w != nullptr ? static_cast<acc_t>(w[e]) : acc_t(1);
#if !defined(__CUDA_ARCH__)
#pragma omp simd
#endif
    for (int64_t k = 0; k < n; ++k) {
      const acc_t v = we * static_cast<acc_t>(xr[k]);
      // Strict comparison: the first edge in CSR order wins a tie.
      const acc_t cur = acc[k];
      const bool better = sign * v > sign * cur;
      acc[k] = better ? v : cur;
      arg[k] += static_cast<int64_t>(better) * (e - arg[k]);  // arithmetic select keeps the loop vectorisable
    }
  }
}

// Final value of a row: mean divides by the degree; empty max/min rows give 0.
template <typename acc_t>
GNNLAB_HD acc_t finish(acc_t value, int reduce, int64_t degree) {
  if (reduce == kMean) return degree > 0 ? value / static_cast<acc_t>(degree) : acc_t(0);
  if ((reduce == kMax || reduce == kMin) && degree == 0) return acc_t(0);
  return value;
}

// Gradient of the edge weights of `row` (sum/mean: <grad_out[row], x[col[e]]> (/deg);
// max/min: only the features this edge won).
template <typename scalar_t, typename acc_t, typename index_t>
GNNLAB_HD void weight_grad_row(const int64_t* rowptr, const index_t* col, const scalar_t* x, const scalar_t* grad_out,
                               const int64_t* arg, int64_t F, int64_t row, int reduce, scalar_t* grad_w) {
  const int64_t begin = rowptr[row], end = rowptr[row + 1];
  const scalar_t* g = grad_out + row * F;
  const acc_t scale = (reduce == kMean && end > begin) ? acc_t(1) / static_cast<acc_t>(end - begin) : acc_t(1);
  for (int64_t e = begin; e < end; ++e) {
    const scalar_t* xr = x + static_cast<int64_t>(col[e]) * F;
    acc_t s = acc_t(0);
    if (reduce == kSum || reduce == kMean) {
      for (int64_t f = 0; f < F; ++f) s += static_cast<acc_t>(g[f]) * static_cast<acc_t>(xr[f]);
    } else {
      const int64_t* a = arg + row * F;
      for (int64_t f = 0; f < F; ++f) {
        if (a[f] == e) s += static_cast<acc_t>(g[f]) * static_cast<acc_t>(xr[f]);
      }
    }
    grad_w[e] = static_cast<scalar_t>(s * scale);
  }
}

// Gradient of x for max/min at source node j, features [f0, f1), walking j's edges in the
// transposed CSR: edge t goes j -> col_t[t] and sits at CSR position perm_t[t].
template <typename scalar_t, typename acc_t, typename index_t>
GNNLAB_HD void extremum_x_grad_row(const int64_t* rowptr_t, const index_t* col_t, const int64_t* perm_t,
                                   const int64_t* arg, const scalar_t* grad_out, const scalar_t* w, int64_t F,
                                   int64_t j, int64_t f0, int64_t f1, acc_t* acc) {
  const int64_t n = f1 - f0;
  for (int64_t k = 0; k < n; ++k) acc[k] = acc_t(0);
  for (int64_t t = rowptr_t[j]; t < rowptr_t[j + 1]; ++t) {
    const int64_t i = static_cast<int64_t>(col_t[t]);
    const int64_t e = perm_t[t];
    const acc_t we = w != nullptr ? static_cast<acc_t>(w[e]) : acc_t(1);
    const int64_t* a = arg + i * F + f0;
    const scalar_t* g = grad_out + i * F + f0;
    for (int64_t k = 0; k < n; ++k) {
      if (a[k] == e) acc[k] += we * static_cast<acc_t>(g[k]);
    }
  }
}

}  // namespace agg
}  // namespace gnnlab
