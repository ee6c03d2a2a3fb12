// Per-row logic of the fused CSR aggregation, shared by the CPU and CUDA kernels.
//
//   out[i, f] = reduce_{e in rowptr[i]..rowptr[i+1]} w[e] * x[col[e], f]
//
// reduce is sum, mean (sum / number of edges), max or min. Accumulation is in acc_t (float for
// float/half/bfloat16 inputs, double for double). For max/min, arg[i, f] (int32) records the slot
// of the winning edge within its row, e - rowptr[i]; ties go to the FIRST edge in CSR order (strict
// comparison), a NaN message beats every number (the first NaN wins, so out is NaN), and a row
// with no edge gives out = 0 and arg = -1. Rows must have < 2^31 edges.
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

// Accumulate edges [begin, end) of features [f0, f0 + n) into a[0..n). With kWidth > 0 the width is
// a compile-time constant (n == kWidth) and the caller passes a local array, which the compiler keeps
// in registers across the whole edge loop.
template <int kWidth, typename scalar_t, typename acc_t, typename index_t>
GNNLAB_HD void sum_edges(const index_t* col, const scalar_t* x, const scalar_t* w, int64_t F, int64_t begin,
                         int64_t end, int64_t f0, int64_t n_runtime, acc_t* __restrict__ a, int64_t col_end) {
  const int64_t n = kWidth > 0 ? kWidth : n_runtime;
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
      for (int64_t k = 0; k < n; ++k) a[k] += we * static_cast<acc_t>(xr[k]);
    } else {
#if !defined(__CUDA_ARCH__)
#pragma omp simd
#endif
      for (int64_t k = 0; k < n; ++k) a[k] += static_cast<acc_t>(xr[k]);
    }
  }
}

// Sum / mean over the edges of `row`, for features [f0, f1) (f1 - f0 == kWidth when kWidth > 0).
template <typename scalar_t, typename acc_t, typename index_t, int kWidth = 0>
GNNLAB_HD void sum_row(const int64_t* rowptr, const index_t* col, const scalar_t* x, const scalar_t* w, int64_t F,
                       int64_t row, int64_t f0, int64_t f1, acc_t* __restrict__ acc, int64_t col_end = 0) {
  const int64_t begin = rowptr[row], end = rowptr[row + 1];
  if (kWidth > 0) {
    acc_t local[kWidth > 0 ? kWidth : 1];
    for (int k = 0; k < kWidth; ++k) local[k] = acc_t(0);
    sum_edges<kWidth>(col, x, w, F, begin, end, f0, kWidth, local, col_end);
    for (int k = 0; k < kWidth; ++k) acc[k] = local[k];
  } else {
    const int64_t n = f1 - f0;
    for (int64_t k = 0; k < n; ++k) acc[k] = acc_t(0);
    sum_edges<0>(col, x, w, F, begin, end, f0, n, acc, col_end);
  }
}

// Running max / min of edges [begin, end) into (a, arg) for features [f0, f0 + n); see sum_edges.
template <int kWidth, typename scalar_t, typename acc_t, typename index_t, typename arg_t>
GNNLAB_HD void extremum_edges(const index_t* col, const scalar_t* x, const scalar_t* w, int64_t F, int64_t begin,
                              int64_t end, int64_t f0, int64_t n_runtime, acc_t sign, acc_t* __restrict__ a,
                              arg_t* __restrict__ arg, int64_t base, int64_t col_end) {
  const int64_t n = kWidth > 0 ? kWidth : n_runtime;
  for (int64_t e = begin; e < end; ++e) {
#if !defined(__CUDA_ARCH__)
    if (e + kPrefetchDistance < col_end) prefetch_row(x + static_cast<int64_t>(col[e + kPrefetchDistance]) * F + f0, n);
#endif
    const scalar_t* __restrict__ xr = x + static_cast<int64_t>(col[e]) * F + f0;
    const acc_t we = w != nullptr ? static_cast<acc_t>(w[e]) : acc_t(1);
    const arg_t pos = static_cast<arg_t>(e - base);  // arg holds positions relative to `base`
#if !defined(__CUDA_ARCH__)
#pragma omp simd
#endif
    for (int64_t k = 0; k < n; ++k) {
      const acc_t v = we * static_cast<acc_t>(xr[k]);
      // Strict comparison: the first edge in CSR order wins a tie. NaN wins over any number and
      // then stays (the first NaN in CSR order), so a NaN message always propagates, as
      // torch.scatter_reduce(amax/amin) does, whatever the edge order. Both updates are written as
      // unconditional selects (a bit mask for the position) so the compiler keeps them in
      // registers as blends instead of masked stores through memory.
      const acc_t cur = a[k];
      const bool better = (sign * v > sign * cur) | ((v != v) & (cur == cur));
      const arg_t keep = static_cast<arg_t>(better) - 1;  // all ones when the old winner stays
      a[k] = better ? v : cur;
      arg[k] = (arg[k] & keep) | (pos & ~keep);
    }
  }
}

// Max / min over the edges of `row`, for features [f0, f1); writes the winning slot to arg.
template <typename scalar_t, typename acc_t, typename index_t, int kWidth = 0>
GNNLAB_HD void extremum_row(const int64_t* rowptr, const index_t* col, const scalar_t* x, const scalar_t* w, int64_t F,
                            int64_t row, int64_t f0, int64_t f1, int reduce, acc_t* __restrict__ acc,
                            int32_t* __restrict__ arg, int64_t col_end = 0) {
  const int64_t n = kWidth > 0 ? kWidth : f1 - f0;
  const int64_t begin = rowptr[row], end = rowptr[row + 1];
  if (begin == end) {
    for (int64_t k = 0; k < n; ++k) {
      acc[k] = init_value<acc_t>(reduce);
      arg[k] = -1;
    }
    return;
  }
  // acc * sign turns min into max, so one branch-free loop serves both. The first edge
  // initialises every feature; the rest compete with it.
  const acc_t sign = reduce == kMax ? acc_t(1) : acc_t(-1);
  const scalar_t* x0 = x + static_cast<int64_t>(col[begin]) * F + f0;
  const acc_t w0 = w != nullptr ? static_cast<acc_t>(w[begin]) : acc_t(1);
  if (kWidth > 0) {  // local arrays, kept in registers
    acc_t local[kWidth > 0 ? kWidth : 1];
    int32_t local_arg[kWidth > 0 ? kWidth : 1];
    for (int k = 0; k < kWidth; ++k) {
      local[k] = w0 * static_cast<acc_t>(x0[k]);
      local_arg[k] = 0;
    }
    extremum_edges<kWidth>(col, x, w, F, begin + 1, end, f0, kWidth, sign, local, local_arg, begin, col_end);
    for (int k = 0; k < kWidth; ++k) {
      acc[k] = local[k];
      arg[k] = local_arg[k];
    }
  } else {
    for (int64_t k = 0; k < n; ++k) {
      acc[k] = w0 * static_cast<acc_t>(x0[k]);
      arg[k] = 0;
    }
    extremum_edges<0>(col, x, w, F, begin + 1, end, f0, n, sign, acc, arg, begin, col_end);
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
                               const int32_t* arg, int64_t F, int64_t row, int reduce, scalar_t* grad_w) {
  const int64_t begin = rowptr[row], end = rowptr[row + 1];
  const scalar_t* g = grad_out + row * F;
  const acc_t scale = (reduce == kMean && end > begin) ? acc_t(1) / static_cast<acc_t>(end - begin) : acc_t(1);
  for (int64_t e = begin; e < end; ++e) {
    const scalar_t* xr = x + static_cast<int64_t>(col[e]) * F;
    acc_t s = acc_t(0);
    if (reduce == kSum || reduce == kMean) {
      for (int64_t f = 0; f < F; ++f) s += static_cast<acc_t>(g[f]) * static_cast<acc_t>(xr[f]);
    } else {
      const int32_t* a = arg + row * F;
      const int32_t slot = static_cast<int32_t>(e - begin);
      for (int64_t f = 0; f < F; ++f) {
        if (a[f] == slot) s += static_cast<acc_t>(g[f]) * static_cast<acc_t>(xr[f]);
      }
    }
    grad_w[e] = static_cast<scalar_t>(s * scale);
  }
}

// Gradient of x for max/min at source node j, features [f0, f1), walking j's edges in the
// transposed CSR: edge t goes j -> i = col_t[t] and sits at CSR position perm_t[t], slot
// perm_t[t] - rowptr[i] of row i.
// kBlock > 0: a compile-time width n = kBlock (f1 - f0 must equal it), so that the accumulators stay in
// registers over the edge loop; 0: the run-time width f1 - f0.
template <typename scalar_t, typename acc_t, typename index_t, int kBlock = 0>
GNNLAB_HD void extremum_x_grad_row(const int64_t* rowptr, const int64_t* rowptr_t, const index_t* col_t,
                                   const int64_t* perm_t, const int32_t* arg, const scalar_t* grad_out,
                                   const scalar_t* w, int64_t F, int64_t j, int64_t f0, int64_t f1, acc_t* acc,
                                   int64_t col_end = -1) {
  const int64_t n = kBlock > 0 ? kBlock : f1 - f0;
  acc_t local[kBlock > 0 ? kBlock : 1];  // registers, not aliased by grad_out
  acc_t* sum = kBlock > 0 ? local : acc;
  for (int64_t k = 0; k < n; ++k) sum[k] = acc_t(0);
  for (int64_t t = rowptr_t[j]; t < rowptr_t[j + 1]; ++t) {
#if !defined(__CUDA_ARCH__)
    // The rows read per edge are random (row i of arg and grad_out): request them a few edges ahead.
    if (t + kPrefetchDistance < col_end) {
      const int64_t ahead = static_cast<int64_t>(col_t[t + kPrefetchDistance]);
      prefetch_row(arg + ahead * F + f0, n);
      prefetch_row(grad_out + ahead * F + f0, n);
      prefetch_row(rowptr + ahead, 1);
    }
#endif
    const int64_t i = static_cast<int64_t>(col_t[t]);
    const int64_t e = perm_t[t];
    const int32_t slot = static_cast<int32_t>(e - rowptr[i]);
    const acc_t we = w != nullptr ? static_cast<acc_t>(w[e]) : acc_t(1);
    const int32_t* a = arg + i * F + f0;
    const scalar_t* g = grad_out + i * F + f0;
#if !defined(__CUDA_ARCH__)
#pragma omp simd
#endif
    for (int64_t k = 0; k < n; ++k) {
      sum[k] += a[k] == slot ? we * static_cast<acc_t>(g[k]) : acc_t(0);
    }
  }
  if (kBlock > 0) {
    for (int64_t k = 0; k < n; ++k) acc[k] = local[k];
  }
}

}  // namespace agg
}  // namespace gnnlab
