// The generator's op table (see pointwise_ops.h).
#include "build/codegen/pointwise_ops.h"

#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <map>

#include "passes/pass_util.h"

namespace kiln::codegen {
namespace {

// What a row takes and gives.
enum class Kind {
  kUnary,     // float x → float of x's type
  kBinary,    // float a, b of one type → that type
  kCompare,   // float a, b of one type → bool
  kLogic,     // bool operands → bool
  kWhere,     // bool c, float x, y of one type → that type
  kCast,      // bool / int / float → float or bool
  kClip,      // float x [, min, max of x's type]
  kTest,      // float x → bool (IsNaN, IsInf)
  kFold,      // float operands of one type (2..8) → that type (Sum, Mean)
  kQuantize,  // float x, float32 scale → float8e4m3fn (kiln.QuantizeE4M3): x / scale, encoded by the store
};

using Args = std::vector<std::string>;
using ExprFn = std::function<std::string(const Node&, const Args&)>;

struct Row {
  Kind kind;
  ExprFn expr;
  std::vector<const char*> attrs;  // the attributes the row reads (others refuse the node)
};

float AttrFloat(const Node& n, const char* name, float fallback) {
  const Attribute* a = n.attr(name);
  return a && a->type == Attribute::Type::kFloat ? a->f : fallback;
}

std::string Call(const char* f, const Args& a) {
  std::string s = std::string(f) + "(";
  for (size_t i = 0; i < a.size(); ++i) s += (i ? ", " : "") + a[i];
  return s + ")";
}

ExprFn Fn(const char* f) {
  return [f](const Node&, const Args& a) { return Call(f, a); };
}
ExprFn Infix(const char* op) {
  return [op](const Node&, const Args& a) { return "(" + a[0] + " " + op + " " + a[1] + ")"; };
}
// f(x, attribute values...) with the attributes' defaults.
ExprFn FnAttrs(const char* f, std::vector<std::pair<const char*, float>> attrs) {
  return [f, attrs](const Node& n, const Args& a) {
    Args all = {a[0]};
    for (const auto& [name, def] : attrs) all.push_back(FloatLiteral(AttrFloat(n, name, def)));
    return Call(f, all);
  };
}

const std::map<std::string, Row>& Table() {
  static const std::map<std::string, Row> table = [] {
    std::map<std::string, Row> t;
    auto unary = [&](const char* op, ExprFn e, std::vector<const char*> attrs = {}) {
      t[op] = Row{Kind::kUnary, std::move(e), std::move(attrs)};
    };
    unary("Identity", [](const Node&, const Args& a) { return a[0]; });
    unary("Relu", Fn("kiln_relu"));
    unary("Sigmoid", Fn("kiln_sigmoid"));
    unary("Tanh", Fn("tanhf"));
    unary("Exp", Fn("expf"));
    unary("Log", Fn("logf"));
    unary("Sqrt", Fn("sqrtf"));
    unary("Erf", Fn("erff"));
    unary("Neg", [](const Node&, const Args& a) { return "(-" + a[0] + ")"; });
    unary("Abs", Fn("fabsf"));
    unary("Reciprocal", [](const Node&, const Args& a) { return "(1.0f / " + a[0] + ")"; });
    unary("Floor", Fn("floorf"));
    unary("Ceil", Fn("ceilf"));
    unary("Round", Fn("rintf"));  // round half to even in the default rounding mode
    unary("Sign", Fn("kiln_sign"));
    unary("Sin", Fn("sinf"));
    unary("Cos", Fn("cosf"));
    unary("Tan", Fn("tanf"));
    unary("Asin", Fn("asinf"));
    unary("Acos", Fn("acosf"));
    unary("Atan", Fn("atanf"));
    unary("Sinh", Fn("sinhf"));
    unary("Cosh", Fn("coshf"));
    unary("Asinh", Fn("asinhf"));
    unary("Acosh", Fn("acoshf"));
    unary("Atanh", Fn("atanhf"));
    unary("Celu", FnAttrs("kiln_celu", {{"alpha", 1.0f}}), {"alpha"});
    unary("Softplus", Fn("kiln_softplus"));
    unary("Softsign", Fn("kiln_softsign"));
    unary("Mish", Fn("kiln_mish"));
    unary("HardSwish", Fn("kiln_hard_swish"));
    unary("HardSigmoid", FnAttrs("kiln_hard_sigmoid", {{"alpha", 0.2f}, {"beta", 0.5f}}), {"alpha", "beta"});
    unary("LeakyRelu", FnAttrs("kiln_leaky_relu", {{"alpha", 0.01f}}), {"alpha"});
    unary("Elu", FnAttrs("kiln_elu", {{"alpha", 1.0f}}), {"alpha"});
    unary("Selu", FnAttrs("kiln_selu", {{"alpha", 1.67326319217681884765625f}, {"gamma", 1.05070102214813232421875f}}),
          {"alpha", "gamma"});
    unary("ThresholdedRelu", FnAttrs("kiln_thresholded_relu", {{"alpha", 1.0f}}), {"alpha"});
    ExprFn gelu = [](const Node& n, const Args& a) {
      const Attribute* ap = n.attr("approximate");
      return Call(ap && ap->s == "tanh" ? "kiln_gelu_tanh" : "kiln_gelu", a);
    };
    unary("Gelu", gelu, {"approximate"});
    unary("kiln.Gelu", gelu, {"approximate"});
    auto binary = [&](const char* op, Kind kind, ExprFn e) { t[op] = Row{kind, std::move(e), {}}; };
    binary("Add", Kind::kBinary, Infix("+"));
    binary("Sub", Kind::kBinary, Infix("-"));
    binary("Mul", Kind::kBinary, Infix("*"));
    binary("Div", Kind::kBinary, Infix("/"));
    binary("Pow", Kind::kBinary, Fn("powf"));
    binary("Max", Kind::kBinary, Fn("kiln_max"));
    binary("Min", Kind::kBinary, Fn("kiln_min"));
    binary("PRelu", Kind::kBinary, Fn("kiln_prelu"));
    binary("Equal", Kind::kCompare, Infix("=="));
    binary("Less", Kind::kCompare, Infix("<"));
    binary("Greater", Kind::kCompare, Infix(">"));
    binary("LessOrEqual", Kind::kCompare, Infix("<="));
    binary("GreaterOrEqual", Kind::kCompare, Infix(">="));
    binary("And", Kind::kLogic, Infix("&&"));
    binary("Or", Kind::kLogic, Infix("||"));
    binary("Xor", Kind::kLogic, Infix("!="));
    t["Not"] = Row{Kind::kLogic, [](const Node&, const Args& a) { return "(!" + a[0] + ")"; }, {}};
    t["Where"] = Row{Kind::kWhere,
                     [](const Node&, const Args& a) { return "(" + a[0] + " ? " + a[1] + " : " + a[2] + ")"; }, {}};
    t["IsNaN"] = Row{Kind::kTest, [](const Node&, const Args& a) { return "(" + a[0] + " != " + a[0] + ")"; }, {}};
    t["IsInf"] = Row{Kind::kTest,
                     [](const Node& n, const Args& a) {
                       const Attribute* neg = n.attr("detect_negative");
                       const Attribute* pos = n.attr("detect_positive");
                       return Call("kiln_is_inf", {a[0], !neg || neg->i ? "true" : "false",
                                                   !pos || pos->i ? "true" : "false"});
                     },
                     {"detect_negative", "detect_positive"}};
    // Left to right, rounding as the reference does only at the end (float).
    auto fold = [](const char* op, bool mean) {
      return [op, mean](const Node&, const Args& a) {
        std::string e = a[0];
        for (size_t i = 1; i < a.size(); ++i) e = "(" + e + " " + op + " " + a[i] + ")";
        return mean ? "(" + e + " / " + FloatLiteral(static_cast<float>(a.size())) + ")" : e;
      };
    };
    t["Sum"] = Row{Kind::kFold, fold("+", false), {}};
    t["Mean"] = Row{Kind::kFold, fold("+", true), {}};
    t["Cast"] = Row{Kind::kCast, nullptr, {"to", "saturate"}};
    // The value is x / scale in float; kiln_st_e4m3 rounds and saturates it as core/float8.h QuantizeE4M3
    // does. Nothing in a body reads an E4M3 value (no row takes one), so it is always a kernel output.
    t["kiln.QuantizeE4M3"] = Row{Kind::kQuantize, Infix("/"), {}};
    t["Clip"] = Row{Kind::kClip, nullptr, {"min", "max"}};
    return t;
  }();
  return table;
}

const Row* FindRow(const Node& n) {
  if (n.domain != "" && n.domain != "ai.onnx" && n.domain != "kiln") return nullptr;
  auto it = Table().find(n.domain == "kiln" ? "kiln." + n.op_type : n.op_type);
  return it == Table().end() ? nullptr : &it->second;
}

DataType TypeOf(const Value* v) { return v ? v->dtype() : DataType::kUndefined; }

bool IsCastSource(DataType dt) {
  return IsPointwiseFloat(dt) || dt == DataType::kBool || dt == DataType::kInt32 || dt == DataType::kInt64 ||
         dt == DataType::kInt8 || dt == DataType::kUInt8;
}

// Inputs and output fit the row's kind.
bool TypesFit(const Row& row, const Node& n) {
  const DataType out = TypeOf(n.output(0));
  const DataType in0 = TypeOf(n.input(0));
  auto all_inputs = [&](DataType want) {
    for (const Value* v : n.inputs())
      if (TypeOf(v) != want) return false;
    return true;
  };
  switch (row.kind) {
    case Kind::kUnary:
      return n.num_inputs() == 1 && IsPointwiseFloat(in0) && out == in0;
    case Kind::kBinary:
      return n.num_inputs() == 2 && IsPointwiseFloat(in0) && all_inputs(in0) && out == in0;
    case Kind::kCompare:
      return n.num_inputs() == 2 && IsPointwiseFloat(in0) && all_inputs(in0) && out == DataType::kBool;
    case Kind::kLogic:
      return n.num_inputs() == (n.op_type == "Not" ? 1u : 2u) && all_inputs(DataType::kBool) && out == DataType::kBool;
    case Kind::kWhere:
      return n.num_inputs() == 3 && in0 == DataType::kBool && IsPointwiseFloat(out) && TypeOf(n.input(1)) == out &&
             TypeOf(n.input(2)) == out;
    case Kind::kTest:
      return n.num_inputs() == 1 && IsPointwiseFloat(in0) && out == DataType::kBool;
    case Kind::kFold:
      return n.num_inputs() >= 1 && n.num_inputs() <= 8 && IsPointwiseFloat(in0) && all_inputs(in0) && out == in0;
    case Kind::kCast:
      return n.num_inputs() == 1 && IsCastSource(in0) && (IsPointwiseFloat(out) || out == DataType::kBool);
    case Kind::kQuantize:
      return n.num_inputs() == 2 && IsPointwiseFloat(in0) && TypeOf(n.input(1)) == DataType::kFloat &&
             out == DataType::kFloat8E4M3FN;
    case Kind::kClip:
      if (n.num_inputs() < 1 || n.num_inputs() > 3 || !IsPointwiseFloat(in0) || out != in0) return false;
      for (size_t i = 1; i < n.num_inputs(); ++i)
        if (n.input(i) && TypeOf(n.input(i)) != in0) return false;
      return true;
  }
  return false;
}

std::string CastExpr(const Node& n, const std::string& x) {
  const DataType from = TypeOf(n.input(0)), to = TypeOf(n.output(0));
  if (to == DataType::kBool) return from == DataType::kBool ? x : "(" + x + " != 0)";
  std::string f = from == DataType::kBool ? "(" + x + " ? 1.0f : 0.0f)" : "(float)(" + x + ")";
  if (to == DataType::kFloat16 && from != DataType::kFloat16) return "kiln_round_f16(" + f + ")";
  if (to == DataType::kBFloat16 && from != DataType::kBFloat16) return "kiln_round_bf16(" + f + ")";
  return f;
}

// Clip's bounds: inputs 1 and 2 from opset 11, attributes before; absent → ±inf.
std::string ClipExpr(const Node& n, int64_t opset, const Args& a) {
  const float inf = INFINITY;
  std::string lo = FloatLiteral(-inf), hi = FloatLiteral(inf);
  if (opset >= 11) {
    if (a.size() > 1 && !a[1].empty()) lo = a[1];
    if (a.size() > 2 && !a[2].empty()) hi = a[2];
  } else {
    lo = FloatLiteral(AttrFloat(n, "min", -inf));
    hi = FloatLiteral(AttrFloat(n, "max", inf));
  }
  return Call("kiln_clip", {a[0], lo, hi});
}

}  // namespace

bool IsPointwiseFloat(DataType dt) {
  return dt == DataType::kFloat || dt == DataType::kFloat16 || dt == DataType::kBFloat16;
}

const char* ComputeTypeName(DataType dt) {
  switch (dt) {
    case DataType::kFloat:
    case DataType::kFloat16:
    case DataType::kBFloat16:
    case DataType::kFloat8E4M3FN:  // a kiln.QuantizeE4M3 value before its store encodes it
      return "float";
    case DataType::kBool:
      return "bool";
    case DataType::kInt8:
    case DataType::kUInt8:
    case DataType::kInt32:
      return "int";
    case DataType::kInt64:
      return "long long";
    default:
      return nullptr;
  }
}

bool CanGeneratePointwise(const Node& n, int64_t opset) {
  const Row* row = FindRow(n);
  if (!row || n.num_outputs() != 1 || !n.output(0)) return false;
  for (size_t i = 0; i < n.num_inputs(); ++i)
    if (!n.input(i) && !(row->kind == Kind::kClip && i > 0)) return false;
  for (const auto& [name, attr] : n.attrs) {
    bool read = false;
    for (const char* a : row->attrs) read = read || name == a;
    if (!read) return false;
  }
  if (row->kind == Kind::kClip && opset < 11 && n.num_inputs() != 1) return false;
  const Attribute* ap = n.attr("approximate");
  if (ap && ap->s != "none" && ap->s != "tanh") return false;
  return TypesFit(*row, n);
}

Expected<std::string> PointwiseExpr(const Node& n, int64_t opset, const Args& args) {
  if (!CanGeneratePointwise(n, opset)) return Internal(n.Label() + ": not a generated pointwise op");
  if (args.size() != n.num_inputs())
    return Internal(n.Label() + ": " + std::to_string(args.size()) + " operand expressions for " +
                    std::to_string(n.num_inputs()) + " inputs");
  const Row& row = *FindRow(n);
  if (row.kind == Kind::kCast) return CastExpr(n, args[0]);
  if (row.kind == Kind::kClip) return ClipExpr(n, opset, args);
  return row.expr(n, args);
}

RowReduce RowReduceOf(const Node& n, int64_t opset) {
  static const std::map<std::string, std::pair<RowReduce, int64_t>> kReduces = {
      // op → kind, first opset that reads the axes from input 1
      {"ReduceSum", {RowReduce::kSum, 13}},        {"ReduceMean", {RowReduce::kMean, 18}},
      {"ReduceMax", {RowReduce::kMax, 18}},        {"ReduceMin", {RowReduce::kMin, 18}},
      {"ReduceSumSquare", {RowReduce::kSumSquare, 18}}, {"ReduceL2", {RowReduce::kL2, 18}}};
  if (n.domain != "" && n.domain != "ai.onnx") return RowReduce::kNone;
  auto it = kReduces.find(n.op_type);
  if (it == kReduces.end() || n.num_outputs() != 1 || !n.output(0) || !n.input(0)) return RowReduce::kNone;
  const Value* x = n.input(0);
  if (!IsPointwiseFloat(x->dtype()) || n.output(0)->dtype() != x->dtype() || x->shape().rank() < 1)
    return RowReduce::kNone;
  for (const auto& [name, attr] : n.attrs)
    if (name != "axes" && name != "keepdims" && name != "noop_with_empty_axes") return RowReduce::kNone;
  const Attribute* keep = n.attr("keepdims");
  if (keep && keep->i != 1) return RowReduce::kNone;
  auto axes = passes::NodeAxes(n, opset, it->second.second, 1);
  if (!axes || axes->size() != 1) return RowReduce::kNone;
  const int64_t rank = x->shape().rank();
  if ((*axes)[0] != rank - 1 && (*axes)[0] != -1) return RowReduce::kNone;
  return it->second.first;
}

std::vector<std::string> PointwiseOpNames() {
  std::vector<std::string> names;
  for (const auto& [name, row] : Table()) names.push_back(name);
  return names;
}

std::string FloatLiteral(float v) {
  if (!std::isfinite(v)) {
    uint32_t bits;
    std::memcpy(&bits, &v, sizeof bits);
    char buf[40];
    std::snprintf(buf, sizeof buf, "kiln_f32_bits(0x%08xu)", bits);
    return buf;
  }
  char buf[48];
  std::snprintf(buf, sizeof buf, "%af", static_cast<double>(v));
  return std::string(v < 0 || std::signbit(v) ? "(" : "") + buf + (v < 0 || std::signbit(v) ? ")" : "");
}

}  // namespace kiln::codegen
