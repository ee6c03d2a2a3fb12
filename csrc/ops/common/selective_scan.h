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
// float32 uses exp_approx and log1p_unit below (vectorisable, see their error bounds); float64 uses the
// C library's exp and log1p. Only CUDA headers or none are included, so plain nvcc compiles this.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "ops/common/macros.h"

namespace gnnlab {
namespace scan {

// Partial sums of a reduction over N: one 256-bit vector of float or double.
template <typename T>
struct Lanes {
  static constexpr int value = 32 / sizeof(T);
};

GNNLAB_HD int32_t float_bits(float v) {
#if defined(__CUDA_ARCH__)
  return __float_as_int(v);
#else
  int32_t i;
  std::memcpy(&i, &v, sizeof(i));
  return i;
#endif
}

GNNLAB_HD float bits_float(int32_t i) {
#if defined(__CUDA_ARCH__)
  return __int_as_float(i);
#else
  float v;
  std::memcpy(&v, &i, sizeof(v));
  return v;
#endif
}

// a·b + c with one rounding. Every multiply-add of the scan goes through it, so the baseline CPU
// build (std::fma: a library call where the CPU has no FMA unit, slow but exact), the AVX2 build
// (vfmadd) and CUDA (fmaf) compute the same bits; compilers may not contract anything else
// (-ffp-contract=off on the CPU).
GNNLAB_HD float fmadd(float a, float b, float c) {
#if defined(__CUDA_ARCH__)
  return __fmaf_rn(a, b, c);
#else
  return std::fma(a, b, c);
#endif
}
GNNLAB_HD double fmadd(double a, double b, double c) {
#if defined(__CUDA_ARCH__)
  return __fma_rn(a, b, c);
#else
  return std::fma(a, b, c);
#endif
}

// exp(x) in float32 without a library call, branch-free so that compilers vectorise it.
// exp(x) = 2^k · exp(r) with k = round(x / ln 2) and r = x - k·ln 2 (|r| <= ln2/2; k·ln 2 split in two
// constants so that k·LN2_HI is exact). exp(r) = 1 + r + r²·q(r), q of degree 4 fitted here to
// minimise the relative error on [-ln2/2, ln2/2] (3.1e-9, 0.03 ulp, before rounding), evaluated with
// fused multiply-adds (fmadd, so every build rounds the same). 2^k is applied
// as two factors 2^(k>>1) · 2^(k - (k>>1)), each a normal float, so subnormal results and results
// up to FLT_MAX come out without an exponent field overflowing, with a single final rounding.
// x is first clamped to [-104, 89]: below, the result rounds to 0 (exp(-104) < 2^-150); above
// 88.7228 the product overflows to +inf by itself. A NaN passes the clamps and stays NaN.
//
// Error: under 0.9 ulp of float64 exp for normal results (x in [-87.33, 88.72]; measured on every 7th
// float of the range), bounded here by 2 ulp;
// within one subnormal spacing for x in [-104, -87.33]; exp(+inf) = +inf, exp(-inf) = 0.
// tests/ops/test_selective_scan.py measures it against float64 exp over the whole range.
GNNLAB_HD float exp_approx(float x) {
  constexpr float kLo = -104.0f, kHi = 89.0f;
  constexpr float kLog2e = 1.44269504088896341f;
  constexpr float kLn2Hi = 0.693145751953125f;  // 15 significant bits: k · kLn2Hi is exact for |k| <= 256
  constexpr float kLn2Lo = 1.42860676533018704e-06f;  // ln 2 - kLn2Hi
  constexpr float kRound = 12582912.0f;  // 1.5 · 2^23: adding it rounds to an integer
  float xc = x < kLo ? kLo : x;  // a NaN x stays NaN
  xc = xc > kHi ? kHi : xc;
  const float shifted = fmadd(xc, kLog2e, kRound);  // the exact product, rounded once to an integer
  const float kf = shifted - kRound;
  const int32_t k = float_bits(shifted) - float_bits(kRound);  // round(xc / ln 2) in [-150, 128]
  float r = fmadd(-kf, kLn2Hi, xc);
  r = fmadd(-kf, kLn2Lo, r);
  float q = 1.381459879e-03f;
  q = fmadd(q, r, 8.368716575e-03f);
  q = fmadd(q, r, 4.166838899e-02f);
  q = fmadd(q, r, 1.666652113e-01f);
  q = fmadd(q, r, 4.999999404e-01f);
  const float p = fmadd(fmadd(q, r, 1.0f), r, 1.0f);
  // Integer parts in unsigned arithmetic: for a NaN x, k is an arbitrary bit pattern (the result is
  // NaN anyway) and must not overflow.
  const uint32_t uk = static_cast<uint32_t>(k);
  const uint32_t k1 = static_cast<uint32_t>(k >> 1), k2 = uk - k1;
  const float s1 = bits_float(static_cast<int32_t>((k1 + 127u) << 23));
  const float s2 = bits_float(static_cast<int32_t>((k2 + 127u) << 23));
  return (p * s1) * s2;
}

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

GNNLAB_HD float exp_of(float x) { return exp_approx(x); }
GNNLAB_HD double exp_of(double x) { return exp(x); }
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

template <typename T>
GNNLAB_HD T sigmoid(T v) {
  return T(1) / (T(1) + exp_of(-v));
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
