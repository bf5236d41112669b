#include "passes/fp32_islands.h"

#include <cstdio>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>

#include "passes/pass_util.h"

namespace kiln {
namespace {

using passes::ConstScalar;
using passes::IsOnnxOp;

enum class Range { kSafe = 0, kScale = 1, kLarge = 2, kPosition = 3 };

// Ops whose output has the largest class of their float inputs.
const std::set<std::string>& PassThroughOps() {
  static const std::set<std::string> ops = {"Add",
                                            "Sub",
                                            "Max",
                                            "Min",
                                            "Sum",
                                            "Mean",
                                            "Neg",
                                            "Abs",
                                            "Relu",
                                            "Where",
                                            "ReduceSum",
                                            "ReduceMean",
                                            "ReduceMax",
                                            "ReduceMin",
                                            "Cast",
                                            "Identity",
                                            "Reshape",
                                            "Transpose",
                                            "Squeeze",
                                            "Unsqueeze",
                                            "Flatten",
                                            "Expand",
                                            "Slice",
                                            "Gather",
                                            "Concat",
                                            "Split",
                                            "Tile",
                                            "Pad",
                                            "GatherElements",
                                            "CumSum",
                                            "GlobalAveragePool",
                                            "GlobalMaxPool"};
  return ops;
}

std::string Quote(const Value* v) { return "'" + v->name() + "'"; }

class Analysis {
 public:
  Analysis(const Model& m, const Fp32IslandOptions& o) : model_(m), opt_(o) {}

  void Visit(const Graph& g) {
    const bool main = &g == model_.graph.get();
    if (main)
      for (const Value* in : g.inputs)
        if (Measured(in)) range_[in] = {Range::kLarge, "input " + Quote(in) + " (measured)"};
    for (const Node* n : g.nodes()) {
      if (passes::HasSubgraphs(*n)) {
        for (Graph* sg : passes::Subgraphs(*n)) Visit(*sg);
        continue;
      }
      std::string reason;
      std::optional<Range> out = Seed(*n, &reason);
      if (!out && main) out = Calibrated(*n, &reason);
      if (!out) out = Propagate(*n, &reason);
      if (!out) continue;
      result_.push_back({n, reason});
      for (const Value* v : n->outputs())
        if (v && v->dtype() == DataType::kFloat && *out != Range::kSafe) range_[v] = {*out, origin_};
    }
  }

  std::vector<Fp32Node> Take() { return std::move(result_); }

 private:
  struct Info {
    Range range = Range::kSafe;
    std::string origin;  // the seed it comes from, for the reasons
  };

  Range Of(const Value* v) const {
    if (!v || v->dtype() != DataType::kFloat) return Range::kSafe;
    auto it = range_.find(v);
    return it == range_.end() ? Range::kSafe : it->second.range;
  }

  // Number of elements one output element of a reduction sums; nullopt when
  // not known statically.
  std::optional<int64_t> ReducedExtent(const Node& n) const {
    const Value* x = n.input(0);
    if (!x || !x->type.known()) return std::nullopt;
    const Shape& s = x->shape();
    int64_t until = n.op_type == "ReduceSum" ? 13 : 18;
    auto axes = passes::NodeAxes(n, model_.OpsetOf(n.domain), until, 1);
    if (!axes) return std::nullopt;
    int64_t rank = static_cast<int64_t>(s.rank());
    std::vector<int64_t> all;
    if (axes->empty()) {
      if (passes::AttrInt(n, "noop_with_empty_axes", 0)) return 1;
      for (int64_t i = 0; i < rank; ++i) all.push_back(i);
    } else {
      auto norm = passes::NormalizeAxes(*axes, rank);
      if (!norm) return std::nullopt;
      all = *norm;
    }
    int64_t extent = 1;
    for (int64_t a : all) {
      const Dim& d = s.dims()[static_cast<size_t>(a)];
      if (!d.known()) return std::nullopt;
      extent *= d.value();
    }
    return extent;
  }

  std::optional<Range> Seed(const Node& n, std::string* reason) {
    const Value* x = n.input(0);
    if (!x || !n.domain.empty()) return std::nullopt;
    origin_ = n.op_type + " " + Quote(n.output(0));
    if (IsPositions(n)) {
      *reason = "positions (" + n.op_type + " " + Quote(n.output(0)) +
                "): FP16 counts exactly only to 2048 and rounds the angles made from them";
      return Range::kPosition;
    }
    if (x->dtype() != DataType::kFloat) return std::nullopt;
    if (IsOnnxOp(&n, "Mul") && n.num_inputs() == 2 && n.input(1) == x) {
      *reason = "squares " + Quote(x) + " (Mul(x, x)): may exceed FP16's range";
      return Range::kLarge;
    }
    if (IsOnnxOp(&n, "Pow")) {
      std::optional<double> c = ConstScalar(n.input(1));
      if (!c) {
        *reason = "Pow with a non-constant exponent: may exceed FP16's range";
        return Range::kLarge;
      }
      if (*c > 1) {
        *reason = "Pow(" + Quote(x) + ", " + std::to_string(*c) + "): may exceed FP16's range";
        return Range::kLarge;
      }
      return std::nullopt;
    }
    if (IsOnnxOp(&n, "Exp")) {
      *reason = "Exp: exceeds FP16's range above 11";
      return Range::kLarge;
    }
    if (IsOnnxOp(&n, "ReduceSumSquare")) {
      *reason = "sum of squares: may exceed FP16's range";
      return Range::kLarge;
    }
    if (IsOnnxOp(&n, "ReduceL2")) {
      *reason = "L2 norm (square root of a sum of squares)";
      return Range::kScale;
    }
    if (IsOnnxOp(&n, "ReduceLogSumExp")) {
      *reason = "log-sum-exp (sums exponentials)";
      return Range::kSafe;
    }
    if (IsOnnxOp(&n, "ReduceSum") || IsOnnxOp(&n, "ReduceMean")) {
      std::optional<int64_t> extent = ReducedExtent(n);
      if (!extent || *extent <= opt_.large_reduction) return std::nullopt;
      *reason = n.op_type + " over " + std::to_string(*extent) + " elements (more than " +
                std::to_string(opt_.large_reduction) + ")";
      // A large sum may leave FP16's range; the inputs take the larger class.
      Range in = Of(x);
      return n.op_type == "ReduceSum" ? Range::kLarge : in;
    }
    return std::nullopt;
  }

  // A float Range (rotary and sinusoidal position tables: torch.arange(seq, dtype=float)), or the float Cast
  // of an integer Range (torch.arange(seq).float()).
  static bool IsPositions(const Node& n) {
    const Value* out = n.output(0);
    if (!out || out->dtype() != DataType::kFloat) return false;
    if (IsOnnxOp(&n, "Range")) return true;
    const Node* p = n.input(0)->producer();
    return IsOnnxOp(&n, "Cast") && !IsFloatingPoint(n.input(0)->dtype()) && p && IsOnnxOp(p, "Range");
  }

  // Whether v measured beyond FP16's range (with margin) on the calibration inputs.
  std::optional<double> Measured(const Value* v) const {
    if (!v || v->dtype() != DataType::kFloat) return std::nullopt;
    auto it = opt_.measured_max.find(v->name());
    if (it == opt_.measured_max.end() || it->second <= opt_.fp16_limit) return std::nullopt;
    return it->second;
  }

  std::optional<Range> Calibrated(const Node& n, std::string* reason) {
    for (const Value* v : n.outputs()) {
      std::optional<double> m = Measured(v);
      if (!m) continue;
      origin_ = n.op_type + " " + Quote(v) + " (measured)";
      char buf[64];
      std::snprintf(buf, sizeof(buf), "%.3g", *m);
      *reason = "measured |max| " + std::string(buf) + " for " + Quote(v) +
                " on the calibration inputs: beyond FP16's range (65504, with margin)";
      return Range::kLarge;
    }
    return std::nullopt;
  }

  std::optional<Range> Propagate(const Node& n, std::string* reason) {
    const Value* hot = nullptr;
    Range top = Range::kSafe;
    for (const Value* v : n.inputs())
      if (Of(v) > top) {
        top = Of(v);
        hot = v;
      }
    if (!hot) return std::nullopt;
    origin_ = range_.at(hot).origin;
    const char* what = top == Range::kPosition ? ", positions or angles made from them"
                       : top == Range::kLarge  ? ", which may exceed FP16's range"
                                               : ", a normaliser";
    *reason = "reads " + Quote(hot) + what + " (from " + origin_ + ")";
    if (!n.domain.empty()) return Range::kSafe;
    const std::string& op = n.op_type;
    // Angles stay positions through their arithmetic with constants (pos·inv_freq as Mul, Einsum or MatMul,
    // the doubled table) up to Cos/Sin. Mixed with activations (coordinates concatenated to a feature map)
    // the node stays FP32 and its output is safe: the layers after it run FP16.
    if (top == Range::kPosition) {
      for (const Value* v : n.inputs())
        if (v && v->dtype() == DataType::kFloat && Of(v) != Range::kPosition && !passes::IsConstant(v))
          return Range::kSafe;
      return PassThroughOps().count(op) || op == "Mul" || op == "Div" || op == "Einsum" || op == "MatMul"
                 ? Range::kPosition
                 : Range::kSafe;
    }
    if (op == "Sqrt" || op == "Reciprocal") return Range::kScale;
    if (op == "Pow") {
      std::optional<double> c = ConstScalar(n.input(1));
      if (c && *c <= 1) return Range::kScale;
      return Range::kLarge;
    }
    if (op == "Div") {
      if (Of(n.input(1)) != Range::kSafe) {
        *reason += "; the normalising division";
        return Range::kSafe;
      }
      return Of(n.input(0));
    }
    if (op == "Mul" && n.num_inputs() == 2) {
      Range a = Of(n.input(0)), b = Of(n.input(1));
      if ((a == Range::kScale) != (b == Range::kScale)) {
        *reason += "; the normalising product";
        return Range::kSafe;
      }
      return a > b ? a : b;
    }
    if (PassThroughOps().count(op)) return top;
    return Range::kSafe;
  }

  const Model& model_;
  Fp32IslandOptions opt_;
  std::unordered_map<const Value*, Info> range_;
  std::vector<Fp32Node> result_;
  std::string origin_;
};

}  // namespace

std::vector<Fp32Node> FindFp32Islands(const Model& model, const Fp32IslandOptions& options) {
  Analysis a(model, options);
  a.Visit(*model.graph);
  return a.Take();
}

}  // namespace kiln
