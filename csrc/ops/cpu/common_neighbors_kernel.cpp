// CPU common-neighbour kernels: pair-parallel (at::parallel_for), no atomics; sets are built
// count -> scan -> fill so every pair writes its own slice.
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include "ops/common/intersect.h"
#include "ops/common_neighbors.h"

namespace gnnlab {

namespace {

constexpr int64_t kPairGrain = 256;

const uint8_t* mask_ptr(const at::Tensor& mask) {
  return mask.defined() ? reinterpret_cast<const uint8_t*>(mask.data_ptr()) : nullptr;
}

}  // namespace

std::tuple<at::Tensor, at::Tensor> common_neighbor_count_cpu(const at::Tensor& rowptr, const at::Tensor& col,
                                                             const at::Tensor& src, const at::Tensor& dst,
                                                             const c10::optional<at::Tensor>& node_weight,
                                                             const c10::optional<at::Tensor>& edge_mask,
                                                             int64_t mode) {
  check_common_neighbor_inputs(rowptr, col, src, dst, edge_mask, mode, "common_neighbor_count");
  check_node_weight(node_weight, rowptr, col, "common_neighbor_count");
  const auto rp = rowptr.contiguous();
  const auto c = col.contiguous();
  const auto s = src.contiguous();
  const auto d = dst.contiguous();
  const auto m = edge_mask.has_value() ? edge_mask->contiguous() : at::Tensor();
  const auto w = node_weight.has_value() ? node_weight->contiguous().to(at::kDouble) : at::Tensor();
  const int64_t B = s.size(0);
  auto count = at::empty({B}, s.options());
  auto total = at::empty({w.defined() ? B : 0}, s.options().dtype(at::kDouble));
  AT_DISPATCH_INDEX_TYPES(c.scalar_type(), "common_neighbor_count_cpu", [&] {
    const int64_t* rpp = rp.data_ptr<int64_t>();
    const index_t* cp = c.data_ptr<index_t>();
    const int64_t* sp = s.data_ptr<int64_t>();
    const int64_t* dp = d.data_ptr<int64_t>();
    const uint8_t* mp = mask_ptr(m);
    const double* wp = w.defined() ? w.data_ptr<double>() : nullptr;
    int64_t* out = count.data_ptr<int64_t>();
    double* tot = w.defined() ? total.data_ptr<double>() : nullptr;
    at::parallel_for(0, B, kPairGrain, [&](int64_t begin, int64_t end) {
      for (int64_t p = begin; p < end; ++p) {
        const auto a = cn::row_of(rpp, cp, mp, sp[p]);
        const auto b = cn::row_of(rpp, cp, mp, dp[p]);
        double sum = 0.0;
        out[p] = cn::count_members(a, b, static_cast<int>(mode), wp, tot != nullptr ? &sum : nullptr);
        if (tot != nullptr) tot[p] = sum;
      }
    });
  });
  if (node_weight.has_value()) return {count, total.to(node_weight->scalar_type())};
  return {count, total};
}

std::tuple<at::Tensor, at::Tensor> common_neighbor_sets_cpu(const at::Tensor& rowptr, const at::Tensor& col,
                                                            const at::Tensor& src, const at::Tensor& dst,
                                                            const c10::optional<at::Tensor>& edge_mask,
                                                            int64_t mode) {
  check_common_neighbor_inputs(rowptr, col, src, dst, edge_mask, mode, "common_neighbor_sets");
  const auto rp = rowptr.contiguous();
  const auto c = col.contiguous();
  const auto s = src.contiguous();
  const auto d = dst.contiguous();
  const auto m = edge_mask.has_value() ? edge_mask->contiguous() : at::Tensor();
  const int64_t B = s.size(0);
  auto ptr = at::zeros({B + 1}, s.options());
  at::Tensor nodes;
  AT_DISPATCH_INDEX_TYPES(c.scalar_type(), "common_neighbor_sets_cpu", [&] {
    const int64_t* rpp = rp.data_ptr<int64_t>();
    const index_t* cp = c.data_ptr<index_t>();
    const int64_t* sp = s.data_ptr<int64_t>();
    const int64_t* dp = d.data_ptr<int64_t>();
    const uint8_t* mp = mask_ptr(m);
    int64_t* pp = ptr.data_ptr<int64_t>();
    // count
    at::parallel_for(0, B, kPairGrain, [&](int64_t begin, int64_t end) {
      for (int64_t p = begin; p < end; ++p) {
        const auto a = cn::row_of(rpp, cp, mp, sp[p]);
        const auto b = cn::row_of(rpp, cp, mp, dp[p]);
        pp[p + 1] = cn::count_members<index_t, double>(a, b, static_cast<int>(mode), nullptr, nullptr);
      }
    });
    // scan
    for (int64_t p = 0; p < B; ++p) pp[p + 1] += pp[p];
    nodes = at::empty({pp[B]}, s.options());
    int64_t* np = nodes.data_ptr<int64_t>();
    // fill
    at::parallel_for(0, B, kPairGrain, [&](int64_t begin, int64_t end) {
      for (int64_t p = begin; p < end; ++p) {
        const auto a = cn::row_of(rpp, cp, mp, sp[p]);
        const auto b = cn::row_of(rpp, cp, mp, dp[p]);
        cn::fill_members(a, b, static_cast<int>(mode), np + pp[p]);
      }
    });
  });
  return {ptr, nodes};
}

TORCH_LIBRARY_IMPL(gnnlab, CPU, m) {
  m.impl("common_neighbor_count", &common_neighbor_count_cpu);
  m.impl("common_neighbor_sets", &common_neighbor_sets_cpu);
}

}  // namespace gnnlab
