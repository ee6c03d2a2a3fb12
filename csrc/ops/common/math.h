// Scalar math shared by the CPU and CUDA kernels: bit casts, a fused multiply-add that rounds the
// same on every build, a vectorisable float32 exp and the logistic sigmoid built on it. Only CUDA
// headers or none are included, so plain nvcc compiles this.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

#include "ops/common/macros.h"

namespace gnnlab {
namespace math {

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

GNNLAB_HD float exp_of(float x) { return exp_approx(x); }
GNNLAB_HD double exp_of(double x) { return exp(x); }

// The logistic sigmoid 1 / (1 + exp(-x)) in acc_t (float: exp_approx, so a loop of it vectorises).
// x -> -inf gives 1 / inf = 0, x -> +inf gives 1, NaN stays NaN. float32: within a few ulp of the
// exact value (exp_approx's 2 ulp, one addition and one division).
template <typename acc_t>
GNNLAB_HD acc_t sigmoid(acc_t x) {
  return acc_t(1) / (acc_t(1) + exp_of(-x));
}

}  // namespace math
}  // namespace gnnlab
