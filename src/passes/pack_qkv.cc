// Build pass: the Q/K/V projections of one input → one product, read by
// kiln.Attention as head ranges (see pack_qkv.h).
#include "passes/pack_qkv.h"

#include <algorithm>
#include <optional>
#include <string>
#include <vector>

#include "ops/attention_layout.h"
#include "passes/attention_ranges.h"
#include "passes/pass_util.h"

namespace kiln {
namespace {

using passes::IsConstant;
using passes::IsOnnxOp;

// One of Q, K, V made as Reshape(product [+ bias]).
struct Projection {
  size_t slot = 0;           // 0 Q, 1 K, 2 V
  Node* product = nullptr;   // MatMul or Gemm
  Node* bias_add = nullptr;  // the Add after a MatMul, or nullptr
  Node* reshape = nullptr;
  const Tensor* weight = nullptr;
  int w_axis = 1;                // the weight's axis of the N columns
  const Tensor* bias = nullptr;  // the Add's constant or Gemm's C; nullptr when none
  int64_t columns = 0, heads = 0, head_dim = 0;
  // The Reshape's target with the head entry (at rank - 2) to be replaced;
  // 0 entries copy the product's leading dims.
  std::vector<int64_t> target;
};

// A constant of n elements that adds per column: [n] or [1, .., 1, n].
bool PerColumn(const Tensor& t, int64_t n) { return t.rank() >= 1 && t.numel() == n && t.dims().back() == n; }

class PackQkv {
 public:
  explicit PackQkv(Graph& g) : g_(g) {}

  int Run() {
    int rewritten = 0;
    for (Node* a : passes::KilnNodes(g_, "Attention")) rewritten += Rewrite(a) ? 1 : 0;
    return rewritten;
  }

 private:
  // The product [+ bias] → Reshape chain that makes attention input `slot`.
  std::optional<Projection> Trace(Node* a, size_t slot, AttentionLayout layout) const {
    Projection p;
    p.slot = slot;
    p.reshape = passes::SoleProducer(g_, a->input(slot));
    if (!IsOnnxOp(p.reshape, "Reshape") || !passes::IsPlainNode(p.reshape, 2) ||
        passes::AttrInt(*p.reshape, "allowzero", 0) != 0)
      return std::nullopt;
    Node* made = passes::SoleProducer(g_, p.reshape->input(0));
    if (IsOnnxOp(made, "Add") && passes::IsPlainNode(made, 2)) {
      const int c = IsConstant(made->input(1)) ? 1 : IsConstant(made->input(0)) ? 0 : -1;
      if (c < 0) return std::nullopt;
      p.bias_add = made;
      p.bias = &*made->input(static_cast<size_t>(c))->data;
      made = passes::SoleProducer(g_, made->input(static_cast<size_t>(1 - c)));
      if (!IsOnnxOp(made, "MatMul")) return std::nullopt;
    }
    p.product = made;
    if (!Product(&p)) return std::nullopt;
    const Shape& y = p.product->output(0)->shape();
    if (p.bias && (!PerColumn(*p.bias, p.columns) || p.bias->dtype() != p.weight->dtype() ||
                   !y.rank_known() || p.bias->rank() > y.rank()))
      return std::nullopt;
    return Heads(layout, p.product->output(0)->shape(), &p) ? std::optional<Projection>(p) : std::nullopt;
  }

  // Fills the weight and column count of a MatMul with a constant 2-D weight,
  // or a Gemm (transA 0) with a constant weight and an optional constant C.
  bool Product(Projection* p) const {
    Node* n = p->product;
    const bool matmul = IsOnnxOp(n, "MatMul"), gemm = IsOnnxOp(n, "Gemm");
    if ((!matmul && !gemm) || n->num_outputs() != 1 || !n->input(0) || !n->input(1)) return false;
    const Value* w = n->input(1);
    if (!IsConstant(w) || w->data->rank() != 2) return false;
    p->weight = &*w->data;
    if (matmul) {
      if (n->num_inputs() != 2) return false;
      p->columns = p->weight->dim(1);
      return true;
    }
    if (passes::AttrInt(*n, "transA", 0) != 0) return false;
    p->w_axis = passes::AttrInt(*n, "transB", 0) != 0 ? 0 : 1;
    p->columns = p->weight->dim(p->w_axis);
    if (n->num_inputs() > 2 && n->input(2)) {
      if (!IsConstant(n->input(2))) return false;
      p->bias = &*n->input(2)->data;
    }
    return true;
  }

  // The Reshape splits the product's last axis into [heads, D], which sit
  // next to each other in the op's layout for this input.
  // `in`: the Reshape's input's shape; p->columns its last dim.
  bool Heads(AttentionLayout layout, const Shape& in, Projection* p) const {
    const Shape& out = p->reshape->output(0)->shape();
    if (!out.rank_known() || !in.rank_known() || out.rank() < 3) return false;
    const int rank = out.rank();
    AttentionAxes ax;
    if (!AttentionAxesOf(layout, rank, &ax) || ax.h != rank - 2) return false;
    const Dim& h = out[static_cast<size_t>(rank - 2)];
    const Dim& d = out[static_cast<size_t>(rank - 1)];
    if (!h.known() || !d.known() || h.value() * d.value() != p->columns) return false;
    p->heads = h.value();
    p->head_dim = d.value();
    if (auto target = passes::ConstInts(p->reshape->input(1))) {
      // A constant target: its head and D entries explicit, and no 0 entry copying the product's last axis.
      if (static_cast<int>(target->size()) != rank || (*target)[static_cast<size_t>(rank - 2)] != p->heads ||
          (*target)[static_cast<size_t>(rank - 1)] != p->head_dim)
        return false;
      for (int j = in.rank() - 1; j < rank; ++j)
        if ((*target)[static_cast<size_t>(j)] == 0) return false;
      p->target = *target;
      return true;
    }
    // A computed target: it must keep the product's leading dims (then 0s copy them).
    if (in.rank() != rank - 1) return false;
    for (int j = 0; j < rank - 2; ++j)
      if (!passes::SameDim(in[static_cast<size_t>(j)], out[static_cast<size_t>(j)])) return false;
    p->target.assign(static_cast<size_t>(rank - 2), 0);
    p->target.push_back(p->heads);
    p->target.push_back(p->head_dim);
    return true;
  }

  // Gemm's attributes (MatMul has none); Product() already required transA 0.
  static bool SameGemmAttrs(const Node& a, const Node& b) {
    return passes::AttrInt(a, "transB", 0) == passes::AttrInt(b, "transB", 0) &&
           passes::AttrFloat(a, "alpha", 1.f) == passes::AttrFloat(b, "alpha", 1.f) &&
           passes::AttrFloat(a, "beta", 1.f) == passes::AttrFloat(b, "beta", 1.f);
  }

  // Biases pack when both have one of the same form, or, for MatMul products, when one has a bias Add and
  // the other none (Whisper's bias-free k_proj): its columns of the packed bias are zeros.
  static bool SameBiasForm(const Projection& a, const Projection& b) {
    if ((a.bias != nullptr) == (b.bias != nullptr)) return (a.bias_add != nullptr) == (b.bias_add != nullptr);
    return IsOnnxOp(a.product, "MatMul") && IsOnnxOp(b.product, "MatMul");
  }

  // Whether two projections can share one product (same_product: and their
  // products can become one; else only their head splits must agree).
  static bool Packable(const Projection& a, const Projection& b, bool same_product = true) {
    std::vector<int64_t> ta = a.target, tb = b.target;
    ta[ta.size() - 2] = tb[tb.size() - 2] = 0;
    if (!same_product) return a.head_dim == b.head_dim && ta == tb;
    return a.product->input(0) == b.product->input(0) && a.product->op_type == b.product->op_type &&
           SameGemmAttrs(*a.product, *b.product) && SameBiasForm(a, b) &&
           a.weight->dtype() == b.weight->dtype() && a.w_axis == b.w_axis && a.head_dim == b.head_dim &&
           ta == tb;
  }

  bool Rewrite(Node* a) {
    AttentionLayout slot_layout[3];
    if (a->attr("head_ranges") || a->num_inputs() < 3 || a->num_outputs() != 1 ||
        !passes::AttentionSlotLayouts(*a, slot_layout))
      return false;
    std::vector<Projection> found;
    for (size_t i = 0; i < 3; ++i) {
      if (!a->input(i) || (i > 0 && a->input(i) == a->input(i - 1)) || (i > 1 && a->input(i) == a->input(0)))
        continue;
      if (auto p = Trace(a, i, slot_layout[i])) found.push_back(*p);
    }
    // The largest set of packable projections (three slots: at most one set of two or more).
    std::vector<Projection> pack;
    for (const Projection& p : found) {
      std::vector<Projection> with;
      for (const Projection& q : found)
        if (Packable(p, q)) with.push_back(q);
      if (with.size() > pack.size()) pack = with;
    }
    if (pack.size() < 2) return ReadSplitInPlace(a, slot_layout);
    // Head ranges: packed inputs in slot order, the others whole.
    std::vector<int64_t> ranges(6, 0);
    int64_t heads = 0;
    for (const Projection& p : pack) {
      ranges[2 * p.slot] = heads;
      ranges[2 * p.slot + 1] = p.heads;
      heads += p.heads;
    }
    if (!passes::CompleteRanges(*a, slot_layout, &ranges)) return false;
    Value* packed = Emit(pack, heads);
    for (const Projection& p : pack) a->SetInput(p.slot, packed);
    a->attrs["head_ranges"] = Attribute::FromInts(ranges);
    for (const Projection& p : pack) {
      g_.RemoveNode(p.reshape);
      if (p.bias_add) g_.RemoveNode(p.bias_add);
      g_.RemoveNode(p.product);
    }
    return true;
  }

  // GPT-2's c_attn: one product split along its last axis by a Split whose
  // outputs, each through a head-splitting Reshape, are Q, K and V. The op reads
  // the Split's input, reshaped to [.., heads, D], as head ranges instead: the
  // Split's copy goes (no new product: the columns are already side by side).
  bool ReadSplitInPlace(Node* a, const AttentionLayout* slot_layout) {
    Node* split = nullptr;
    std::vector<Projection> parts;
    for (size_t i = 0; i < 3; ++i) {
      Projection p;
      p.slot = i;
      p.reshape = passes::SoleProducer(g_, a->input(i));
      if (!IsOnnxOp(p.reshape, "Reshape") || !passes::IsPlainNode(p.reshape, 2) ||
          passes::AttrInt(*p.reshape, "allowzero", 0) != 0)
        continue;
      Node* s = passes::SoleProducer(g_, p.reshape->input(0));
      if (!IsOnnxOp(s, "Split") || (split && s != split)) continue;
      split = s;
      const Shape& part = p.reshape->input(0)->shape();
      if (!part.rank_known() || part.rank() < 1 || !part.dims().back().known()) return false;
      p.columns = part.dims().back().value();
      if (!Heads(slot_layout[i], part, &p)) return false;
      parts.push_back(p);
    }
    // Every output of the Split is one of the op's inputs, along the last axis.
    if (!split || parts.size() != split->num_outputs() || parts.size() < 2 || !split->input(0)) return false;
    Value* y = split->input(0);
    const Shape& ys = y->shape();
    if (!ys.rank_known() || ys.rank() < 1) return false;
    int64_t axis = passes::AttrInt(*split, "axis", 0);
    if (axis < 0) axis += ys.rank();
    if (axis != ys.rank() - 1) return false;
    for (const Projection& p : parts)
      if (p.head_dim != parts[0].head_dim || !Packable(p, parts[0], /*same_product=*/false)) return false;
    // Head offsets from the Split's output order (its outputs lie side by side in that order).
    std::vector<int64_t> ranges(6, 0);
    int64_t heads = 0;
    for (size_t o = 0; o < split->num_outputs(); ++o) {
      auto it = std::find_if(parts.begin(), parts.end(),
                             [&](const Projection& p) { return p.reshape->input(0) == split->output(o); });
      if (it == parts.end()) return false;
      ranges[2 * it->slot] = heads;
      ranges[2 * it->slot + 1] = it->heads;
      heads += it->heads;
    }
    if (!ys.dims().back().known() || ys.dims().back().value() != heads * parts[0].head_dim) return false;
    if (!passes::CompleteRanges(*a, slot_layout, &ranges)) return false;
    const std::string base = split->name.empty() ? y->name() : split->name;
    Value* packed = HeadsReshape(parts[0], heads, y, split, base);
    for (const Projection& p : parts) a->SetInput(p.slot, packed);
    a->attrs["head_ranges"] = Attribute::FromInts(ranges);
    for (const Projection& p : parts) g_.RemoveNode(p.reshape);
    g_.RemoveNode(split);
    return true;
  }

  // The packed product's name: the products' names up to their last common
  // '/' ("/layers.0/qkv/MatMul" for split_projection's ".../MatMul/cols0_256"
  // and its siblings; "/layer.0/attention/self/packed_qkv" for HF's
  // ".../self/query/MatMul", ".../self/key/MatMul", ...).
  static std::string PackedName(const std::vector<Projection>& pack) {
    auto name = [](const Projection& p) {
      return p.product->name.empty() ? p.product->output(0)->name() : p.product->name;
    };
    std::string common = name(pack[0]);
    for (const Projection& p : pack) {
      const std::string n = name(p);
      size_t i = 0;
      while (i < common.size() && i < n.size() && common[i] == n[i]) ++i;
      common.resize(i);
    }
    const size_t slash = common.rfind('/');
    if (slash == std::string::npos || slash == 0) return name(pack[0]) + "/packed_qkv";
    const std::string dir = common.substr(0, slash);
    // Every name continued past the common '/' with one block of a split product: that product's name.
    bool split_blocks = true;
    for (const Projection& p : pack) split_blocks &= name(p).compare(slash, 5, "/cols") == 0;
    return split_blocks ? dir : dir + "/packed_qkv";
  }

  // The packed product [+ bias] and its Reshape to [.., heads, D], before the
  // first of the products it replaces; returns the Reshape's output.
  Value* Emit(const std::vector<Projection>& pack, int64_t heads) {
    const Projection& first = pack[0];
    Node* before = nullptr;
    for (Node* n : g_.nodes())
      if (std::any_of(pack.begin(), pack.end(), [n](const Projection& p) { return p.product == n; })) {
        before = n;
        break;
      }
    std::vector<const Tensor*> weights, biases;
    const bool any_bias = std::any_of(pack.begin(), pack.end(), [](const Projection& p) { return p.bias; });
    const bool bias_add =
        std::any_of(pack.begin(), pack.end(), [](const Projection& p) { return p.bias_add; });
    std::vector<Tensor> zeros;  // the bias-free projections' columns
    zeros.reserve(pack.size());
    for (const Projection& p : pack) {
      weights.push_back(p.weight);
      if (p.bias) {
        biases.push_back(p.bias);
      } else if (any_bias) {
        zeros.emplace_back(p.weight->dtype(), std::vector<int64_t>{p.columns});
        biases.push_back(&zeros.back());
      }
    }
    const std::string base = PackedName(pack);
    const int64_t columns = heads * first.head_dim;
    Value* x = first.product->input(0);
    Shape y_shape = first.product->output(0)->shape();
    std::vector<Dim> y_dims = y_shape.dims();
    y_dims.back() = Dim(columns);
    // The biases as one [N] vector.
    Value* bias = nullptr;
    if (!biases.empty()) {
      std::vector<Tensor> flat;
      for (const Tensor* b : biases) flat.push_back(b->Reshaped({b->numel()}));
      std::vector<const Tensor*> parts;
      for (const Tensor& f : flat) parts.push_back(&f);
      bias = passes::AddInitializer(g_, base + "_bias", passes::ConcatTensors(parts, 0));
    }
    Node* m = g_.InsertNode(before, first.product->op_type, g_.UniqueName(base));
    m->attrs = first.product->attrs;
    m->AddInput(x);
    m->AddInput(passes::AddInitializer(g_, base + "_w", passes::ConcatTensors(weights, first.w_axis)));
    if (bias && !bias_add) m->AddInput(bias);  // Gemm's C
    Value* y = passes::NewTensorValue(g_, base, x->dtype(), Shape(y_dims));
    m->AddOutput(y);
    if (bias_add)
      y = passes::InsertOp(g_, before, "Add", base + "/bias", {y, bias}, x->dtype(), Shape(y_dims));
    return HeadsReshape(first, heads, y, before, base);
  }

  // Reshape(y, [.., heads, D]) before `before`: `like`'s head split with the
  // packed head count.
  Value* HeadsReshape(const Projection& like, int64_t heads, Value* y, Node* before,
                      const std::string& base) {
    std::vector<int64_t> target = like.target;
    target[target.size() - 2] = heads;
    std::vector<Dim> r_dims = like.reshape->output(0)->shape().dims();
    r_dims[r_dims.size() - 2] = Dim(heads);
    Value* shape = passes::AddInt64Initializer(g_, base + "/heads_shape", target);
    return passes::InsertOp(g_, before, "Reshape", base + "/heads", {y, shape}, y->dtype(), Shape(r_dims));
  }

  Graph& g_;
};

}  // namespace

Status RunPackQkv(Model& model, PassContext& ctx) {
  if (!model.graph) return Status::Ok();
  if (PackQkv(*model.graph).Run() > 0) {
    model.graph->RemoveUnusedValues();
    ctx.changed = true;
  }
  return Status::Ok();
}

}  // namespace kiln
