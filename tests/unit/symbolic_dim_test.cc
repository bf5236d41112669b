// Symbolic dim expressions stay canonical and short: constants fold, sums and
// products flatten, exact floor-division chains collapse ((x/2)/2 = x/4), so
// a ResNet-like stack on a symbolic height prints "(height+31)/32" instead of
// a nested expression hundreds of characters long, and still evaluates to
// what concrete shape inference computes.
#include <gtest/gtest.h>

#include <functional>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "core/shape.h"
#include "ir/clone.h"
#include "ir/graph.h"
#include "passes/shape_inference.h"

namespace kiln {
namespace {

Dim Sym(const std::string& s) { return Dim::Symbol(s); }

TEST(SymbolicDim, ConstantsFoldAndSumsFlatten) {
  Dim h = Sym("h");
  EXPECT_EQ((h + Dim(2) - Dim(3)).ToString(), "h-1");
  EXPECT_EQ((h + Dim(2) - Dim(2)).ToString(), "h");
  EXPECT_EQ(((Sym("a") + Sym("b")) + Sym("c")).ToString(), "a+b+c");
  EXPECT_EQ((Sym("c") + (Sym("b") + Sym("a"))).ToString(), "a+b+c");
  EXPECT_EQ(((Sym("a") * Sym("b")) * Sym("c")).ToString(), "a*b*c");
  EXPECT_EQ((Sym("seq") * Dim(3) * Dim(4)).ToString(), "seq*12");
  EXPECT_EQ((Sym("seq") - Sym("past")).ToString(), "seq-past");
  EXPECT_EQ((h * Dim(2) - h).ToString(), "h");
  EXPECT_EQ(Sym("2*batch"), Sym("batch*2"));
  EXPECT_EQ(Sym("past_sequence_length + 1"), Sym("past_sequence_length") + Dim(1));
  EXPECT_EQ((Dim(1) - h).ToString(), "1-h");  // an expression, not a constant
  EXPECT_TRUE((Dim(1) - Dim(3)).unknown());
  // Names that are no expression stay names.
  EXPECT_EQ(Sym("input.1_dim0").symbol(), "input.1_dim0");
  EXPECT_EQ((Sym("input.1_dim0") * Dim(2)).ToString(), "(input.1_dim0)*2");
}

TEST(SymbolicDim, FloorDivisionSimplifiesWhereExact) {
  Dim x = Sym("x");
  EXPECT_EQ((x * Dim(4)).FloorDiv(Dim(2)).ToString(), "x*2");
  EXPECT_EQ(x.FloorDiv(Dim(2)).FloorDiv(Dim(2)).ToString(), "x/4");
  EXPECT_EQ((x * Dim(6) + Dim(3)).FloorDiv(Dim(3)).ToString(), "x*2+1");
  EXPECT_EQ((x * Dim(2) + Dim(2)).FloorDiv(Dim(4)).ToString(), "(x+1)/2");
  // A conv with kernel 3, stride 2, padding 1: (h + 2 - 3) / 2 + 1.
  Dim h = Sym("h");
  Dim once = (h + Dim(2) - Dim(3)).FloorDiv(Dim(2)) + Dim(1);
  EXPECT_EQ(once.ToString(), "(h+1)/2");
  Dim twice = (once + Dim(2) - Dim(3)).FloorDiv(Dim(2)) + Dim(1);
  EXPECT_EQ(twice.ToString(), "(h+3)/4");
  // Symbolic divisors: exact factors cancel.
  EXPECT_EQ((Sym("b") * Sym("s") * Dim(768)).FloorDiv(Sym("b") * Dim(12)).ToString(), "s*64");
  EXPECT_EQ((Sym("a") + Sym("b")).FloorDiv(Sym("a") + Sym("b")).value(), 1);
  EXPECT_EQ(x.FloorDiv(Sym("y")).ToString(), "x/y");
  EXPECT_TRUE(x.FloorDiv(Dim(0)).unknown());
}

TEST(SymbolicDim, TextParsesBackToTheSameDim) {
  for (const Dim& d : {Sym("h") + Dim(1), (Sym("h") + Dim(3)).FloorDiv(Dim(4)) * Sym("w"),
                       Sym("a") - Sym("b") * Dim(2), (Sym("x") + Sym("y")).FloorDiv(Sym("z")) + Dim(5)}) {
    Dim back = Sym(d.symbol());
    EXPECT_EQ(back, d) << d.symbol() << " came back as " << back.symbol();
  }
}

TEST(SymbolicDim, LongExpressionsPrintShortButKeepTheirIdentity) {
  Dim sum = Sym("s0");
  for (int i = 1; i < 30; ++i) sum = sum + Sym("s" + std::to_string(i)) * Dim(i + 1);
  EXPECT_GT(sum.symbol().size(), 100u);
  EXPECT_LE(sum.ToString().size(), Dim::kMaxDimText);
  EXPECT_NE(sum.ToString().find("..."), std::string::npos);
  Shape s({Dim::Symbol("batch"), sum});
  EXPECT_LT(s.ToString().size(), 80u);
  EXPECT_NE(sum, sum + Dim(1));
}

// Random expressions over h and w (+, -, *, floor division by a constant or
// by a symbol) evaluate to what plain integer arithmetic gives.
TEST(SymbolicDim, CanonicalFormEvaluatesLikeTheExpression) {
  std::mt19937 rng(11);
  auto floordiv = [](int64_t a, int64_t b) {
    int64_t q = a / b;
    if ((a % b != 0) && ((a < 0) != (b < 0))) --q;
    return q;
  };
  struct Expr {
    Dim dim;
    std::function<int64_t(int64_t, int64_t)> eval;
  };
  std::function<Expr(int)> gen = [&](int depth) -> Expr {
    int kind = depth <= 0 ? static_cast<int>(rng() % 3) : static_cast<int>(rng() % 9);
    if (kind == 0) return {Sym("h"), [](int64_t h, int64_t) { return h; }};
    if (kind == 1) return {Sym("w"), [](int64_t, int64_t w) { return w; }};
    if (kind == 2) {
      int64_t c = static_cast<int64_t>(rng() % 9);
      return {Dim(c), [c](int64_t, int64_t) { return c; }};
    }
    Expr a = gen(depth - 1), b = gen(depth - 1);
    if (kind == 3 || kind == 4)
      return {a.dim + b.dim, [a, b](int64_t h, int64_t w) { return a.eval(h, w) + b.eval(h, w); }};
    if (kind == 5)
      return {a.dim * b.dim, [a, b](int64_t h, int64_t w) { return a.eval(h, w) * b.eval(h, w); }};
    if (kind == 7) {  // by a symbolic divisor, positive for h, w >= 1
      int64_t k = 1 + static_cast<int64_t>(rng() % 3);
      return {a.dim.FloorDiv(Sym("w") * Dim(k)),
              [a, k, floordiv](int64_t h, int64_t w) { return floordiv(a.eval(h, w), w * k); }};
    }
    if (kind == 6) {
      int64_t k = 1 + static_cast<int64_t>(rng() % 5);
      return {a.dim.FloorDiv(Dim(k)),
              [a, k, floordiv](int64_t h, int64_t w) { return floordiv(a.eval(h, w), k); }};
    }
    // Values may go negative at some h, w: the algebra must still hold.
    return {a.dim - b.dim, [a, b](int64_t h, int64_t w) { return a.eval(h, w) - b.eval(h, w); }};
  };
  int checked = 0;
  for (int n = 0; n < 3000; ++n) {
    Expr e = gen(4);
    if (e.dim.unknown()) continue;
    for (int64_t h : {1, 2, 7, 31, 224}) {
      for (int64_t w : {1, 3, 64}) {
        auto got = e.dim.Evaluate({{"h", h}, {"w", w}});
        ASSERT_TRUE(got.has_value()) << e.dim.symbol();
        ASSERT_EQ(*got, e.eval(h, w)) << e.dim.symbol() << " at h=" << h << " w=" << w;
        ++checked;
      }
    }
    // Re-parsing the text gives the same dim.
    if (e.dim.symbolic()) {
      ASSERT_EQ(Sym(e.dim.symbol()), e.dim) << e.dim.symbol();
    }
  }
  EXPECT_GT(checked, 1000);
}

// ---- a ResNet-like stack on a symbolic height and width ----

class NetBuilder {
 public:
  NetBuilder() {
    m_->ir_version = 8;
    m_->opsets[""] = 17;
    m_->graph = std::make_shared<Graph>();
    m_->graph->name = "main";
  }
  Value* Input(const std::string& name, Shape s) {
    Value* v = g().AddValue(name);
    v->type = TypeInfo::Tensor(DataType::kFloat, std::move(s));
    g().inputs.push_back(v);
    return v;
  }
  Value* Weight(std::vector<int64_t> dims) {
    Value* v = g().AddValue(g().UniqueName("w"));
    Tensor t(DataType::kFloat, std::move(dims));
    v->type = TypeInfo::Tensor(DataType::kFloat, t.shape());
    v->data = t;
    g().initializers.push_back(v);
    return v;
  }
  Value* Op(const std::string& op, std::vector<Value*> in, AttributeMap attrs = {}) {
    Node* n = g().AddNode(op, g().UniqueName(op));
    for (Value* v : in) n->AddInput(v);
    n->attrs = std::move(attrs);
    Value* y = g().AddValue(n->name + "_out");
    n->AddOutput(y);
    return y;
  }
  Value* Conv(Value* x, int64_t cin, int64_t cout, int64_t k, int64_t stride, int64_t pad) {
    return Op("Conv", {x, Weight({cout, cin, k, k})},
              {{"kernel_shape", Attribute::FromInts({k, k})},
               {"strides", Attribute::FromInts({stride, stride})},
               {"pads", Attribute::FromInts({pad, pad, pad, pad})}});
  }
  // A basic block with a stride-2 1x1 downsample shortcut; the Add needs the
  // two paths' dims to be recognised as equal.
  Value* DownBlock(Value* x, int64_t cin, int64_t cout) {
    Value* a = Op("Relu", {Conv(x, cin, cout, 3, 2, 1)});
    Value* b = Conv(a, cout, cout, 3, 1, 1);
    Value* shortcut = Conv(x, cin, cout, 1, 2, 0);
    return Op("Relu", {Op("Add", {b, shortcut})});
  }
  void Output(Value* v) { g().outputs.push_back(v); }
  std::unique_ptr<Model> Take() { return std::move(m_); }

 private:
  Graph& g() { return *m_->graph; }
  std::unique_ptr<Model> m_ = std::make_unique<Model>();
};

std::unique_ptr<Model> ResNetLike() {
  NetBuilder b;
  Value* x = b.Input("x", Shape({Sym("N"), Dim(3), Sym("height"), Sym("width")}));
  Value* y = b.Op("Relu", {b.Conv(x, 3, 8, 7, 2, 3)});
  y = b.Op("MaxPool", {y},
           {{"kernel_shape", Attribute::FromInts({3, 3})},
            {"strides", Attribute::FromInts({2, 2})},
            {"pads", Attribute::FromInts({1, 1, 1, 1})}});
  y = b.DownBlock(y, 8, 8);
  y = b.DownBlock(y, 8, 16);
  y = b.DownBlock(y, 16, 16);
  b.Output(y);
  return b.Take();
}

TEST(SymbolicDim, ResNetLikeStackKeepsShortCorrectDims) {
  auto m = ResNetLike();
  Status s = InferShapes(*m);
  ASSERT_TRUE(s.ok()) << s.ToString();
  const Shape& out = m->graph->outputs[0]->type.shape;
  ASSERT_EQ(out.rank(), 4);
  EXPECT_EQ(out[0].ToString(), "N");
  EXPECT_EQ(out[1].value(), 16);
  ASSERT_TRUE(out[2].symbolic()) << out.ToString();
  ASSERT_TRUE(out[3].symbolic()) << out.ToString();
  EXPECT_LT(out[2].symbol().size(), 80u) << out[2].symbol();
  EXPECT_LT(out.ToString().size(), 80u) << out.ToString();
  EXPECT_EQ(out[2].ToString(), "(height+31)/32");
  EXPECT_EQ(out[3].ToString(), "(width+31)/32");

  for (int64_t h : {1, 31, 32, 33, 97, 224, 333}) {
    auto concrete = CloneModel(*m);
    ShapeInferenceOptions opts;
    opts.input_shapes["x"] = Shape::Of({2, 3, h, h + 5});
    Status cs = InferShapes(*concrete, opts);
    ASSERT_TRUE(cs.ok()) << cs.ToString();
    auto dims = concrete->graph->outputs[0]->type.shape.concrete();
    ASSERT_TRUE(dims) << concrete->graph->outputs[0]->type.ToString();
    std::map<std::string, int64_t> bind{{"N", 2}, {"height", h}, {"width", h + 5}};
    EXPECT_EQ(out[2].Evaluate(bind), (*dims)[2]) << "height " << h;
    EXPECT_EQ(out[3].Evaluate(bind), (*dims)[3]) << "width " << h + 5;
  }
}

}  // namespace
}  // namespace kiln
