// Build-time fusion for the CUDA engine (see fuse_gpu.h).
#include "passes/fuse_gpu.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "ops/shape_util.h"
#include "passes/pass_util.h"

namespace kiln {
namespace {

using passes::IsConstant;
using passes::IsOnnxOp;
using passes::IsPlainNode;
using passes::SameDims;
using passes::SoleUser;

// The operand of the two-input node n that is not v; nullptr unless exactly
// one operand is v.
Value* OtherInput(const Node& n, const Value* v) {
  if (n.input(0) == v && n.input(1) != v) return n.input(1);
  if (n.input(1) == v && n.input(0) != v) return n.input(0);
  return nullptr;
}

// A Conv whose output may start a fusion.
bool IsConvNode(const Node& n) {
  if (!IsOnnxOp(&n, "Conv") || n.num_outputs() != 1 || !n.output(0) || n.num_inputs() < 2 ||
      n.num_inputs() > 3 || !n.input(0) || !n.input(1))
    return false;
  Value* y = n.output(0);
  return passes::IsArithmeticFloat(y->dtype()) && y->shape().rank_known();
}

// A Conv whose output could be fused into its only user.
bool IsConvCandidate(Graph& g, const Node& n) { return IsConvNode(n) && SoleUser(g, n.output(0)); }

// A constant of x's type holding one value within 1e-6 (relative) of
// `target`, or exactly `target` rounded to a 16-bit storage type, whose rank
// is at most x's (so broadcasting keeps x's shape).
bool IsScalarNear(const Value* c, const Value* x, double target) {
  if (!c || !IsConstant(c) || c->data->dtype() != x->dtype() || c->data->numel() != 1 ||
      !x->shape().rank_known() || c->data->rank() > x->shape().rank())
    return false;
  std::optional<double> v = passes::ConstScalar(c);
  if (!v) return false;
  if (std::fabs(*v - target) <= 1e-6 * std::fabs(target)) return true;
  return (x->dtype() == DataType::kFloat16 || x->dtype() == DataType::kBFloat16) &&
         *v == passes::FromDoubles(x->dtype(), {}, {target}).ScalarAt(0);
}

// A fusion found: the nodes it replaces (the first names the fused node, the
// last is the chain's last in schedule order), the fused op, its inputs and
// attributes, and the value it produces.
struct Fusion {
  std::string op;
  std::vector<Node*> chain;
  std::vector<Value*> inputs;  // nullptr: omitted
  AttributeMap attrs;
  Value* out = nullptr;
};

class FuseForGpu {
 public:
  FuseForGpu(Graph& g, int64_t opset) : g_(g), opset_(opset) {
    std::vector<Node*> nodes = g.nodes();
    for (size_t i = 0; i < nodes.size(); ++i) index_[nodes[i]] = i;
  }

  // Returns the number of fusions made.
  int Run() {
    int count = 0;
    for (Node* n : g_.nodes()) {
      if (removed_.count(n)) continue;
      Fusion f;
      bool found = false;
      if (IsConvNode(*n))
        found = MatchConv(n, &f);
      else if (IsOnnxOp(n, "MatMul"))
        found = MatchMatMul(n, &f);
      else if (IsOnnxOp(n, "Gemm"))
        found = MatchGemmRelu(n, &f);
      else if (passes::IsKilnOp(n, "F8MatMul"))
        found = MatchF8MatMul(n, &f);
      else if (IsOnnxOp(n, "Erf") || IsOnnxOp(n, "Tanh"))
        found = MatchGelu(n, &f);
      if (!found) continue;
      Apply(f);
      ++count;
    }
    return count;
  }

 private:
  bool MatchConv(Node* conv, Fusion* f) {
    Value* y = conv->output(0);
    Node* user = SoleUser(g_, y);
    f->op = "FusedConv";
    f->chain = {conv};
    f->attrs = conv->attrs;
    f->inputs = {conv->input(0), conv->input(1), conv->input(2)};
    f->out = y;
    if (user && IsOnnxOp(user, "Add") && IsPlainNode(user, 2)) {
      Value* z = user->input(0) == y ? user->input(1) : user->input(0);
      if (z == y || z->dtype() != y->dtype() || !SameDims(z->shape(), y->shape())) return false;
      // Both Add inputs are fusable convs: the later one takes the Add, so the
      // fused node moves the least.
      Node* zp = z->producer();
      if (zp && zp != conv && zp->graph() == &g_ && IsConvCandidate(g_, *zp) && index_.count(zp) &&
          index_.at(zp) > index_.at(conv))
        return false;
      f->chain.push_back(user);
      f->inputs.push_back(z);
      f->out = user->output(0);
      FollowActivation(f, true);
      return true;
    }
    return FollowActivation(f, true);
  }

  bool MatchMatMul(Node* mm, Fusion* f) {
    if (!IsPlainNode(mm, 2)) return false;
    Value* a = mm->input(0);
    Value* b = mm->input(1);
    Value* y = mm->output(0);
    if (!IsConstant(b) || b->data->rank() < 2 || !a->shape().rank_known() || a->shape().rank() < 2)
      return false;
    // Weights: B's batch dims are all 1 (the GPU folds A's batch into one GEMM
    // and adds the bias to every row).
    for (int d = 0; d + 2 < b->data->rank(); ++d)
      if (b->data->dim(d) != 1) return false;
    if (!passes::IsArithmeticFloat(y->dtype()) || b->data->dtype() != y->dtype() || !y->shape().rank_known())
      return false;
    f->op = "FusedMatMul";
    f->chain = {mm};
    f->inputs = {a, b, nullptr};
    f->out = y;
    return FollowProductEpilogue(f, 2, b->data->dim(b->data->rank() - 1));
  }

  // Gemm(A, B, C) as torch writes a 2-D Linear (transB 1; alpha, beta 1, a [N] or [1, N] bias), followed by a
  // Relu (VGG's and AlexNet's heads, MLP heads): FusedMatMul with B's columns as the weights. Only with the
  // Relu: a plain Gemm is one cuBLASLt call already.
  bool MatchGemmRelu(Node* gemm, Fusion* f) {
    if (gemm->num_inputs() < 2 || gemm->num_inputs() > 3 || !IsPlainNode(gemm, gemm->num_inputs()))
      return false;
    if (passes::AttrInt(*gemm, "transA", 0) != 0 || passes::AttrFloat(*gemm, "alpha", 1.f) != 1.f ||
        passes::AttrFloat(*gemm, "beta", 1.f) != 1.f)
      return false;
    Value* a = gemm->input(0);
    Value* b = gemm->input(1);
    Value* c = gemm->num_inputs() > 2 ? gemm->input(2) : nullptr;
    Value* y = gemm->output(0);
    if (!IsConstant(b) || b->data->rank() != 2 || !passes::HasRank(a, 2) ||
        !passes::IsArithmeticFloat(y->dtype()) || b->data->dtype() != y->dtype())
      return false;
    const bool trans_b = passes::AttrInt(*gemm, "transB", 0) != 0;
    const int64_t n = b->data->dim(trans_b ? 0 : 1);
    if (c && (!IsConstant(c) || c->data->dtype() != y->dtype() || c->data->numel() != n ||
              c->data->rank() > 2 || (c->data->rank() == 2 && c->data->dim(0) != 1)))
      return false;
    Node* relu = SoleUser(g_, y);
    if (!relu || !IsOnnxOp(relu, "Relu") || !IsPlainNode(relu, 1)) return false;
    Value* w = trans_b ? passes::AddInitializer(g_, b->name() + "_kn",
                                                shape_ops::PermuteCopy(*b->data, b->data->dims(), {1, 0}))
                       : b;
    Value* bias =
        c && c->data->rank() != 1 ? passes::AddInitializer(g_, c->name(), c->data->Reshaped({n})) : c;
    f->op = "FusedMatMul";
    f->chain = {gemm, relu};
    f->inputs = {a, w, bias};
    f->attrs["activation"] = Attribute::FromString("Relu");
    f->out = relu->output(0);
    return true;
  }

  // kiln.F8MatMul (build/fp8.cc, before this pass) takes the same epilogue
  // as FusedMatMul: its inputs 4 and 5 (ops/kiln_f8.cc).
  bool MatchF8MatMul(Node* mm, Fusion* f) {
    if (mm->num_inputs() != 4 || mm->num_outputs() != 1 || !mm->output(0) || mm->attr("activation"))
      return false;
    for (size_t i = 0; i < 4; ++i)
      if (!mm->input(i)) return false;
    Value* b = mm->input(2);
    if (!IsConstant(b) || b->data->rank() != 2 || !passes::IsArithmeticFloat(mm->output(0)->dtype()) ||
        !mm->output(0)->shape().rank_known())
      return false;
    f->op = "F8MatMul";
    f->chain = {mm};
    f->inputs = {mm->input(0), mm->input(1), b, mm->input(3), nullptr};
    f->attrs = mm->attrs;
    f->out = mm->output(0);
    return FollowProductEpilogue(f, 4, b->data->dim(0));
  }

  // Extends the product f (f->out its output, `n` columns) with a bias Add
  // into input `bias_at`, a residual Add appended as the next input, and a
  // Relu. False when nothing was taken, or only a bias-free, activation-free
  // chain that is not worth a fused node.
  bool FollowProductEpilogue(Fusion* f, size_t bias_at, int64_t n) {
    Value* y = f->out;
    // A bias: one value per column, [N] or [1,..,1,N], not of higher rank than y.
    Node* add = SoleUser(g_, y);
    Value* c = add && IsOnnxOp(add, "Add") && IsPlainNode(add, 2) ? OtherInput(*add, y) : nullptr;
    if (c && c != y && IsConstant(c) && c->data->dtype() == y->dtype()) {
      const Tensor& t = *c->data;
      if (n > 0 && t.rank() >= 1 && t.rank() <= y->shape().rank() && t.dim(t.rank() - 1) == n && t.numel() == n) {
        f->inputs[bias_at] = t.rank() == 1 ? c : passes::AddInitializer(g_, c->name(), t.Reshaped({n}));
        f->chain.push_back(add);
        f->out = add->output(0);
      }
    }
    // A residual Add of a same-shape value (cuBLASLt's C with beta = 1).
    Node* res = SoleUser(g_, f->out);
    if (res && IsOnnxOp(res, "Add") && IsPlainNode(res, 2)) {
      Value* z = OtherInput(*res, f->out);
      if (z && z->dtype() == y->dtype() && SameDims(z->shape(), f->out->shape())) {
        f->chain.push_back(res);
        f->inputs.push_back(z);
        f->out = res->output(0);
      }
    }
    // Without a bias (T5, Llama: bias-free Linear layers) the fusion is worth
    // it only with a residual or a Relu to take.
    return FollowActivation(f, false) || f->chain.size() > 1;
  }

  // Extends f with the activation that consumes f->out and sets the
  // activation attributes: Relu (FusedMatMul too), and for FusedConv Swish,
  // Clip with constant bounds, Sigmoid, GELU (erf form), LeakyRelu, and for depthwise and 1x1 convs
  // HardSwish and HardSigmoid (alpha, beta). Returns false when there is none.
  bool FollowActivation(Fusion* f, bool conv) {
    Value* v = f->out;
    f->attrs["activation"] = Attribute::FromString("");
    Node* sigmoid = nullptr;
    Node* mul = nullptr;
    if (conv && MatchSwish(v, &sigmoid, &mul)) {
      f->attrs["activation"] = Attribute::FromString("Swish");
      f->chain.push_back(sigmoid);
      f->chain.push_back(mul);
      f->out = mul->output(0);
      return true;
    }
    if (conv && FollowDecomposedGelu(f)) return true;
    Node* u = SoleUser(g_, v);
    if (!u || u->num_outputs() != 1 || !u->output(0)) return false;
    float lo = 0, hi = 0;
    if (IsOnnxOp(u, "Relu") && IsPlainNode(u, 1)) {
      f->attrs["activation"] = Attribute::FromString("Relu");
    } else if (conv && passes::SetConvActivation(u, &f->attrs)) {  // Sigmoid, erf GELU, LeakyRelu
    } else if (conv && IsOnnxOp(u, "Clip") && ClipBounds(*u, v->dtype(), &lo, &hi)) {
      f->attrs["activation"] = Attribute::FromString("Clip");
      f->attrs["activation_min"] = Attribute::FromFloat(lo);
      f->attrs["activation_max"] = Attribute::FromFloat(hi);
    } else if (!(conv && TakesHardActivation(*f->chain[0]) && passes::SetHardActivation(u, &f->attrs))) {
      return false;  // not HardSwish / HardSigmoid (whose attributes SetHardActivation wrote): no activation
    }
    f->chain.push_back(u);
    f->out = u->output(0);
    return true;
  }

  // The erf GELU an exporter wrote out (Div or Mul by √2 → Erf → Add 1 → Mul x → Mul 0.5, MatchGelu's forms)
  // on f->out, whose every use is in it: the chain joins f as its "Gelu" activation.
  bool FollowDecomposedGelu(Fusion* f) {
    Value* v = f->out;
    for (Node* scale : v->uses()) {
      if (!scale || scale->graph() != &g_ || scale->num_outputs() != 1 || !scale->output(0)) continue;
      Node* erf = SoleUser(g_, scale->output(0));
      Fusion gelu;
      if (!erf || !IsOnnxOp(erf, "Erf") || !MatchGelu(erf, &gelu) || gelu.inputs != std::vector<Value*>{v})
        continue;
      for (Node* use : v->uses())
        if (std::find(gelu.chain.begin(), gelu.chain.end(), use) == gelu.chain.end()) return false;
      if (passes::IsGraphOutput(g_, v)) return false;
      f->attrs["activation"] = Attribute::FromString("Gelu");
      f->chain.insert(f->chain.end(), gelu.chain.begin(), gelu.chain.end());
      f->out = gelu.out;
      return true;
    }
    return false;
  }

  // HardSwish and HardSigmoid go only into convolutions that kiln runs with
  // its own epilogue (depthwise: MobileNetV3's blocks) or as a product with a
  // pass after it anyway (1x1: its expansions and SE gates). cuDNN's graph API
  // has no hard activations, so a dense conv keeps its graph engine and the
  // activation its own kernel.
  static bool TakesHardActivation(const Node& conv) {
    const Value* w = conv.num_inputs() > 1 ? conv.input(1) : nullptr;
    std::optional<std::vector<int64_t>> d = w ? w->shape().concrete() : std::nullopt;
    if (!d || d->size() != 4) return false;
    const int64_t group = passes::AttrInt(conv, "group", 1);
    const bool pointwise = (*d)[2] == 1 && (*d)[3] == 1 && group == 1;
    const bool depthwise = (*d)[1] == 1 && group > 1 && group == (*d)[0];
    return pointwise || depthwise;
  }

  // v → Sigmoid(v) → Mul(v, sigmoid) (either operand order), where v's only
  // uses are that Sigmoid and that Mul and neither v nor the sigmoid is a
  // graph output.
  bool MatchSwish(Value* v, Node** sigmoid, Node** mul) {
    if (v->uses().size() != 2 || passes::IsAnyGraphOutput(g_, v)) return false;
    for (int i = 0; i < 2; ++i) {
      Node* s = v->uses()[static_cast<size_t>(i)];
      Node* m = v->uses()[static_cast<size_t>(1 - i)];
      if (s == m || s->graph() != &g_ || !IsOnnxOp(s, "Sigmoid") || !IsPlainNode(s, 1)) continue;
      if (SoleUser(g_, s->output(0)) != m || !IsOnnxOp(m, "Mul") || !IsPlainNode(m, 2) ||
          OtherInput(*m, v) != s->output(0))
        continue;
      *sigmoid = s;
      *mul = m;
      return true;
    }
    return false;
  }

  // Clip's bounds as floats (-inf/+inf when absent): attributes before opset
  // 11, constant scalar inputs of the clipped type after. False when a bound
  // is not constant or is not exactly a float (a float attribute could not
  // hold it, so the fused op would clip elsewhere).
  bool ClipBounds(const Node& clip, DataType dt, float* lo, float* hi) const {
    *lo = -std::numeric_limits<float>::infinity();
    *hi = std::numeric_limits<float>::infinity();
    if (opset_ < 11) {
      if (!IsPlainNode(&clip, 1)) return false;
      *lo = passes::AttrFloat(clip, "min", *lo);
      *hi = passes::AttrFloat(clip, "max", *hi);
      return true;
    }
    if (clip.num_inputs() < 1 || clip.num_inputs() > 3 || !clip.input(0)) return false;
    for (size_t i = 1; i < clip.num_inputs(); ++i) {
      const Value* b = clip.input(i);
      if (!b) continue;  // omitted bound
      if (!IsConstant(b) || b->data->dtype() != dt || b->data->numel() != 1) return false;
      std::optional<double> d = passes::ConstScalar(b);
      if (!d || static_cast<double>(static_cast<float>(*d)) != *d) return false;
      *(i == 1 ? lo : hi) = static_cast<float>(*d);
    }
    return true;
  }

  // The producer of v when it is a two-input `op` of this graph and v (not a graph output) has no other use.
  Node* Sole(Value* v, const char* op) const {
    Node* p = v ? v->producer() : nullptr;
    if (!p || p->graph() != &g_ || !IsOnnxOp(p, op) || !IsPlainNode(p, 2) || !SoleUser(g_, v)) return nullptr;
    return p;
  }

  // The operand of two-input node n that is not a one-element constant near `c` (IsScalarNear, in the
  // other operand's type), or nullptr.
  static Value* ScaledBy(const Node& n, double c) {
    for (size_t i = 0; i < 2; ++i)
      if (IsScalarNear(n.input(1 - i), n.input(i), c)) return n.input(i);
    return nullptr;
  }

  // x when p is x³: Pow(x, 3), Mul(x, Mul(x, x)) or Mul(Mul(x, x), x).
  Value* CubeRoot(Value* p, std::vector<Node*>* chain) const {
    if (Node* pow = Sole(p, "Pow")) {
      if (!IsScalarNear(pow->input(1), pow->input(0), 3.0)) return nullptr;
      chain->push_back(pow);
      return pow->input(0);
    }
    Node* m = Sole(p, "Mul");
    if (!m) return nullptr;
    for (size_t i = 0; i < 2; ++i) {
      Node* sq = Sole(m->input(i), "Mul");
      Value* x = m->input(1 - i);
      if (sq && sq->input(0) == x && sq->input(1) == x) {
        chain->insert(chain->end(), {sq, m});
        return x;
      }
    }
    return nullptr;
  }

  // x when u is √(2/π)·(x + 0.044715·x³), the tanh-GELU's argument as exporters write it:
  //   Mul(c, Add(x, Mul(0.044715, x³)))            torch's GELU(approximate="tanh"), HF's NewGELU
  //   Mul(Mul(x, c), Add(Mul(Mul(x, 0.044715), x), 1))    HF's FastGELU
  // (c = √(2/π); any operand order), intermediates single-use; the nodes go to `chain`.
  Value* TanhGeluArgument(Value* u, std::vector<Node*>* chain) const {
    Node* outer = Sole(u, "Mul");
    if (!outer) return nullptr;
    const double c = 0.7978845608028654, k = 0.044715;  // √(2/π)
    if (Value* v = ScaledBy(*outer, c)) {
      Node* add = Sole(v, "Add");
      if (!add) return nullptr;
      for (size_t i = 0; i < 2; ++i) {
        Node* w = Sole(add->input(i), "Mul");
        Value* p = w ? ScaledBy(*w, k) : nullptr;
        std::vector<Node*> nodes;
        Value* x = p ? CubeRoot(p, &nodes) : nullptr;
        if (x && x == add->input(1 - i)) {
          chain->insert(chain->end(), nodes.begin(), nodes.end());
          chain->insert(chain->end(), {w, add, outer});
          return x;
        }
      }
      return nullptr;
    }
    for (size_t i = 0; i < 2; ++i) {
      Node* s1 = Sole(outer->input(i), "Mul");
      Node* s4 = Sole(outer->input(1 - i), "Add");
      Value* x = s1 ? ScaledBy(*s1, c) : nullptr;
      Node* s3 = s4 ? Sole(ScaledBy(*s4, 1.0), "Mul") : nullptr;
      if (!x || !s3) continue;
      for (size_t j = 0; j < 2; ++j) {
        Node* s2 = Sole(s3->input(j), "Mul");
        if (s2 && s3->input(1 - j) == x && ScaledBy(*s2, k) == x) {
          chain->insert(chain->end(), {s1, s2, s3, s4, outer});
          return x;
        }
      }
    }
    return nullptr;
  }

  // The GELU chain around `inner` (an Erf or a Tanh), as exporters write it:
  //   erf:  d = Div(x, √2) or Mul(x, 1/√2);  a = Add(Erf(d), 1)
  //   tanh: a = Add(Tanh(TanhGeluArgument), 1)
  // then Mul(Mul(x, a), 0.5),  Mul(Mul(x, 0.5), a)  or  Mul(Mul(a, 0.5), x)
  // (either operand order of Add/Mul), every intermediate single-use and not
  // a graph output, constants one-element (IsScalarNear).
  bool MatchGelu(Node* inner, Fusion* f) {
    if (!IsPlainNode(inner, 1)) return false;
    const bool erf = IsOnnxOp(inner, "Erf");
    Value* d = inner->input(0);
    Value* x = nullptr;
    std::vector<Node*> head;
    if (erf) {
      Node* scale = d->producer();
      if (!scale || scale->graph() != &g_ || SoleUser(g_, d) != inner || !IsPlainNode(scale, 2)) return false;
      if (IsOnnxOp(scale, "Div") && IsScalarNear(scale->input(1), scale->input(0), std::sqrt(2.0)))
        x = scale->input(0);
      else if (IsOnnxOp(scale, "Mul"))
        x = ScaledBy(*scale, std::sqrt(0.5));
      head = {scale};
    } else {
      x = TanhGeluArgument(d, &head);
    }
    if (!x || !passes::IsArithmeticFloat(x->dtype())) return false;
    Node* add = SoleUser(g_, inner->output(0));
    if (!add || !IsOnnxOp(add, "Add") || !IsPlainNode(add, 2) ||
        !IsScalarNear(OtherInput(*add, inner->output(0)), x, 1.0))
      return false;
    Value* a = add->output(0);
    Node* m1 = SoleUser(g_, a);
    if (!m1 || !IsOnnxOp(m1, "Mul") || !IsPlainNode(m1, 2)) return false;
    Value* p = OtherInput(*m1, a);
    if (!p) return false;
    f->op = "Gelu";
    f->chain = head;
    f->chain.insert(f->chain.end(), {inner, add, m1});
    f->inputs = {x};
    f->attrs["approximate"] = Attribute::FromString(erf ? "none" : "tanh");
    Node* half = p->producer();
    if (p != x && half && half->graph() == &g_ && SoleUser(g_, p) == m1 && IsOnnxOp(half, "Mul") &&
        IsPlainNode(half, 2) && IsScalarNear(OtherInput(*half, x), x, 0.5)) {
      // Mul(Mul(x, 0.5), a)
      f->chain.insert(f->chain.begin() + 1, half);
      f->out = m1->output(0);
      return true;
    }
    // Mul(Mul(x, a), 0.5) or Mul(Mul(a, 0.5), x)
    const bool x_first = p == x;
    if (!x_first && !IsScalarNear(p, x, 0.5)) return false;
    Node* m2 = SoleUser(g_, m1->output(0));
    if (!m2 || !IsOnnxOp(m2, "Mul") || !IsPlainNode(m2, 2)) return false;
    Value* q = OtherInput(*m2, m1->output(0));
    if (!q || (x_first ? !IsScalarNear(q, x, 0.5) : q != x)) return false;
    f->chain.push_back(m2);
    f->out = m2->output(0);
    return true;
  }

  // The fused node takes the chain's last node's place and output value.
  void Apply(const Fusion& f) {
    Node* first = f.chain.front();
    Node* last = f.chain.back();
    Node* fused = g_.InsertNode(last, f.op, first->name, "kiln");
    fused->attrs = f.attrs;
    size_t count = f.inputs.size();
    while (count > 0 && !f.inputs[count - 1]) --count;  // drop trailing omitted inputs
    for (size_t i = 0; i < count; ++i) fused->AddInput(f.inputs[i]);
    for (auto it = f.chain.rbegin(); it != f.chain.rend(); ++it) {
      removed_.insert(*it);
      g_.RemoveNode(*it);
    }
    fused->AddOutput(f.out);
  }

  Graph& g_;
  const int64_t opset_;  // default domain
  std::unordered_map<const Node*, size_t> index_;
  std::unordered_set<const Node*> removed_;
};

}  // namespace

Status RunFuseForGpu(Model& model, PassContext& ctx) {
  if (!model.graph) return InvalidArgument("model has no graph");
  passes::FinishKilnRewrite(model, ctx, FuseForGpu(*model.graph, model.OpsetOf("")).Run());
  return Status::Ok();
}

}  // namespace kiln
