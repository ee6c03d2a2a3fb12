// CPU edge-gated aggregation (ops/common/gated_aggregate.h): row-parallel (at::parallel_for), features
// in compile-time-wide blocks kept in registers, no atomics, sigmoid evaluated in vector registers.
// Each row loop is compiled for the baseline ISA and, on x86-64, for AVX2 + FMA (cpu_isa()).
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <vector>

#include "ops/common/gated_aggregate.h"
#include "ops/cpu/isa.h"
#include "ops/cpu/parallel.h"
#include "ops/gated_aggregate.h"

namespace gnnlab {

namespace {

template <typename scalar_t>
using acc_type = typename std::conditional<std::is_same<scalar_t, double>::value, double, float>::type;

// Features per register block: one 64-byte line of each accumulator.
template <typename acc_t>
constexpr int kBlock = 64 / sizeof(acc_t);

// Rows [begin, end) of a kernel, each in feature blocks whose two sums (a, b: acc[0, F) and acc[F, 2F))
// stay in registers: kBlock-wide blocks, then a half block, then the tail. A tail narrower than a half
// block runs as one half block over the LAST kBlock / 2 features when F allows: it overlaps features
// already done (rewriting their per-edge outputs with the same values) and keeps only the new sums.
// The kernel gives block<kWidth>(row, f0, n, a, b) and store(row, a, b).
template <typename Kernel, typename acc_t>
GNNLAB_HD void blocked_rows(const Kernel& k, int64_t F, int64_t begin, int64_t end, acc_t* acc) {
  constexpr int kB = kBlock<acc_t>, kHalf = kB / 2;
  acc_t* a = acc;
  acc_t* b = acc + F;
  for (int64_t r = begin; r < end; ++r) {
    int64_t f = 0;
    for (; f + kB <= F; f += kB) k.template block<kB>(r, f, kB, a + f, b + f);
    if (f + kHalf <= F) {
      k.template block<kHalf>(r, f, kHalf, a + f, b + f);
      f += kHalf;
    }
    if (f < F && F < kHalf) {
      k.template block<0>(r, f, F - f, a + f, b + f);
    } else if (f < F) {
      acc_t ta[kHalf], tb[kHalf];
      k.template block<kHalf>(r, F - kHalf, kHalf, ta, tb);
      for (int64_t j = f; j < F; ++j) {
        a[j] = ta[j - (F - kHalf)];
        b[j] = tb[j - (F - kHalf)];
      }
    }
    k.store(r, a, b);
  }
}

template <typename scalar_t, typename index_t>
struct Forward {
  using acc_t = acc_type<scalar_t>;
  const int64_t* rowptr;
  const index_t* col;
  const int64_t* edge_id;
  const scalar_t *edge_in, *x_dst, *x_src, *values;
  int64_t F, E;
  scalar_t *e_hat, *num, *den;

  template <int kWidth>
  GNNLAB_HD void block(int64_t i, int64_t f, int64_t n, acc_t* a, acc_t* b) const {
    gated::forward_row<kWidth, scalar_t, acc_t, index_t>(rowptr, col, edge_id, edge_in, x_dst, x_src, values, F, i, f,
                                                         n, e_hat, a, b, E);
  }

  GNNLAB_HD void store(int64_t i, const acc_t* a, const acc_t* b) const {
    for (int64_t k = 0; k < F; ++k) {
      num[i * F + k] = static_cast<scalar_t>(a[k]);
      den[i * F + k] = static_cast<scalar_t>(b[k]);
    }
  }

  GNNLAB_HD void rows(int64_t begin, int64_t end, acc_t* acc) const { blocked_rows(*this, F, begin, end, acc); }
};

template <typename scalar_t, typename index_t>
struct BackwardDst {
  using acc_t = acc_type<scalar_t>;
  const int64_t* rowptr;
  const index_t* col;
  const int64_t* edge_id;
  const scalar_t *e_hat, *values, *g_e, *g_num, *g_den;
  int64_t F, E;
  scalar_t *d_e, *d_dst, *w;  // d_e and d_dst, or w: null when not wanted

  template <int kWidth>
  GNNLAB_HD void block(int64_t i, int64_t f, int64_t n, acc_t* a, acc_t* /*unused*/) const {
    gated::backward_dst_row<kWidth, scalar_t, acc_t, index_t>(rowptr, col, edge_id, e_hat, values, g_e, g_num, g_den,
                                                              F, i, f, n, d_e, d_dst != nullptr ? a : nullptr, w, E);
  }

  GNNLAB_HD void store(int64_t i, const acc_t* a, const acc_t* /*unused*/) const {
    if (d_dst == nullptr) return;
    for (int64_t k = 0; k < F; ++k) d_dst[i * F + k] = static_cast<scalar_t>(a[k]);
  }

  GNNLAB_HD void rows(int64_t begin, int64_t end, acc_t* acc) const { blocked_rows(*this, F, begin, end, acc); }
};

template <typename scalar_t>
struct BackwardSrc {
  using acc_t = acc_type<scalar_t>;
  const int64_t* rowptr_t;
  const int64_t* edge_id_t;
  const scalar_t *d_e, *w;
  int64_t F, E;
  // Outputs; null: not wanted.
  scalar_t *d_src, *d_val;

  template <int kWidth>
  GNNLAB_HD void block(int64_t j, int64_t f, int64_t n, acc_t* a, acc_t* b) const {
    gated::backward_src_row<kWidth, scalar_t, acc_t>(rowptr_t, edge_id_t, d_e, w, F, j, f, n,
                                                     d_src != nullptr ? a : nullptr,
                                                     d_val != nullptr ? b : nullptr, E);
  }

  GNNLAB_HD void store(int64_t j, const acc_t* a, const acc_t* b) const {
    for (int64_t k = 0; k < F; ++k) {
      if (d_src != nullptr) d_src[j * F + k] = static_cast<scalar_t>(a[k]);
      if (d_val != nullptr) d_val[j * F + k] = static_cast<scalar_t>(b[k]);
    }
  }

  GNNLAB_HD void rows(int64_t begin, int64_t end, acc_t* acc) const { blocked_rows(*this, F, begin, end, acc); }
};

// The rows of a kernel compiled for the baseline ISA and, on x86-64, for AVX2 + FMA: the row
// functions are always inlined, so each variant vectorises with its own instruction set.
template <typename Kernel>
void rows_baseline(const Kernel& k, int64_t begin, int64_t end, typename Kernel::acc_t* acc) {
  k.rows(begin, end, acc);
}

#if GNNLAB_HAVE_AVX2_DISPATCH
template <typename Kernel>
__attribute__((target("avx2,fma,f16c"))) void rows_avx2(const Kernel& k, int64_t begin, int64_t end,
                                                          typename Kernel::acc_t* acc) {
  k.rows(begin, end, acc);
}
#endif

// Rows [0, num_rows) in parallel, each task with 2F accumulators.
template <typename Kernel>
void run(const Kernel& k, int64_t num_rows) {
  const bool avx2 = cpu_isa() == CpuIsa::kAvx2;
  at::parallel_for(0, num_rows, row_grain(num_rows, k.E, k.F), [&](int64_t begin, int64_t end) {
    std::vector<typename Kernel::acc_t> acc(2 * k.F);
#if GNNLAB_HAVE_AVX2_DISPATCH
    if (avx2) {
      rows_avx2(k, begin, end, acc.data());
      return;
    }
#endif
    (void)avx2;
    rows_baseline(k, begin, end, acc.data());
  });
}

}  // namespace

std::tuple<at::Tensor, at::Tensor, at::Tensor> gated_aggregate_cpu(
    const at::Tensor& rowptr, const at::Tensor& col, const at::Tensor& edge_id, const at::Tensor& /*rowptr_t*/,
    const at::Tensor& /*edge_id_t*/, const at::Tensor& edge_in, const at::Tensor& x_dst,
    const at::Tensor& x_src, const at::Tensor& values) {
  check_gated_aggregate_op(rowptr, col, edge_id, edge_in, x_dst, x_src, values, "gated_aggregate");
  const auto rp = rowptr.contiguous(), c = col.contiguous(), ids = edge_id.contiguous();
  const auto ein = edge_in.contiguous(), xd = x_dst.contiguous(), xs = x_src.contiguous(), v = values.contiguous();
  const int64_t R = rp.size(0) - 1, E = c.size(0), F = xs.size(1);
  auto e_hat = at::empty({E, F}, xs.options());
  auto num = at::empty({R, F}, xs.options());
  auto den = at::empty({R, F}, xs.options());
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, xs.scalar_type(), "gated_aggregate_cpu", [&] {
    AT_DISPATCH_INDEX_TYPES(c.scalar_type(), "gated_aggregate_cpu_index", [&] {
      const Forward<scalar_t, index_t> k{rp.data_ptr<int64_t>(), c.data_ptr<index_t>(), ids.data_ptr<int64_t>(),
                                         ein.data_ptr<scalar_t>(), xd.data_ptr<scalar_t>(), xs.data_ptr<scalar_t>(),
                                         v.data_ptr<scalar_t>(), F, E, e_hat.data_ptr<scalar_t>(),
                                         num.data_ptr<scalar_t>(), den.data_ptr<scalar_t>()};
      run(k, R);
    });
  });
  return {e_hat, num, den};
}

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> gated_aggregate_backward_cpu(
    const at::Tensor& rowptr, const at::Tensor& col, const at::Tensor& edge_id, const at::Tensor& rowptr_t,
    const at::Tensor& edge_id_t, const at::Tensor& e_hat_in, const at::Tensor& values_in,
    const at::Tensor& g_e_in, const at::Tensor& g_num_in, const at::Tensor& g_den_in, bool need_edge,
    bool need_values) {
  check_gated_aggregate_backward_op(rowptr, col, edge_id, rowptr_t, edge_id_t, e_hat_in, values_in, g_e_in, g_num_in,
                                    g_den_in);
  const auto rp = rowptr.contiguous(), c = col.contiguous(), ids = edge_id.contiguous();
  const auto rp_t = rowptr_t.contiguous(), ids_t = edge_id_t.contiguous();
  const auto e_hat = e_hat_in.contiguous(), v = values_in.contiguous(), g_e = g_e_in.contiguous();
  const auto g_num = g_num_in.contiguous(), g_den = g_den_in.contiguous();
  const int64_t R = rp.size(0) - 1, E = c.size(0), F = v.size(1), S = v.size(0);
  const GatedGrads grads = allocate_gated_grads(v, E, R, need_edge, need_values);
  const at::Tensor &d_e = grads.d_e, &d_dst = grads.d_dst, &d_src = grads.d_src, &d_val = grads.d_val, &w = grads.w;
  if (!need_edge && !need_values) return {d_e, d_dst, d_src, d_val};
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, v.scalar_type(), "gated_aggregate_backward_cpu", [&] {
    AT_DISPATCH_INDEX_TYPES(c.scalar_type(), "gated_aggregate_backward_cpu_index", [&] {
      const BackwardDst<scalar_t, index_t> k{rp.data_ptr<int64_t>(), c.data_ptr<index_t>(), ids.data_ptr<int64_t>(),
                                             e_hat.data_ptr<scalar_t>(), v.data_ptr<scalar_t>(),
                                             g_e.data_ptr<scalar_t>(), g_num.data_ptr<scalar_t>(),
                                             g_den.data_ptr<scalar_t>(), F, E,
                                             need_edge ? d_e.data_ptr<scalar_t>() : nullptr,
                                             need_edge ? d_dst.data_ptr<scalar_t>() : nullptr,
                                             need_values ? w.data_ptr<scalar_t>() : nullptr};
      run(k, R);
    });
    const BackwardSrc<scalar_t> k{rp_t.data_ptr<int64_t>(), ids_t.data_ptr<int64_t>(), d_e.data_ptr<scalar_t>(),
                                  w.data_ptr<scalar_t>(), F, E, need_edge ? d_src.data_ptr<scalar_t>() : nullptr,
                                  need_values ? d_val.data_ptr<scalar_t>() : nullptr};
    run(k, S);
  });
  return {d_e, d_dst, d_src, d_val};
}

TORCH_LIBRARY_IMPL(gnnlab, CPU, m) {
  m.impl("gated_aggregate", &gated_aggregate_cpu);
  m.impl("gated_aggregate_backward", &gated_aggregate_backward_cpu);
}

}  // namespace gnnlab
