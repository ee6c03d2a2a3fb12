// CPU selective scan (Mamba): forward and backward, parallel over (batch, channel) or (batch, group),
// the state of one channel kept in a local array of N values; the per-step math is
// ops/common/selective_scan.h (shared with the CUDA kernels), vectorised over N.
//
// Time is walked in chunks of `chunk` steps. Per chunk, the per-step scalars (step size with its
// softplus, dt·u, the gate) are computed in loops over time that vectorise, and the recurrence runs
// over N with exp evaluated in vector registers (scan::exp_approx for float32) inside the step, where
// its throughput-bound work overlaps the recurrence's latency. The sums over N of each step are kept
// as scan::Lanes partial sums and finished after the chunk, off the recurrence's critical path. The
// forward stores the state entering every chunk ([batch, D, chunks, N]); the backward walks the
// chunks from the last (prefetching the next chunk's rows), recomputes one chunk's transitions
// exp(dt·A) and states from its checkpoint into two [chunk, N] buffers (one exp per element in the
// whole backward) and runs the reverse scan over them, so no [batch, D, L, N] tensor is ever stored.
//
// B and C arrive as 4-D strided views [batch, G, N, L] (time-invariant [D, N] as a view with zero
// batch and time strides and G = D; per-step [batch, N, L] with G = 1); channel d reads group
// d / (D / G). `reset` ([L] uint8, optional) marks the first step of every packed sequence. `h0`
// ([batch, D, N], optional) is the state before step 0 (zero without it); the backward takes the
// gradient of the last state (optional) and returns the gradient of h0, so a long sequence can be
// scanned in pieces, each starting from the previous one's last state.
//
// Every kernel is compiled for the baseline ISA and, on x86-64, for AVX2 (cpu_isa() picks); both
// run the same operations in the same order (fixed-lane sums, multiply-adds fused only where written
// as scan::fmadd, -ffp-contract=off elsewhere) and give the same bits. Compile-time state sizes 8, 16, 32 and 64 keep the state in registers; other sizes run
// the same code with a run-time size.
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <type_traits>
#include <cstring>
#include <initializer_list>
#include <vector>

#include "ops/common/selective_scan.h"
#include "ops/cpu/isa.h"
#include "ops/selective_scan.h"

namespace gnnlab {
namespace {

// Raw pointers and sizes of ScanInputs. B and C are time-major: step t of (b, group g) starts at
// b·sb_b + g·sb_g + t·sb_t, its N entries contiguous.
template <typename T>
struct ScanArgs {
  const T *u, *delta, *A, *D, *z, *bias, *B, *C, *h0;
  const uint8_t* reset;
  bool softplus_delta;
  int64_t batch, dim, length, state, chunk, chunks, groups_b, groups_c;
  int64_t sb_b, sb_g, sb_t, sc_b, sc_g, sc_t;

  ScanArgs(const ScanInputs& in, bool softplus_delta_, int64_t chunk_)
      : u(in.u.data_ptr<T>()),
        delta(in.delta.data_ptr<T>()),
        A(in.A.data_ptr<T>()),
        D(in.D.defined() ? in.D.data_ptr<T>() : nullptr),
        z(in.z.defined() ? in.z.data_ptr<T>() : nullptr),
        bias(in.bias.defined() ? in.bias.data_ptr<T>() : nullptr),
        B(in.B.data_ptr<T>()),
        C(in.C.data_ptr<T>()),
        h0(in.h0.defined() ? in.h0.data_ptr<T>() : nullptr),
        reset(in.reset.defined() ? in.reset.data_ptr<uint8_t>() : nullptr),
        softplus_delta(softplus_delta_),
        batch(in.u.size(0)),
        dim(in.u.size(1)),
        length(in.u.size(2)),
        state(in.A.size(1)),
        chunk(chunk_),
        chunks((in.u.size(2) + chunk_ - 1) / chunk_),
        groups_b(in.B.size(1)),
        groups_c(in.C.size(1)),
        sb_b(in.B.stride(0)),
        sb_g(in.B.stride(1)),
        sb_t(in.B.stride(2)),
        sc_b(in.C.stride(0)),
        sc_g(in.C.stride(1)),
        sc_t(in.C.stride(2)) {}

  bool restarts(int64_t t) const { return reset != nullptr && reset[t] != 0; }
};

// Per-thread scratch: the per-step scalars of one chunk, the chunk's transitions and states, and the
// partial sums (scan::Lanes of them per step) of the chunk's reductions over N.
template <typename T>
struct Scratch {
  static constexpr int kLanes = scan::Lanes<T>::value;
  std::vector<T> buf;
  T *dt, *dtu, *dt_grad, *y, *gy, *sum_a, *sum_b, *a, *h, *lanes_a, *lanes_b, *state, *grad_state, *gA, *gB_t, *gC_t, *gB_acc,
      *gC_acc, *tmp;
  Scratch(int64_t chunk, int64_t n) : buf(7 * chunk + 2 * chunk * n + 2 * chunk * kLanes + 9 * n) {
    T* p = buf.data();
    for (T** q : {&dt, &dtu, &dt_grad, &y, &gy, &sum_a, &sum_b}) {
      *q = p;
      p += chunk;
    }
    for (T** q : {&a, &h}) {
      *q = p;
      p += chunk * n;
    }
    for (T** q : {&lanes_a, &lanes_b}) {
      *q = p;
      p += chunk * kLanes;
    }
    for (T** q : {&state, &grad_state, &gA, &gB_t, &gC_t, &gB_acc, &gC_acc, &tmp}) {
      *q = p;
      p += n;
    }
  }
};

// out[i] = the sum of the kLanes partial sums of step i, for the len steps of a chunk, in
// scan::finish_sum's halving order (so the same bits): the upper half of the lanes added to the lower
// half, and again, in registers (GCC vector extensions) rather than through memory.
GNNLAB_HD void finish_sums(const float* lanes, float* out, int64_t len) {
  typedef float v8 __attribute__((vector_size(32)));
  typedef float v4 __attribute__((vector_size(16)));
  static_assert(scan::Lanes<float>::value == 8, "8 float lanes");
  for (int64_t i = 0; i < len; ++i) {
    v8 v;
    std::memcpy(&v, lanes + i * 8, sizeof(v));
    const v4 q = __builtin_shufflevector(v, v, 0, 1, 2, 3) + __builtin_shufflevector(v, v, 4, 5, 6, 7);
    const v4 r = q + __builtin_shufflevector(q, q, 2, 3, 2, 3);
    out[i] = r[0] + r[1];
  }
}
GNNLAB_HD void finish_sums(const double* lanes, double* out, int64_t len) {
  typedef double v4 __attribute__((vector_size(32)));
  typedef double v2 __attribute__((vector_size(16)));
  static_assert(scan::Lanes<double>::value == 4, "4 double lanes");
  for (int64_t i = 0; i < len; ++i) {
    v4 v;
    std::memcpy(&v, lanes + i * 4, sizeof(v));
    const v2 q = __builtin_shufflevector(v, v, 0, 1) + __builtin_shufflevector(v, v, 2, 3);
    out[i] = q[0] + q[1];
  }
}

// Step sizes dt and dt·u of steps [t0, t0 + len) of row `row` (channel d), and with `grad` the
// derivative of dt with respect to delta (the backward's).
template <typename T>
GNNLAB_HD void step_sizes(const ScanArgs<T>& s, int64_t row, int64_t d, int64_t t0, int64_t len, T* dt, T* dtu,
                          T* grad = nullptr) {
  const T bias = s.bias != nullptr ? s.bias[d] : T(0);
  const T* delta = s.delta + row + t0;
  const T* u = s.u + row + t0;
  if (s.softplus_delta && grad != nullptr) {
#pragma omp simd
    for (int64_t i = 0; i < len; ++i) dt[i] = scan::softplus_with_grad(delta[i] + bias, grad + i);
  } else if (s.softplus_delta) {
#pragma omp simd
    for (int64_t i = 0; i < len; ++i) dt[i] = scan::softplus(delta[i] + bias);
  } else {
    if (grad != nullptr) {
      for (int64_t i = 0; i < len; ++i) grad[i] = T(1);
    }
#pragma omp simd
    for (int64_t i = 0; i < len; ++i) dt[i] = delta[i] + bias;
  }
#pragma omp simd
  for (int64_t i = 0; i < len; ++i) dtu[i] = dt[i] * u[i];
}

// Prefetches `len` consecutive values from each non-null pointer: `reads` to be read, `writes` to be
// written.
template <typename T>
GNNLAB_HD void prefetch_rows(int64_t len, std::initializer_list<const T*> reads, std::initializer_list<T*> writes) {
  constexpr int64_t kLine = 64 / sizeof(T);
  for (const T* p : reads) {
    if (p == nullptr) continue;
    for (int64_t i = 0; i < len; i += kLine) __builtin_prefetch(p + i, 0, 3);
  }
  for (T* p : writes) {
    if (p == nullptr) continue;
    for (int64_t i = 0; i < len; i += kLine) __builtin_prefetch(p + i, 1, 3);
  }
}

template <typename T>
GNNLAB_HD void zero_times(T* v, int64_t n) {
  for (int64_t k = 0; k < n; ++k) v[k] = v[k] * T(0);  // keeps a NaN or inf state NaN across a restart
}

template <int kN, typename T>
GNNLAB_HD void forward_items(const ScanArgs<T>& s, T* out, T* last, T* ckpt, int64_t begin, int64_t end,
                             Scratch<T>& w) {
  const int64_t N = kN > 0 ? kN : s.state, L = s.length;  // a compile-time N keeps h in registers
  T h_local[kN > 0 ? kN : 1];
  T* h = kN > 0 ? h_local : w.state;
  for (int64_t item = begin; item < end; ++item) {
    const int64_t b = item / s.dim, d = item % s.dim, row = item * L;
    const T* Ad = s.A + d * N;
    const T* Bb = s.B + b * s.sb_b + (d / (s.dim / s.groups_b)) * s.sb_g;
    const T* Cb = s.C + b * s.sc_b + (d / (s.dim / s.groups_c)) * s.sc_g;
    for (int64_t n = 0; n < N; ++n) h[n] = s.h0 != nullptr ? s.h0[item * N + n] : T(0);
    for (int64_t c = 0; c < s.chunks; ++c) {
      const int64_t t0 = c * s.chunk, len = std::min(s.chunk, L - t0);
      T* saved = ckpt + (item * s.chunks + c) * N;
      for (int64_t n = 0; n < N; ++n) saved[n] = h[n];
      step_sizes(s, row, d, t0, len, w.dt, w.dtu);
      // The transitions of a step are computed in the step (exp's throughput-bound work beside the
      // latency-bound recurrence) and never stored.
      for (int64_t i = 0; i < len; ++i) {
        const int64_t t = t0 + i;
        T a_local[kN > 0 ? kN : 1];
        T* a = kN > 0 ? a_local : w.a;
        scan::transitions<kN, T>(a, Ad, w.dt[i], N);
        if (s.restarts(t)) zero_times(h, N);
        scan::state_step_lanes<kN, false, T>(h, a, Bb + t * s.sb_t, Cb + t * s.sc_t, w.dtu[i], N, nullptr,
                                             w.lanes_a + i * Scratch<T>::kLanes);
      }
      finish_sums(w.lanes_a, w.y, len);
      const T* u = s.u + row + t0;
      T* o = out + row + t0;
      if (s.D != nullptr) {
        const T Dd = s.D[d];
#pragma omp simd
        for (int64_t i = 0; i < len; ++i) w.y[i] = w.y[i] + Dd * u[i];
      }
      if (s.z != nullptr) {
        const T* z = s.z + row + t0;
#pragma omp simd
        for (int64_t i = 0; i < len; ++i) o[i] = w.y[i] * scan::silu(z[i]);
      } else {
        for (int64_t i = 0; i < len; ++i) o[i] = w.y[i];
      }
    }
    for (int64_t n = 0; n < N; ++n) last[item * N + n] = h[n];
  }
}

// Output pointers of the backward; gB/gC are [batch, D, N] when time-invariant, else time-major
// [batch, G, L, N]. grad_last (the incoming gradient of the last state, [batch, D, N]) seeds the
// reverse scan; gh0 receives the gradient of the state before step 0. Either may be null.
template <typename T>
struct Grads {
  T *gu, *gdelta, *gA, *gB, *gC, *gD, *gbias, *gz;
  bool b_fixed, c_fixed;
  const T* grad_last;
  T* gh0;
};

template <int kN, typename T>
GNNLAB_HD void backward_tasks(const ScanArgs<T>& s, const T* ckpt, const T* grad_out, const Grads<T>& g,
                              int64_t groups, int64_t begin, int64_t end, Scratch<T>& w) {
  const int64_t N = kN > 0 ? kN : s.state, L = s.length, per_task = s.dim / groups;
  T h_local[kN > 0 ? kN : 1], gh_local[kN > 0 ? kN : 1], gA_local[kN > 0 ? kN : 1];
  T* h = kN > 0 ? h_local : w.state;
  T* gh = kN > 0 ? gh_local : w.grad_state;
  T* gA = kN > 0 ? gA_local : w.gA;
  for (int64_t task = begin; task < end; ++task) {
    const int64_t b = task / groups, first = (task % groups) * per_task;
    for (int64_t d = first; d < first + per_task; ++d) {
      const int64_t item = b * s.dim + d, row = item * L;
      const int64_t gb = d / (s.dim / s.groups_b), gc = d / (s.dim / s.groups_c);
      const T* Ad = s.A + d * N;
      const T* Bb = s.B + b * s.sb_b + gb * s.sb_g;
      const T* Cb = s.C + b * s.sc_b + gc * s.sc_g;
      T* gB_rows = g.b_fixed ? nullptr : g.gB + (b * s.groups_b + gb) * L * N;  // time-varying layout
      T* gC_rows = g.c_fixed ? nullptr : g.gC + (b * s.groups_c + gc) * L * N;
      for (int64_t n = 0; n < N; ++n) gA[n] = w.gB_acc[n] = w.gC_acc[n] = T(0);
      for (int64_t n = 0; n < N; ++n) gh[n] = g.grad_last != nullptr ? g.grad_last[item * N + n] : T(0);
      constexpr int kLanes = Scratch<T>::kLanes;
      T gD_lanes[kLanes], gbias_lanes[kLanes];
      for (int j = 0; j < kLanes; ++j) gD_lanes[j] = gbias_lanes[j] = T(0);
      for (int64_t c = s.chunks - 1; c >= 0; --c) {
        const int64_t t0 = c * s.chunk, len = std::min(s.chunk, L - t0);
        const T* h0 = ckpt + (item * s.chunks + c) * N;
        if (c > 0) {
          // The chunks are walked from the last, which the hardware prefetchers do not anticipate:
          // ask for the next chunk's per-step rows while this one runs.
          const int64_t at = row + t0 - s.chunk;
          prefetch_rows(s.chunk, {s.u + at, s.delta + at, grad_out + at, s.z != nullptr ? s.z + at : nullptr},
                        {g.gu + at, g.gdelta + at, g.gz != nullptr ? g.gz + at : nullptr});
        }
        step_sizes(s, row, d, t0, len, w.dt, w.dtu, w.dt_grad);
        // Recompute the chunk: w.a[i] = exp(dt·A), w.h[i] = h(t0 + i), w.y[i] = Σ C·h.
        for (int64_t n = 0; n < N; ++n) h[n] = h0[n];
        for (int64_t i = 0; i < len; ++i) {
          const int64_t t = t0 + i;
          scan::transitions<kN, T>(w.a + i * N, Ad, w.dt[i], N);
          if (s.restarts(t)) zero_times(h, N);
          scan::state_step_lanes<kN, true, T>(h, w.a + i * N, Bb + t * s.sb_t, Cb + t * s.sc_t, w.dtu[i], N,
                                              w.h + i * N, w.lanes_a + i * Scratch<T>::kLanes);
        }
        if (s.z != nullptr) finish_sums(w.lanes_a, w.y, len);  // y is only needed for the gate's gradient
        // d loss / d y, through the gate.
        const T* go = grad_out + row + t0;
        const T* u = s.u + row + t0;
        if (s.z != nullptr) {
          const T* z = s.z + row + t0;
          T* gz = g.gz + row + t0;
          if (s.D != nullptr) {
            const T Dd = s.D[d];
#pragma omp simd
            for (int64_t i = 0; i < len; ++i) w.y[i] = w.y[i] + Dd * u[i];
          }
#pragma omp simd
          for (int64_t i = 0; i < len; ++i) {
            const T sz = scan::sigmoid(z[i]);
            gz[i] = go[i] * w.y[i] * scan::silu_grad_from(z[i], sz);
            w.gy[i] = go[i] * (z[i] * sz);
          }
        } else {
          for (int64_t i = 0; i < len; ++i) w.gy[i] = go[i];
        }
        // Reverse scan over the chunk.
        for (int64_t i = len - 1; i >= 0; --i) {
          const int64_t t = t0 + i;
          const T* h_in = i == 0 ? h0 : w.h + (i - 1) * N;
          const bool restart = s.restarts(t);
          if (restart) {
            for (int64_t n = 0; n < N; ++n) w.tmp[n] = h_in[n] * T(0);
            h_in = w.tmp;
          }
          T* gBt = g.b_fixed ? w.gB_acc : gB_rows + t * N;
          T* gCt = g.c_fixed ? w.gC_acc : gC_rows + t * N;
          scan::reverse_step_lanes<kN, T, true>(gh, Ad, Bb + t * s.sb_t, Cb + t * s.sc_t, w.a + i * N, h_in,
                                                w.h + i * N, w.gy[i], w.dt[i], w.dtu[i], gA, gBt, gCt, N,
                                                w.lanes_a + i * Scratch<T>::kLanes, w.lanes_b + i * Scratch<T>::kLanes);
          if (restart) zero_times(gh, N);
        }
        finish_sums(w.lanes_a, w.sum_a, len);
        finish_sums(w.lanes_b, w.sum_b, len);
        // Input gradients of the chunk's steps: d loss / d dt = Σ g·h_in·a·A + u·Σ g·B, d loss / d u = dt·Σ g·B + gy·D.
        T* gdelta = g.gdelta + row + t0;
        T* gu = g.gu + row + t0;
#pragma omp simd
        for (int64_t i = 0; i < len; ++i) {
          gdelta[i] = (w.sum_a[i] + u[i] * w.sum_b[i]) * w.dt_grad[i];
          gu[i] = w.dt[i] * w.sum_b[i];
        }
        if (s.D != nullptr) {
          const T Dd = s.D[d];
#pragma omp simd
          for (int64_t i = 0; i < len; ++i) gu[i] = gu[i] + w.gy[i] * Dd;
        }
        // Step i adds to lane i % kLanes (a fixed order, so every ISA variant adds the same way).
        for (int64_t i0 = 0; i0 < len; i0 += kLanes) {
          const int64_t m = std::min<int64_t>(kLanes, len - i0);
          for (int64_t j = 0; j < m; ++j) {
            gD_lanes[j] = gD_lanes[j] + w.gy[i0 + j] * u[i0 + j];
            gbias_lanes[j] = gbias_lanes[j] + gdelta[i0 + j];
          }
        }
      }
      for (int64_t n = 0; n < N; ++n) g.gA[item * N + n] = gA[n];
      if (g.gh0 != nullptr) {
        for (int64_t n = 0; n < N; ++n) g.gh0[item * N + n] = gh[n];
      }
      if (g.b_fixed) {
        for (int64_t n = 0; n < N; ++n) g.gB[item * N + n] = w.gB_acc[n];
      }
      if (g.c_fixed) {
        for (int64_t n = 0; n < N; ++n) g.gC[item * N + n] = w.gC_acc[n];
      }
      g.gD[item] = scan::finish_sum(gD_lanes);
      g.gbias[item] = scan::finish_sum(gbias_lanes);
    }
  }
}

// The two ISA variants of each kernel (see ops/cpu/isa.h).
template <int kN, typename T>
void forward_baseline(const ScanArgs<T>& s, T* out, T* last, T* ckpt, int64_t begin, int64_t end, Scratch<T>& w) {
  forward_items<kN, T>(s, out, last, ckpt, begin, end, w);
}
template <int kN, typename T>
void backward_baseline(const ScanArgs<T>& s, const T* ckpt, const T* go, const Grads<T>& g, int64_t groups,
                       int64_t begin, int64_t end, Scratch<T>& w) {
  backward_tasks<kN, T>(s, ckpt, go, g, groups, begin, end, w);
}
#if GNNLAB_HAVE_AVX2_DISPATCH
template <int kN, typename T>
__attribute__((target("avx2,fma,f16c"))) void forward_avx2(const ScanArgs<T>& s, T* out, T* last, T* ckpt,
                                                            int64_t begin, int64_t end, Scratch<T>& w) {
  forward_items<kN, T>(s, out, last, ckpt, begin, end, w);
}
template <int kN, typename T>
__attribute__((target("avx2,fma,f16c"))) void backward_avx2(const ScanArgs<T>& s, const T* ckpt, const T* go,
                                                             const Grads<T>& g, int64_t groups, int64_t begin,
                                                             int64_t end, Scratch<T>& w) {
  backward_tasks<kN, T>(s, ckpt, go, g, groups, begin, end, w);
}
#endif

}  // namespace

std::tuple<at::Tensor, at::Tensor, at::Tensor> selective_scan_fwd_cpu(
    const at::Tensor& u_in, const at::Tensor& delta_in, const at::Tensor& A_in, const at::Tensor& B_in,
    const at::Tensor& C_in, const c10::optional<at::Tensor>& D_in, const c10::optional<at::Tensor>& z_in,
    const c10::optional<at::Tensor>& bias_in, bool softplus_delta, const c10::optional<at::Tensor>& reset_in,
    int64_t chunk, const c10::optional<at::Tensor>& h0_in) {
  check_scan_inputs(u_in, delta_in, A_in, B_in, C_in, D_in, z_in, bias_in, reset_in, chunk, "selective_scan_fwd");
  for (const auto* t : {&u_in, &delta_in, &A_in, &B_in, &C_in}) {
    TORCH_CHECK_VALUE(t->device().is_cpu(), "selective_scan_fwd: CPU tensors only");
  }
  check_scan_state(h0_in, u_in, A_in, "h0", "selective_scan_fwd");
  const ScanInputs in(u_in, delta_in, A_in, B_in, C_in, D_in, z_in, bias_in, reset_in, h0_in);
  const int64_t batch = in.u.size(0), dim = in.u.size(1), length = in.u.size(2), state = in.A.size(1);
  const int64_t chunks = (length + chunk - 1) / chunk;
  auto out = at::empty_like(in.u);
  auto last = at::zeros({batch, dim, state}, in.u.options());
  auto checkpoints = at::empty({batch, dim, chunks, state}, in.u.options());
  const bool avx2 = cpu_isa() == CpuIsa::kAvx2;
  AT_DISPATCH_FLOATING_TYPES(in.u.scalar_type(), "selective_scan_fwd_cpu", [&] {
    const ScanArgs<scalar_t> s(in, softplus_delta, chunk);
    scalar_t *op = out.data_ptr<scalar_t>(), *lp = last.data_ptr<scalar_t>(), *kp = checkpoints.data_ptr<scalar_t>();
    scan::with_state_size(state, [&](auto width) {
      constexpr int kN = decltype(width)::value;
      at::parallel_for(0, batch * dim, 1, [&](int64_t begin, int64_t end) {
        Scratch<scalar_t> w(std::min(chunk, std::max<int64_t>(length, 1)), state);
#if GNNLAB_HAVE_AVX2_DISPATCH
        if (avx2) {
          forward_avx2<kN, scalar_t>(s, op, lp, kp, begin, end, w);
          return;
        }
#endif
        (void)avx2;
        forward_baseline<kN, scalar_t>(s, op, lp, kp, begin, end, w);
      });
    });
  });
  return {out, last, checkpoints};
}

// Gradients of everything; B/C gradients as [batch, G, N, L] when they vary in time (each (b, g)
// written by one task) or [batch, D, N] when time-invariant (summed over batch by the caller).
std::vector<at::Tensor> selective_scan_bwd_cpu(
    const at::Tensor& u_in, const at::Tensor& delta_in, const at::Tensor& A_in, const at::Tensor& B_in,
    const at::Tensor& C_in, const c10::optional<at::Tensor>& D_in, const c10::optional<at::Tensor>& z_in,
    const c10::optional<at::Tensor>& bias_in, bool softplus_delta, const c10::optional<at::Tensor>& reset_in,
    int64_t chunk, const at::Tensor& checkpoints_in, const at::Tensor& grad_out_in,
    const c10::optional<at::Tensor>& grad_last_in) {
  check_scan_inputs(u_in, delta_in, A_in, B_in, C_in, D_in, z_in, bias_in, reset_in, chunk, "selective_scan_bwd");
  for (const auto* t : {&u_in, &delta_in, &A_in, &B_in, &C_in, &checkpoints_in, &grad_out_in}) {
    TORCH_CHECK_VALUE(t->device().is_cpu(), "selective_scan_bwd: CPU tensors only");
  }
  check_scan_backward(u_in, A_in, chunk, checkpoints_in, grad_out_in);
  check_scan_state(grad_last_in, u_in, A_in, "grad_last", "selective_scan_bwd");
  const ScanInputs in(u_in, delta_in, A_in, B_in, C_in, D_in, z_in, bias_in, reset_in);
  const auto& u = in.u;
  const auto ckpt = checkpoints_in.contiguous().to(u.scalar_type());
  const auto go = grad_out_in.contiguous().to(u.scalar_type());
  const int64_t batch = u.size(0), dim = u.size(1), length = u.size(2), state = in.A.size(1);
  const int64_t groups_b = in.B.size(1), groups_c = in.C.size(1);
  const int64_t groups = scan_backward_groups(in, groups_b, groups_c);
  auto gu = at::empty_like(u), gdelta = at::empty_like(u);
  auto gA = at::empty({batch, dim, state}, u.options());
  auto gB = in.b_fixed ? at::empty({batch, dim, state}, u.options()) : at::zeros({batch, groups_b, length, state}, u.options());
  auto gC = in.c_fixed ? at::empty({batch, dim, state}, u.options()) : at::zeros({batch, groups_c, length, state}, u.options());
  auto gD = at::empty({batch, dim}, u.options()), gbias = at::empty({batch, dim}, u.options());
  auto gz = in.z.defined() ? at::empty_like(u) : at::Tensor();
  auto gh0 = at::empty({batch, dim, state}, u.options());
  const auto grad_last = grad_last_in.has_value() ? grad_last_in->contiguous() : at::Tensor();
  const bool avx2 = cpu_isa() == CpuIsa::kAvx2;
  AT_DISPATCH_FLOATING_TYPES(u.scalar_type(), "selective_scan_bwd_cpu", [&] {
    const ScanArgs<scalar_t> s(in, softplus_delta, chunk);
    const Grads<scalar_t> g{gu.data_ptr<scalar_t>(),     gdelta.data_ptr<scalar_t>(), gA.data_ptr<scalar_t>(),
                            gB.data_ptr<scalar_t>(),     gC.data_ptr<scalar_t>(),     gD.data_ptr<scalar_t>(),
                            gbias.data_ptr<scalar_t>(),  gz.defined() ? gz.data_ptr<scalar_t>() : nullptr,
                            in.b_fixed,                  in.c_fixed,
                            grad_last.defined() ? grad_last.data_ptr<scalar_t>() : nullptr,
                            gh0.data_ptr<scalar_t>()};
    const scalar_t *kp = ckpt.data_ptr<scalar_t>(), *gop = go.data_ptr<scalar_t>();
    scan::with_state_size(state, [&](auto width) {
      constexpr int kN = decltype(width)::value;
      at::parallel_for(0, batch * groups, 1, [&](int64_t begin, int64_t end) {
        Scratch<scalar_t> w(std::min(chunk, std::max<int64_t>(length, 1)), state);
#if GNNLAB_HAVE_AVX2_DISPATCH
        if (avx2) {
          backward_avx2<kN, scalar_t>(s, kp, gop, g, groups, begin, end, w);
          return;
        }
#endif
        (void)avx2;
        backward_baseline<kN, scalar_t>(s, kp, gop, g, groups, begin, end, w);
      });
    });
  });
  // Time-varying B/C gradients back to the [batch, G, N, L] layout of the inputs.
  if (!in.b_fixed) gB = gB.transpose(2, 3).contiguous();
  if (!in.c_fixed) gC = gC.transpose(2, 3).contiguous();
  return {gu, gdelta, gA.sum(0), gB, gC, gD.sum(0), gz.defined() ? gz : at::zeros({0}, u.options()), gbias.sum(0),
          gh0};
}

TORCH_LIBRARY_IMPL(gnnlab, CPU, m) {
  m.impl("selective_scan_fwd", &selective_scan_fwd_cpu);
  m.impl("selective_scan_bwd", &selective_scan_bwd_cpu);
}

}  // namespace gnnlab
