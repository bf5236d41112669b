// The parameter block of kiln's generated pointwise kernels (kiln.Pointwise,
// src/build/codegen/pointwise_source.h). It is defined once, here, as a macro:
// the runtime's launcher (src/backend/cuda/pointwise.cc) and the host tests
// compile it, and the generator pastes its text into every kernel's source, so
// the two sides cannot disagree. Plain C types only: NVRTC compiles the
// kernels without any header.
//   in[k], out[k]: device pointers of the fused node's inputs and outputs;
//     an input read through a Slice points at the view's first element (the
//     base offset PointwiseStrides gives, in elements).
//   n: elements of the output domain (every output has the same dims).
//   dims[d]: the domain's dims (rank <= kPwMaxRank, right-aligned inputs).
//   strides[k][d]: input k's element stride along domain dim d (0 where the
//     input broadcasts; negative for a Slice with a negative step). Used by
//     inputs the kernel indexes with strides.
//   div[k], mod[k]: for an input that is one block of the domain's dims (a
//     bias [C] over [N, S, C], a scale [C, 1, 1] over [N, C, H, W]): its
//     element is (i / div) % mod, no per-dim decomposition.
#pragma once

// 32 inputs: a DenseNet block's BN-ReLU of the concatenation of up to 24 layers' outputs is one kernel. The
// struct (2952 bytes) stays under the 4 KiB of kernel parameters; a plan records its size (attribute
// params_bytes of each kiln.Pointwise) and the runtime refuses a plan built for another one.
#define KILN_PW_MAX_INPUTS 32
#define KILN_PW_MAX_OUTPUTS 8
#define KILN_PW_MAX_RANK 8

#define KILN_PW_PARAMS_STRUCT                 \
  struct KilnPwParams {                       \
    const void* in[KILN_PW_MAX_INPUTS];       \
    void* out[KILN_PW_MAX_OUTPUTS];           \
    long long n;                              \
    long long dims[KILN_PW_MAX_RANK];         \
    long long strides[KILN_PW_MAX_INPUTS][KILN_PW_MAX_RANK]; \
    long long div[KILN_PW_MAX_INPUTS];                      \
    long long mod[KILN_PW_MAX_INPUTS];                      \
  };

#define KILN_PW_STR2(x) #x
#define KILN_PW_STR(x) KILN_PW_STR2(x)
// The struct's definition as source text (macros expanded).
#define KILN_PW_PARAMS_SOURCE KILN_PW_STR(KILN_PW_PARAMS_STRUCT)

#include <algorithm>
#include <cstdint>
#include <utility>
#include <vector>

#include "ops/slice_bounds.h"

namespace kiln {
KILN_PW_PARAMS_STRUCT

// How a kernel reads one input: through the views of the Transposes, Slices
// and Expands the fusion pass absorbed (applied in order to the bound
// tensor), and over the output dims with some dims replaced (an operand of a
// Concat inside the kernel is read over its own extent along the concat
// axis). The builder records one per input (attribute "input_views",
// EncodePwViews); the runtime and the host tests turn it into strides and a
// base offset with PointwiseStrides, so the two read the same elements.
struct PwViewOp {
  enum Kind : int64_t { kTranspose = 0, kSlice = 1, kExpand = 2 };
  Kind kind = kTranspose;
  std::vector<int64_t> perm;                       // kTranspose
  std::vector<int64_t> axes, starts, ends, steps;  // kSlice (axes >= 0, distinct)
  std::vector<int64_t> shape;                      // kExpand: the shape broadcast to
};
struct PwView {
  std::vector<PwViewOp> ops;
  std::vector<std::pair<int64_t, int64_t>> read_dims;  // (output axis, dim) replaced
  bool empty() const { return ops.empty() && read_dims.empty(); }
};

// Per view: the number of ops; each op as its kind, a count n and n values
// (a Transpose's perm, an Expand's shape) or n × (axis, start, end, step) (a
// Slice); then the number of replaced dims and their (axis, dim) pairs.
inline std::vector<int64_t> EncodePwViews(const std::vector<PwView>& views) {
  std::vector<int64_t> e;
  for (const PwView& v : views) {
    e.push_back(static_cast<int64_t>(v.ops.size()));
    for (const PwViewOp& op : v.ops) {
      const std::vector<int64_t>& values = op.kind == PwViewOp::kTranspose ? op.perm : op.shape;
      e.push_back(op.kind);
      e.push_back(static_cast<int64_t>(op.kind == PwViewOp::kSlice ? op.axes.size() : values.size()));
      if (op.kind != PwViewOp::kSlice) e.insert(e.end(), values.begin(), values.end());
      for (size_t i = 0; op.kind == PwViewOp::kSlice && i < op.axes.size(); ++i)
        e.insert(e.end(), {op.axes[i], op.starts[i], op.ends[i], op.steps[i]});
    }
    e.push_back(static_cast<int64_t>(v.read_dims.size()));
    for (const auto& [axis, dim] : v.read_dims) e.insert(e.end(), {axis, dim});
  }
  return e;
}
// The inverse; false on a malformed encoding.
inline bool DecodePwViews(const std::vector<int64_t>& e, std::vector<PwView>* views) {
  size_t i = 0;
  auto take = [&](size_t n) { return i + n <= e.size() && n <= e.size(); };
  while (i < e.size()) {
    PwView v;
    const int64_t nops = e[i++];
    for (int64_t k = 0; k < nops; ++k) {
      if (!take(2)) return false;
      const int64_t kind = e[i], n = e[i + 1];
      i += 2;
      if (n < 0 || kind < PwViewOp::kTranspose || kind > PwViewOp::kExpand ||
          !take(static_cast<size_t>(n) * (kind == PwViewOp::kSlice ? 4 : 1)))
        return false;
      PwViewOp op;
      op.kind = static_cast<PwViewOp::Kind>(kind);
      for (int64_t j = 0; j < n; ++j) {
        if (kind != PwViewOp::kSlice) {
          (kind == PwViewOp::kTranspose ? op.perm : op.shape).push_back(e[i++]);
          continue;
        }
        op.axes.push_back(e[i]);
        op.starts.push_back(e[i + 1]);
        op.ends.push_back(e[i + 2]);
        op.steps.push_back(e[i + 3]);
        i += 4;
      }
      v.ops.push_back(std::move(op));
    }
    if (!take(1)) return false;
    const int64_t nread = e[i++];
    if (nread < 0 || !take(static_cast<size_t>(nread) * 2)) return false;
    for (int64_t j = 0; j < nread; ++j, i += 2) v.read_dims.emplace_back(e[i], e[i + 1]);
    views->push_back(std::move(v));
  }
  return true;
}

// Fills strides[d] (d < out.size()) for an input of dims `in` read over the
// output dims `out`: numpy broadcasting, right-aligned, stride 0 where the
// input's dim is 1. False when `in` does not broadcast to `out`.
// With a view, the input is read as its ops make it (a Transpose: view axis j
// is axis perm[j]; a Slice: from the clamped start with the step's stride; an
// Expand: broadcast to its shape, stride 0 where a dim of 1 grows),
// over `out` with the view's replaced dims; *base is the element offset of
// the view's first element (0 without Slices; a view that has one needs base).
inline bool PointwiseStrides(const std::vector<int64_t>& in, const std::vector<int64_t>& out,
                             long long* strides, const PwView& view = {}, long long* base = nullptr) {
  const int rank = static_cast<int>(out.size());
  std::vector<int64_t> dims = in;
  std::vector<long long> own(in.size());  // the view's strides into the input's elements
  long long s = 1, first = 0;
  for (size_t a = in.size(); a-- > 0;) {
    own[a] = s;
    s *= in[a];
  }
  for (const PwViewOp& op : view.ops) {
    if (op.kind == PwViewOp::kExpand) {  // numpy broadcasting of dims and shape; stride 0 where expanded
      const size_t r = std::max(dims.size(), op.shape.size());
      std::vector<int64_t> d2(r);
      std::vector<long long> s2(r);
      for (size_t j = 0; j < r; ++j) {
        const size_t from = r - dims.size(), to = r - op.shape.size();
        const int64_t d = j < from ? 1 : dims[j - from], t = j < to ? 1 : op.shape[j - to];
        if (d != 1 && t != 1 && d != t) return false;
        d2[j] = d == 1 ? t : d;
        s2[j] = d == 1 ? 0 : own[j - from];
      }
      dims = std::move(d2);
      own = std::move(s2);
      continue;
    }
    if (op.kind == PwViewOp::kTranspose) {
      if (op.perm.size() != dims.size()) return false;
      std::vector<int64_t> d2(dims.size());
      std::vector<long long> s2(dims.size());
      for (size_t j = 0; j < op.perm.size(); ++j) {
        const int64_t a = op.perm[j];
        if (a < 0 || a >= static_cast<int64_t>(dims.size())) return false;
        d2[j] = dims[static_cast<size_t>(a)];
        s2[j] = own[static_cast<size_t>(a)];
      }
      dims = std::move(d2);
      own = std::move(s2);
      continue;
    }
    if (op.starts.size() != op.axes.size() || op.ends.size() != op.axes.size() ||
        op.steps.size() != op.axes.size())
      return false;
    for (size_t i = 0; i < op.axes.size(); ++i) {
      const int64_t a = op.axes[i];
      if (a < 0 || a >= static_cast<int64_t>(dims.size()) || op.steps[i] == 0) return false;
      int64_t start = 0, count = 0;
      ClampSlice(dims[static_cast<size_t>(a)], op.starts[i], op.ends[i], op.steps[i], &start, &count);
      first += start * own[static_cast<size_t>(a)];
      own[static_cast<size_t>(a)] *= op.steps[i];
      dims[static_cast<size_t>(a)] = count;
    }
  }
  if (base) *base = first;
  if (!base && first != 0) return false;
  std::vector<int64_t> read = out;
  for (const auto& [axis, dim] : view.read_dims) {
    if (axis < 0 || axis >= rank) return false;
    read[static_cast<size_t>(axis)] = dim;
  }
  const int in_rank = static_cast<int>(dims.size());
  if (in_rank > rank) return false;
  for (int d = rank - 1, j = in_rank - 1; d >= 0; --d, --j) {
    const int64_t dim = j >= 0 ? dims[static_cast<size_t>(j)] : 1;
    if (dim != 1 && dim != read[static_cast<size_t>(d)]) return false;
    strides[d] = dim == 1 ? 0 : own[static_cast<size_t>(j)];
  }
  return true;
}
// For an input whose dims (right-aligned) are 1 outside one contiguous range
// of the output's dims and equal to them inside it: *div = the product of the
// output dims after the range, *mod = the product inside it, so the input's
// element for output index i is (i / div) % mod. False otherwise.
inline bool PointwiseBlock(const std::vector<int64_t>& in, const std::vector<int64_t>& out, long long* div,
                           long long* mod) {
  const int rank = static_cast<int>(out.size()), off = rank - static_cast<int>(in.size());
  if (off < 0) return false;
  int lo = rank, hi = -1;
  for (int d = 0; d < rank; ++d) {
    const int64_t dim = d >= off ? in[static_cast<size_t>(d - off)] : 1;
    if (dim == 1) continue;
    if (dim != out[static_cast<size_t>(d)]) return false;
    lo = lo < d ? lo : d;
    hi = d;
  }
  for (int d = lo; d <= hi; ++d)  // no broadcast inside the block
    if ((d >= off ? in[static_cast<size_t>(d - off)] : 1) != out[static_cast<size_t>(d)]) return false;
  long long inner = 1, block = 1;
  for (int d = hi + 1; d < rank; ++d) inner *= out[static_cast<size_t>(d)];
  for (int d = lo; d <= hi; ++d) block *= out[static_cast<size_t>(d)];
  *div = hi < 0 ? 1 : inner;
  *mod = block;
  return true;
}
}  // namespace kiln
