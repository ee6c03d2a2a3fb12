// Per-step logic of the selective scan (Mamba's selective_scan_fn), shared by the CPU and CUDA kernels.
//
// For one (batch, channel) with state size N, inputs at step t: raw = delta[t] + delta_bias,
// dt = softplus(raw) (or raw), u = u[t], B[t, 0..N), C[t, 0..N), keep = 0 where a packed sequence
// starts (else 1):
//
//   h[n]  = exp(dt · A[n]) · h[n] · keep + dt · u · B[t, n]
//   y     = Σ_n C[t, n] · h[n] + D · u
//   out   = y · z · sigmoid(z)                    (when the gate z is given)
//
// A CPU caller runs these functions in loops over time and over N that the compiler vectorises
// (N contiguous: B and C are read in [.., L, N] layout); a CUDA thread runs them for one channel with
// the state in registers. Sums over N use a fixed set of kLanes partial sums combined in a fixed tree,
// so every vector width (SSE, AVX2, a GPU thread) adds in the same order and gives the same bits.
//
// float32 uses exp_approx (ops/common/math.h) and log1p_unit below (vectorisable, see their error
// bounds); float64 uses the C library's exp and log1p. Only CUDA headers or none are included, so plain nvcc compiles this.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "ops/common/macros.h"
#include "ops/common/math.h"

namespace gnnlab {
namespace scan {

// Partial sums of a reduction over N: one 256-bit vector of float or double.
template <typename T>
struct Lanes {
  static constexpr int value = 32 / sizeof(T);
};

using math::bits_float;
using math::exp_approx;
using math::exp_of;
using math::float_bits;
using math::fmadd;
using math::sigmoid;

// log1p(x) for x in [0, 1] (float32; the only range softplus needs): with s = x / (2 + x) in
// [0, 1/3], log1p(x) = 2·atanh(s) = 2s·(1 + s²/3 + s⁴/5 + ... + s¹²/13), the next term under
// (1/9)^7 / 15 < 2e-8 relative. Relative error a few ulp, also for tiny x (no cancellation).
GNNLAB_HD float log1p_unit(float x) {
  const float s = x / (2.0f + x);
  const float s2 = s * s;
  float p = 1.0f / 13.0f;
  p = p * s2 + 1.0f / 11.0f;
  p = p * s2 + 1.0f / 9.0f;
  p = p * s2 + 1.0f / 7.0f;
  p = p * s2 + 1.0f / 5.0f;
  p = p * s2 + 1.0f / 3.0f;
  p = p * s2 + 1.0f;
  return (s + s) * p;
}

GNNLAB_HD float log1p_of_unit(float x) { return log1p_unit(x); }
GNNLAB_HD double log1p_of_unit(double x) { return log1p(x); }

// softplus(v) = log(1 + e^v), and v itself above 20 (torch's threshold), as
// max(v, 0) + log1p(exp(-|v|)) so that exp never overflows. softplus(-inf) = 0, NaN stays NaN.
template <typename T>
GNNLAB_HD T softplus(T v) {
  const T neg_abs = v > T(0) ? -v : v;
  const T pos = v > T(0) ? v : T(0);
  const T soft = pos + log1p_of_unit(exp_of(neg_abs));
  return v > T(20) ? v : soft;
}

// softplus(v) and its derivative sigmoid(v) from one exp: with e = exp(-|v|), sigmoid(v) = 1 / (1 + e)
// for v >= 0 and e / (1 + e) below (never exp of a large positive value); both as in softplus and
// step_size_grad above 20.
template <typename T>
GNNLAB_HD T softplus_with_grad(T v, T* grad) {
  const T neg_abs = v > T(0) ? -v : v;
  const T pos = v > T(0) ? v : T(0);
  const T e = exp_of(neg_abs);
  const T r = T(1) / (T(1) + e);
  const T soft = pos + log1p_of_unit(e);
  *grad = v > T(20) ? T(1) : (v >= T(0) ? r : e * r);
  return v > T(20) ? v : soft;
}

// The step size and its derivative with respect to raw = delta + delta_bias.
template <typename T>
GNNLAB_HD T step_size(T raw, bool softplus_delta) {
  return softplus_delta ? softplus(raw) : raw;
}
template <typename T>
GNNLAB_HD T step_size_grad(T raw, bool softplus_delta) {
  // torch's softplus has gradient 1 above its threshold, where sigmoid(raw) rounds to 1 anyway.
  return softplus_delta ? (raw > T(20) ? T(1) : sigmoid(raw)) : T(1);
}

// The gate: out = y · silu(z); d silu / dz = s · (1 + z · (1 - s)) with s = sigmoid(z).
template <typename T>
GNNLAB_HD T silu(T z) {
  return z * sigmoid(z);
}
template <typename T>
GNNLAB_HD T silu_grad_from(T z, T s) {  // s = sigmoid(z), when the caller has it
  return s * (T(1) + z * (T(1) - s));
}
template <typename T>
GNNLAB_HD T silu_grad(T z) {
  return silu_grad_from(z, sigmoid(z));
}

// Sum of the kLanes partial sums in a fixed halving tree.
template <typename T>
GNNLAB_HD T finish_sum(T* part) {
  constexpr int kLanes = Lanes<T>::value;
#if defined(__CUDA_ARCH__)
#pragma unroll
#endif
  for (int w = kLanes / 2; w >= 1; w /= 2) {
    for (int j = 0; j < w; ++j) part[j] = part[j] + part[j + w];
  }
  return part[0];
}

// The transitions of one step for state entries [0, count) (count == kN when kN > 0, a compile-time
// width): a[n] = exp(dt·A[n]). Independent of the state, so a CPU caller computes a whole chunk of
// them in one pass (full vector throughput) before the recurrence.
template <int kN, typename T>
GNNLAB_HD void transitions(T* __restrict__ a, const T* __restrict__ A, T dt, int64_t count_runtime) {
  const int64_t count = kN > 0 ? kN : count_runtime;
#if defined(__CUDA_ARCH__)
#pragma unroll
#endif
  for (int64_t n = 0; n < count; ++n) a[n] = exp_of(dt * A[n]);
}

// One forward step for state entries [0, count): h <- a·h + dtu·B (a = exp(dt·A), dtu = dt·u; a
// restart multiplies h by 0 before this call). Writes the kLanes partial sums of Σ C·h to lanes
// (finish_sum(lanes) is y without D·u); a CPU caller stores them for a whole chunk and finishes
// them afterwards, off the recurrence's critical path. With kStore, also writes the new state to
// h_out (the backward's recomputation).
template <int kN, bool kStore, typename T>
GNNLAB_HD void state_step_lanes(T* __restrict__ h, const T* __restrict__ a, const T* __restrict__ Bt,
                                const T* __restrict__ Ct, T dtu, int64_t count_runtime, T* __restrict__ h_out,
                                T* __restrict__ lanes) {
  constexpr int kLanes = Lanes<T>::value;
  const int64_t count = kN > 0 ? kN : count_runtime;
  T part[kLanes];
  for (int j = 0; j < kLanes; ++j) part[j] = T(0);
  int64_t n0 = 0;
  for (; n0 + kLanes <= count; n0 += kLanes) {
#if defined(__CUDA_ARCH__)
#pragma unroll
#else
#pragma omp simd
#endif
    for (int j = 0; j < kLanes; ++j) {
      const int64_t n = n0 + j;
      const T hn = fmadd(a[n], h[n], dtu * Bt[n]);
      h[n] = hn;
      if (kStore) h_out[n] = hn;
      part[j] = fmadd(Ct[n], hn, part[j]);
    }
  }
  for (int64_t n = n0; n < count; ++n) {
    const T hn = fmadd(a[n], h[n], dtu * Bt[n]);
    h[n] = hn;
    if (kStore) h_out[n] = hn;
    part[n - n0] = fmadd(Ct[n], hn, part[n - n0]);
  }
  for (int j = 0; j < kLanes; ++j) lanes[j] = part[j];
}

// state_step_lanes followed by the sum: returns Σ C·h.
template <int kN, bool kStore, typename T>
GNNLAB_HD T state_step(T* __restrict__ h, const T* __restrict__ a, const T* __restrict__ Bt,
                       const T* __restrict__ Ct, T dtu, int64_t count_runtime, T* __restrict__ h_out) {
  T part[Lanes<T>::value];
  state_step_lanes<kN, kStore, T>(h, a, Bt, Ct, dtu, count_runtime, h_out, part);
  return finish_sum(part);
}

// Σ C·h over [0, count) (y without D·u), in the same lane order as state_step.
template <int kN, typename T>
GNNLAB_HD T output_sum(const T* __restrict__ h, const T* __restrict__ Ct, int64_t count_runtime) {
  constexpr int kLanes = Lanes<T>::value;
  const int64_t count = kN > 0 ? kN : count_runtime;
  T part[kLanes];
  for (int j = 0; j < kLanes; ++j) part[j] = T(0);
  int64_t n0 = 0;
  for (; n0 + kLanes <= count; n0 += kLanes) {
    for (int j = 0; j < kLanes; ++j) part[j] = fmadd(Ct[n0 + j], h[n0 + j], part[j]);
  }
  for (int64_t n = n0; n < count; ++n) part[n - n0] = fmadd(Ct[n], h[n], part[n - n0]);
  return finish_sum(part);
}

// Sums over N that one reverse step produces; the input gradients of the step follow from them.
template <typename T>
struct ReverseSums {
  T a_dA;  // Σ_n g·h_in·a·A[n]: d loss / d dt through the transitions
  T gB;    // Σ_n g·B[n]: d loss / d (dt·u) through the inputs
};

// One reverse step for state entries [0, count). In: gh = d loss / d h[t] from the later steps,
// gy = d loss / d y[t], a = exp(dt·A), h_in = the state entering step t (already times keep),
// h_out = h[t]. Out: gh <- d loss / d h[t-1]·keep (the caller zeroes it at a restart), gA += g·h_in·a·dt,
// gB_t[n] = g·dtu and gC_t[n] = gy·h_out (the caller adds them where B and C live; with kAdd, they
// are added to gB_t and gC_t here, gB_t[n] + g·dtu, the same sum), and the kLanes
// partial sums of Σ_n g·h_in·a·A[n] (d loss / d dt through the transitions) in lanes_a and of
// Σ_n g·B[n] (d loss / d (dt·u) through the inputs) in lanes_b.
template <int kN, typename T, bool kAdd = false>
GNNLAB_HD void reverse_step_lanes(T* __restrict__ gh, const T* __restrict__ A, const T* __restrict__ Bt,
                                  const T* __restrict__ Ct, const T* __restrict__ a, const T* __restrict__ h_in,
                                  const T* __restrict__ h_out, T gy, T dt, T dtu, T* __restrict__ gA,
                                  T* __restrict__ gB_t, T* __restrict__ gC_t, int64_t count_runtime,
                                  T* __restrict__ lanes_a, T* __restrict__ lanes_b) {
  constexpr int kLanes = Lanes<T>::value;
  const int64_t count = kN > 0 ? kN : count_runtime;
  T part_a[kLanes], part_b[kLanes];
  for (int j = 0; j < kLanes; ++j) part_a[j] = part_b[j] = T(0);
  int64_t n0 = 0;
  for (; n0 + kLanes <= count; n0 += kLanes) {
#if defined(__CUDA_ARCH__)
#pragma unroll
#else
#pragma omp simd
#endif
    for (int j = 0; j < kLanes; ++j) {
      const int64_t n = n0 + j;
      const T g = fmadd(Ct[n], gy, gh[n]);
      const T ga = g * h_in[n] * a[n];
      part_a[j] = fmadd(ga, A[n], part_a[j]);
      part_b[j] = fmadd(g, Bt[n], part_b[j]);
      gA[n] = fmadd(ga, dt, gA[n]);
      gB_t[n] = kAdd ? gB_t[n] + g * dtu : g * dtu;
      gC_t[n] = kAdd ? gC_t[n] + gy * h_out[n] : gy * h_out[n];
      gh[n] = g * a[n];
    }
  }
  for (int64_t n = n0; n < count; ++n) {
    const T g = fmadd(Ct[n], gy, gh[n]);
    const T ga = g * h_in[n] * a[n];
    part_a[n - n0] = fmadd(ga, A[n], part_a[n - n0]);
    part_b[n - n0] = fmadd(g, Bt[n], part_b[n - n0]);
    gA[n] = fmadd(ga, dt, gA[n]);
    gB_t[n] = kAdd ? gB_t[n] + g * dtu : g * dtu;
    gC_t[n] = kAdd ? gC_t[n] + gy * h_out[n] : gy * h_out[n];
    gh[n] = g * a[n];
  }
  for (int j = 0; j < kLanes; ++j) {
    lanes_a[j] = part_a[j];
    lanes_b[j] = part_b[j];
  }
}

// reverse_step_lanes followed by the two sums.
template <int kN, typename T>
GNNLAB_HD ReverseSums<T> reverse_step(T* __restrict__ gh, const T* __restrict__ A, const T* __restrict__ Bt,
                                      const T* __restrict__ Ct, const T* __restrict__ a, const T* __restrict__ h_in,
                                      const T* __restrict__ h_out, T gy, T dt, T dtu, T* __restrict__ gA,
                                      T* __restrict__ gB_t, T* __restrict__ gC_t, int64_t count_runtime) {
  T part_a[Lanes<T>::value], part_b[Lanes<T>::value];
  reverse_step_lanes<kN, T>(gh, A, Bt, Ct, a, h_in, h_out, gy, dt, dtu, gA, gB_t, gC_t, count_runtime, part_a, part_b);
  return {finish_sum(part_a), finish_sum(part_b)};
}

// Host side: calls fn(std::integral_constant<int, kN>()) with kN = N for the state sizes the kernels
// are compiled for (8, 16, 32, 64), and kN = 0 (the runtime-N path) for any other N.
template <typename Fn>
void with_state_size(int64_t N, Fn&& fn) {
  switch (N) {
    case 8:
      fn(std::integral_constant<int, 8>());
      break;
    case 16:
      fn(std::integral_constant<int, 16>());
      break;
    case 32:
      fn(std::integral_constant<int, 32>());
      break;
    case 64:
      fn(std::integral_constant<int, 64>());
      break;
    default:
      fn(std::integral_constant<int, 0>());
  }
}

}  // namespace scan
}  // namespace gnnlab
