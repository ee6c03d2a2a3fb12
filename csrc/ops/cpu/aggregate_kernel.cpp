// CPU fused CSR aggregation: row-parallel (at::parallel_for), features vectorised, no atomics.
// Accumulates in float for float/half/bfloat16 and in double for double.
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <memory>
#include <vector>

#include "ops/aggregate.h"
#include "ops/common/aggregate.h"
#include "ops/cpu/isa.h"
#include "ops/cpu/parallel.h"

namespace gnnlab {

namespace {

template <typename scalar_t>
using acc_type = typename std::conditional<std::is_same<scalar_t, double>::value, double, float>::type;

// One row's features in compile-time-wide blocks (the accumulators stay in registers for the
// whole edge loop), then whatever is left at run-time width.
template <typename scalar_t, typename acc_t, typename index_t>
GNNLAB_HD void aggregate_row(const int64_t* rowptr, const index_t* col, const scalar_t* x, const scalar_t* w, int64_t E,
                             int64_t F, int reduce, int64_t i, acc_t* acc, int32_t* arg) {
  constexpr int kBlock = 64 / sizeof(acc_t) * 4;  // four 64-byte lines of accumulators
  int64_t f = 0;
  if (reduce == agg::kSum || reduce == agg::kMean) {
    for (; f + kBlock <= F; f += kBlock) {
      agg::sum_row<scalar_t, acc_t, index_t, kBlock>(rowptr, col, x, w, F, i, f, f + kBlock, acc + f, E);
    }
    if (f + kBlock / 2 <= F) {
      agg::sum_row<scalar_t, acc_t, index_t, kBlock / 2>(rowptr, col, x, w, F, i, f, f + kBlock / 2, acc + f, E);
      f += kBlock / 2;
    }
    if (f < F) agg::sum_row<scalar_t, acc_t, index_t>(rowptr, col, x, w, F, i, f, F, acc + f, E);
  } else {
    // max/min also keep a 32-bit position per feature: 16 features (4 AVX2 registers of values and
    // positions) stay in registers; 32 spilled them to the stack on every edge.
    constexpr int kExBlock = kBlock / 4;
    for (; f + kExBlock <= F; f += kExBlock) {
      agg::extremum_row<scalar_t, acc_t, index_t, kExBlock>(rowptr, col, x, w, F, i, f, f + kExBlock, reduce, acc + f,
                                                            arg + i * F + f, E);
    }
    if (f < F) agg::extremum_row<scalar_t, acc_t, index_t>(rowptr, col, x, w, F, i, f, F, reduce, acc + f, arg + i * F + f, E);
  }
}

template <typename scalar_t, typename index_t>
GNNLAB_HD void aggregate_rows(const int64_t* rowptr, const index_t* col, const scalar_t* x, const scalar_t* w,
                              int64_t E, int64_t F, int reduce, scalar_t* out, int32_t* arg, int64_t begin,
                              int64_t end, acc_type<scalar_t>* acc) {
  using acc_t = acc_type<scalar_t>;
  for (int64_t i = begin; i < end; ++i) {
    const int64_t degree = rowptr[i + 1] - rowptr[i];
    aggregate_row<scalar_t, acc_t, index_t>(rowptr, col, x, w, E, F, reduce, i, acc, arg);
    scalar_t* o = out + i * F;
    for (int64_t f = 0; f < F; ++f) o[f] = static_cast<scalar_t>(agg::finish<acc_t>(acc[f], reduce, degree));
  }
}

// The same rows compiled twice: for the baseline ISA of the build and, on x86-64, for AVX2 + FMA,
// chosen at run time (cpu_isa()).
template <typename scalar_t, typename index_t>
void aggregate_rows_baseline(const int64_t* rowptr, const index_t* col, const scalar_t* x, const scalar_t* w,
                             int64_t E, int64_t F, int reduce, scalar_t* out, int32_t* arg, int64_t begin,
                             int64_t end, acc_type<scalar_t>* acc) {
  aggregate_rows<scalar_t, index_t>(rowptr, col, x, w, E, F, reduce, out, arg, begin, end, acc);
}

#if GNNLAB_HAVE_AVX2_DISPATCH
template <typename scalar_t, typename index_t>
__attribute__((target("avx2,fma,f16c"))) void aggregate_rows_avx2(const int64_t* rowptr, const index_t* col,
                                                                   const scalar_t* x, const scalar_t* w, int64_t E,
                                                                   int64_t F, int reduce, scalar_t* out, int32_t* arg,
                                                                   int64_t begin, int64_t end,
                                                                   acc_type<scalar_t>* acc) {
  aggregate_rows<scalar_t, index_t>(rowptr, col, x, w, E, F, reduce, out, arg, begin, end, acc);
}
#endif

template <typename scalar_t, typename index_t>
void aggregate_kernel(const int64_t* rowptr, const index_t* col, const scalar_t* x, const scalar_t* w, int64_t R,
                      int64_t E, int64_t F, int reduce, scalar_t* out, int32_t* arg) {
  using acc_t = acc_type<scalar_t>;
  const bool avx2 = cpu_isa() == CpuIsa::kAvx2;
  at::parallel_for(0, R, row_grain(R, E, F), [&](int64_t begin, int64_t end) {
    std::vector<acc_t> acc(F);
#if GNNLAB_HAVE_AVX2_DISPATCH
    if (avx2) {
      aggregate_rows_avx2<scalar_t, index_t>(rowptr, col, x, w, E, F, reduce, out, arg, begin, end, acc.data());
      return;
    }
#endif
    (void)avx2;
    aggregate_rows_baseline<scalar_t, index_t>(rowptr, col, x, w, E, F, reduce, out, arg, begin, end, acc.data());
  });
}

// Gradient of x for max/min, source rows [begin, end): features in compile-time-wide blocks (the
// accumulators stay in registers over a row's edges), then the rest at run-time width.
template <typename scalar_t, typename acc_t, typename index_t>
GNNLAB_HD void extremum_x_grad_rows(const int64_t* rowptr, const int64_t* rowptr_t, const index_t* col_t,
                                    const int64_t* perm_t, const int32_t* arg, const scalar_t* g, const scalar_t* w,
                                    int64_t F, int64_t num_src, int64_t begin, int64_t end, acc_t* acc,
                                    scalar_t* out) {
  constexpr int kBlock = 64 / sizeof(acc_t) * 4;  // four 64-byte lines of accumulators
  const int64_t col_end = rowptr_t[num_src];
  for (int64_t j = begin; j < end; ++j) {
    int64_t f = 0;
    for (; f + kBlock <= F; f += kBlock) {
      agg::extremum_x_grad_row<scalar_t, acc_t, index_t, kBlock>(rowptr, rowptr_t, col_t, perm_t, arg, g, w, F, j, f,
                                                                 f + kBlock, acc + f, col_end);
    }
    if (f < F) {
      agg::extremum_x_grad_row<scalar_t, acc_t, index_t>(rowptr, rowptr_t, col_t, perm_t, arg, g, w, F, j, f, F, acc + f,
                                                         col_end);
    }
    for (int64_t k = 0; k < F; ++k) out[j * F + k] = static_cast<scalar_t>(acc[k]);
  }
}

#if GNNLAB_HAVE_AVX2_DISPATCH
template <typename scalar_t, typename acc_t, typename index_t>
__attribute__((target("avx2,fma,f16c"))) void extremum_x_grad_rows_avx2(
    const int64_t* rowptr, const int64_t* rowptr_t, const index_t* col_t, const int64_t* perm_t, const int32_t* arg,
    const scalar_t* g, const scalar_t* w, int64_t F, int64_t num_src, int64_t begin, int64_t end, acc_t* acc,
    scalar_t* out) {
  extremum_x_grad_rows<scalar_t, acc_t, index_t>(rowptr, rowptr_t, col_t, perm_t, arg, g, w, F, num_src, begin, end, acc,
                                                 out);
}
#endif

}  // namespace

std::tuple<at::Tensor, at::Tensor> aggregate_cpu(const at::Tensor& rowptr, const at::Tensor& col,
                                                 const at::Tensor& rowptr_t, const at::Tensor& col_t,
                                                 const at::Tensor& perm_t, const at::Tensor& x_in,
                                                 const c10::optional<at::Tensor>& weight, c10::string_view reduce_name) {
  const int reduce = parse_reduce(std::string(reduce_name));
  check_aggregate_op(rowptr, col, rowptr_t, col_t, perm_t, x_in, weight);
  const auto rp = rowptr.contiguous();
  const auto c = col.contiguous();
  const auto x = x_in.contiguous();
  const auto w = weight.has_value() ? weight->contiguous() : at::Tensor();
  const int64_t R = rp.size(0) - 1, E = c.size(0), F = x.size(1);
  auto out = at::empty({R, F}, x.options());
  const bool extremum = reduce == agg::kMax || reduce == agg::kMin;
  if (extremum) check_extremum_degree(rp, "aggregate");
  auto arg = at::empty(extremum ? at::IntArrayRef{R, F} : at::IntArrayRef{0}, x.options().dtype(at::kInt));
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "aggregate_cpu", [&] {
    AT_DISPATCH_INDEX_TYPES(c.scalar_type(), "aggregate_cpu_index", [&] {
      aggregate_kernel<scalar_t, index_t>(rp.data_ptr<int64_t>(), c.data_ptr<index_t>(), x.data_ptr<scalar_t>(),
                                          w.defined() ? w.data_ptr<scalar_t>() : nullptr, R, E, F, reduce,
                                          out.data_ptr<scalar_t>(), extremum ? arg.data_ptr<int32_t>() : nullptr);
    });
  });
  return {out, arg};
}

at::Tensor aggregate_weight_backward_cpu(const at::Tensor& rowptr, const at::Tensor& col, const at::Tensor& x_in,
                                         const at::Tensor& grad_out_in, const at::Tensor& arg_in,
                                         c10::string_view reduce_name) {
  const int reduce = parse_reduce(std::string(reduce_name));
  check_weight_backward_op(rowptr, col, x_in, grad_out_in, arg_in, reduce);
  const auto rp = rowptr.contiguous();
  const auto c = col.contiguous();
  const auto x = x_in.contiguous();
  const auto g = grad_out_in.contiguous();
  const auto arg = arg_in.contiguous();
  const int64_t R = rp.size(0) - 1, E = c.size(0), F = x.size(1);
  auto grad_w = at::empty({E}, x.options());
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "aggregate_weight_backward_cpu", [&] {
    using acc_t = acc_type<scalar_t>;
    AT_DISPATCH_INDEX_TYPES(c.scalar_type(), "aggregate_weight_backward_index", [&] {
      const int64_t* rpp = rp.data_ptr<int64_t>();
      const index_t* cp = c.data_ptr<index_t>();
      const scalar_t* xp = x.data_ptr<scalar_t>();
      const scalar_t* gp = g.data_ptr<scalar_t>();
      const int32_t* ap = arg.numel() ? arg.data_ptr<int32_t>() : nullptr;
      scalar_t* out = grad_w.data_ptr<scalar_t>();
      at::parallel_for(0, R, row_grain(R, E, F), [&](int64_t begin, int64_t end) {
        for (int64_t i = begin; i < end; ++i) {
          agg::weight_grad_row<scalar_t, acc_t, index_t>(rpp, cp, xp, gp, ap, F, i, reduce, out);
        }
      });
    });
  });
  return grad_w;
}

namespace {

// d x of max/min by partitioned scatter. Every winner (i, f) sends w[e]·grad_out[i, f] to
// grad_x[col[e], f], e = rowptr[i] + arg[i, f]. Sending them straight to their rows is a random
// write each; gathering them per source through the transposed CSR (extremum_x_grad_row, the CUDA
// kernel's form) reads a whole random arg row and grad_out row per edge. Instead:
//   pass 1, target rows in contiguous chunks, in parallel: count each chunk's winners per block of
//           kBlockBytes of grad_x rows;
//   pass 2, the same chunks: append (offset in the block, value) to the chunk's part of the block's
//           bucket, reading arg, grad_out and the weights in order;
//   pass 3, blocks in parallel: sum the block's bucket into a cache-resident accumulator, chunk
//           after chunk, and write the block's rows.
// Every pass streams; only the accumulator is written at random, and it stays in cache. A grad_x
// entry sums its winners in ascending i whatever the number of threads (the transposed walk sums
// them in the transposed CSR's order, the input order of the source's edges).
constexpr int64_t kBlockBytes = 512 << 10;

template <typename acc_t>
struct Winner {
  uint32_t offset;  // row within the block * F + feature
  acc_t value;      // w[e] * grad_out[i, f]
};

// Passes 1 (entries == nullptr: count per block into cursor) and 2 (append at cursor) over the
// target rows [begin, end).
template <typename scalar_t, typename acc_t, typename index_t>
void partition_winners(const int64_t* __restrict__ rowptr, const index_t* __restrict__ col,
                       const int32_t* __restrict__ arg, const scalar_t* __restrict__ g, const scalar_t* __restrict__ w,
                       int64_t F, int shift, int64_t begin, int64_t end, int64_t* __restrict__ cursor,
                       Winner<acc_t>* __restrict__ entries) {
  const int64_t mask = (int64_t(1) << shift) - 1;
  for (int64_t i = begin; i < end; ++i) {
    const int32_t* a = arg + i * F;
    const index_t* ci = col + rowptr[i];
    if (entries == nullptr) {
      for (int64_t f = 0; f < F; ++f) {
        if (a[f] >= 0) ++cursor[static_cast<int64_t>(ci[a[f]]) >> shift];
      }
      continue;
    }
    const scalar_t* gi = g + i * F;
    const scalar_t* wi = w != nullptr ? w + rowptr[i] : nullptr;
    for (int64_t f = 0; f < F; ++f) {
      const int32_t slot = a[f];
      if (slot < 0) continue;
      const int64_t j = static_cast<int64_t>(ci[slot]);
      Winner<acc_t>& entry = entries[cursor[j >> shift]++];
      entry.offset = static_cast<uint32_t>((j & mask) * F + f);
      entry.value = (wi != nullptr ? static_cast<acc_t>(wi[slot]) : acc_t(1)) * static_cast<acc_t>(gi[f]);
    }
  }
}

template <typename scalar_t, typename acc_t, typename index_t>
void extremum_x_grad_partitioned(const int64_t* rowptr, const index_t* col, const int32_t* arg, const scalar_t* g,
                                 const scalar_t* w, int64_t R, int64_t F, int64_t num_src, scalar_t* out) {
  // Blocks of a power of two of rows, so that a row's block is a shift away.
  int shift = 0;
  while (shift < 40 && (int64_t(2) << shift) * F * static_cast<int64_t>(sizeof(acc_t)) <= kBlockBytes) ++shift;
  const int64_t block_rows = int64_t(1) << shift;
  const int64_t num_blocks = (num_src + block_rows - 1) >> shift;
  const int64_t num_chunks = std::max<int64_t>(1, std::min<int64_t>(R, 4 * at::get_num_threads()));
  auto chunk_begin = [&](int64_t c) { return R * c / num_chunks; };
  // count[c * num_blocks + b]: the winners of chunk c in block b.
  std::vector<int64_t> count(num_chunks * num_blocks, 0);
  at::parallel_for(0, num_chunks, 1, [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; ++c) {
      partition_winners<scalar_t, acc_t, index_t>(rowptr, col, arg, g, w, F, shift, chunk_begin(c), chunk_begin(c + 1),
                                                  count.data() + c * num_blocks, nullptr);
    }
  });
  // offset[c * num_blocks + b]: where the part (c, b) starts in the entries, parts ordered by
  // block, then chunk.
  int64_t total = 0;
  std::vector<int64_t> offset(num_chunks * num_blocks);
  for (int64_t b = 0; b < num_blocks; ++b) {
    for (int64_t c = 0; c < num_chunks; ++c) {
      offset[c * num_blocks + b] = total;
      total += count[c * num_blocks + b];
    }
  }
  std::unique_ptr<Winner<acc_t>[]> entries(new Winner<acc_t>[total]);
  at::parallel_for(0, num_chunks, 1, [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; ++c) {  // chunk c owns and advances its cursors
      partition_winners<scalar_t, acc_t, index_t>(rowptr, col, arg, g, w, F, shift, chunk_begin(c), chunk_begin(c + 1),
                                                  offset.data() + c * num_blocks, entries.get());
    }
  });
  // After pass 2 each cursor sits at the end of its part: block b's bucket is [end of (last chunk,
  // b - 1), end of (last chunk, b)), its chunks in order.
  const Winner<acc_t>* winners = entries.get();
  at::parallel_for(0, num_blocks, 1, [&](int64_t b0, int64_t b1) {
    std::vector<acc_t> acc(block_rows * F);
    for (int64_t b = b0; b < b1; ++b) {
      std::fill(acc.begin(), acc.end(), acc_t(0));
      const int64_t first = b == 0 ? 0 : offset[(num_chunks - 1) * num_blocks + b - 1];
      const int64_t last = offset[(num_chunks - 1) * num_blocks + b];
      for (int64_t k = first; k < last; ++k) acc[winners[k].offset] += winners[k].value;
      const int64_t rows = std::min(block_rows, num_src - (b << shift));
      scalar_t* o = out + (b << shift) * F;
      for (int64_t k = 0; k < rows * F; ++k) o[k] = static_cast<scalar_t>(acc[k]);
    }
  });
}

}  // namespace

at::Tensor aggregate_extremum_x_backward_cpu(const at::Tensor& rowptr, const at::Tensor& col_in,
                                             const at::Tensor& rowptr_t, const at::Tensor& col_t,
                                             const at::Tensor& perm_t, const at::Tensor& arg_in,
                                             const at::Tensor& grad_out_in, const c10::optional<at::Tensor>& weight,
                                             int64_t num_src) {
  check_extremum_x_backward_op(rowptr, col_in, rowptr_t, col_t, perm_t, arg_in, grad_out_in, weight, num_src);
  const auto rp_fwd = rowptr.contiguous();
  const auto col = col_in.contiguous();
  const auto rp = rowptr_t.contiguous();
  const auto c = col_t.contiguous();
  const auto perm = perm_t.contiguous();
  const auto arg = arg_in.contiguous();
  const auto g = grad_out_in.contiguous();
  const auto w = weight.has_value() ? weight->contiguous() : at::Tensor();
  const int64_t F = g.size(1), E = c.size(0), R = rp_fwd.size(0) - 1;
  auto grad_x = at::empty({num_src, F}, g.options());
  // With fewer edges than target rows most rows are empty: walking the edges from the sources
  // touches less memory than streaming every row of arg and grad_out.
  const bool partitioned = E >= R && F > 0;
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, g.scalar_type(), "aggregate_extremum_x_backward_cpu", [&] {
    using acc_t = acc_type<scalar_t>;
    AT_DISPATCH_INDEX_TYPES(c.scalar_type(), "aggregate_extremum_x_backward_index", [&] {
      const int64_t* rfp = rp_fwd.data_ptr<int64_t>();
      const int32_t* ap = arg.data_ptr<int32_t>();
      const scalar_t* gp = g.data_ptr<scalar_t>();
      const scalar_t* wp = w.defined() ? w.data_ptr<scalar_t>() : nullptr;
      scalar_t* out = grad_x.data_ptr<scalar_t>();
      if (partitioned) {
        TORCH_CHECK(F * static_cast<int64_t>(sizeof(acc_t)) <= kBlockBytes || F <= UINT32_MAX,
                    "aggregate_extremum_x_backward: ", F, " features per row are more than the kernel supports");
        extremum_x_grad_partitioned<scalar_t, acc_t, index_t>(rfp, col.data_ptr<index_t>(), ap, gp, wp, R, F, num_src,
                                                              out);
        return;
      }
      const int64_t* rpp = rp.data_ptr<int64_t>();
      const index_t* cp = c.data_ptr<index_t>();
      const int64_t* pp = perm.data_ptr<int64_t>();
      const bool avx2 = cpu_isa() == CpuIsa::kAvx2;
      at::parallel_for(0, num_src, row_grain(num_src, E, F), [&](int64_t begin, int64_t end) {
        std::vector<acc_t> acc(F);
#if GNNLAB_HAVE_AVX2_DISPATCH
        if (avx2) {
          extremum_x_grad_rows_avx2<scalar_t, acc_t, index_t>(rfp, rpp, cp, pp, ap, gp, wp, F, num_src, begin, end, acc.data(), out);
          return;
        }
#endif
        (void)avx2;
        extremum_x_grad_rows<scalar_t, acc_t, index_t>(rfp, rpp, cp, pp, ap, gp, wp, F, num_src, begin, end, acc.data(), out);
      });
    });
  });
  return grad_x;
}

TORCH_LIBRARY_IMPL(gnnlab, CPU, m) {
  m.impl("aggregate", &aggregate_cpu);
  m.impl("aggregate_weight_backward", &aggregate_weight_backward_cpu);
  m.impl("aggregate_extremum_x_backward", &aggregate_extremum_x_backward_cpu);
}

}  // namespace gnnlab
