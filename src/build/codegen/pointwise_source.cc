// Source generation for kiln.Pointwise (see pointwise_source.h).
#include "build/codegen/pointwise_source.h"

#include <algorithm>
#include <map>
#include <set>
#include <unordered_map>
#include <unordered_set>

#include "build/codegen/pointwise_ops.h"
#include "build/codegen/pointwise_view.h"
#include "build/codegen/row_source.h"
#include "build/codegen/source_text.h"
#include "ops/pointwise_abi.h"
#include "passes/pass_util.h"

namespace kiln::codegen {

const std::string& Prelude() {
  static const std::string text = std::string(
#include "build/codegen/pointwise_prelude.inc"
                                      ) +
                                  KILN_PW_PARAMS_SOURCE
                                  "\n// Input k's element at the domain's linear index i (row kernels).\n"
                                  "KILN_DEV long long kiln_offset(const KilnPwParams& p, int k, int rank, long long i) {\n"
                                  "  long long o = 0;\n"
                                  "  for (int d = rank - 1; d >= 0; --d) {\n"
                                  "    o += (i % p.dims[d]) * p.strides[k][d];\n"
                                  "    i /= p.dims[d];\n"
                                  "  }\n"
                                  "  return o;\n"
                                  "}\n#endif\n";
  return text;
}

const char* Suffix(DataType dt) {
  switch (dt) {
    case DataType::kFloat: return "f32";
    case DataType::kFloat16: return "f16";
    case DataType::kBFloat16: return "bf16";
    case DataType::kBool: return "b8";
    case DataType::kFloat8E4M3FN:
      return "e4m3";  // stores only (kiln.QuantizeE4M3)
    case DataType::kInt8: return "i8";
    case DataType::kUInt8: return "u8";
    case DataType::kInt32: return "i32";
    case DataType::kInt64: return "i64";
    default: return nullptr;
  }
}

std::string ConstantLiteral(const Value& v) {
  if (!v.data || v.data->numel() != 1) return "";
  const DataType dt = v.data->dtype();
  if (dt == DataType::kBool) return v.data->ScalarAt(0) != 0.0 ? "true" : "false";
  if (IsPointwiseFloat(dt)) return FloatLiteral(static_cast<float>(v.data->ScalarAt(0)));
  return "";
}

std::string PackLoad(size_t k, DataType dt, const std::string& index, const std::string& indent) {
  const std::string ks = std::to_string(k);
  return indent + "kiln_v8_" + Suffix(dt) + " r" + ks + ";\n" + indent + "KILN_V8_LOAD(r" + ks +
         ", (const char*)p.in[" + ks + "] + (" + index + ") * " + std::to_string(ElementSize(dt)) + ");\n";
}

std::string PackDecl(size_t o, DataType dt, const std::string& indent) {
  return indent + "kiln_v8_" + Suffix(dt) + " s" + std::to_string(o) + ";\n";
}

std::string PackStore(size_t o, DataType dt, const std::string& index, const std::string& indent) {
  const std::string os = std::to_string(o);
  return indent + "KILN_V8_STORE((char*)p.out[" + os + "] + (" + index + ") * " + std::to_string(ElementSize(dt)) +
         ", s" + os + ");\n";
}

InputMode ModeOf(const Shape& input, const Shape& domain) {
  if (passes::SameDims(input, domain)) return InputMode::kFull;
  if (!input.rank_known() || !domain.rank_known() || input.rank() > domain.rank()) return InputMode::kStrided;
  auto one = [](const Dim& d) { return d.known() && d.value() == 1; };
  const int off = domain.rank() - input.rank();
  int lo = domain.rank(), hi = -1;
  for (int d = off; d < domain.rank(); ++d) {
    if (one(input[d - off])) continue;
    lo = std::min(lo, d);
    hi = d;
  }
  if (hi < 0) return InputMode::kScalar;
  for (int d = lo; d <= hi; ++d)
    if (d < off || input[d - off].unknown() || !(input[d - off] == domain[d])) return InputMode::kStrided;
  return InputMode::kBlock;
}

bool AlongLastAxisOnly(const Shape& input, const Shape& domain) {
  if (!input.rank_known() || !domain.rank_known() || input.rank() < 1 || domain.rank() < 1) return false;
  const Dim& c = input[input.rank() - 1];
  if (c.unknown() || !(c == domain[domain.rank() - 1]) || (c.known() && c.value() == 1)) return false;
  for (int d = 0; d + 1 < input.rank(); ++d)
    if (!(input[d].known() && input[d].value() == 1)) return false;
  return true;
}

Expected<std::vector<const Value*>> KernelInputs(const Node& fused, int64_t opset,
                                                 const std::unordered_set<const Value*>& strided,
                                                 PointwiseKernel& k) {
  const Graph& body = *fused.attr("body")->g;
  std::vector<const Value*> values;
  for (size_t i = 0; i < fused.num_inputs(); ++i) {
    const Value* outer = fused.input(i);
    const Value* in = body.inputs[i];
    if (!outer || !Suffix(in->dtype()) || !ComputeTypeName(in->dtype()))
      return Internal(fused.Label() + ": input " + std::to_string(i) + " has no kernel type");
    BodyView view = AbsorbedView(*in, opset);
    InputMode mode = ModeOf(outer->shape(), fused.output(0)->shape());
    if (!view.view.empty() || (strided.count(view.value) && mode != InputMode::kScalar))
      mode = InputMode::kStrided;
    k.input_modes.push_back(mode);
    k.input_views.push_back(std::move(view.view));
    values.push_back(view.value);
  }
  return values;
}

bool KnownBlock(const Shape& input, const Shape& domain, int64_t* div, int64_t* mod) {
  if (!input.rank_known() || !domain.rank_known() || input.rank() > domain.rank()) return false;
  const int off = domain.rank() - input.rank();
  int lo = domain.rank(), hi = -1;
  for (int d = off; d < domain.rank(); ++d) {
    if (passes::IsKnownOne(input[d - off])) continue;
    lo = std::min(lo, d);
    hi = d;
  }
  *div = 1;
  *mod = 1;
  for (int d = std::max(lo, 0); d < domain.rank(); ++d) {
    if (!domain[d].known() || domain[d].value() <= 0) return false;
    (d > hi ? *div : *mod) *= domain[d].value();
  }
  return true;
}

std::vector<int64_t> ConcatBranches(const Node& n, int* axis) {
  if ((n.domain != "" && n.domain != "ai.onnx") || n.op_type != "Concat" || n.num_outputs() != 1 ||
      !n.output(0) || n.num_inputs() == 0)
    return {};
  const Value* out = n.output(0);
  const DataType dt = out->dtype();
  const Attribute* a = n.attr("axis");
  if (!(IsPointwiseFloat(dt) || dt == DataType::kBool) || !out->shape().rank_known() || !a ||
      n.attrs.size() != 1)
    return {};
  const int64_t rank = out->shape().rank();
  if (a->i < -rank || a->i >= rank) return {};
  *axis = static_cast<int>(a->i < 0 ? a->i + rank : a->i);
  std::vector<int64_t> lens;
  for (const Value* v : n.inputs()) {
    if (!v || v->dtype() != dt || v->shape().rank() != rank || !v->shape()[*axis].known()) return {};
    lens.push_back(v->shape()[*axis].value());
  }
  return lens;
}

namespace {

// The elementwise kernel of a body (see pointwise_source.h). Each body value
// is evaluated in a context: the domain itself (context 0), or a branch of a
// Concat, where the coordinates along some domain axes are shifted (by the
// operand's offset) and the extent there is the operand's.
class ElemKernel : KernelGenerator {
 public:
  using KernelGenerator::KernelGenerator;

  Expected<PointwiseKernel> Generate() {
    PointwiseKernel k = NewKernel(false);
    KILN_ASSIGN_OR_RETURN(std::vector<const Value*> values, KernelInputs(fused_, opset_, ReadInConcats(), k));
    for (size_t i = 0; i < values.size(); ++i) input_of_[values[i]] = i;
    inputs_ = values;
    modes_ = k.input_modes;
    views_ = &k.input_views;
    ctxs_.emplace_back();
    std::string math, stores;
    for (size_t o = 0; o < body_.outputs.size(); ++o) {
      const Value* v = body_.outputs[o];
      const char* sfx = Suffix(v->dtype());
      if (!passes::SameDims(v->shape(), domain_) && !passes::SameDims(fused_.output(o)->shape(), domain_))
        return Fail("output " + std::to_string(o) + " does not have the domain's dims");
      if (!sfx || !(IsPointwiseFloat(v->dtype()) || v->dtype() == DataType::kBool ||
                    v->dtype() == DataType::kFloat8E4M3FN))
        return Fail("output " + std::to_string(o) + " cannot be stored by a generated kernel");
      KILN_ASSIGN_OR_RETURN(std::string value, Eval(v, 0, math, "  "));
      stores += "  kiln_st_" + std::string(sfx) + "(p.out[" + std::to_string(o) + "], i, " + value + ");\n";
    }
    std::string& s = k.source;
    s = Prelude();  // no node names in the text: groups that compute the same share one kernel
    s += "template <typename I>\nKILN_DEV void " + name_ + "_elem(const KilnPwParams& p, I i) {\n" + Index() +
         math + stores + "}\n";
    // Inputs read at the linear index, as one element or as blocks (no coordinates): also eight elements a
    // thread, whole inputs and outputs in packs (_v8 entries; the host entry runs them on all but the tail).
    k.vec8 = strided_.empty() && coords_.empty();
    if (k.vec8) KILN_RETURN_IF_ERROR(Vector8(s));
    s += "#ifdef KILN_PW_HOST\nextern \"C\" void " + name_ +
         "_host(const KilnPwParams* p) {\n  long long i = 0;\n";
    if (k.vec8) s += "  for (; i + 8 <= p->n; i += 8) " + name_ + "_vec<long long>(*p, i);\n";
    s += "  for (; i < p->n; ++i) " + name_ + "_elem<long long>(*p, i);\n}\n#else\n";
    for (const char* it : {"int", "long long"}) {
      const std::string t = it, bits = t == "int" ? "_i32" : "_i64";
      s += "extern \"C\" __global__ void __launch_bounds__(256) " + name_ + bits +
           "(const KilnPwParams p) {\n  KILN_WAIT_PRIOR();\n  const " + t + " stride = (" + t +
           ")blockDim.x * gridDim.x;\n  for (" + t + " i = (" + t +
           ")blockIdx.x * blockDim.x + threadIdx.x; i < (" + t + ")p.n; i += stride) " + name_ + "_elem<" +
           t + ">(p, i);\n}\n";
      if (!k.vec8) continue;
      s += "extern \"C\" __global__ void __launch_bounds__(256) " + name_ + "_v8" + bits +
           "(const KilnPwParams p) {\n  KILN_WAIT_PRIOR();\n  const " + t + " stride = (" + t +
           ")blockDim.x * gridDim.x;\n  for (" + t + " j = (" + t +
           ")blockIdx.x * blockDim.x + threadIdx.x; j < (" + t + ")(p.n / 8); j += stride) " + name_ +
           "_vec<" + t + ">(p, j * 8);\n}\n";
    }
    s += "#endif\n";
    return k;
  }

 private:
  struct Context {
    std::map<int, std::pair<int64_t, int64_t>> axes;  // domain axis → (shift, extent)
  };

  Status Fail(const std::string& why) const { return Internal(fused_.Label() + ": " + why); }

  // <name>_vec(p, i0): elements i0 .. i0 + 7, the body once per element with full inputs taken from packs
  // loaded whole and outputs stored whole (the caller guarantees 8 | n and aligned full inputs and outputs).
  Status Vector8(std::string& s) {
    memo_.clear();
    vec_ = true;
    std::string math, stores, loads, packs, out_stores;
    for (size_t o = 0; o < body_.outputs.size(); ++o) {
      const Value* v = body_.outputs[o];
      KILN_ASSIGN_OR_RETURN(std::string value, Eval(v, 0, math, "    "));
      packs += PackDecl(o, v->dtype(), "  ");
      stores += "    kiln_st_" + std::string(Suffix(v->dtype())) + "(s" + std::to_string(o) + ".e, e, " + value + ");\n";
      out_stores += PackStore(o, v->dtype(), "(long long)i0", "  ");
    }
    for (size_t k : vec_loads_) loads += PackLoad(k, inputs_[k]->dtype(), "(long long)i0", "  ");
    s += "template <typename I>\nKILN_DEV void " + name_ + "_vec(const KilnPwParams& p, I i0) {\n" + loads +
         packs +
         "  KILN_UNROLL\n  for (int e = 0; e < 8; ++e) {\n    const I i = i0 + (I)e;\n    (void)i;\n" + math +
         stores + "  }\n" + out_stores + "}\n";
    vec_ = false;
    return Status::Ok();
  }

  // The values evaluated inside some Concat's branch: everything its operands
  // are computed from.
  std::unordered_set<const Value*> ReadInConcats() const {
    std::unordered_set<const Value*> seen;
    std::vector<const Value*> stack;
    int axis = 0;
    for (const Node* n : body_.nodes())
      if (!ConcatBranches(*n, &axis).empty())
        stack.insert(stack.end(), n->inputs().begin(), n->inputs().end());
    while (!stack.empty()) {
      const Value* v = stack.back();
      stack.pop_back();
      if (!v || !seen.insert(v).second) continue;
      if (v->producer() && v->producer()->graph() == &body_)
        stack.insert(stack.end(), v->producer()->inputs().begin(), v->producer()->inputs().end());
    }
    return seen;
  }

  // Input k's element in context `ctx`.
  std::string Load(size_t k, int ctx) {
    const std::string ks = std::to_string(k);
    switch (modes_[k]) {
      case InputMode::kFull:
        return "i";
      case InputMode::kScalar:
        return "(I)0";
      case InputMode::kBlock: {
        // Constants where the block's dims are known (the compiler divides by multiplying).
        int64_t div = 0, mod = 0;
        const bool known = KnownBlock(fused_.input(k)->shape(), domain_, &div, &mod);
        const std::string d = known ? std::to_string(div) : "p.div[" + ks + "]";
        const std::string m = known ? std::to_string(mod) : "p.mod[" + ks + "]";
        if (AlongLastAxisOnly(inputs_[k]->shape(), domain_) || (known && div == 1)) return "i % (I)" + m;
        return "(i / (I)" + d + ") % (I)" + m;
      }
      case InputMode::kStrided:
        break;
    }
    strided_.insert(k);
    std::string off = "o" + ks;
    // Read inside a Concat's branch: over the operand's extent along the axis.
    // An input read in several places with several extents has dim 1 there
    // (it broadcasts to each), so the first extent serves them all.
    std::vector<std::pair<int64_t, int64_t>>& read = (*views_)[k].read_dims;
    for (const auto& [axis, se] : ctxs_[ctx].axes) {
      if (se.first != 0)
        off +=
            " - (I)" + std::to_string(se.first) + " * (I)p.strides[" + ks + "][" + std::to_string(axis) + "]";
      bool known = false;
      for (const auto& r : read) known = known || r.first == axis;
      if (!known) read.emplace_back(axis, se.second);
    }
    return off;
  }

  // v's expression in context `ctx`; the statements that compute it go to `s`.
  Expected<std::string> Eval(const Value* v, int ctx, std::string& s, const std::string& indent) {
    auto memo = memo_.find({v, ctx});
    if (memo != memo_.end()) return memo->second;
    std::string var, value, comment;
    const char* ct = ComputeTypeName(v->dtype());
    const Node* n = v->producer() && v->producer()->graph() == &body_ ? v->producer() : nullptr;
    int axis = 0;
    if (auto in = input_of_.find(v); in != input_of_.end()) {
      var = "x" + std::to_string(in->second) + (ctx ? "_" + std::to_string(ctx) : "");
      if (vec_ && modes_[in->second] == InputMode::kFull) {  // from its pack (Vector8)
        vec_loads_.insert(in->second);
        value = "kiln_ld_" + std::string(Suffix(v->dtype())) + "(r" + std::to_string(in->second) + ".e, e)";
      } else {
        value = "kiln_ld_" + std::string(Suffix(v->dtype())) + "(p.in[" + std::to_string(in->second) + "], " +
                Load(in->second, ctx) + ")";
      }
    } else if (!n) {
      std::string lit = ConstantLiteral(*v);
      if (lit.empty())
        return Fail("the body reads '" + v->name() +
                    "', which is neither an input, a one-element constant nor computed");
      return lit;
    } else if (!ConcatBranches(*n, &axis).empty()) {
      KILN_ASSIGN_OR_RETURN(var, Concat(*n, ctx, s, indent));
    } else {
      std::vector<std::string> args;
      for (const Value* a : n->inputs()) {
        if (!a) {
          args.emplace_back();
          continue;
        }
        KILN_ASSIGN_OR_RETURN(std::string e, Eval(a, ctx, s, indent));
        args.push_back(std::move(e));
      }
      Expected<std::string> e = PointwiseExpr(*n, opset_, args);
      if (!e.ok()) return e.status().WithPrefix(fused_.Label());
      var = "v" + std::to_string(next_++);
      value = *e;
      comment = "  // " + n->op_type;
    }
    if (!ct) return Fail("the body value '" + v->name() + "' has no kernel type");
    if (!value.empty()) s += indent + "const " + ct + " " + var + " = " + value + ";" + comment + "\n";
    memo_[{v, ctx}] = var;
    return var;
  }

  // Concat n in context `ctx`: one branch per operand with elements, picked by
  // the coordinate along its axis; each evaluates its operand shifted.
  Expected<std::string> Concat(const Node& n, int ctx, std::string& s, const std::string& indent) {
    int axis = 0;
    const std::vector<int64_t> lens = ConcatBranches(n, &axis);
    const int a = axis + domain_.rank() - n.output(0)->shape().rank();
    if (a < 0) return Fail("body " + n.Label() + " has a higher rank than the domain");
    coords_.insert(a);
    const std::string var = "v" + std::to_string(next_++);
    const std::string ct = ComputeTypeName(n.output(0)->dtype());
    s += indent + ct + " " + var + " = (" + ct + ")0;  // Concat\n";
    const Context parent = ctxs_[ctx];
    const int64_t shift = parent.axes.count(a) ? parent.axes.at(a).first : 0;
    size_t last = lens.size();
    while (last > 0 && lens[last - 1] == 0) --last;
    int64_t off = 0;
    bool first = true;
    for (size_t j = 0; j < last; off += lens[j], ++j) {
      if (lens[j] == 0) continue;
      Context branch = parent;
      branch.axes[a] = {shift + off, lens[j]};
      ctxs_.push_back(branch);
      const int c = static_cast<int>(ctxs_.size()) - 1;
      const std::string cond = "c" + std::to_string(a) + " < (I)" + std::to_string(shift + off + lens[j]);
      s += indent +
           (j + 1 == last ? (first ? "{" : "else {") : (first ? "if (" : "else if (") + cond + ") {") + "\n";
      first = false;
      KILN_ASSIGN_OR_RETURN(std::string e, Eval(n.input(j), c, s, indent + "  "));
      s += indent + "  " + var + " = " + e + ";\n" + indent + "}\n";
    }
    return var;
  }

  // The decomposition of the linear index into coordinates: strided inputs'
  // offsets and the concat axes' coordinates.
  std::string Index() const {
    if (strided_.empty() && coords_.empty()) return "";
    std::string index;
    for (size_t i : strided_) index += "  I o" + std::to_string(i) + " = 0;\n";
    for (int a : coords_) index += "  I c" + std::to_string(a) + " = 0;\n";
    // One step per axis, innermost first: a known dim divides as a constant; the outermost coordinate is what
    // is left (i < n).
    index += "  {\n    I r = i;\n";
    for (int d = domain_.rank() - 1; d >= 0; --d) {
      const std::string ds = std::to_string(d);
      const bool known = domain_[d].known() && domain_[d].value() > 0;  // (an empty domain never runs)
      const std::string dim = known ? "(I)" + std::to_string(domain_[d].value()) : "(I)p.dims[" + ds + "]";
      index += "    {\n      const I c = " + (d == 0 ? std::string("r") : "r % " + dim) + ";\n";
      if (d > 0) index += "      r /= " + dim + ";\n";
      for (size_t i : strided_)
        index +=
            "      o" + std::to_string(i) + " += c * (I)p.strides[" + std::to_string(i) + "][" + ds + "];\n";
      if (coords_.count(d)) index += "      c" + ds + " = c;\n";
      index += "    }\n";
    }
    index += "  }\n";
    return index;
  }

  std::unordered_map<const Value*, size_t> input_of_;  // the value an input's view gives → input
  std::vector<const Value*> inputs_;                   // those values, by input
  std::vector<InputMode> modes_;
  std::vector<PwView>* views_ = nullptr;
  std::vector<Context> ctxs_;
  std::map<std::pair<const Value*, int>, std::string> memo_;
  std::set<size_t> strided_;
  std::set<int> coords_;
  bool vec_ = false;            // generating the eight-element function (Vector8)
  std::set<size_t> vec_loads_;  // full inputs it loads as packs
  int next_ = 0;
};

}  // namespace

Expected<PointwiseKernel> GeneratePointwise(const Node& fused, int64_t opset, const std::string& name) {
  const Attribute* body_attr = fused.attr("body");
  if (!body_attr || !body_attr->g) return Internal(fused.Label() + ": kiln.Pointwise without a body");
  const Graph& body = *body_attr->g;
  if (fused.num_outputs() == 0 || !fused.output(0) || !fused.output(0)->shape().rank_known())
    return Internal(fused.Label() + ": the output's rank is not known");
  const int rank = fused.output(0)->shape().rank();
  if (rank > KILN_PW_MAX_RANK || fused.num_inputs() > KILN_PW_MAX_INPUTS ||
      fused.num_outputs() > KILN_PW_MAX_OUTPUTS || body.inputs.size() != fused.num_inputs() ||
      body.outputs.size() != fused.num_outputs())
    return Internal(fused.Label() + ": beyond the generated kernels' limits (rank, inputs, outputs)");
  for (const Node* n : body.nodes())
    if (RowReduceOf(*n, opset) != RowReduce::kNone) return GenerateRowKernel(fused, opset, name);
  return ElemKernel(fused, opset, name).Generate();
}

}  // namespace kiln::codegen
