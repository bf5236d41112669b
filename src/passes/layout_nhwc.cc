// Channels-last layout for the CUDA engine (see layout_nhwc.h).
#include "passes/layout_nhwc.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "ops/quant_slots.h"
#include "ops/shape_util.h"
#include "passes/dce.h"
#include "passes/pass_util.h"

namespace kiln {
namespace {

const std::vector<int64_t> kToNhwc = {0, 2, 3, 1};
const std::vector<int64_t> kToNchw = {0, 3, 1, 2};

bool IsDefaultDomain(const Node& n) { return n.domain.empty() || n.domain == "ai.onnx"; }

bool IsRank4(const Value* v) { return passes::HasRank(v, 4); }

Shape Permuted(const Shape& s, const std::vector<int64_t>& perm) {
  std::vector<Dim> d;
  for (int64_t p : perm) d.push_back(s[static_cast<size_t>(p)]);
  return Shape(d);
}

bool IsPool(const Node& n) {
  if (!IsDefaultDomain(n)) return false;
  if (n.op_type == "MaxPool") return n.num_outputs() == 1 || !n.output(1);
  return n.op_type == "AveragePool" || n.op_type == "GlobalAveragePool" || n.op_type == "GlobalMaxPool";
}

// The NHWC axis of NCHW axis `a` of a rank-4 tensor (negative axes allowed);
// -1 when out of range.
int64_t NhwcAxis(int64_t a) {
  if (a < 0) a += 4;
  for (int64_t j = 0; j < 4; ++j)
    if (kToNhwc[static_cast<size_t>(j)] == a) return j;
  return -1;
}

bool IsConvType(DataType dt) {
  return dt == DataType::kFloat || dt == DataType::kFloat16 || dt == DataType::kBFloat16;
}

// Conv or kiln.FusedConv with 2 spatial dims and constant 4-D weights.
bool IsConvertibleConv(const Node& n) {
  bool conv = IsDefaultDomain(n) && n.op_type == "Conv";
  bool fused = n.domain == "kiln" && n.op_type == "FusedConv";
  if (!conv && !fused) return false;
  if (n.num_outputs() != 1 || !IsRank4(n.output(0)) || !IsRank4(n.input(0))) return false;
  const Value* w = n.input(1);
  return w && passes::IsConstant(w) && w->data->rank() == 4 && IsConvType(n.output(0)->dtype());
}

// kiln.QConv with 2 spatial dims and constant 4-D weights (passes/fold_qdq.cc's INT8 convolutions).
bool IsConvertibleQConv(const Node& n) {
  if (n.domain != "kiln" || n.op_type != "QConv" || n.num_outputs() != 1 || n.num_inputs() < 5) return false;
  const Value* w = n.input(3);
  return IsRank4(n.output(0)) && IsRank4(n.input(0)) && w && passes::IsConstant(w) && w->data->rank() == 4;
}

// QuantizeLinear / DequantizeLinear with a constant per-tensor scale and zero point: elementwise.
bool IsPerTensorQdq(const Node& n) {
  if (!passes::IsOnnxOp(&n, "QuantizeLinear") && !passes::IsOnnxOp(&n, "DequantizeLinear")) return false;
  if (n.num_outputs() != 1 || n.num_inputs() < 2 || !n.input(0)) return false;
  for (size_t i = 1; i < n.num_inputs(); ++i)
    if (n.input(i) && (!passes::IsConstant(n.input(i)) || n.input(i)->data->numel() != 1)) return false;
  return true;
}

class ChannelsLast {
 public:
  explicit ChannelsLast(Graph& g) : g_(g) {}

  int Run() {
    FindPermutedValues();
    int rewritten = 0;
    for (Node* n : g_.nodes()) {
      if (IsConvertibleConv(*n)) {
        RewriteConv(n);
      } else if (IsConvertibleQConv(*n)) {
        RewriteQConv(n);
      } else if (IsPerTensorQdq(*n) && IsRank4(n->input(0)) && HasNhwc(n->input(0))) {
        RewriteQdq(n);
      } else if (IsPool(*n) && IsRank4(n->input(0)) && HasNhwc(n->input(0))) {
        RewritePool(n);
      } else if (IsConstantResize(*n) && HasNhwc(n->input(0))) {
        RewriteResize(n);
      } else if (!RewriteElementwise(n) && !RewriteAxisOp(n) && !RewriteSplit(n) &&
                 !RewriteChannelShuffle(n) && !RewriteBatchNorm(n)) {
        continue;
      }
      ++rewritten;
    }
    return rewritten;
  }

 private:
  Value* NewValue(const std::string& base, DataType dt, Shape shape) {
    return passes::NewTensorValue(g_, base, dt, std::move(shape));
  }

  Node* AddTranspose(Node* before, Value* in, Value* out, const std::vector<int64_t>& perm) {
    Node* t = g_.InsertNode(before, "Transpose", g_.UniqueName(out->name() + "/transpose"));
    t->attrs["perm"] = Attribute::FromInts(perm);
    t->AddInput(in);
    t->AddOutput(out);
    return t;
  }

  // v has an NHWC twin, or may have one for free.
  bool HasNhwc(Value* v) const { return nhwc_.count(v) || free_.count(v); }

  // A 4-D value made by a permutation chain (a Transpose, then reshapes) costs
  // nothing to have in NHWC as well: permute_chains folds the Transpose to
  // NHWC into the chain. When every user of such a value is an op this pass
  // runs on NHWC inputs, and one of them is a convolution, pooling or
  // BatchNorm (a CNN's, not attention's rank-4 values), they all may (MaxViT's
  // window departition feeding the next block's BatchNorm and its Pad +
  // AveragePool shortcut).
  void FindPermutedValues() {
    for (Node* n : g_.nodes()) {
      if (n->num_outputs() != 1 || !IsRank4(n->output(0)) || !IsConvType(n->output(0)->dtype())) continue;
      Value* v = n->output(0);
      if (v->uses().empty() || passes::IsAnyGraphOutput(g_, v) || !MadeByPermutation(n)) continue;
      bool all = true, anchor = false;
      for (const Node* u : v->uses()) {
        all = all && u->graph() == &g_ && RunsNhwcGivenItsInput(*u);
        anchor = anchor || IsConvertibleConv(*u) || IsPool(*u) || IsBatchNorm(*u);
      }
      if (all && anchor) free_.insert(v);
    }
  }

  bool MadeByPermutation(Node* n) {
    while (n && (passes::IsOnnxOp(n, "Reshape") || passes::IsOnnxOp(n, "Squeeze") ||
                 passes::IsOnnxOp(n, "Unsqueeze") || passes::IsOnnxOp(n, "Flatten")))
      n = passes::SoleProducer(g_, n->input(0));
    return passes::IsOnnxOp(n, "Transpose");
  }

  static bool IsBatchNorm(const Node& u) { return IsDefaultDomain(u) && u.op_type == "BatchNormalization"; }

  static bool RunsNhwcGivenItsInput(const Node& u) {
    if (IsConvertibleConv(u) || IsPool(u) || IsBatchNorm(u) || passes::IsUnaryElementwise(u) ||
        passes::IsBinaryElementwise(u))
      return true;
    return IsDefaultDomain(u) && (u.op_type == "Pad" || u.op_type == "Concat" || u.op_type == "Slice");
  }

  // The NHWC form of a 4-D NCHW value: its twin, or a new Transpose before `user`.
  Value* Nhwc(Value* v, Node* user) {
    auto it = nhwc_.find(v);
    if (it != nhwc_.end()) return it->second;
    Value* t = NewValue(v->name() + "_nhwc", v->dtype(), Permuted(v->shape(), kToNhwc));
    AddTranspose(user, v, t, kToNhwc);
    nhwc_[v] = t;
    return t;
  }

  // A constant operand of a binary op, broadcast-compatible in NHWC: padded to
  // rank 4 with leading 1s, then permuted. nullptr when it cannot be.
  Value* PermutedConstant(Value* c) {
    const Tensor& t = *c->data;
    if (t.rank() > 4) return nullptr;
    std::vector<int64_t> dims(static_cast<size_t>(4 - t.rank()), 1);
    for (int64_t d : t.dims()) dims.push_back(d);
    return passes::AddInitializer(g_, c->name() + "_nhwc", shape_ops::PermuteCopy(t, dims, kToNhwc));
  }

  // Replaces `n` (output 0: the NCHW value y) by `m`, which produces y's NHWC
  // twin; a Transpose back to NCHW keeps y for its other users.
  void Replace(Node* n, Node* m) {
    Value* y = n->output(0);
    Value* twin = NewValue(y->name() + "_nhwc", y->dtype(), Permuted(y->shape(), kToNhwc));
    m->AddOutput(twin);
    Node* back = g_.InsertNode(n, "Transpose", g_.UniqueName(y->name() + "/to_nchw"));
    back->attrs["perm"] = Attribute::FromInts(kToNchw);
    back->AddInput(twin);
    g_.RemoveNode(n);
    back->AddOutput(y);
    nhwc_[y] = twin;
  }

  void RewriteConv(Node* n) {
    Value* x = Nhwc(n->input(0), n);
    Value* z = n->num_inputs() > 3 && n->input(3) ? Nhwc(n->input(3), n) : nullptr;
    const Tensor& w = *n->input(1)->data;
    Value* w_khwc = passes::AddInitializer(g_, n->input(1)->name() + "_khwc", shape_ops::PermuteCopy(w, w.dims(), kToNhwc));
    Node* m = g_.InsertNode(n, "FusedConvNhwc", n->name, "kiln");
    m->attrs = n->attrs;
    if (!m->attr("activation")) m->attrs["activation"] = Attribute::FromString("");
    m->AddInput(x);
    m->AddInput(w_khwc);
    Value* b = n->num_inputs() > 2 ? n->input(2) : nullptr;
    if (b || z) m->AddInput(b);
    if (z) m->AddInput(z);
    Replace(n, m);
  }

  // kiln.QConv → kiln.QConvNhwc: x and z (input 9) channels-last, w [M, R, S, C/group].
  void RewriteQConv(Node* n) {
    using quant_slots::kW;
    using quant_slots::kZ;
    Node* m = g_.InsertNode(n, "QConvNhwc", n->name, "kiln");
    m->attrs = n->attrs;
    for (size_t i = 0; i < n->num_inputs(); ++i) {
      Value* v = n->input(i);
      if (v && (i == 0 || i == kZ)) {
        v = Nhwc(v, m);
      } else if (i == kW) {
        const Tensor& w = *v->data;
        v = passes::AddInitializer(g_, v->name() + "_khwc", shape_ops::PermuteCopy(w, w.dims(), kToNhwc));
      }
      m->AddInput(v);
    }
    Replace(n, m);
  }

  // A per-tensor Quantize/DequantizeLinear of a value with an NHWC twin runs on the twin.
  void RewriteQdq(Node* n) {
    Node* m = g_.InsertNode(n, n->op_type, n->name, n->domain);
    m->attrs = n->attrs;
    m->AddInput(Nhwc(n->input(0), m));
    for (size_t i = 1; i < n->num_inputs(); ++i) m->AddInput(n->input(i));
    Replace(n, m);
  }

  void RewritePool(Node* n) {
    Value* x = Nhwc(n->input(0), n);
    Node* m = g_.InsertNode(n, "PoolNhwc", n->name, "kiln");
    m->attrs = n->attrs;
    m->attrs["pool"] = Attribute::FromString(n->op_type);
    m->AddInput(x);
    Replace(n, m);
  }

  // A Resize (opset 11+, no axes attribute) of a 4-D value by constant roi/scales/sizes: every per-axis
  // constant in NHWC order (roi's starts and ends each). The GPU kernel resizes any axes of any layout
  // (FPN and HRNet upsampling, YOLO's neck), so the map no longer goes back to NCHW and forth around it.
  static bool IsConstantResize(const Node& n) {
    if (!passes::IsOnnxOp(&n, "Resize") || n.num_inputs() < 2 || n.num_outputs() != 1 || n.attr("axes") ||
        !IsRank4(n.input(0)) || !IsRank4(n.output(0)))
      return false;
    for (size_t i = 1; i < n.num_inputs(); ++i) {
      const Value* v = n.input(i);
      if (v && !(passes::IsConstant(v) && (v->data->numel() == 0 || v->data->numel() == (i == 1 ? 8 : 4))))
        return false;
    }
    return true;
  }

  void RewriteResize(Node* n) {
    std::vector<Value*> inputs = {Nhwc(n->input(0), n)};
    for (size_t i = 1; i < n->num_inputs(); ++i) {
      Value* v = n->input(i);
      if (!v || v->data->numel() == 0) {
        inputs.push_back(v);
        continue;
      }
      // Element j of the NHWC constant is element perm[j] of the NCHW one (roi: starts, then ends).
      const std::vector<int64_t> perm = i == 1 ? std::vector<int64_t>{0, 2, 3, 1, 4, 6, 7, 5} : kToNhwc;
      const Tensor& t = *v->data;
      Tensor permuted(t.dtype(), {static_cast<int64_t>(perm.size())});
      const size_t es = ElementSize(t.dtype());
      for (size_t j = 0; j < perm.size(); ++j)
        std::memcpy(static_cast<char*>(permuted.mutable_raw()) + j * es,
                    static_cast<const char*>(t.raw()) + static_cast<size_t>(perm[j]) * es, es);
      inputs.push_back(passes::AddInitializer(g_, v->name() + "_nhwc", std::move(permuted)));
    }
    Node* m = g_.InsertNode(n, "Resize", n->name);
    m->attrs = n->attrs;
    for (Value* v : inputs) m->AddInput(v);
    Replace(n, m);
  }

  bool RewriteElementwise(Node* n) {
    bool unary = passes::IsUnaryElementwise(*n);
    if (!unary && !passes::IsBinaryElementwise(*n)) return false;
    if (n->num_outputs() != 1 || !IsRank4(n->output(0))) return false;
    size_t data_inputs = unary ? 1 : 2;
    bool any_nhwc = false;
    for (size_t i = 0; i < data_inputs; ++i) {
      Value* v = n->input(i);
      if (!v) return false;
      if (HasNhwc(v)) {
        any_nhwc = true;
      } else if (passes::IsConstant(v)) {
        if (unary || v->data->rank() > 4) return false;
      } else if (!IsRank4(v)) {
        return false;  // a lower-rank broadcast operand would broadcast along other dims in NHWC
      }
    }
    if (!any_nhwc) return false;
    std::vector<Value*> inputs(n->inputs().begin(), n->inputs().end());
    for (size_t i = 0; i < data_inputs; ++i) {
      Value* v = inputs[i];
      inputs[i] = HasNhwc(v) || !passes::IsConstant(v) ? Nhwc(v, n) : PermutedConstant(v);
      if (!inputs[i]) return false;
    }
    Node* m = g_.InsertNode(n, n->op_type, n->name, n->domain);
    m->attrs = n->attrs;
    for (Value* v : inputs) m->AddInput(v);
    Replace(n, m);
    return true;
  }

  // Inference BatchNormalization (constant parameters) on a value with an NHWC
  // twin: the per-channel affine x·s + t it computes, s = scale/√(var+ε) and
  // t = B − mean·s, as Mul and Add by [C] constants, which broadcast along
  // NHWC's last axis (MaxViT's pre-norms between its convolutions).
  bool RewriteBatchNorm(Node* n) {
    if (!passes::IsOnnxOp(n, "BatchNormalization") || n->num_inputs() != 5 || n->num_outputs() != 1 ||
        !IsRank4(n->input(0)) || !HasNhwc(n->input(0)) || passes::AttrInt(*n, "training_mode", 0) != 0)
      return false;
    const DataType dt = n->input(0)->dtype();
    if (!passes::IsArithmeticFloat(dt)) return false;
    std::vector<std::vector<double>> p;
    for (size_t i = 1; i < 5; ++i) {
      const Value* v = n->input(i);
      if (!passes::IsConstant(v) || v->data->rank() != 1) return false;
      p.push_back(passes::ToDoubles(*v->data));
      if (p.back().size() != p.front().size()) return false;
    }
    const size_t c = p[0].size();
    const double eps = passes::AttrFloat(*n, "epsilon", 1e-5f);
    std::vector<double> s(c), t(c);
    for (size_t i = 0; i < c; ++i) {
      s[i] = p[0][i] / std::sqrt(p[3][i] + eps);
      t[i] = p[1][i] - p[2][i] * s[i];
    }
    const int64_t channels = static_cast<int64_t>(c);
    Value* x = Nhwc(n->input(0), n);
    Value* scaled = NewValue(n->output(0)->name() + "_scaled_nhwc", dt, x->shape());
    Node* mul = g_.InsertNode(n, "Mul", g_.UniqueName(n->name + "/scale"));
    mul->AddInput(x);
    mul->AddInput(passes::AddInitializer(g_, n->name + "_scale_nhwc", passes::FromDoubles(dt, {channels}, s)));
    mul->AddOutput(scaled);
    Node* add = g_.InsertNode(n, "Add", g_.UniqueName(n->name + "/shift"));
    add->AddInput(scaled);
    add->AddInput(passes::AddInitializer(g_, n->name + "_shift_nhwc", passes::FromDoubles(dt, {channels}, t)));
    Replace(n, add);
    return true;
  }

  // Concat, Slice and Pad on rank-4 values that already have an NHWC twin run
  // on the twins, with their axes (or pads) remapped. Non-constant operands
  // other than the data (Slice's starts, ends, steps) are left as they are.
  // Split of a value with an NHWC twin (YOLO's C2f halves its channels): the twin split along the mapped
  // axis; each output gets its twin, with a Transpose back for NCHW readers (removed when none is left).
  bool RewriteSplit(Node* n) {
    if (!passes::IsOnnxOp(n, "Split") || !IsRank4(n->input(0)) || !HasNhwc(n->input(0))) return false;
    const int64_t axis = NhwcAxis(passes::AttrInt(*n, "axis", 0));
    if (axis < 0) return false;
    for (size_t i = 0; i < n->num_outputs(); ++i)
      if (!n->output(i) || !IsRank4(n->output(i))) return false;
    for (size_t i = 1; i < n->num_inputs(); ++i)  // split sizes: a constant, read as is
      if (n->input(i) && !passes::IsConstant(n->input(i))) return false;
    Node* m = g_.InsertNode(n, n->op_type, n->name, n->domain);
    m->attrs = n->attrs;
    m->attrs["axis"] = Attribute::FromInt(axis);
    m->AddInput(Nhwc(n->input(0), m));
    for (size_t i = 1; i < n->num_inputs(); ++i) m->AddInput(n->input(i));
    std::vector<Value*> outs(n->outputs().begin(), n->outputs().end());
    std::vector<Value*> twins;
    for (Value* y : outs) {
      twins.push_back(NewValue(y->name() + "_nhwc", y->dtype(), Permuted(y->shape(), kToNhwc)));
      m->AddOutput(twins.back());
    }
    std::vector<Node*> backs;
    for (size_t i = 0; i < outs.size(); ++i) {
      Node* back = g_.InsertNode(n, "Transpose", g_.UniqueName(outs[i]->name() + "/to_nchw"));
      back->attrs["perm"] = Attribute::FromInts(kToNchw);
      back->AddInput(twins[i]);
      nhwc_[outs[i]] = twins[i];
      backs.push_back(back);
    }
    g_.RemoveNode(n);  // then the Transposes back produce its outputs
    for (size_t i = 0; i < outs.size(); ++i) backs[i]->AddOutput(outs[i]);
    return true;
  }

  bool RewriteAxisOp(Node* n) {
    if (!IsDefaultDomain(*n) || n->num_outputs() != 1 || !IsRank4(n->output(0))) return false;
    const bool concat = n->op_type == "Concat", slice = n->op_type == "Slice", pad = n->op_type == "Pad";
    if (!concat && !slice && !pad) return false;
    const size_t data_inputs = concat ? n->num_inputs() : 1;
    bool any_nhwc = false;
    for (size_t i = 0; i < data_inputs; ++i) {
      if (!IsRank4(n->input(i))) return false;
      any_nhwc = any_nhwc || HasNhwc(n->input(i));
    }
    if (!any_nhwc) return false;
    AttributeMap attrs = n->attrs;
    std::vector<Value*> inputs(n->inputs().begin(), n->inputs().end());
    if (concat) {
      const Attribute* axis = n->attr("axis");
      if (!axis || NhwcAxis(axis->i) < 0) return false;
      attrs["axis"] = Attribute::FromInt(NhwcAxis(axis->i));
    } else if (slice && !RemapSliceAxes(*n, &attrs, &inputs)) {
      return false;
    } else if (pad && !RemapPads(*n, &attrs, &inputs)) {
      return false;
    }
    for (size_t i = 0; i < data_inputs; ++i)
      inputs[i] = passes::IsConstant(inputs[i]) && !HasNhwc(inputs[i]) ? PermutedConstant(inputs[i])
                                                                           : Nhwc(inputs[i], n);
    Node* m = g_.InsertNode(n, n->op_type, n->name, n->domain);
    m->attrs = attrs;
    for (Value* v : inputs) m->AddInput(v);
    Replace(n, m);
    return true;
  }

  // ShuffleNet's channel shuffle, matched at its last node:
  //   Reshape([N,C,H,W] → [N,g,C/g,H,W]) → Transpose(0,2,1,3,4) → Reshape(→ [N,C,H,W])
  // on an input with an NHWC twin becomes, on the twin,
  //   Reshape([N,H,W,g,C/g]) → Transpose(0,1,2,4,3) → Reshape([N,H,W,C])
  // (shapes with 0 for N: copied from the input). The NCHW chain is left to DCE.
  bool RewriteChannelShuffle(Node* n) {
    if (!passes::IsOnnxOp(n, "Reshape") || !IsRank4(n->output(0))) return false;
    Node* t = n->input(0)->producer();
    const std::vector<int64_t> swap12 = {0, 2, 1, 3, 4};
    if (!passes::IsOnnxOp(t, "Transpose") || !t->attr("perm") || t->attr("perm")->ints != swap12) return false;
    Node* r = t->input(0)->producer();
    if (!passes::IsOnnxOp(r, "Reshape") || !IsRank4(r->input(0)) || !HasNhwc(r->input(0))) return false;
    const Shape& x = r->input(0)->shape();
    const Shape& split = r->output(0)->shape();
    if (!passes::SameDims(x, n->output(0)->shape()) || !split.rank_known() || split.rank() != 5) return false;
    for (size_t i : {1, 2, 3})
      if (!x[i].known()) return false;
    if (!split[1].known() || !split[2].known() || split[1].value() * split[2].value() != x[1].value() ||
        !(split[0] == x[0]) || !(split[3] == x[2]) || !(split[4] == x[3]))
      return false;
    const int64_t c = x[1].value(), h = x[2].value(), w = x[3].value(), g = split[1].value();
    const std::string base = n->name.empty() ? n->output(0)->name() : n->name;
    Value* in = Nhwc(r->input(0), r);
    Value* grouped = NewValue(base + "/grouped_nhwc", in->dtype(), Shape({x[0], h, w, g, c / g}));
    Node* r1 = g_.InsertNode(n, "Reshape", g_.UniqueName(base + "/split_nhwc"));
    r1->AddInput(in);
    r1->AddInput(passes::AddInt64Initializer(g_, base + "/split_shape", {0, h, w, g, c / g}));
    r1->AddOutput(grouped);
    Value* swapped = NewValue(base + "/swapped_nhwc", in->dtype(), Shape({x[0], h, w, c / g, g}));
    AddTranspose(n, grouped, swapped, {0, 1, 2, 4, 3});
    Node* r2 = g_.InsertNode(n, "Reshape", g_.UniqueName(base + "/merge_nhwc"));
    r2->AddInput(swapped);
    r2->AddInput(passes::AddInt64Initializer(g_, base + "/merge_shape", {0, h, w, c}));
    Replace(n, r2);
    return true;
  }

  // Remaps a list of axes; false when one is out of range.
  static bool RemapAxes(std::vector<int64_t>* axes) {
    for (int64_t& a : *axes) {
      a = NhwcAxis(a);
      if (a < 0) return false;
    }
    return true;
  }

  // Slice: the `axes` attribute (opset < 10) or input 3, constant or absent
  // (then 0..len(starts)-1).
  bool RemapSliceAxes(const Node& n, AttributeMap* attrs, std::vector<Value*>* inputs) {
    if (const Attribute* a = n.attr("starts")) {  // opset < 10: attributes
      std::vector<int64_t> axes = n.attr("axes") ? n.attr("axes")->ints : std::vector<int64_t>{};
      if (axes.empty())
        for (size_t i = 0; i < a->ints.size(); ++i) axes.push_back(static_cast<int64_t>(i));
      if (!RemapAxes(&axes)) return false;
      (*attrs)["axes"] = Attribute::FromInts(axes);
      return true;
    }
    std::optional<std::vector<int64_t>> axes;
    if (n.num_inputs() > 3 && n.input(3)) {
      axes = passes::ConstInts(n.input(3));
    } else if (auto starts = passes::ConstInts(n.input(1))) {
      axes.emplace();
      for (size_t i = 0; i < starts->size(); ++i) axes->push_back(static_cast<int64_t>(i));
    }
    if (!axes || !RemapAxes(&*axes)) return false;
    inputs->resize(std::max<size_t>(inputs->size(), 4), nullptr);
    (*inputs)[3] = passes::AddInt64Initializer(g_, n.name + "_axes_nhwc", *axes);
    return true;
  }

  // Pad: `pads` (attribute before opset 11, else a constant input) lists every
  // axis' begins then ends; with an `axes` input (opset 18) the axes move instead.
  bool RemapPads(const Node& n, AttributeMap* attrs, std::vector<Value*>* inputs) {
    if (n.num_inputs() > 3 && n.input(3)) {
      auto axes = passes::ConstInts(n.input(3));
      if (!axes || !RemapAxes(&*axes)) return false;
      (*inputs)[3] = passes::AddInt64Initializer(g_, n.name + "_axes_nhwc", *axes);
      return true;
    }
    const Attribute* attr = n.attr("pads");
    std::optional<std::vector<int64_t>> pads =
        attr ? std::optional<std::vector<int64_t>>(attr->ints) : passes::ConstInts(n.input(1));
    if (!pads || pads->size() != 8) return false;
    std::vector<int64_t> permuted(8);
    for (size_t j = 0; j < 4; ++j) {
      permuted[j] = (*pads)[static_cast<size_t>(kToNhwc[j])];
      permuted[4 + j] = (*pads)[4 + static_cast<size_t>(kToNhwc[j])];
    }
    if (attr)
      (*attrs)["pads"] = Attribute::FromInts(permuted);
    else
      (*inputs)[1] = passes::AddInt64Initializer(g_, n.name + "_pads_nhwc", permuted);
    return true;
  }

  Graph& g_;
  std::unordered_map<Value*, Value*> nhwc_;  // NCHW value → its NHWC twin
  std::unordered_set<Value*> free_;          // values a permutation chain makes (FindPermutedValues)
};

}  // namespace

Status RunChannelsLast(Model& model, PassContext& ctx) {
  if (!model.graph) return InvalidArgument("model has no graph");
  int rewritten = ChannelsLast(*model.graph).Run();
  if (rewritten == 0) return Status::Ok();
  if (!model.opsets.count("kiln")) model.opsets["kiln"] = 1;
  ctx.changed = true;
  PassContext dce;
  return RunDeadCodeElimination(model, dce);
}

}  // namespace kiln
