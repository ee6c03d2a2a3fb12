// CPU neighbor_sample. Per hop: count the draws of every frontier entry, draw them in parallel (each
// entry has its own counter-based random stream, so the result does not depend on the thread count),
// then assign local ids to newly reached nodes in one ordered pass (a dense node -> local map).
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <cstdint>
#include <numeric>
#include <vector>

#include "ops/neighbor_sample.h"

namespace gnnlab {

namespace {

inline uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// SplitMix64: one stream per (call seed, hop, frontier entry).
struct Stream {
  uint64_t state;
  Stream(uint64_t seed, uint64_t hop, uint64_t entry)
      : state(mix64(mix64(seed) ^ mix64(hop * 0xD1B54A32D192ED03ull + 1)) ^ mix64(entry * 0x9E3779B97F4A7C15ull + 7)) {}
  uint64_t next() { return mix64(state += 0x9E3779B97F4A7C15ull); }
  // Uniform integer in [0, n), n > 0 (multiply-shift; the bias is below 2^-40 for any degree).
  uint64_t below(uint64_t n) { return static_cast<uint64_t>((static_cast<unsigned __int128>(next()) * n) >> 64); }
};

// Writes k distinct offsets in [0, deg), ascending, uniformly among the k-subsets (0 < k < deg).
void choose_without_replacement(Stream& rng, int64_t deg, int64_t k, int64_t* out, std::vector<int64_t>& scratch) {
  if (deg <= 4 * k) {
    // Dense: partial Fisher-Yates over 0 .. deg-1.
    scratch.resize(deg);
    std::iota(scratch.begin(), scratch.end(), int64_t{0});
    for (int64_t i = 0; i < k; ++i) {
      const int64_t j = i + static_cast<int64_t>(rng.below(static_cast<uint64_t>(deg - i)));
      std::swap(scratch[i], scratch[j]);
    }
    std::copy(scratch.begin(), scratch.begin() + k, out);
    std::sort(out, out + k);
    return;
  }
  // Sparse: Floyd's algorithm, keeping the chosen set sorted.
  scratch.clear();
  for (int64_t j = deg - k; j < deg; ++j) {
    const int64_t t = static_cast<int64_t>(rng.below(static_cast<uint64_t>(j + 1)));
    auto at = std::lower_bound(scratch.begin(), scratch.end(), t);
    if (at != scratch.end() && *at == t) {
      // t is taken: j is not (every earlier pick is < j), and it is the largest so far.
      scratch.push_back(j);
    } else {
      scratch.insert(at, t);
    }
  }
  std::copy(scratch.begin(), scratch.end(), out);
}

template <typename index_t>
void sample(const int64_t* rowptr, const index_t* col, int64_t num_nodes, const int64_t* seeds, int64_t num_seeds,
            at::IntArrayRef num_neighbors, bool replace, uint64_t seed, std::vector<int64_t>& nodes,
            std::vector<int64_t>& src, std::vector<int64_t>& dst, std::vector<int64_t>& edge,
            std::vector<int64_t>& sampled_nodes, std::vector<int64_t>& sampled_edges) {
  std::vector<int64_t> local(num_nodes, -1);
  nodes.assign(seeds, seeds + num_seeds);
  for (int64_t i = 0; i < num_seeds; ++i) {
    if (local[seeds[i]] < 0) local[seeds[i]] = i;
  }
  sampled_nodes.push_back(num_seeds);
  int64_t begin = 0, end = num_seeds;
  std::vector<int64_t> offsets, positions;
  for (size_t hop = 0; hop < num_neighbors.size(); ++hop) {
    const int64_t k = num_neighbors[hop];
    const int64_t width = end - begin;
    offsets.assign(width + 1, 0);
    for (int64_t f = 0; f < width; ++f) {
      const int64_t v = nodes[begin + f];
      const int64_t deg = rowptr[v + 1] - rowptr[v];
      offsets[f + 1] = k < 0 ? deg : (replace ? (deg > 0 ? k : 0) : std::min(deg, k));
    }
    std::partial_sum(offsets.begin(), offsets.end(), offsets.begin());
    positions.resize(offsets[width]);
    at::parallel_for(0, width, 256, [&](int64_t lo, int64_t hi) {
      std::vector<int64_t> scratch;
      for (int64_t f = lo; f < hi; ++f) {
        const int64_t v = nodes[begin + f];
        const int64_t start = rowptr[v], deg = rowptr[v + 1] - start;
        int64_t* out = positions.data() + offsets[f];
        const int64_t take = offsets[f + 1] - offsets[f];
        if (take == 0) continue;
        if (k < 0 || (!replace && deg <= k)) {
          std::iota(out, out + take, start);
          continue;
        }
        Stream rng(seed, hop, static_cast<uint64_t>(f));
        if (replace) {
          for (int64_t i = 0; i < take; ++i) out[i] = start + static_cast<int64_t>(rng.below(static_cast<uint64_t>(deg)));
          std::sort(out, out + take);
        } else {
          choose_without_replacement(rng, deg, take, out, scratch);
          for (int64_t i = 0; i < take; ++i) out[i] += start;
        }
      }
    });
    // Ordered pass: new nodes get local ids in order of first appearance.
    for (int64_t f = 0; f < width; ++f) {
      for (int64_t p = offsets[f]; p < offsets[f + 1]; ++p) {
        const int64_t pos = positions[p];
        const int64_t nbr = static_cast<int64_t>(col[pos]);
        if (local[nbr] < 0) {
          local[nbr] = static_cast<int64_t>(nodes.size());
          nodes.push_back(nbr);
        }
        src.push_back(local[nbr]);
        dst.push_back(begin + f);
        edge.push_back(pos);
      }
    }
    sampled_edges.push_back(offsets[width]);
    begin = end;
    end = static_cast<int64_t>(nodes.size());
    sampled_nodes.push_back(end - begin);
  }
}

at::Tensor to_tensor(const std::vector<int64_t>& v) {
  auto out = at::empty({static_cast<int64_t>(v.size())}, at::TensorOptions().dtype(at::kLong));
  std::copy(v.begin(), v.end(), out.data_ptr<int64_t>());
  return out;
}

}  // namespace

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor> neighbor_sample_cpu(
    const at::Tensor& rowptr, const at::Tensor& col, const at::Tensor& seeds, at::IntArrayRef num_neighbors,
    bool replace, int64_t seed, bool check_graph) {
  check_neighbor_sample_inputs(rowptr, col, seeds, num_neighbors, check_graph);
  const auto rp = rowptr.contiguous();
  const auto c = col.contiguous();
  const auto s = seeds.to(at::kLong).contiguous();
  std::vector<int64_t> nodes, src, dst, edge, sampled_nodes, sampled_edges;
  AT_DISPATCH_INDEX_TYPES(c.scalar_type(), "neighbor_sample_cpu", [&] {
    sample<index_t>(rp.data_ptr<int64_t>(), c.data_ptr<index_t>(), rp.size(0) - 1, s.data_ptr<int64_t>(), s.size(0),
                    num_neighbors, replace, static_cast<uint64_t>(seed), nodes, src, dst, edge, sampled_nodes,
                    sampled_edges);
  });
  return {to_tensor(nodes), to_tensor(src), to_tensor(dst), to_tensor(edge), to_tensor(sampled_nodes),
          to_tensor(sampled_edges)};
}

TORCH_LIBRARY_IMPL(gnnlab, CPU, m) { m.impl("neighbor_sample", &neighbor_sample_cpu); }

}  // namespace gnnlab
