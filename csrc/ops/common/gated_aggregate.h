// Per-row logic of the edge-gated aggregation (GatedGCN's message passing), shared by the CPU and
// CUDA kernels. For every edge e = j -> i (CSR row i, source j = col[p], edge id e = edge_id[p]):
//
//   e_hat[e, f] = edge_in[e, f] + x_dst[i, f] + x_src[j, f]
//   num[i, f]   = sum_{e -> i} sigmoid(e_hat[e, f]) * values[j, f]
//   den[i, f]   = sum_{e -> i} sigmoid(e_hat[e, f])
//
// so the gates and the E x F gated messages are never stored; only e_hat is written (the layer's
// updated edge features need it). The backward, with cotangents g_e [E, F], g_num and g_den [R, F]
// and s = sigmoid(e_hat[e]) recomputed from the stored e_hat:
//
//   d_e[e]      = g_e[e] + s (1 - s) (values[j] g_num[i] + g_den[i])   (= d edge_in)
//   d_x_dst[i]  = sum_{e -> i} d_e[e]                                  (dst rows, forward CSR)
//   d_x_src[j]  = sum_{e from j} d_e[e]                                (src rows, transposed CSR)
//   d_values[j] = sum_{e from j} s g_num[i]
//
// The first pass (by target) evaluates s once and writes d_e and w = s g_num[i] ([E, F] each); the
// second (by source) only sums them, so the sigmoid runs once per edge and feature in the backward.
// Sums accumulate in acc_t (float for float/half/bfloat16, double for double) over a row's edges in
// CSR order. The sigmoid reads e_hat as stored (rounded to its dtype), so forward and backward agree.
// A CPU caller passes a feature range [f0, f0 + n) and accumulator arrays (a compile-time width kWidth
// keeps them in registers); a CUDA thread passes one feature. Only CUDA headers or none are included.
#pragma once

#include <cstdint>

#include "ops/common/aggregate.h"
#include "ops/common/macros.h"
#include "ops/common/math.h"

namespace gnnlab {
namespace gated {

// Forward of row i for features [f0, f0 + n): writes e_hat of the row's edges, returns num and den in
// num[0..n) and den[0..n).
template <int kWidth, typename scalar_t, typename acc_t, typename index_t>
GNNLAB_HD void forward_row(const int64_t* rowptr, const index_t* col, const int64_t* edge_id,
                           const scalar_t* edge_in, const scalar_t* x_dst, const scalar_t* x_src,
                           const scalar_t* values, int64_t F, int64_t i, int64_t f0, int64_t n_runtime,
                           scalar_t* e_hat, acc_t* __restrict__ num, acc_t* __restrict__ den, int64_t col_end) {
  const int64_t n = kWidth > 0 ? kWidth : n_runtime;
  acc_t local_num[kWidth > 0 ? kWidth : 1], local_den[kWidth > 0 ? kWidth : 1], dst[kWidth > 0 ? kWidth : 1];
  acc_t* a = kWidth > 0 ? local_num : num;
  acc_t* b = kWidth > 0 ? local_den : den;
  const scalar_t* xd = x_dst + i * F + f0;
  for (int64_t k = 0; k < n; ++k) {
    a[k] = acc_t(0);
    b[k] = acc_t(0);
    if (kWidth > 0) dst[k] = static_cast<acc_t>(xd[k]);
  }
  for (int64_t p = rowptr[i]; p < rowptr[i + 1]; ++p) {
#if !defined(__CUDA_ARCH__)
    if (p + agg::kPrefetchDistance < col_end) {
      const int64_t ahead = static_cast<int64_t>(col[p + agg::kPrefetchDistance]) * F + f0;
      agg::prefetch_row(x_src + ahead, n);
      agg::prefetch_row(values + ahead, n);
      agg::prefetch_row(edge_in + edge_id[p + agg::kPrefetchDistance] * F + f0, n);
    }
#endif
    const int64_t j = static_cast<int64_t>(col[p]);
    const int64_t e = edge_id[p];
    const scalar_t* __restrict__ ein = edge_in + e * F + f0;
    const scalar_t* __restrict__ xs = x_src + j * F + f0;
    const scalar_t* __restrict__ v = values + j * F + f0;
    scalar_t* __restrict__ out = e_hat + e * F + f0;
#if !defined(__CUDA_ARCH__)
#pragma omp simd
#endif
    for (int64_t k = 0; k < n; ++k) {
      const acc_t d = kWidth > 0 ? dst[k] : static_cast<acc_t>(xd[k]);
      const scalar_t h = static_cast<scalar_t>(static_cast<acc_t>(ein[k]) + d + static_cast<acc_t>(xs[k]));
      out[k] = h;
      const acc_t s = math::sigmoid<acc_t>(static_cast<acc_t>(h));
      a[k] += s * static_cast<acc_t>(v[k]);
      b[k] += s;
    }
  }
  if (kWidth > 0) {
    for (int64_t k = 0; k < n; ++k) {
      num[k] = local_num[k];
      den[k] = local_den[k];
    }
  }
}

// Backward over the edges of destination row i, features [f0, f0 + n), with s = sigmoid(e_hat[e]):
// writes d_e[e] and returns the row's sum of d_e (d_x_dst[i]) in sum[0..n) when sum is given, and
// writes w[e] = s * g_num[i] (what d_values sums by source) when w is given. The sigmoid is evaluated
// once per edge and feature in the whole backward.
template <int kWidth, typename scalar_t, typename acc_t, typename index_t>
GNNLAB_HD void backward_dst_row(const int64_t* rowptr, const index_t* col, const int64_t* edge_id,
                                const scalar_t* e_hat, const scalar_t* values, const scalar_t* g_e,
                                const scalar_t* g_num, const scalar_t* g_den, int64_t F, int64_t i, int64_t f0,
                                int64_t n_runtime, scalar_t* d_e, acc_t* __restrict__ sum, scalar_t* w,
                                int64_t col_end) {
  const int64_t n = kWidth > 0 ? kWidth : n_runtime;
  acc_t local[kWidth > 0 ? kWidth : 1];
  acc_t* a = kWidth > 0 ? local : sum;
  const bool with_edge = sum != nullptr, with_w = w != nullptr;
  if (with_edge) {
    for (int64_t k = 0; k < n; ++k) a[k] = acc_t(0);
  }
  const scalar_t* gn = g_num + i * F + f0;
  const scalar_t* gd = g_den + i * F + f0;
  for (int64_t p = rowptr[i]; p < rowptr[i + 1]; ++p) {
#if !defined(__CUDA_ARCH__)
    if (p + agg::kPrefetchDistance < col_end) {
      const int64_t ahead = edge_id[p + agg::kPrefetchDistance] * F + f0;
      agg::prefetch_row(e_hat + ahead, n);
      if (with_edge) {
        agg::prefetch_row(values + static_cast<int64_t>(col[p + agg::kPrefetchDistance]) * F + f0, n);
        agg::prefetch_row(g_e + ahead, n);
      }
    }
#endif
    const int64_t j = static_cast<int64_t>(col[p]);
    const int64_t e = edge_id[p];
    const scalar_t* __restrict__ h = e_hat + e * F + f0;
    if (with_edge && with_w) {
      const scalar_t* __restrict__ ge = g_e + e * F + f0;
      const scalar_t* __restrict__ v = values + j * F + f0;
      scalar_t* __restrict__ out = d_e + e * F + f0;
      scalar_t* __restrict__ wo = w + e * F + f0;
#if !defined(__CUDA_ARCH__)
#pragma omp simd
#endif
      for (int64_t k = 0; k < n; ++k) {
        const acc_t s = math::sigmoid<acc_t>(static_cast<acc_t>(h[k]));
        const acc_t gnk = static_cast<acc_t>(gn[k]);
        const acc_t gate_grad = static_cast<acc_t>(v[k]) * gnk + static_cast<acc_t>(gd[k]);
        const scalar_t d = static_cast<scalar_t>(static_cast<acc_t>(ge[k]) + s * (acc_t(1) - s) * gate_grad);
        out[k] = d;
        a[k] += static_cast<acc_t>(d);
        wo[k] = static_cast<scalar_t>(s * gnk);
      }
    } else if (with_edge) {
      const scalar_t* __restrict__ ge = g_e + e * F + f0;
      const scalar_t* __restrict__ v = values + j * F + f0;
      scalar_t* __restrict__ out = d_e + e * F + f0;
#if !defined(__CUDA_ARCH__)
#pragma omp simd
#endif
      for (int64_t k = 0; k < n; ++k) {
        const acc_t s = math::sigmoid<acc_t>(static_cast<acc_t>(h[k]));
        const acc_t gate_grad = static_cast<acc_t>(v[k]) * static_cast<acc_t>(gn[k]) + static_cast<acc_t>(gd[k]);
        const scalar_t d = static_cast<scalar_t>(static_cast<acc_t>(ge[k]) + s * (acc_t(1) - s) * gate_grad);
        out[k] = d;
        a[k] += static_cast<acc_t>(d);
      }
    } else if (with_w) {
      scalar_t* __restrict__ wo = w + e * F + f0;
#if !defined(__CUDA_ARCH__)
#pragma omp simd
#endif
      for (int64_t k = 0; k < n; ++k) {
        wo[k] = static_cast<scalar_t>(math::sigmoid<acc_t>(static_cast<acc_t>(h[k])) * static_cast<acc_t>(gn[k]));
      }
    }
  }
  if (kWidth > 0 && with_edge) {
    for (int64_t k = 0; k < n; ++k) sum[k] = local[k];
  }
}

// Backward over the edges of source row j (transposed CSR: edge id edge_id_t[t] of each position t), features [f0, f0 + n): the sums of d_e (into src_sum) and of w (into val_sum), each
// when its output is given.
template <int kWidth, typename scalar_t, typename acc_t>
GNNLAB_HD void backward_src_row(const int64_t* rowptr_t, const int64_t* edge_id_t,
                                const scalar_t* d_e, const scalar_t* w, int64_t F, int64_t j, int64_t f0,
                                int64_t n_runtime, acc_t* __restrict__ src_sum, acc_t* __restrict__ val_sum,
                                int64_t col_end) {
  const int64_t n = kWidth > 0 ? kWidth : n_runtime;
  acc_t local_src[kWidth > 0 ? kWidth : 1], local_val[kWidth > 0 ? kWidth : 1];
  acc_t* a = kWidth > 0 ? local_src : src_sum;
  acc_t* b = kWidth > 0 ? local_val : val_sum;
  const bool with_src = src_sum != nullptr, with_val = val_sum != nullptr;
  for (int64_t k = 0; k < n; ++k) {
    if (with_src) a[k] = acc_t(0);
    if (with_val) b[k] = acc_t(0);
  }
  for (int64_t t = rowptr_t[j]; t < rowptr_t[j + 1]; ++t) {
#if !defined(__CUDA_ARCH__)
    if (t + agg::kPrefetchDistance < col_end) {
      const int64_t ahead = edge_id_t[t + agg::kPrefetchDistance] * F + f0;
      if (with_src) agg::prefetch_row(d_e + ahead, n);
      if (with_val) agg::prefetch_row(w + ahead, n);
    }
#endif
    const int64_t e = edge_id_t[t];
    if (with_src) {
      const scalar_t* __restrict__ d = d_e + e * F + f0;
#if !defined(__CUDA_ARCH__)
#pragma omp simd
#endif
      for (int64_t k = 0; k < n; ++k) a[k] += static_cast<acc_t>(d[k]);
    }
    if (with_val) {
      const scalar_t* __restrict__ wr = w + e * F + f0;
#if !defined(__CUDA_ARCH__)
#pragma omp simd
#endif
      for (int64_t k = 0; k < n; ++k) b[k] += static_cast<acc_t>(wr[k]);
    }
  }
  if (kWidth > 0) {
    for (int64_t k = 0; k < n; ++k) {
      if (with_src) src_sum[k] = local_src[k];
      if (with_val) val_sum[k] = local_val[k];
    }
  }
}

}  // namespace gated
}  // namespace gnnlab
