// Einsum: general Einstein summation. Explicit ("ij,jk->ik") and implicit
// ("ij,jk") outputs, ellipsis broadcasting, repeated labels within an operand
// (diagonals) and reductions. The reference walks every combination of
// labels; each operand's stride per label (summed for repeated labels) gives
// its offset.
#include <algorithm>
#include <map>
#include <string>
#include <vector>

#include "ops/einsum_plan.h"
#include "ops/linalg_matmul.h"
#include "ops/linalg_util.h"
#include "ops/op_table.h"

namespace kiln {
namespace ops {
namespace {

// Two-operand contraction through the GEMM kernel: labels split into batch
// (A, B and output), m (A and output), n (B and output) and k (A and B only);
// A is gathered to [batch, m, k], B to [batch, k, n], and the product
// scattered into the output's label order. Only used when every label of A
// and B is in two of (A, B, output), no label repeats within an operand and
// no dim broadcasts.
template <class Acc>
bool ContractWithGemm(const std::vector<int>& out_labels, const std::vector<std::vector<int>>& labels,
                      const std::vector<const Acc*>& data, const std::vector<std::vector<int64_t>>& dims,
                      const std::map<int, int64_t>& size, std::vector<Acc>* out) {
  if (labels.size() != 2) return false;
  auto has = [](const std::vector<int>& v, int l) { return std::find(v.begin(), v.end(), l) != v.end(); };
  for (size_t i = 0; i < 2; ++i)
    for (size_t d = 0; d < labels[i].size(); ++d) {
      const int l = labels[i][d];
      if (std::count(labels[i].begin(), labels[i].end(), l) != 1 || dims[i][d] != size.at(l)) return false;
      if (!has(labels[1 - i], l) && !has(out_labels, l)) return false;
    }
  std::vector<int> batch, m, n, k;
  for (int l : out_labels) (has(labels[0], l) ? (has(labels[1], l) ? batch : m) : n).push_back(l);
  for (int l : labels[0])
    if (has(labels[1], l) && !has(out_labels, l)) k.push_back(l);
  auto product = [&](const std::vector<int>& ls) {
    int64_t p = 1;
    for (int l : ls) p *= size.at(l);
    return p;
  };
  // Copies operand i into the given label order (row-major).
  auto gather = [&](size_t i, std::vector<std::vector<int>> groups) {
    std::vector<int> order;
    for (const auto& g : groups) order.insert(order.end(), g.begin(), g.end());
    const std::vector<int64_t> own = Strides(dims[i]);
    std::vector<int64_t> odims, ostr;
    for (int l : order) {
      odims.push_back(size.at(l));
      ostr.push_back(
          own[static_cast<size_t>(std::find(labels[i].begin(), labels[i].end(), l) - labels[i].begin())]);
    }
    std::vector<Acc> v;
    v.reserve(static_cast<size_t>(product(order)));
    ForEachBroadcast(odims, {ostr}, [&](const std::vector<int64_t>& off) { v.push_back(data[i][off[0]]); });
    return v;
  };
  const std::vector<Acc> a = gather(0, {batch, m, k}), b = gather(1, {batch, k, n});
  const int64_t B = product(batch), M = product(m), N = product(n), K = product(k);
  std::vector<Acc> c(static_cast<size_t>(B * M * N));
  for (int64_t i = 0; i < B; ++i)
    linalg::Product<Acc>(M, N, K, MatrixRef<Acc>::RowMajor(a.data() + i * M * K, K),
                         MatrixRef<Acc>::RowMajor(b.data() + i * K * N, N), c.data() + i * M * N);
  // c is laid out as [batch..., m..., n...]; walk the output order.
  std::vector<int> c_order = batch;
  c_order.insert(c_order.end(), m.begin(), m.end());
  c_order.insert(c_order.end(), n.begin(), n.end());
  std::vector<int64_t> c_dims;
  for (int l : c_order) c_dims.push_back(size.at(l));
  const std::vector<int64_t> c_str = Strides(c_dims);
  std::vector<int64_t> odims, ostr;
  for (int l : out_labels) {
    odims.push_back(size.at(l));
    ostr.push_back(
        c_str[static_cast<size_t>(std::find(c_order.begin(), c_order.end(), l) - c_order.begin())]);
  }
  out->clear();
  out->reserve(c.size());
  ForEachBroadcast(odims, {ostr}, [&](const std::vector<int64_t>& off) { out->push_back(c[off[0]]); });
  return true;
}

}  // namespace

Status InferEinsum(InferContext& ctx) {
  einsum::Equation eq;
  KILN_RETURN_IF_ERROR(einsum::ParseEquation(ctx, ctx.num_inputs(), &eq));
  std::vector<int> ranks;
  for (size_t i = 0; i < ctx.num_inputs(); ++i) {
    if (!ctx.input_shape(i).rank_known()) {
      ctx.set_output(0, ctx.input_dtype(0), Shape());
      return Status::Ok();
    }
    ranks.push_back(ctx.input_shape(i).rank());
  }
  const int ell_rank = einsum::EllipsisRank(eq, ranks);
  std::map<int, Dim> size;
  for (size_t i = 0; i < ranks.size(); ++i) {
    std::vector<int> labels;
    KILN_RETURN_IF_ERROR(einsum::OperandLabels(ctx, eq.inputs[i], ranks[i], ell_rank, &labels));
    for (size_t d = 0; d < labels.size(); ++d) {
      const Dim& x = ctx.input_shape(i)[d];
      auto it = size.find(labels[d]);
      if (it == size.end() || (it->second.known() && it->second.value() == 1)) {
        size[labels[d]] = x;
      } else if (x.known() && it->second.known() && x.value() != it->second.value() && x.value() != 1) {
        return ctx.Error("label sizes differ: " + x.ToString() + " vs " + it->second.ToString());
      } else if (!it->second.known() && x.known() && x.value() != 1) {
        it->second = x;
      }
    }
  }
  std::vector<Dim> out;
  for (int l : einsum::OutputLabels(eq, ell_rank)) {
    auto it = size.find(l);
    if (it == size.end()) return ctx.Error("output label does not appear in any input");
    out.push_back(it->second);
  }
  ctx.set_output(0, ctx.input_dtype(0), Shape(std::move(out)));
  return Status::Ok();
}

Status RunEinsum(RunContext& ctx) {
  const size_t n = ctx.num_inputs();
  if (n == 0) return ctx.Error("Einsum needs at least one input");
  const DataType dt = ctx.input(0).dtype();
  std::vector<std::vector<int64_t>> in_dims;
  for (size_t i = 0; i < n; ++i) {
    if (ctx.input(i).dtype() != dt) return ctx.Error("inputs have different element types");
    in_dims.push_back(ctx.input(i).dims());
  }
  EinsumPlan plan;
  KILN_RETURN_IF_ERROR(PlanEinsum(ctx, in_dims, &plan));
  const int64_t out_count = plan.out_count, inner_count = plan.inner_count;

  bool ok = linalg::DispatchAcc(dt, [&](auto tag) {
    using Acc = decltype(tag);
    std::vector<linalg::AccData<Acc>> in;
    for (size_t i = 0; i < n; ++i) in.push_back(linalg::AsAcc<Acc>(ctx.input(i)));
    std::vector<Acc> out(static_cast<size_t>(out_count), Acc(0));
    std::vector<const Acc*> ptrs;
    for (size_t i = 0; i < n; ++i) ptrs.push_back(in[i].ptr);
    const std::vector<int> out_labels(plan.order.begin(), plan.order.begin() + static_cast<std::ptrdiff_t>(plan.n_out));
    if (out_count > 0 && ContractWithGemm<Acc>(out_labels, plan.labels, ptrs, in_dims, plan.size, &out)) {
      // done
    } else if (inner_count > 0) {
      int64_t o = 0;
      ForEachBroadcast(plan.loop_dims, plan.strides, [&](const std::vector<int64_t>& off) {
        Acc p = Acc(1);
        for (size_t i = 0; i < n; ++i) p *= in[i].ptr[off[i]];
        out[static_cast<size_t>(o / inner_count)] += p;
        ++o;
      });
    }
    ctx.set_output(0, linalg::WriteAs<Acc>(dt, plan.out_dims, out));
  });
  if (!ok) return ctx.UnsupportedError("element type " + std::string(DataTypeName(dt)));
  return Status::Ok();
}

}  // namespace ops
}  // namespace kiln
