// Selective scan (Mamba): input checks and input preparation shared by every backend.
#pragma once

#include <torch/types.h>

#include <vector>

namespace gnnlab {

// Checks shapes and dtypes: u, delta [batch, D, L] float32/float64; A [D, N]; B and C [batch, G, N, L]
// views (G dividing D) of u's dtype; D, delta_bias [D]; z like u; reset uint8 [L]; chunk >= 1. Raises
// ValueError (TORCH_CHECK_VALUE) naming the argument. Devices are checked by each backend.
void check_scan_inputs(const at::Tensor& u, const at::Tensor& delta, const at::Tensor& A, const at::Tensor& B,
                       const at::Tensor& C, const c10::optional<at::Tensor>& D, const c10::optional<at::Tensor>& z,
                       const c10::optional<at::Tensor>& bias, const c10::optional<at::Tensor>& reset, int64_t chunk,
                       const char* op);

// The inputs as the kernels read them: u, delta, A, D, z, delta_bias contiguous in u's dtype (absent
// optional ones undefined); B and C as time-major [batch, G, L, N] views with the N entries of a step
// contiguous (a copy for per-step B/C, free for the time-invariant form, whose batch and time
// strides stay 0).
// h0 (optional, [batch, D, N]) is the state before step 0, contiguous in u's dtype.
struct ScanInputs {
  at::Tensor u, delta, A, D, z, bias, reset, B, C, h0;
  bool b_fixed, c_fixed;  // time-invariant B / C (zero batch and time strides)
  ScanInputs(const at::Tensor& u_in, const at::Tensor& delta_in, const at::Tensor& A_in, const at::Tensor& B_in,
             const at::Tensor& C_in, const c10::optional<at::Tensor>& D_in, const c10::optional<at::Tensor>& z_in,
             const c10::optional<at::Tensor>& bias_in, const c10::optional<at::Tensor>& reset_in,
             const c10::optional<at::Tensor>& h0_in = c10::nullopt);
};

// Checks an optional per-(batch, channel) state argument (h0, grad_last): [batch, D, N] of u's dtype.
void check_scan_state(const c10::optional<at::Tensor>& state, const at::Tensor& u, const at::Tensor& A,
                      const char* name, const char* op);

// Checks the backward's checkpoints [batch, D, chunks, N] and grad_out (u's shape).
void check_scan_backward(const at::Tensor& u, const at::Tensor& A, int64_t chunk, const at::Tensor& checkpoints,
                         const at::Tensor& grad_out);

// Channels per backward task: a time-invariant B/C gradient is per (batch, channel), a time-varying
// one per (batch, group), so one task per (batch, group of the COARSEST time-varying grouping) owns
// every gradient slice it writes. Both groupings must then nest (raises ValueError otherwise).
int64_t scan_backward_groups(const ScanInputs& in, int64_t groups_b, int64_t groups_c);

}  // namespace gnnlab
