// Build pass: batched-matrix-product Einsums → MatMul (see einsum_matmul.h).
#include "passes/einsum_matmul.h"

#include <optional>
#include <set>
#include <string>
#include <vector>

#include "passes/pass_util.h"

namespace kiln {
namespace {

struct Product {
  bool transpose_b = false;  // "<P>ik,<P>jk": B's last two axes swapped first
};

// The equation without spaces split at ',' and '->'; nullopt when it is not
// two operands and an explicit result.
std::optional<std::vector<std::string>> Terms(const std::string& equation) {
  std::string eq;
  for (char c : equation)
    if (c != ' ') eq += c;
  const size_t arrow = eq.find("->"), comma = eq.find(',');
  if (arrow == std::string::npos || comma == std::string::npos || comma > arrow ||
      eq.find(',', comma + 1) != std::string::npos)
    return std::nullopt;
  return std::vector<std::string>{eq.substr(0, comma), eq.substr(comma + 1, arrow - comma - 1), eq.substr(arrow + 2)};
}

std::optional<Product> AsProduct(const std::string& equation) {
  auto t = Terms(equation);
  if (!t) return std::nullopt;
  const std::string &a = (*t)[0], &b = (*t)[1], &y = (*t)[2];
  if (a.size() < 2 || a.size() != b.size() || a.size() != y.size()) return std::nullopt;
  for (const std::string* term : {&a, &b, &y}) {
    std::set<char> seen;
    for (char c : *term)
      if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) || !seen.insert(c).second) return std::nullopt;
  }
  const size_t r = a.size();
  const std::string batch = a.substr(0, r - 2);
  if (b.substr(0, r - 2) != batch || y.substr(0, r - 2) != batch) return std::nullopt;
  const char i = a[r - 2], k = a[r - 1];
  const char j = y[r - 1];
  if (y[r - 2] != i || i == j || i == k || j == k || batch.find(j) != std::string::npos ||
      batch.find(k) != std::string::npos || batch.find(i) != std::string::npos)
    return std::nullopt;
  if (b[r - 2] == k && b[r - 1] == j) return Product{false};
  if (b[r - 2] == j && b[r - 1] == k) return Product{true};
  return std::nullopt;
}

// Every batch dim of a and b is provably the same.
bool SameBatch(const Value* a, const Value* b) {
  const Shape &sa = a->shape(), &sb = b->shape();
  if (!sa.rank_known() || !sb.rank_known() || sa.rank() != sb.rank()) return false;
  for (int d = 0; d + 2 < sa.rank(); ++d)
    if (!passes::SameDim(sa[static_cast<size_t>(d)], sb[static_cast<size_t>(d)])) return false;
  return true;
}

}  // namespace

Status RunEinsumToMatMul(Model& model, PassContext& ctx) {
  if (!model.graph) return Status::Ok();
  Graph& g = *model.graph;
  std::vector<std::pair<Node*, Product>> found;
  for (Node* n : g.nodes()) {
    if (!passes::IsOnnxOp(n, "Einsum") || !passes::IsPlainNode(n, 2)) continue;
    const Attribute* eq = n->attr("equation");
    auto p = eq ? AsProduct(eq->s) : std::nullopt;
    if (!p || !SameBatch(n->input(0), n->input(1)) ||
        n->input(0)->shape().rank() != static_cast<int>(Terms(eq->s)->at(0).size()))
      continue;
    found.push_back({n, *p});
  }
  for (auto& [n, p] : found) {
    Value* b = n->input(1);
    if (p.transpose_b) {
      const int r = b->shape().rank();
      std::vector<int64_t> perm;
      std::vector<Dim> dims;
      for (int d = 0; d < r; ++d) perm.push_back(d < r - 2 ? d : (d == r - 2 ? r - 1 : r - 2));
      for (int64_t d : perm) dims.push_back(b->shape()[static_cast<size_t>(d)]);
      Value* bt = passes::NewTensorValue(g, b->name() + "/t", b->dtype(), Shape(dims));
      Node* t = g.InsertNode(n, "Transpose", g.UniqueName(n->name + "/b_t"));
      t->attrs["perm"] = Attribute::FromInts(perm);
      t->AddInput(b);
      t->AddOutput(bt);
      b = bt;
    }
    Node* mm = g.InsertNode(n, "MatMul", n->name);
    mm->AddInput(n->input(0));
    mm->AddInput(b);
    Value* y = n->output(0);
    g.RemoveNode(n);
    mm->AddOutput(y);
  }
  if (!found.empty()) ctx.changed = true;
  return Status::Ok();
}

}  // namespace kiln
