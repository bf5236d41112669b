// Einsum's equation parser and plan (einsum_plan.h); the CUDA kernel shares them with the CPU reference.
#include "ops/einsum_plan.h"

#include <algorithm>
#include <string>

#include "ops/op_util.h"

namespace kiln {
namespace ops {
namespace einsum {
namespace {

int LetterId(char c) { return c >= 'a' && c <= 'z' ? c - 'a' + 26 : (c >= 'A' && c <= 'Z' ? c - 'A' : -1); }

Status ParseTerm(const NodeContext& ctx, const std::string& s, Term* t) {
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '.') {
      if (t->ellipsis_at >= 0 || s.compare(i, 3, "...") != 0)
        return ctx.Error("malformed ellipsis in '" + s + "'");
      t->ellipsis_at = static_cast<int>(t->letters.size());
      i += 2;
      continue;
    }
    const int id = LetterId(s[i]);
    if (id < 0) return ctx.Error(std::string("invalid label '") + s[i] + "' in equation");
    t->letters.push_back(id);
  }
  return Status::Ok();
}

}  // namespace

Status ParseEquation(const NodeContext& ctx, size_t num_inputs, Equation* eq) {
  std::string e;
  for (char c : ctx.attr_string("equation"))
    if (c != ' ') e += c;
  const size_t arrow = e.find("->");
  const std::string lhs = arrow == std::string::npos ? e : e.substr(0, arrow);
  eq->explicit_output = arrow != std::string::npos;
  size_t start = 0;
  while (true) {
    const size_t comma = lhs.find(',', start);
    Term t;
    KILN_RETURN_IF_ERROR(ParseTerm(
        ctx, lhs.substr(start, comma == std::string::npos ? std::string::npos : comma - start), &t));
    eq->inputs.push_back(t);
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  if (eq->inputs.size() != num_inputs)
    return ctx.Error("equation has " + std::to_string(eq->inputs.size()) + " operands but the node has " +
                     std::to_string(num_inputs) + " inputs");
  if (eq->explicit_output) {
    KILN_RETURN_IF_ERROR(ParseTerm(ctx, e.substr(arrow + 2), &eq->output));
    std::vector<int> sorted = eq->output.letters;
    std::sort(sorted.begin(), sorted.end());
    if (std::adjacent_find(sorted.begin(), sorted.end()) != sorted.end())
      return ctx.Error("output labels must be distinct");
  }
  return Status::Ok();
}

Status OperandLabels(const NodeContext& ctx, const Term& t, int rank, int ell_rank, std::vector<int>* out) {
  const int n = static_cast<int>(t.letters.size());
  const int ell = rank - n;
  if (ell < 0 || (t.ellipsis_at < 0 && ell != 0))
    return ctx.Error("operand rank " + std::to_string(rank) + " does not match its equation term");
  out->clear();
  for (int i = 0; i <= n; ++i) {
    if (i == t.ellipsis_at)
      for (int k = 0; k < ell; ++k) out->push_back(kEllipsisBase + ell_rank - ell + k);
    if (i < n) out->push_back(t.letters[static_cast<size_t>(i)]);
  }
  return Status::Ok();
}

std::vector<int> OutputLabels(const Equation& eq, int ell_rank) {
  std::vector<int> out;
  if (eq.explicit_output) {
    const Term& t = eq.output;
    const int n = static_cast<int>(t.letters.size());
    for (int i = 0; i <= n; ++i) {
      if (i == t.ellipsis_at)
        for (int k = 0; k < ell_rank; ++k) out.push_back(kEllipsisBase + k);
      if (i < n) out.push_back(t.letters[static_cast<size_t>(i)]);
    }
    return out;
  }
  for (int k = 0; k < ell_rank; ++k) out.push_back(kEllipsisBase + k);
  std::map<int, int> count;
  for (const Term& t : eq.inputs)
    for (int l : t.letters) ++count[l];
  for (const auto& [l, c] : count)  // ids 0-25 are 'A'-'Z', 26-51 'a'-'z': ASCII order
    if (c == 1) out.push_back(l);
  return out;
}

int EllipsisRank(const Equation& eq, const std::vector<int>& ranks) {
  int r = 0;
  for (size_t i = 0; i < eq.inputs.size(); ++i)
    if (eq.inputs[i].ellipsis_at >= 0)
      r = std::max(r, ranks[i] - static_cast<int>(eq.inputs[i].letters.size()));
  return r;
}

}  // namespace einsum

Status PlanEinsum(const NodeContext& ctx, const std::vector<std::vector<int64_t>>& dims, EinsumPlan* plan) {
  const size_t n = dims.size();
  if (n == 0) return ctx.Error("Einsum needs at least one input");
  einsum::Equation eq;
  KILN_RETURN_IF_ERROR(einsum::ParseEquation(ctx, n, &eq));
  std::vector<int> ranks;
  for (const auto& d : dims) ranks.push_back(static_cast<int>(d.size()));
  const int ell_rank = einsum::EllipsisRank(eq, ranks);
  EinsumPlan& p = *plan;
  p = EinsumPlan{};
  p.labels.resize(n);
  for (size_t i = 0; i < n; ++i) {
    KILN_RETURN_IF_ERROR(einsum::OperandLabels(ctx, eq.inputs[i], ranks[i], ell_rank, &p.labels[i]));
    for (size_t d = 0; d < p.labels[i].size(); ++d) {
      const int64_t x = dims[i][d];
      auto it = p.size.find(p.labels[i][d]);
      if (it == p.size.end() || it->second == 1)
        p.size[p.labels[i][d]] = x;
      else if (x != it->second && x != 1)
        return ctx.Error("label sizes differ: " + std::to_string(x) + " vs " + std::to_string(it->second));
    }
  }
  // Loop order: output labels, then the summed ones.
  p.order = einsum::OutputLabels(eq, ell_rank);
  p.n_out = p.order.size();
  for (int l : p.order) {
    if (!p.size.count(l)) return ctx.Error("output label does not appear in any input");
    p.out_dims.push_back(p.size[l]);
  }
  for (const auto& [l, s] : p.size)
    if (std::find(p.order.begin(), p.order.end(), l) == p.order.end()) p.order.push_back(l);
  // Stride of every operand along every loop label (0 where absent or broadcast).
  p.strides.assign(n, std::vector<int64_t>(p.order.size(), 0));
  for (size_t i = 0; i < n; ++i) {
    const std::vector<int64_t> own = Strides(dims[i]);
    for (size_t d = 0; d < p.labels[i].size(); ++d) {
      if (dims[i][d] == 1 && p.size[p.labels[i][d]] != 1) continue;
      const size_t pos =
          static_cast<size_t>(std::find(p.order.begin(), p.order.end(), p.labels[i][d]) - p.order.begin());
      p.strides[i][pos] += own[d];
    }
  }
  for (int l : p.order) p.loop_dims.push_back(p.size[l]);
  for (size_t k = 0; k < p.order.size(); ++k) (k < p.n_out ? p.out_count : p.inner_count) *= p.loop_dims[k];
  return Status::Ok();
}

}  // namespace ops
}  // namespace kiln
