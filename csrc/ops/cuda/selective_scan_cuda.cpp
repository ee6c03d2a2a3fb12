// Torch glue for the CUDA selective-scan kernels; compiled only when torch has CUDA (GNNLAB_WITH_CUDA).
// Unverified on a GPU.
#ifdef GNNLAB_WITH_CUDA
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include <vector>

#include "ops/cuda/selective_scan_kernel.cuh"
#include "ops/selective_scan.h"

namespace gnnlab {

namespace {

void check_cuda(std::initializer_list<const at::Tensor*> tensors,
                std::initializer_list<const c10::optional<at::Tensor>*> optional, const at::Tensor& u, const char* op) {
  for (const auto* t : tensors) {
    TORCH_CHECK_VALUE(t->device() == u.device(), op, ": every tensor must be on u's device ", u.device());
  }
  for (const auto* t : optional) {
    TORCH_CHECK_VALUE(!t->has_value() || (*t)->device() == u.device(), op, ": every tensor must be on u's device ",
                      u.device());
  }
}

template <typename T>
cuda::ScanData<T> scan_data(const ScanInputs& in, bool softplus_delta) {
  auto ptr = [](const at::Tensor& t) { return t.defined() ? t.data_ptr<T>() : nullptr; };
  return {ptr(in.u),   ptr(in.delta), ptr(in.A), ptr(in.D), ptr(in.z), ptr(in.bias), ptr(in.B), ptr(in.C),
          in.reset.defined() ? in.reset.data_ptr<uint8_t>() : nullptr, softplus_delta, ptr(in.h0)};
}

cuda::ScanShape scan_shape(const ScanInputs& in, int64_t chunk) {
  const int64_t length = in.u.size(2);
  return {in.u.size(0),      in.u.size(1),      length,           in.A.size(1),     chunk,
          (length + chunk - 1) / chunk,           in.B.size(1),     in.C.size(1),     in.B.stride(0),
          in.B.stride(1),    in.B.stride(2),    in.C.stride(0),   in.C.stride(1),   in.C.stride(2)};
}

}  // namespace

std::tuple<at::Tensor, at::Tensor, at::Tensor> selective_scan_fwd_cuda(
    const at::Tensor& u_in, const at::Tensor& delta_in, const at::Tensor& A_in, const at::Tensor& B_in,
    const at::Tensor& C_in, const c10::optional<at::Tensor>& D_in, const c10::optional<at::Tensor>& z_in,
    const c10::optional<at::Tensor>& bias_in, bool softplus_delta, const c10::optional<at::Tensor>& reset_in,
    int64_t chunk, const c10::optional<at::Tensor>& h0_in) {
  check_scan_inputs(u_in, delta_in, A_in, B_in, C_in, D_in, z_in, bias_in, reset_in, chunk, "selective_scan_fwd");
  check_cuda({&delta_in, &A_in, &B_in, &C_in}, {&D_in, &z_in, &bias_in, &reset_in}, u_in, "selective_scan_fwd");
  TORCH_CHECK_VALUE(A_in.size(1) <= cuda::kScanMaxState, "selective_scan_fwd: the CUDA kernel takes N <= ",
                    cuda::kScanMaxState, ", got ", A_in.size(1));
  const c10::cuda::CUDAGuard guard(u_in.device());
  const auto stream = c10::cuda::getCurrentCUDAStream().stream();
  check_scan_state(h0_in, u_in, A_in, "h0", "selective_scan_fwd");
  const ScanInputs in(u_in, delta_in, A_in, B_in, C_in, D_in, z_in, bias_in, reset_in, h0_in);
  const auto shape = scan_shape(in, chunk);
  auto out = at::empty_like(in.u);
  auto last = at::zeros({shape.batch, shape.dim, shape.state}, in.u.options());
  auto checkpoints = at::empty({shape.batch, shape.dim, shape.chunks, shape.state}, in.u.options());
  AT_DISPATCH_FLOATING_TYPES(in.u.scalar_type(), "selective_scan_fwd_cuda", [&] {
    C10_CUDA_CHECK(cuda::selective_scan_forward<scalar_t>(scan_data<scalar_t>(in, softplus_delta), shape,
                                                          out.data_ptr<scalar_t>(), last.data_ptr<scalar_t>(),
                                                          checkpoints.data_ptr<scalar_t>(), stream));
  });
  return {out, last, checkpoints};
}

std::vector<at::Tensor> selective_scan_bwd_cuda(
    const at::Tensor& u_in, const at::Tensor& delta_in, const at::Tensor& A_in, const at::Tensor& B_in,
    const at::Tensor& C_in, const c10::optional<at::Tensor>& D_in, const c10::optional<at::Tensor>& z_in,
    const c10::optional<at::Tensor>& bias_in, bool softplus_delta, const c10::optional<at::Tensor>& reset_in,
    int64_t chunk, const at::Tensor& checkpoints_in, const at::Tensor& grad_out_in,
    const c10::optional<at::Tensor>& grad_last_in) {
  check_scan_inputs(u_in, delta_in, A_in, B_in, C_in, D_in, z_in, bias_in, reset_in, chunk, "selective_scan_bwd");
  check_cuda({&delta_in, &A_in, &B_in, &C_in, &checkpoints_in, &grad_out_in}, {&D_in, &z_in, &bias_in, &reset_in}, u_in,
             "selective_scan_bwd");
  TORCH_CHECK_VALUE(A_in.size(1) <= cuda::kScanMaxState, "selective_scan_bwd: the CUDA kernel takes N <= ",
                    cuda::kScanMaxState, ", got ", A_in.size(1));
  check_scan_backward(u_in, A_in, chunk, checkpoints_in, grad_out_in);
  check_scan_state(grad_last_in, u_in, A_in, "grad_last", "selective_scan_bwd");
  const c10::cuda::CUDAGuard guard(u_in.device());
  const auto stream = c10::cuda::getCurrentCUDAStream().stream();
  const ScanInputs in(u_in, delta_in, A_in, B_in, C_in, D_in, z_in, bias_in, reset_in);
  const auto& u = in.u;
  const auto shape = scan_shape(in, chunk);
  const auto ckpt = checkpoints_in.contiguous().to(u.scalar_type());
  const auto go = grad_out_in.contiguous().to(u.scalar_type());
  const int64_t batch = shape.batch, dim = shape.dim, length = shape.length, state = shape.state;
  auto gu = at::empty_like(u), gdelta = at::empty_like(u);
  auto gA = at::empty({batch, dim, state}, u.options());
  auto gB = in.b_fixed ? at::empty({batch, dim, state}, u.options())
                       : at::zeros({batch, shape.groups_b, length, state}, u.options());
  auto gC = in.c_fixed ? at::empty({batch, dim, state}, u.options())
                       : at::zeros({batch, shape.groups_c, length, state}, u.options());
  auto gD = at::empty({batch, dim}, u.options()), gbias = at::empty({batch, dim}, u.options());
  auto gz = in.z.defined() ? at::empty_like(u) : at::Tensor();
  auto gh0 = at::empty({batch, dim, state}, u.options());
  const auto grad_last = grad_last_in.has_value() ? grad_last_in->contiguous() : at::Tensor();
  auto scratch = at::empty({cuda::selective_scan_backward_scratch(shape)}, u.options());
  AT_DISPATCH_FLOATING_TYPES(u.scalar_type(), "selective_scan_bwd_cuda", [&] {
    const cuda::ScanGrads<scalar_t> g{gu.data_ptr<scalar_t>(),    gdelta.data_ptr<scalar_t>(), gA.data_ptr<scalar_t>(),
                                      gB.data_ptr<scalar_t>(),    gC.data_ptr<scalar_t>(),     gD.data_ptr<scalar_t>(),
                                      gbias.data_ptr<scalar_t>(), gz.defined() ? gz.data_ptr<scalar_t>() : nullptr,
                                      in.b_fixed,                 in.c_fixed,
                                      grad_last.defined() ? grad_last.data_ptr<scalar_t>() : nullptr,
                                      gh0.data_ptr<scalar_t>()};
    C10_CUDA_CHECK(cuda::selective_scan_backward<scalar_t>(scan_data<scalar_t>(in, softplus_delta), shape,
                                                           ckpt.data_ptr<scalar_t>(), go.data_ptr<scalar_t>(), g,
                                                           scratch.data_ptr<scalar_t>(), stream));
  });
  if (!in.b_fixed) gB = gB.transpose(2, 3).contiguous();
  if (!in.c_fixed) gC = gC.transpose(2, 3).contiguous();
  return {gu, gdelta, gA.sum(0), gB, gC, gD.sum(0), gz.defined() ? gz : at::zeros({0}, u.options()), gbias.sum(0),
          gh0};
}

TORCH_LIBRARY_IMPL(gnnlab, CUDA, m) {
  m.impl("selective_scan_fwd", &selective_scan_fwd_cuda);
  m.impl("selective_scan_bwd", &selective_scan_bwd_cuda);
}

}  // namespace gnnlab
#endif  // GNNLAB_WITH_CUDA
