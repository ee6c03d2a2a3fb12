#include "ops/selective_scan.h"

#include <ATen/ATen.h>

#include <algorithm>

namespace gnnlab {

void check_scan_inputs(const at::Tensor& u, const at::Tensor& delta, const at::Tensor& A, const at::Tensor& B,
                       const at::Tensor& C, const c10::optional<at::Tensor>& D, const c10::optional<at::Tensor>& z,
                       const c10::optional<at::Tensor>& bias, const c10::optional<at::Tensor>& reset, int64_t chunk,
                       const char* op) {
  TORCH_CHECK_VALUE(u.dim() == 3, op, ": u must be [batch, channels, L], got ", u.sizes());
  TORCH_CHECK_VALUE(u.scalar_type() == at::kFloat || u.scalar_type() == at::kDouble, op,
                    ": u must be float32 or float64, got ", u.scalar_type());
  const int64_t batch = u.size(0), dim = u.size(1), length = u.size(2);
  TORCH_CHECK_VALUE(delta.sizes() == u.sizes() && delta.scalar_type() == u.scalar_type(), op,
                    ": delta must match u's shape and dtype");
  TORCH_CHECK_VALUE(A.dim() == 2 && A.size(0) == dim && A.scalar_type() == u.scalar_type(), op,
                    ": A must be [channels, N] of u's dtype, got ", A.sizes());
  const int64_t state = A.size(1);
  for (const auto* m : {&B, &C}) {
    TORCH_CHECK_VALUE(m->dim() == 4 && m->size(0) == batch && m->size(2) == state && m->size(3) == length &&
                          m->size(1) >= 1 && dim % m->size(1) == 0 && m->scalar_type() == u.scalar_type(),
                      op, ": B and C must be [batch, G, N, L] views of u's dtype with G dividing the channels, got ",
                      m->sizes());
  }
  if (D.has_value()) TORCH_CHECK_VALUE(D->dim() == 1 && D->size(0) == dim, op, ": D must be [channels]");
  if (bias.has_value()) TORCH_CHECK_VALUE(bias->dim() == 1 && bias->size(0) == dim, op, ": delta_bias must be [channels]");
  if (z.has_value()) TORCH_CHECK_VALUE(z->sizes() == u.sizes(), op, ": z must match u's shape");
  if (reset.has_value()) {
    TORCH_CHECK_VALUE(reset->dim() == 1 && reset->size(0) == length && reset->scalar_type() == at::kByte, op,
                      ": reset must be uint8 [L]");
  }
  TORCH_CHECK_VALUE(chunk >= 1, op, ": chunk must be positive, got ", chunk);
}

namespace {

// [batch, G, N, L] -> [batch, G, L, N] with the N entries of a step contiguous.
at::Tensor time_major(const at::Tensor& m) {
  auto t = m.transpose(2, 3);
  return t.stride(3) == 1 ? t : t.contiguous();
}

}  // namespace

ScanInputs::ScanInputs(const at::Tensor& u_in, const at::Tensor& delta_in, const at::Tensor& A_in,
                       const at::Tensor& B_in, const at::Tensor& C_in, const c10::optional<at::Tensor>& D_in,
                       const c10::optional<at::Tensor>& z_in, const c10::optional<at::Tensor>& bias_in,
                       const c10::optional<at::Tensor>& reset_in, const c10::optional<at::Tensor>& h0_in)
    : u(u_in.contiguous()), delta(delta_in.contiguous()), A(A_in.contiguous()) {
  const auto dtype = u.scalar_type();
  D = D_in.has_value() ? D_in->contiguous().to(dtype) : at::Tensor();
  z = z_in.has_value() ? z_in->contiguous().to(dtype) : at::Tensor();
  bias = bias_in.has_value() ? bias_in->contiguous().to(dtype) : at::Tensor();
  reset = reset_in.has_value() ? reset_in->contiguous() : at::Tensor();
  h0 = h0_in.has_value() ? h0_in->contiguous().to(dtype) : at::Tensor();
  b_fixed = B_in.stride(0) == 0 && B_in.stride(3) == 0;
  c_fixed = C_in.stride(0) == 0 && C_in.stride(3) == 0;
  B = time_major(B_in);
  C = time_major(C_in);
}

void check_scan_state(const c10::optional<at::Tensor>& state, const at::Tensor& u, const at::Tensor& A,
                      const char* name, const char* op) {
  if (!state.has_value()) return;
  TORCH_CHECK_VALUE(state->sizes() == at::IntArrayRef({u.size(0), u.size(1), A.size(1)}) &&
                        state->scalar_type() == u.scalar_type(),
                    op, ": ", name, " must be [batch, channels, N] = [", u.size(0), ", ", u.size(1), ", ", A.size(1),
                    "] of u's dtype, got ", state->sizes(), " ", state->scalar_type());
  TORCH_CHECK_VALUE(state->device() == u.device(), op, ": ", name, " must be on u's device ", u.device());
}

void check_scan_backward(const at::Tensor& u, const at::Tensor& A, int64_t chunk, const at::Tensor& checkpoints,
                         const at::Tensor& grad_out) {
  const int64_t batch = u.size(0), dim = u.size(1), length = u.size(2), state = A.size(1);
  const int64_t chunks = (length + chunk - 1) / chunk;
  TORCH_CHECK_VALUE(checkpoints.sizes() == at::IntArrayRef({batch, dim, chunks, state}),
                    "selective_scan_bwd: checkpoints must be [", batch, ", ", dim, ", ", chunks, ", ", state, "], got ",
                    checkpoints.sizes());
  TORCH_CHECK_VALUE(grad_out.sizes() == u.sizes(), "selective_scan_bwd: grad_out must match u's shape");
}

int64_t scan_backward_groups(const ScanInputs& in, int64_t groups_b, int64_t groups_c) {
  int64_t groups = in.u.size(1);
  if (!in.b_fixed) groups = std::min(groups, groups_b);
  if (!in.c_fixed) groups = std::min(groups, groups_c);
  TORCH_CHECK_VALUE(in.b_fixed || in.c_fixed || std::max(groups_b, groups_c) % groups == 0,
                    "selective_scan_bwd: the groups of B and C must nest (one a multiple of the other), got ", groups_b,
                    " and ", groups_c);
  return groups;
}

}  // namespace gnnlab
