// Unique: unique elements (or slices along `axis`), sorted or in order of
// first occurrence, with the indices, inverse_indices and counts outputs as
// the ONNX reference (numpy.unique) gives them.
#include <algorithm>
#include <functional>
#include <numeric>

#include "ops/op_table.h"
#include "ops/op_util.h"
#include "ops/shape_util.h"

namespace kiln {
namespace ops {
namespace {

// Items to deduplicate: `n` slices of `outer` x `inner` elements; item k is
// x[o, k, i] for all o, i (no axis: outer = inner = 1, n = numel).
struct Items {
  int64_t outer = 1, n = 0, inner = 1;
  int64_t Offset(int64_t k, int64_t e) const { return ((e / inner) * n + k) * inner + e % inner; }
  int64_t size() const { return outer * inner; }
};

// Compares items a and b lexicographically: -1, 0, 1.
template <class T>
int CompareItems(const T* p, const Items& it, int64_t a, int64_t b) {
  for (int64_t e = 0; e < it.size(); ++e) {
    const auto x = ToCompute(p[it.Offset(a, e)]);
    const auto y = ToCompute(p[it.Offset(b, e)]);
    if (x < y) return -1;
    if (y < x) return 1;
  }
  return 0;
}

int CompareStrings(const std::vector<std::string>& p, const Items& it, int64_t a, int64_t b) {
  for (int64_t e = 0; e < it.size(); ++e) {
    int c = p[static_cast<size_t>(it.Offset(a, e))].compare(p[static_cast<size_t>(it.Offset(b, e))]);
    if (c != 0) return c < 0 ? -1 : 1;
  }
  return 0;
}

}  // namespace

Status InferUnique(InferContext& ctx) {
  const Shape& in = ctx.input_shape(0);
  const DataType dt = ctx.input_dtype(0);
  Dim n = Dim::Unknown();
  if (!ctx.has_attr("axis")) {
    ctx.set_output(0, dt, Shape({Dim::Unknown()}));
    n = in.NumElements();
  } else if (in.rank_known()) {
    int64_t axis;
    KILN_RETURN_IF_ERROR(NormalizeAxis(ctx, ctx.attr_int("axis", 0), in.rank(), &axis));
    std::vector<Dim> out = in.dims();
    out[static_cast<size_t>(axis)] = Dim::Unknown();
    ctx.set_output(0, dt, Shape(out));
    n = in[static_cast<size_t>(axis)];
  } else {
    ctx.set_output(0, dt, Shape::Unranked());
  }
  ctx.set_output(1, DataType::kInt64, Shape({Dim::Unknown()}));
  ctx.set_output(2, DataType::kInt64, Shape({n}));
  ctx.set_output(3, DataType::kInt64, Shape({Dim::Unknown()}));
  return Status::Ok();
}

Status RunUnique(RunContext& ctx) {
  KILN_RETURN_IF_ERROR(shape_ops::RequireInputs(ctx, 1));
  const Tensor& x = ctx.input(0);
  const bool sorted = ctx.attr_int("sorted", 1) != 0;
  Items it;
  int64_t axis = -1;
  if (ctx.has_attr("axis")) {
    KILN_RETURN_IF_ERROR(NormalizeAxis(ctx, ctx.attr_int("axis", 0), x.rank(), &axis));
    for (int64_t d = 0; d < axis; ++d) it.outer *= x.dim(static_cast<int>(d));
    it.n = x.dim(static_cast<int>(axis));
    for (int64_t d = axis + 1; d < x.rank(); ++d) it.inner *= x.dim(static_cast<int>(d));
  } else {
    it.n = x.numel();
  }
  // Stable sort of item ids: equal items keep their order, so each group
  // starts with its first occurrence.
  std::vector<int64_t> order(static_cast<size_t>(it.n));
  std::iota(order.begin(), order.end(), 0);
  std::function<int(int64_t, int64_t)> cmp;
  if (x.dtype() == DataType::kString) {
    const std::vector<std::string>& s = x.strings();
    cmp = [&s, &it](int64_t a, int64_t b) { return CompareStrings(s, it, a, b); };
  } else {
    bool ok = DispatchAll(x.dtype(), [&](auto tag) {
      using T = decltype(tag);
      const T* p = x.data<T>();
      cmp = [p, &it](int64_t a, int64_t b) { return CompareItems(p, it, a, b); };
    });
    if (!ok) return ctx.UnsupportedError("unsupported type " + std::string(DataTypeName(x.dtype())));
  }
  std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return cmp(a, b) < 0; });
  // Groups in sorted order: first occurrence and count.
  std::vector<int64_t> first, count;
  std::vector<int64_t> group_of(static_cast<size_t>(it.n));
  for (size_t i = 0; i < order.size(); ++i) {
    if (i == 0 || cmp(order[i - 1], order[i]) != 0) {
      first.push_back(order[i]);
      count.push_back(0);
    }
    ++count.back();
    group_of[static_cast<size_t>(order[i])] = static_cast<int64_t>(first.size()) - 1;
  }
  const size_t g = first.size();
  // Output rank of each group (sorted: as is; else by first occurrence).
  std::vector<int64_t> rank_of(g);
  std::vector<size_t> groups(g);
  std::iota(groups.begin(), groups.end(), 0);
  if (!sorted)
    std::sort(groups.begin(), groups.end(), [&](size_t a, size_t b) { return first[a] < first[b]; });
  for (size_t r = 0; r < g; ++r) rank_of[groups[r]] = static_cast<int64_t>(r);
  const int64_t ng = static_cast<int64_t>(g);
  std::vector<int64_t> y_dims = axis < 0 ? std::vector<int64_t>{ng} : x.dims();
  if (axis >= 0) y_dims[static_cast<size_t>(axis)] = ng;
  Tensor y(x.dtype(), y_dims), indices(DataType::kInt64, {ng}), inverse(DataType::kInt64, {it.n}),
      counts(DataType::kInt64, {ng});
  ElementCopier copy(x, y);
  Items out_it = it;
  out_it.n = ng;
  for (size_t r = 0; r < g; ++r) {
    const size_t grp = groups[r];
    for (int64_t e = 0; e < it.size(); ++e)
      copy.Copy(it.Offset(first[grp], e), out_it.Offset(static_cast<int64_t>(r), e));
    indices.mutable_data<int64_t>()[r] = first[grp];
    counts.mutable_data<int64_t>()[r] = count[grp];
  }
  for (int64_t k = 0; k < it.n; ++k)
    inverse.mutable_data<int64_t>()[k] = rank_of[static_cast<size_t>(group_of[static_cast<size_t>(k)])];
  ctx.set_output(0, std::move(y));
  if (ctx.num_outputs() > 1) ctx.set_output(1, std::move(indices));
  if (ctx.num_outputs() > 2) ctx.set_output(2, std::move(inverse));
  if (ctx.num_outputs() > 3) ctx.set_output(3, std::move(counts));
  return Status::Ok();
}

}  // namespace ops
}  // namespace kiln
