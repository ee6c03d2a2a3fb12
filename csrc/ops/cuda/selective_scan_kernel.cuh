// CUDA selective scan (Mamba) on raw pointers. Includes only CUDA headers, so it compiles with plain
// nvcc; the torch glue (selective_scan_cuda.cpp) is built only when torch has CUDA. The per-step math
// is ops/common/selective_scan.h, which the CPU kernel runs too (and the CPU tests exercise).
// Unverified on a GPU: compiled for sm_80/sm_90, never run there.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

namespace gnnlab {
namespace cuda {

// Largest state size N the CUDA kernels take (8, 16, 32 and 64 keep the state in registers; other
// sizes up to this bound use per-thread local memory).
constexpr int64_t kScanMaxState = 256;

// Sizes and strides. B and C are time-major [batch, G, L, N] (N contiguous): step t of (b, group g)
// starts at b·sb_b + g·sb_g + t·sb_t; a time-invariant B/C has sb_b = sb_t = 0 and G = D.
struct ScanShape {
  int64_t batch, dim, length, state, chunk, chunks, groups_b, groups_c;
  int64_t sb_b, sb_g, sb_t, sc_b, sc_g, sc_t;
};

// Inputs: u, delta, z [batch, D, L]; A [D, N]; D, delta_bias [D]; reset [L] (1 = a packed sequence
// starts); h0 [batch, D, N] the state before step 0; the optional ones may be null.
template <typename T>
struct ScanData {
  const T *u, *delta, *A, *D, *z, *bias, *B, *C;
  const uint8_t* reset;
  bool softplus_delta;
  const T* h0;
};

// out [batch, D, L], last [batch, D, N], checkpoints [batch, D, chunks, N]. One thread per
// (batch, channel), the state in registers.
template <typename T>
cudaError_t selective_scan_forward(const ScanData<T>& in, const ScanShape& s, T* out, T* last, T* checkpoints,
                                   cudaStream_t stream);

// Gradient outputs. gA, gD, gbias per (batch, channel) ([batch, D, N], [batch, D], [batch, D]; the
// caller sums over batch); gB/gC [batch, D, N] when time-invariant, else time-major [batch, G, L, N],
// zeroed by the caller (channels of a group add into it atomically); gz null without a gate.
// grad_last [batch, D, N] (may be null) seeds the reverse scan; gh0 [batch, D, N] receives the
// gradient of the state before step 0.
template <typename T>
struct ScanGrads {
  T *gu, *gdelta, *gA, *gB, *gC, *gD, *gbias, *gz;
  bool b_fixed, c_fixed;
  const T* grad_last;
  T* gh0;
};

// Scratch elements selective_scan_backward needs: a chunk of transitions, states and outputs per thread.
int64_t selective_scan_backward_scratch(const ScanShape& s);

template <typename T>
cudaError_t selective_scan_backward(const ScanData<T>& in, const ScanShape& s, const T* checkpoints,
                                    const T* grad_out, const ScanGrads<T>& g, T* scratch, cudaStream_t stream);

}  // namespace cuda
}  // namespace gnnlab
