// Source generation for kiln.Pointwise (see pointwise_source.h).
#include "build/codegen/pointwise_source.h"

#include <algorithm>
#include <unordered_map>

#include "build/codegen/pointwise_ops.h"
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

std::vector<int64_t> AbsorbedPerm(const Value& in) {
  if (in.uses().size() != 1) return {};
  const Node* t = in.uses()[0];
  if (t->op_type != "Transpose" || (t->domain != "" && t->domain != "ai.onnx") || t->input(0) != &in) return {};
  if (const Attribute* p = t->attr("perm")) return p->ints;
  std::vector<int64_t> perm;
  for (int64_t a = in.shape().rank() - 1; a >= 0; --a) perm.push_back(a);
  return perm;
}

Expected<PointwiseKernel> GeneratePointwise(const Node& fused, int64_t opset, const std::string& name) {
  const Attribute* body_attr = fused.attr("body");
  if (!body_attr || !body_attr->g) return Internal(fused.Label() + ": kiln.Pointwise without a body");
  const Graph& body = *body_attr->g;
  if (fused.num_outputs() == 0 || !fused.output(0) || !fused.output(0)->shape().rank_known())
    return Internal(fused.Label() + ": the output's rank is not known");
  const Shape& domain = fused.output(0)->shape();
  PointwiseKernel k;
  k.name = name;
  k.rank = domain.rank();
  if (k.rank > KILN_PW_MAX_RANK || fused.num_inputs() > KILN_PW_MAX_INPUTS ||
      fused.num_outputs() > KILN_PW_MAX_OUTPUTS || body.inputs.size() != fused.num_inputs() ||
      body.outputs.size() != fused.num_outputs())
    return Internal(fused.Label() + ": beyond the generated kernels' limits (rank, inputs, outputs)");

  for (const Node* n : body.nodes())
    if (RowReduceOf(*n, opset) != RowReduce::kNone) return GenerateRowKernel(fused, opset, name);

  std::unordered_map<const Value*, std::string> expr;
  std::string loads, index, math, stores;
  std::vector<size_t> strided;
  for (size_t i = 0; i < fused.num_inputs(); ++i) {
    const Value* outer = fused.input(i);
    const Value* in = body.inputs[i];
    const char* sfx = Suffix(in->dtype());
    const char* ct = ComputeTypeName(in->dtype());
    if (!outer || !sfx || !ct) return Internal(fused.Label() + ": input " + std::to_string(i) + " has no kernel type");
    std::vector<int64_t> perm = AbsorbedPerm(*in);
    InputMode mode = perm.empty() ? ModeOf(outer->shape(), domain) : InputMode::kStrided;
    k.input_modes.push_back(mode);
    k.input_perms.push_back(std::move(perm));
    std::string off = "i";
    if (mode == InputMode::kScalar) off = "(I)0";
    if (mode == InputMode::kBlock)
      off = "(i / (I)p.div[" + std::to_string(i) + "]) % (I)p.mod[" + std::to_string(i) + "]";
    if (mode == InputMode::kStrided) {
      off = "o" + std::to_string(i);
      strided.push_back(i);
    }
    std::string var = "x" + std::to_string(i);
    loads += "  const " + std::string(ct) + " " + var + " = kiln_ld_" + sfx + "(p.in[" + std::to_string(i) + "], " +
             off + ");\n";
    expr[in] = var;
  }
  if (!strided.empty()) {
    for (size_t i : strided) index += "  I o" + std::to_string(i) + " = 0;\n";
    index += "  {\n    I r = i;\n    KILN_UNROLL\n    for (int d = " + std::to_string(k.rank - 1) +
             "; d >= 0; --d) {\n      const I dim = (I)p.dims[d];\n      const I c = r % dim;\n      r /= dim;\n";
    for (size_t i : strided)
      index += "      o" + std::to_string(i) + " += c * (I)p.strides[" + std::to_string(i) + "][d];\n";
    index += "    }\n  }\n";
  }
  int next = 0;
  for (const Node* n : body.nodes()) {
    std::vector<std::string> args;
    for (const Value* v : n->inputs()) {
      if (!v) {
        args.emplace_back();
        continue;
      }
      auto it = expr.find(v);
      std::string lit = it == expr.end() ? ConstantLiteral(*v) : "";
      if (it == expr.end() && lit.empty())
        return Internal(fused.Label() + ": body " + n->Label() + " reads '" + v->name() +
                        "', which is neither an input, a one-element constant nor computed before it");
      args.push_back(it == expr.end() ? lit : it->second);
    }
    if (n->op_type == "Transpose" && expr.count(n->input(0)) && !AbsorbedPerm(*n->input(0)).empty()) {
      expr[n->output(0)] = expr[n->input(0)];  // the load already reads through the perm
      continue;
    }
    Expected<std::string> e = PointwiseExpr(*n, opset, args);
    if (!e.ok()) return e.status().WithPrefix(fused.Label());
    const char* ct = ComputeTypeName(n->output(0)->dtype());
    std::string var = "v" + std::to_string(next++);
    math += "  const " + std::string(ct) + " " + var + " = " + *e + ";  // " + n->op_type + "\n";
    expr[n->output(0)] = var;
  }
  for (size_t o = 0; o < body.outputs.size(); ++o) {
    const Value* v = body.outputs[o];
    auto it = expr.find(v);
    std::string value = it == expr.end() ? ConstantLiteral(*v) : it->second;
    const char* sfx = Suffix(v->dtype());
    if (!passes::SameDims(v->shape(), domain) && !passes::SameDims(fused.output(o)->shape(), domain))
      return Internal(fused.Label() + ": output " + std::to_string(o) + " does not have the domain's dims");
    if (value.empty() || !sfx || !(IsPointwiseFloat(v->dtype()) || v->dtype() == DataType::kBool))
      return Internal(fused.Label() + ": output " + std::to_string(o) + " cannot be stored by a generated kernel");
    stores += "  kiln_st_" + std::string(sfx) + "(p.out[" + std::to_string(o) + "], i, " + value + ");\n";
  }

  std::string& s = k.source;
  s = Prelude();  // no node names in the text: groups that compute the same share one kernel
  s += "template <typename I>\nKILN_DEV void " + name + "_elem(const KilnPwParams& p, I i) {\n" + index + loads +
       math + stores + "}\n";
  s += "#ifdef KILN_PW_HOST\nextern \"C\" void " + name + "_host(const KilnPwParams* p) {\n"
       "  for (long long i = 0; i < p->n; ++i) " + name + "_elem<long long>(*p, i);\n}\n#else\n";
  for (const char* it : {"int", "long long"}) {
    s += std::string("extern \"C\" __global__ void __launch_bounds__(256) ") + name +
         (std::string(it) == "int" ? "_i32" : "_i64") + "(const KilnPwParams p) {\n  const " + it +
         " stride = (" + it + ")blockDim.x * gridDim.x;\n  for (" + it + " i = (" + it +
         ")blockIdx.x * blockDim.x + threadIdx.x; i < (" + it + ")p.n; i += stride) " + name + "_elem<" + it +
         ">(p, i);\n}\n";
  }
  s += "#endif\n";
  return k;
}

}  // namespace kiln::codegen
