// CPU selective scan (Mamba): forward and backward, parallel over (batch, channel) or (batch, group),
// the state of one channel kept in a local array of N values, vectorised over N.
//
// The forward stores the state entering every chunk of `chunk` steps ([batch, D, chunks, N]); the
// backward walks the chunks from the last, recomputes the states of one chunk from its checkpoint
// and runs the reverse scan over it, so no [batch, D, L, N] tensor is ever stored.
//
// B and C arrive as 4-D strided views [batch, G, N, L] (time-invariant [D, N] as a view with zero
// batch and time strides and G = D; per-step [batch, N, L] with G = 1); channel d reads group
// d / (D / G). `reset` ([L] uint8, optional) marks the first step of every packed sequence.
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <cmath>
#include <vector>

namespace gnnlab {
namespace {

template <typename T>
inline T softplus(T v) {
  return v > T(20) ? v : std::log1p(std::exp(v));
}
template <typename T>
inline T sigmoid(T v) {
  return T(1) / (T(1) + std::exp(-v));
}

struct Strided {
  int64_t b, g, n, t;
};

Strided strides_of(const at::Tensor& m) { return {m.stride(0), m.stride(1), m.stride(2), m.stride(3)}; }

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
  for (const auto* t : {&u, &delta, &A, &B, &C}) TORCH_CHECK_VALUE(t->device().is_cpu(), op, ": CPU tensors only");
}

// The inputs made contiguous (B and C keep their strides: the time-invariant form relies on them).
struct ScanInputs {
  at::Tensor u, delta, A, D, z, bias, reset;
  ScanInputs(const at::Tensor& u_in, const at::Tensor& delta_in, const at::Tensor& A_in,
             const c10::optional<at::Tensor>& D_in, const c10::optional<at::Tensor>& z_in,
             const c10::optional<at::Tensor>& bias_in, const c10::optional<at::Tensor>& reset_in)
      : u(u_in.contiguous()), delta(delta_in.contiguous()), A(A_in.contiguous()) {
    const auto dtype = u.scalar_type();
    D = D_in.has_value() ? D_in->contiguous().to(dtype) : at::Tensor();
    z = z_in.has_value() ? z_in->contiguous().to(dtype) : at::Tensor();
    bias = bias_in.has_value() ? bias_in->contiguous().to(dtype) : at::Tensor();
    reset = reset_in.has_value() ? reset_in->contiguous() : at::Tensor();
  }
};

// Raw pointers of ScanInputs (null for the optional ones that are absent) and the per-step rules.
template <typename scalar_t>
struct ScanPointers {
  const scalar_t *u, *delta, *A, *D, *z, *bias;
  const uint8_t* reset;
  bool softplus_delta;
  ScanPointers(const ScanInputs& in, bool softplus_delta_)
      : u(in.u.data_ptr<scalar_t>()),
        delta(in.delta.data_ptr<scalar_t>()),
        A(in.A.data_ptr<scalar_t>()),
        D(in.D.defined() ? in.D.data_ptr<scalar_t>() : nullptr),
        z(in.z.defined() ? in.z.data_ptr<scalar_t>() : nullptr),
        bias(in.bias.defined() ? in.bias.data_ptr<scalar_t>() : nullptr),
        reset(in.reset.defined() ? in.reset.data_ptr<uint8_t>() : nullptr),
        softplus_delta(softplus_delta_) {}
  // delta + bias before the softplus, at element `index` of channel d.
  scalar_t raw_step(int64_t index, int64_t d) const { return delta[index] + (bias ? bias[d] : scalar_t(0)); }
  scalar_t step(int64_t index, int64_t d) const {
    const scalar_t raw = raw_step(index, d);
    return softplus_delta ? softplus(raw) : raw;
  }
  // 0 where a packed sequence starts (the state restarts), else 1.
  scalar_t keep(int64_t t) const { return (reset != nullptr && reset[t]) ? scalar_t(0) : scalar_t(1); }
};

}  // namespace

std::tuple<at::Tensor, at::Tensor, at::Tensor> selective_scan_fwd_cpu(
    const at::Tensor& u_in, const at::Tensor& delta_in, const at::Tensor& A_in, const at::Tensor& B,
    const at::Tensor& C, const c10::optional<at::Tensor>& D_in, const c10::optional<at::Tensor>& z_in,
    const c10::optional<at::Tensor>& bias_in, bool softplus_delta, const c10::optional<at::Tensor>& reset_in,
    int64_t chunk) {
  check_scan_inputs(u_in, delta_in, A_in, B, C, D_in, z_in, bias_in, reset_in, chunk, "selective_scan_fwd");
  const ScanInputs in(u_in, delta_in, A_in, D_in, z_in, bias_in, reset_in);
  const auto& u = in.u;
  const auto& A = in.A;
  const int64_t batch = u.size(0), dim = u.size(1), length = u.size(2), state = A.size(1);
  const int64_t chunks = (length + chunk - 1) / chunk;
  const int64_t per_group = dim / B.size(1), per_group_c = dim / C.size(1);
  auto out = at::empty_like(u);
  auto last = at::zeros({batch, dim, state}, u.options());
  auto checkpoints = at::empty({batch, dim, chunks, state}, u.options());
  const Strided sb = strides_of(B), sc = strides_of(C);
  AT_DISPATCH_FLOATING_TYPES(u.scalar_type(), "selective_scan_fwd_cpu", [&] {
    const ScanPointers<scalar_t> p(in, softplus_delta);
    const scalar_t *up = p.u, *ap = p.A, *Dp = p.D, *zp = p.z;
    const scalar_t *bp = B.data_ptr<scalar_t>(), *cp = C.data_ptr<scalar_t>();
    scalar_t *op = out.data_ptr<scalar_t>(), *lp = last.data_ptr<scalar_t>(), *kp = checkpoints.data_ptr<scalar_t>();
    at::parallel_for(0, batch * dim, 1, [&](int64_t begin, int64_t end) {
      std::vector<scalar_t> h(state);
      for (int64_t item = begin; item < end; ++item) {
        const int64_t b = item / dim, d = item % dim;
        const scalar_t* Ad = ap + d * state;
        const scalar_t* Bb = bp + b * sb.b + (d / per_group) * sb.g;
        const scalar_t* Cb = cp + b * sc.b + (d / per_group_c) * sc.g;
        const int64_t row = (b * dim + d) * length;
        std::fill(h.begin(), h.end(), scalar_t(0));
        for (int64_t t = 0; t < length; ++t) {
          if (t % chunk == 0) std::copy(h.begin(), h.end(), kp + ((b * dim + d) * chunks + t / chunk) * state);
          const scalar_t keep = p.keep(t), dt = p.step(row + t, d), ut = up[row + t];
          scalar_t y = 0;
          for (int64_t n = 0; n < state; ++n) {
            const scalar_t hn = std::exp(dt * Ad[n]) * h[n] * keep + dt * Bb[n * sb.n + t * sb.t] * ut;
            h[n] = hn;
            y += Cb[n * sc.n + t * sc.t] * hn;
          }
          if (Dp) y += Dp[d] * ut;
          if (zp) {
            const scalar_t zt = zp[row + t];
            y *= zt * sigmoid(zt);
          }
          op[row + t] = y;
        }
        std::copy(h.begin(), h.end(), lp + (b * dim + d) * state);
      }
    });
  });
  return {out, last, checkpoints};
}

// Gradients of everything; B/C gradients as [batch, G, N, L] when they vary in time (each (b, g)
// written by one task) or [batch, D, N] when time-invariant (summed over batch by the caller).
std::vector<at::Tensor> selective_scan_bwd_cpu(
    const at::Tensor& u_in, const at::Tensor& delta_in, const at::Tensor& A_in, const at::Tensor& B,
    const at::Tensor& C, const c10::optional<at::Tensor>& D_in, const c10::optional<at::Tensor>& z_in,
    const c10::optional<at::Tensor>& bias_in, bool softplus_delta, const c10::optional<at::Tensor>& reset_in,
    int64_t chunk, const at::Tensor& checkpoints_in, const at::Tensor& grad_out_in) {
  check_scan_inputs(u_in, delta_in, A_in, B, C, D_in, z_in, bias_in, reset_in, chunk, "selective_scan_bwd");
  const ScanInputs in(u_in, delta_in, A_in, D_in, z_in, bias_in, reset_in);
  const auto& u = in.u;
  const auto& A = in.A;
  const auto ckpt = checkpoints_in.contiguous();
  const auto go = grad_out_in.contiguous().to(u.scalar_type());
  const int64_t batch = u.size(0), dim = u.size(1), length = u.size(2), state = A.size(1);
  const int64_t chunks = (length + chunk - 1) / chunk;
  TORCH_CHECK_VALUE(ckpt.sizes() == at::IntArrayRef({batch, dim, chunks, state}), "selective_scan_bwd: checkpoints must be [",
                    batch, ", ", dim, ", ", chunks, ", ", state, "], got ", ckpt.sizes());
  TORCH_CHECK_VALUE(go.sizes() == u.sizes(), "selective_scan_bwd: grad_out must match u's shape");
  const int64_t groups_b = B.size(1), groups_c = C.size(1);
  const bool b_fixed = B.stride(0) == 0 && B.stride(3) == 0, c_fixed = C.stride(0) == 0 && C.stride(3) == 0;
  // Tasks write their own gradient slices only: a time-invariant B/C gradient is per (batch,
  // channel), a time-varying one per (batch, group), so one task per (batch, group of the COARSEST
  // time-varying grouping) owns every group it writes. Both groupings must then nest.
  int64_t groups = dim;
  if (!b_fixed) groups = std::min(groups, groups_b);
  if (!c_fixed) groups = std::min(groups, groups_c);
  TORCH_CHECK_VALUE(b_fixed || c_fixed || std::max(groups_b, groups_c) % groups == 0,
                    "selective_scan_bwd: the groups of B and C must nest (one a multiple of the other), got ", groups_b,
                    " and ", groups_c);
  const int64_t per_task = dim / groups;
  auto gu = at::empty_like(u), gdelta = at::empty_like(u);
  auto gA = at::zeros({batch, dim, state}, u.options());
  auto gB = b_fixed ? at::zeros({batch, dim, state}, u.options()) : at::zeros({batch, groups_b, state, length}, u.options());
  auto gC = c_fixed ? at::zeros({batch, dim, state}, u.options()) : at::zeros({batch, groups_c, state, length}, u.options());
  auto gD = at::zeros({batch, dim}, u.options()), gbias = at::zeros({batch, dim}, u.options());
  auto gz = in.z.defined() ? at::empty_like(u) : at::Tensor();
  const Strided sb = strides_of(B), sc = strides_of(C);
  AT_DISPATCH_FLOATING_TYPES(u.scalar_type(), "selective_scan_bwd_cpu", [&] {
    const ScanPointers<scalar_t> p(in, softplus_delta);
    const scalar_t *up = p.u, *ap = p.A, *Dp = p.D, *zp = p.z;
    const scalar_t *bp = B.data_ptr<scalar_t>(), *cp = C.data_ptr<scalar_t>();
    const scalar_t *kp = ckpt.data_ptr<scalar_t>(), *gop = go.data_ptr<scalar_t>();
    scalar_t *gup = gu.data_ptr<scalar_t>(), *gdp = gdelta.data_ptr<scalar_t>(), *gap = gA.data_ptr<scalar_t>();
    scalar_t *gbp = gB.data_ptr<scalar_t>(), *gcp = gC.data_ptr<scalar_t>();
    scalar_t *gDp = gD.data_ptr<scalar_t>(), *gbiasp = gbias.data_ptr<scalar_t>();
    scalar_t* gzp = gz.defined() ? gz.data_ptr<scalar_t>() : nullptr;
    at::parallel_for(0, batch * groups, 1, [&](int64_t begin, int64_t end) {
      std::vector<scalar_t> hin(chunk * state), hout(chunk * state), gh(state);
      for (int64_t task = begin; task < end; ++task) {
        const int64_t b = task / groups, first = (task % groups) * per_task;
        for (int64_t d = first; d < first + per_task; ++d) {
          const scalar_t* Ad = ap + d * state;
          const int64_t gb = d / (dim / groups_b), gc = d / (dim / groups_c);
          const scalar_t* Bb = bp + b * sb.b + gb * sb.g;
          const scalar_t* Cb = cp + b * sc.b + gc * sc.g;
          const int64_t row = (b * dim + d) * length;
          scalar_t* gAd = gap + (b * dim + d) * state;
          std::fill(gh.begin(), gh.end(), scalar_t(0));
          scalar_t gD_acc = 0, gbias_acc = 0;
          for (int64_t c = chunks - 1; c >= 0; --c) {
            const int64_t t0 = c * chunk, t1 = std::min(length, t0 + chunk);
            // Recompute the chunk's states: hin[t] = h(t-1)·keep(t), hout[t] = h(t).
            const scalar_t* h0 = kp + ((b * dim + d) * chunks + c) * state;
            for (int64_t t = t0; t < t1; ++t) {
              const scalar_t* prev = t == t0 ? h0 : &hout[(t - 1 - t0) * state];
              const scalar_t keep = p.keep(t), dt = p.step(row + t, d);
              for (int64_t n = 0; n < state; ++n) {
                const scalar_t hi = prev[n] * keep;
                hin[(t - t0) * state + n] = hi;
                hout[(t - t0) * state + n] = std::exp(dt * Ad[n]) * hi + dt * Bb[n * sb.n + t * sb.t] * up[row + t];
              }
            }
            for (int64_t t = t1 - 1; t >= t0; --t) {
              const scalar_t keep = p.keep(t), raw = p.raw_step(row + t, d), dt = p.step(row + t, d);
              const scalar_t ut = up[row + t];
              const scalar_t* ho = &hout[(t - t0) * state];
              const scalar_t* hi = &hin[(t - t0) * state];
              scalar_t gy = gop[row + t];
              if (zp) {
                scalar_t y = 0;
                for (int64_t n = 0; n < state; ++n) y += Cb[n * sc.n + t * sc.t] * ho[n];
                if (Dp) y += Dp[d] * ut;
                const scalar_t zt = zp[row + t], s = sigmoid(zt);
                gzp[row + t] = gy * y * s * (scalar_t(1) + zt * (scalar_t(1) - s));
                gy *= zt * s;
              }
              scalar_t gut = Dp ? gy * Dp[d] : scalar_t(0);
              gD_acc += gy * ut;
              scalar_t gdt = 0;
              for (int64_t n = 0; n < state; ++n) {
                const scalar_t Cn = Cb[n * sc.n + t * sc.t], Bn = Bb[n * sb.n + t * sb.t];
                const scalar_t g = gh[n] + Cn * gy;  // d loss / d h(t)
                const scalar_t gc_v = gy * ho[n];
                if (c_fixed) {
                  gcp[(b * dim + d) * state + n] += gc_v;
                } else {
                  gcp[((b * groups_c + gc) * state + n) * length + t] += gc_v;
                }
                const scalar_t a = std::exp(dt * Ad[n]);
                const scalar_t ga = g * hi[n];
                gdt += ga * a * Ad[n] + g * Bn * ut;
                gAd[n] += ga * a * dt;
                const scalar_t gb_v = g * dt * ut;
                if (b_fixed) {
                  gbp[(b * dim + d) * state + n] += gb_v;
                } else {
                  gbp[((b * groups_b + gb) * state + n) * length + t] += gb_v;
                }
                gut += g * dt * Bn;
                gh[n] = g * a * keep;
              }
              const scalar_t graw = softplus_delta ? gdt * sigmoid(raw) : gdt;
              gdp[row + t] = graw;
              gbias_acc += graw;
              gup[row + t] = gut;
            }
          }
          gDp[b * dim + d] = gD_acc;
          gbiasp[b * dim + d] = gbias_acc;
        }
      }
    });
  });
  return {gu, gdelta, gA.sum(0), gB, gC, gD.sum(0), gz.defined() ? gz : at::zeros({0}, u.options()), gbias.sum(0)};
}

TORCH_LIBRARY_IMPL(gnnlab, CPU, m) {
  m.impl("selective_scan_fwd", &selective_scan_fwd_cpu);
  m.impl("selective_scan_bwd", &selective_scan_bwd_cpu);
}

}  // namespace gnnlab
