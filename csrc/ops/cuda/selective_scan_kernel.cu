// CUDA kernels of the selective scan (see selective_scan_kernel.cuh). One thread per (batch, channel)
// walks time with its state in registers; the per-step math is the __host__ __device__ code of
// ops/common/selective_scan.h shared with the CPU kernel. The backward walks the chunks from the last,
// recomputes a chunk's transitions and states from its checkpoint into per-thread scratch, then runs
// the reverse scan; time-varying B/C gradients are added atomically by the channels of a group.
// Unverified on a GPU.
#include <type_traits>

#include "ops/common/selective_scan.h"
#include "ops/cuda/launch.cuh"
#include "ops/cuda/selective_scan_kernel.cuh"

namespace gnnlab {
namespace cuda {

namespace {

// Room per thread for the state: exact for the compiled sizes, kScanMaxState otherwise.
template <int kN>
struct Cap {
  static constexpr int value = kN > 0 ? kN : static_cast<int>(kScanMaxState);
};

template <typename T>
__device__ __forceinline__ bool restarts(const ScanData<T>& in, int64_t t) {
  return in.reset != nullptr && in.reset[t] != 0;
}

template <int kN, typename T>
__global__ void scan_forward_kernel(ScanData<T> in, ScanShape s, T* out, T* last, T* checkpoints) {
  constexpr int kCap = Cap<kN>::value;
  const int64_t items = s.batch * s.dim, N = s.state;
  for (int64_t item = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; item < items;
       item += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t b = item / s.dim, d = item % s.dim, row = item * s.length;
    const T* Bb = in.B + b * s.sb_b + (d / (s.dim / s.groups_b)) * s.sb_g;
    const T* Cb = in.C + b * s.sc_b + (d / (s.dim / s.groups_c)) * s.sc_g;
    T h[kCap], A[kCap];
#pragma unroll
    for (int n = 0; n < kCap; ++n) {
      h[n] = n < N && in.h0 != nullptr ? in.h0[item * N + n] : T(0);
      A[n] = n < N ? in.A[d * N + n] : T(0);
    }
    const T bias = in.bias != nullptr ? in.bias[d] : T(0);
    for (int64_t t = 0; t < s.length; ++t) {
      if (t % s.chunk == 0) {
        T* saved = checkpoints + (item * s.chunks + t / s.chunk) * N;
        for (int64_t n = 0; n < N; ++n) saved[n] = h[n];
      }
      const T ut = in.u[row + t];
      const T dt = scan::step_size(in.delta[row + t] + bias, in.softplus_delta);
      if (restarts(in, t)) {
#pragma unroll
        for (int n = 0; n < kCap; ++n) h[n] = h[n] * T(0);
      }
      T a[kCap];
      scan::transitions<kN, T>(a, A, dt, N);
      T y = scan::state_step<kN, false, T>(h, a, Bb + t * s.sb_t, Cb + t * s.sc_t, dt * ut, N, nullptr);
      if (in.D != nullptr) y = y + in.D[d] * ut;
      if (in.z != nullptr) y = y * scan::silu(in.z[row + t]);
      out[row + t] = y;
    }
    for (int64_t n = 0; n < N; ++n) last[item * N + n] = h[n];
  }
}

template <int kN, typename T>
__global__ void scan_backward_kernel(ScanData<T> in, ScanShape s, const T* checkpoints, const T* grad_out,
                                     ScanGrads<T> g, T* scratch) {
  constexpr int kCap = Cap<kN>::value;
  const int64_t items = s.batch * s.dim, N = s.state;
  // Scratch, the thread index fastest: a[i, n], h[i, n] ([steps, N] each), y[i] ([steps]).
  const int64_t steps = s.length < s.chunk ? s.length : s.chunk;
  T* a_buf = scratch;
  T* h_buf = scratch + items * steps * N;
  T* y_buf = scratch + 2 * items * steps * N;
  for (int64_t item = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; item < items;
       item += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t b = item / s.dim, d = item % s.dim, row = item * s.length;
    const int64_t gb = d / (s.dim / s.groups_b), gc = d / (s.dim / s.groups_c);
    const T* Bb = in.B + b * s.sb_b + gb * s.sb_g;
    const T* Cb = in.C + b * s.sc_b + gc * s.sc_g;
    T* gB_rows = g.b_fixed ? nullptr : g.gB + (b * s.groups_b + gb) * s.length * N;
    T* gC_rows = g.c_fixed ? nullptr : g.gC + (b * s.groups_c + gc) * s.length * N;
    auto at = [&](int64_t i, int64_t n) { return (i * N + n) * items + item; };
    T A[kCap], h[kCap], gh[kCap], gA[kCap], gB_acc[kCap], gC_acc[kCap];
    T a[kCap], h_in[kCap], h_out[kCap], gB_t[kCap], gC_t[kCap];
#pragma unroll
    for (int n = 0; n < kCap; ++n) {
      A[n] = n < N ? in.A[d * N + n] : T(0);
      gA[n] = gB_acc[n] = gC_acc[n] = T(0);
      gh[n] = n < N && g.grad_last != nullptr ? g.grad_last[item * N + n] : T(0);
    }
    const T bias = in.bias != nullptr ? in.bias[d] : T(0);
    const T Dd = in.D != nullptr ? in.D[d] : T(0);
    T gD_acc = 0, gbias_acc = 0;
    for (int64_t c = s.chunks - 1; c >= 0; --c) {
      const int64_t t0 = c * s.chunk;
      const int64_t len = s.length - t0 < s.chunk ? s.length - t0 : s.chunk;
      const T* h0 = checkpoints + (item * s.chunks + c) * N;
      // Recompute the chunk's transitions and states.
#pragma unroll
      for (int n = 0; n < kCap; ++n) h[n] = n < N ? h0[n] : T(0);
      for (int64_t i = 0; i < len; ++i) {
        const int64_t t = t0 + i;
        const T dt = scan::step_size(in.delta[row + t] + bias, in.softplus_delta);
        if (restarts(in, t)) {
#pragma unroll
          for (int n = 0; n < kCap; ++n) h[n] = h[n] * T(0);
        }
        scan::transitions<kN, T>(a, A, dt, N);
        y_buf[i * items + item] =
            scan::state_step<kN, true, T>(h, a, Bb + t * s.sb_t, Cb + t * s.sc_t, dt * in.u[row + t], N, h_out);
        for (int64_t n = 0; n < N; ++n) {
          a_buf[at(i, n)] = a[n];
          h_buf[at(i, n)] = h_out[n];
        }
      }
      // Reverse scan over the chunk.
      for (int64_t i = len - 1; i >= 0; --i) {
        const int64_t t = t0 + i;
        const T ut = in.u[row + t], raw = in.delta[row + t] + bias;
        const T dt = scan::step_size(raw, in.softplus_delta);
        T gy = grad_out[row + t];
        if (in.z != nullptr) {
          const T zt = in.z[row + t];
          const T y = y_buf[i * items + item] + (in.D != nullptr ? Dd * ut : T(0));
          g.gz[row + t] = gy * y * scan::silu_grad(zt);
          gy = gy * scan::silu(zt);
        }
        const bool restart = restarts(in, t);
        for (int64_t n = 0; n < N; ++n) {
          a[n] = a_buf[at(i, n)];
          h_out[n] = h_buf[at(i, n)];
          h_in[n] = i == 0 ? h0[n] : h_buf[at(i - 1, n)];
          if (restart) h_in[n] = h_in[n] * T(0);
        }
        const auto sums =
            scan::reverse_step<kN, T>(gh, A, Bb + t * s.sb_t, Cb + t * s.sc_t, a, h_in, h_out, gy, dt, dt * ut, gA, gB_t, gC_t, N);
        if (restart) {
#pragma unroll
          for (int n = 0; n < kCap; ++n) gh[n] = gh[n] * T(0);
        }
        for (int64_t n = 0; n < N; ++n) {
          if (g.b_fixed) {
            gB_acc[n] = gB_acc[n] + gB_t[n];
          } else {
            atomicAdd(gB_rows + t * N + n, gB_t[n]);
          }
          if (g.c_fixed) {
            gC_acc[n] = gC_acc[n] + gC_t[n];
          } else {
            atomicAdd(gC_rows + t * N + n, gC_t[n]);
          }
        }
        const T graw = (sums.a_dA + ut * sums.gB) * scan::step_size_grad(raw, in.softplus_delta);
        g.gdelta[row + t] = graw;
        g.gu[row + t] = dt * sums.gB + (in.D != nullptr ? gy * Dd : T(0));
        gD_acc += gy * ut;
        gbias_acc += graw;
      }
    }
    for (int64_t n = 0; n < N; ++n) {
      g.gA[item * N + n] = gA[n];
      g.gh0[item * N + n] = gh[n];
      if (g.b_fixed) g.gB[item * N + n] = gB_acc[n];
      if (g.c_fixed) g.gC[item * N + n] = gC_acc[n];
    }
    g.gD[item] = gD_acc;
    g.gbias[item] = gbias_acc;
  }
}

}  // namespace

int64_t selective_scan_backward_scratch(const ScanShape& s) {
  const int64_t chunk = s.length < s.chunk ? s.length : s.chunk;
  return s.batch * s.dim * chunk * (2 * s.state + 1);
}

template <typename T>
cudaError_t selective_scan_forward(const ScanData<T>& in, const ScanShape& s, T* out, T* last, T* checkpoints,
                                   cudaStream_t stream) {
  const int64_t items = s.batch * s.dim;
  if (items == 0) return cudaSuccess;
  if (s.state > kScanMaxState) return cudaErrorInvalidValue;
  scan::with_state_size(s.state, [&](auto width) {
    constexpr int kN = decltype(width)::value;
    scan_forward_kernel<kN, T><<<blocks_for(items), kThreads, 0, stream>>>(in, s, out, last, checkpoints);
  });
  return cudaGetLastError();
}

template <typename T>
cudaError_t selective_scan_backward(const ScanData<T>& in, const ScanShape& s, const T* checkpoints,
                                    const T* grad_out, const ScanGrads<T>& g, T* scratch, cudaStream_t stream) {
  const int64_t items = s.batch * s.dim;
  if (items == 0) return cudaSuccess;
  if (s.state > kScanMaxState) return cudaErrorInvalidValue;
  scan::with_state_size(s.state, [&](auto width) {
    constexpr int kN = decltype(width)::value;
    scan_backward_kernel<kN, T><<<blocks_for(items), kThreads, 0, stream>>>(in, s, checkpoints, grad_out, g, scratch);
  });
  return cudaGetLastError();
}

#define GNNLAB_INSTANTIATE(T)                                                                                  \
  template cudaError_t selective_scan_forward<T>(const ScanData<T>&, const ScanShape&, T*, T*, T*, cudaStream_t); \
  template cudaError_t selective_scan_backward<T>(const ScanData<T>&, const ScanShape&, const T*, const T*,      \
                                                  const ScanGrads<T>&, T*, cudaStream_t);

GNNLAB_INSTANTIATE(float)
GNNLAB_INSTANTIATE(double)

}  // namespace cuda
}  // namespace gnnlab
