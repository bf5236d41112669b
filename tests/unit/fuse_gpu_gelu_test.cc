// fuse_gpu's GELU rewrites (src/passes/fuse_gpu.h): the erf and tanh chains in the forms exporters write
// → kiln.Gelu, the chains it must leave alone, kiln.Gelu as ONNX Gelu, and the ONNX round trip. Every model
// runs through the ReferenceExecutor before and after the pass and must agree within a tolerance.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <string>

#include "graph_builder.h"
#include "ir/printer.h"
#include "ir/verifier.h"
#include "onnx/import.h"
#include "passes/fuse_gpu.h"
#include "passes/shape_inference.h"
#include "reference/executor.h"

namespace kiln {
namespace {

using testing_build::CountOps;
using testing_build::RandomTensor;
using Builder = testing_build::GraphBuilder;

std::unique_ptr<Model> FuseAndCompare(const Model& before, int64_t sym = 2, double tol = 0.0) {
  return testing_build::RunPassAndCompare(before, RunFuseForGpu, sym, tol, nullptr);
}

const Shape kImage({Dim::Symbol("batch"), 4, 6, 6});
const AttributeMap kPads1 = {{"pads", Attribute::FromInts({1, 1, 1, 1})}};

// The erf-GELU chain in the forms exporters write. `scale`: 0 Div(x, √2),
// 1 Mul(x, 1/√2), 2 Mul(1/√2, x); `form`: 0 Mul(Mul(x, a), 0.5), 1
// Mul(Mul(x, 0.5), a), 2 Mul(Mul(a, 0.5), x); `swap` flips the operands of the
// Add and of both Muls; `dims`: the constants' shape.
struct GeluForm {
  int scale;
  int form;
  bool swap;
  std::vector<int64_t> dims;
};

Value* BuildGelu(Builder& b, Value* x, const GeluForm& g, const std::string& p,
                 double sqrt2 = std::sqrt(2.0)) {
  auto pair = [&](Value* u, Value* v) {
    return g.swap ? std::vector<Value*>{v, u} : std::vector<Value*>{u, v};
  };
  Value* d = g.scale == 0   ? b.Op("Div", p + "div", {x, b.Scalar(p + "sqrt2", sqrt2, g.dims)})
             : g.scale == 1 ? b.Op("Mul", p + "scale", {x, b.Scalar(p + "rsqrt2", 1 / sqrt2, g.dims)})
                            : b.Op("Mul", p + "scale", {b.Scalar(p + "rsqrt2", 1 / sqrt2, g.dims), x});
  Value* e = b.Op("Erf", p + "erf", {d});
  Value* a = b.Op("Add", p + "add", pair(e, b.Scalar(p + "one", 1.0, g.dims)));
  Value* half = b.Scalar(p + "half", 0.5, g.dims);
  if (g.form == 0) return b.Op("Mul", p + "mul2", pair(b.Op("Mul", p + "mul1", pair(x, a)), half));
  if (g.form == 1) return b.Op("Mul", p + "mul2", pair(b.Op("Mul", p + "mul1", pair(x, half)), a));
  return b.Op("Mul", p + "mul2", pair(b.Op("Mul", p + "mul1", pair(a, half)), x));
}

TEST(FuseGpu, GeluForms) {
  const Shape tokens({Dim::Symbol("batch"), Dim::Symbol("seq"), 8});
  for (DataType dt : {DataType::kFloat, DataType::kFloat16}) {
    for (int scale = 0; scale < 3; ++scale) {
      for (int form = 0; form < 3; ++form) {
        for (bool swap : {false, true}) {
          for (std::vector<int64_t> dims : {std::vector<int64_t>{}, std::vector<int64_t>{1}}) {
            SCOPED_TRACE(std::string(DataTypeName(dt)) + " scale " + std::to_string(scale) + " form " +
                         std::to_string(form) + (swap ? " swapped" : "") + " rank " +
                         std::to_string(dims.size()));
            Builder b(dt);
            Value* x = b.Input("x", tokens);
            b.Output(BuildGelu(b, x, {scale, form, swap, dims}, ""));
            auto m = b.Done();
            auto f = FuseAndCompare(*m, 5, dt == DataType::kFloat ? 1e-6 : 2e-3);
            ASSERT_EQ(f->graph->num_nodes(), 1u) << PrintGraph(*f);
            const Node* n = f->graph->nodes()[0];
            EXPECT_EQ(n->domain, "kiln");
            EXPECT_EQ(n->op_type, "Gelu");
            EXPECT_EQ(n->attr("approximate")->s, "none");
            EXPECT_EQ(n->input(0), f->graph->inputs[0]);
            EXPECT_EQ(f->graph->outputs[0]->name(), "mul2");
            EXPECT_EQ(f->opsets.at("kiln"), 1);
            EXPECT_EQ(f->opsets.at(""), 17);
          }
        }
      }
    }
  }
}

// The tanh-GELU chain as torch 1.13 exports its three common sources at opset 17 (checked against
// torch.onnx.export): 0 nn.GELU(approximate="tanh") (x·(x·x), Mul(0.5, Mul(x, a))), 1 HF's NewGELU
// (Pow(x, 3), Mul(Mul(x, 0.5), a)), 2 HF's FastGELU (Mul(x, c)·(1 + 0.044715·x·x)). `swap` flips the
// operands of every commutative op; `k`: the cubic coefficient (0.044715).
Value* BuildTanhGelu(Builder& b, Value* x, int source, bool swap, const std::string& p, double k = 0.044715) {
  auto op = [&](const char* type, const std::string& name, Value* u, Value* v) {
    return b.Op(type, p + name, swap ? std::vector<Value*>{v, u} : std::vector<Value*>{u, v});
  };
  const double c = 0.7978845608028654;
  Value* u = nullptr;
  if (source == 2) {
    Value* s1 = op("Mul", "s1", x, b.Scalar(p + "c", 0.7978845608));
    Value* s3 = op("Mul", "s3", op("Mul", "s2", x, b.Scalar(p + "k", k)), x);
    u = op("Mul", "u", s1, op("Add", "s4", s3, b.Scalar(p + "one_in", 1.0)));
  } else {
    Value* cube = source == 0 ? op("Mul", "x3", x, op("Mul", "x2", x, x))
                              : b.Op("Pow", p + "pow", {x, b.Scalar(p + "three", 3.0)});  // not commutative
    Value* v = op("Add", "v", x, op("Mul", "w", b.Scalar(p + "k", k), cube));
    u = op("Mul", "u", b.Scalar(p + "c", c), v);
  }
  Value* a = op("Add", "a", b.Scalar(p + "one", 1.0), b.Op("Tanh", p + "tanh", {u}));
  Value* half = b.Scalar(p + "half", 0.5);
  if (source == 0) return op("Mul", "y", half, op("Mul", "m", x, a));
  return op("Mul", "y", op("Mul", "h", x, half), a);
}

TEST(FuseGpu, TanhGeluForms) {
  const Shape tokens({Dim::Symbol("batch"), 8});
  for (DataType dt : {DataType::kFloat, DataType::kFloat16}) {
    for (int source = 0; source < 3; ++source) {
      for (bool swap : {false, true}) {
        SCOPED_TRACE(std::string(DataTypeName(dt)) + " source " + std::to_string(source) +
                     (swap ? " swapped" : ""));
        Builder b(dt);
        Value* x = b.Input("x", tokens);
        b.Output(BuildTanhGelu(b, x, source, swap, ""));
        auto m = b.Done();
        auto f = FuseAndCompare(*m, 5, dt == DataType::kFloat ? 1e-6 : 2e-3);
        ASSERT_EQ(f->graph->num_nodes(), 1u) << PrintGraph(*f);
        const Node* n = f->graph->nodes()[0];
        EXPECT_EQ(n->op_type, "Gelu");
        EXPECT_EQ(n->attr("approximate")->s, "tanh");
        EXPECT_EQ(n->input(0), f->graph->inputs[0]);
        EXPECT_EQ(f->graph->outputs[0]->name(), "y");
      }
    }
  }
  // Left alone: a cubic coefficient off by 1e-4 relative; x² instead of x³; a plain Tanh.
  Builder b;
  Value* x = b.Input("x", tokens);
  b.Output(BuildTanhGelu(b, x, 0, false, "k/", 0.044715 * (1 + 1e-4)));
  b.Output(b.Op("Tanh", "plain", {x}));
  Value* sq = b.Op("Pow", "q/pow", {x, b.Scalar("q/two", 2.0)});
  Value* v = b.Op("Add", "q/v", {x, b.Op("Mul", "q/w", {b.Scalar("q/k", 0.044715), sq})});
  Value* t = b.Op("Tanh", "q/tanh", {b.Op("Mul", "q/u", {b.Scalar("q/c", 0.7978845608028654), v})});
  Value* a = b.Op("Add", "q/a", {t, b.Scalar("q/one", 1.0)});
  b.Output(b.Op("Mul", "q/y", {b.Op("Mul", "q/h", {x, b.Scalar("q/half", 0.5)}), a}));
  auto m = b.Done();
  auto f = FuseAndCompare(*m, 2, 1e-6);
  EXPECT_EQ(CountOps(*f, "Gelu"), 0);
  EXPECT_EQ(f->graph->num_nodes(), m->graph->num_nodes());
}

// ViT's MLP: fc1 (MatMul + bias) → GELU → fc2; torch's exported constants.
TEST(FuseGpu, GeluBetweenMatMuls) {
  Builder b;
  Value* x = b.Input("x", Shape({Dim::Symbol("batch"), Dim::Symbol("seq"), 8}));
  Value* h = b.Op("Add", "fc1", {b.Op("MatMul", "fc1_mm", {x, b.Const("w1", {8, 16})}), b.Const("b1", {16})});
  Value* g = BuildGelu(b, h, {0, 0, false, {}}, "act/", 1.4142135381698608);
  b.Output(b.Op("Add", "fc2", {b.Op("MatMul", "fc2_mm", {g, b.Const("w2", {16, 8})}), b.Const("b2", {8})}));
  auto m = b.Done();
  auto f = FuseAndCompare(*m, 3, 1e-6);
  EXPECT_EQ(PrintGraph(*f),
            "opset ai.onnx=17, kiln=1\n"
            "graph main {\n"
            "  input %x: float32[batch,seq,8]\n"
            "  init %w1: float32[8,16]\n"
            "  init %b1: float32[16]\n"
            "  init %w2: float32[16,8]\n"
            "  init %b2: float32[8]\n"
            "  %fc1 = kiln.FusedMatMul[activation=\"\"](%x, %w1, %b1)  # fc1_mm\n"
            "  %act/mul2 = kiln.Gelu[approximate=\"none\"](%fc1)  # act/div\n"
            "  %fc2 = kiln.FusedMatMul[activation=\"\"](%act/mul2, %w2, %b2)  # fc2_mm\n"
            "  output %fc2: float32[batch,seq,8]\n"
            "}\n");
}

TEST(FuseGpu, LeavesNonGeluChainsAlone) {
  Builder b;
  const Shape tokens({Dim::Symbol("batch"), 8});
  Value* x = b.Input("x", tokens);
  Value* c = b.Input("c", Shape::Of({}));
  std::vector<Value*> outs;
  // Wrong constants: Div by 1.5; Add 1.01; Mul by 0.49; a 1/√2 off by 2e-6.
  for (int i = 0; i < 4; ++i) {
    std::string p = "w" + std::to_string(i) + "/";
    Value* d = i == 3 ? b.Op("Mul", p + "scale", {x, b.Scalar(p + "rsqrt2", std::sqrt(0.5) * (1 + 2e-6))})
                      : b.Op("Div", p + "div", {x, b.Scalar(p + "sqrt2", i == 0 ? 1.5 : std::sqrt(2.0))});
    Value* a =
        b.Op("Add", p + "add", {b.Op("Erf", p + "erf", {d}), b.Scalar(p + "one", i == 1 ? 1.01 : 1.0)});
    outs.push_back(b.Op("Mul", p + "mul2",
                        {b.Op("Mul", p + "mul1", {x, a}), b.Scalar(p + "half", i == 2 ? 0.49 : 0.5)}));
  }
  // Div(√2, x): the operands of Div do not commute.
  {
    Value* d = b.Op("Div", "r/div", {b.Scalar("r/sqrt2", std::sqrt(2.0)), x});
    Value* a = b.Op("Add", "r/add", {b.Op("Erf", "r/erf", {d}), b.Scalar("r/one", 1.0)});
    outs.push_back(b.Op("Mul", "r/mul2", {b.Op("Mul", "r/mul1", {x, a}), b.Scalar("r/half", 0.5)}));
  }
  // The Erf output is a graph output; the Add output has a second use.
  for (int i = 0; i < 2; ++i) {
    std::string p = "u" + std::to_string(i) + "/";
    Value* e = b.Op("Erf", p + "erf", {b.Op("Div", p + "div", {x, b.Scalar(p + "sqrt2", std::sqrt(2.0))})});
    Value* a = b.Op("Add", p + "add", {e, b.Scalar(p + "one", 1.0)});
    outs.push_back(b.Op("Mul", p + "mul2", {b.Op("Mul", p + "mul1", {x, a}), b.Scalar(p + "half", 0.5)}));
    outs.push_back(i == 0 ? e : b.Op("Tanh", p + "tanh", {a}));
  }
  // A constant that is not a constant (graph input); a one-element constant
  // of higher rank than x (it broadcasts x up).
  for (int i = 0; i < 2; ++i) {
    std::string p = "k" + std::to_string(i) + "/";
    Value* half = i == 0 ? c : b.Scalar(p + "half", 0.5, {1, 1, 1});
    Value* d = b.Op("Div", p + "div", {x, b.Scalar(p + "sqrt2", std::sqrt(2.0))});
    Value* a = b.Op("Add", p + "add", {b.Op("Erf", p + "erf", {d}), b.Scalar(p + "one", 1.0)});
    outs.push_back(b.Op("Mul", p + "mul2", {b.Op("Mul", p + "mul1", {x, a}), half}));
  }
  // And one real GELU among them: it alone fuses.
  outs.push_back(BuildGelu(b, x, {0, 0, false, {}}, "ok/"));
  for (Value* v : outs) b.Output(v);
  auto m = b.Done();
  auto f = FuseAndCompare(*m, 2, 1e-6);
  EXPECT_EQ(CountOps(*f, "Gelu"), 1);
  EXPECT_EQ(f->graph->outputs.back()->producer()->op_type, "Gelu");
  EXPECT_EQ(CountOps(*f, "Erf"), 9);
  EXPECT_EQ(f->graph->num_nodes(), m->graph->num_nodes() - 4);
}

// A convolution's erf GELU becomes its "Gelu" activation (MaxViT's MBConv blocks): the chain in each exporter
// form, FP32 and FP16, within the tolerance of GeluForms (the chain rounded after each of its five ops, the
// activation once), and a kiln.Gelu node bit for bit. The tanh form, and a chain whose input another node
// also reads, stay on their own.
TEST(FuseGpu, ConvTakesItsErfGelu) {
  for (DataType dt : {DataType::kFloat, DataType::kFloat16})
    for (const GeluForm& form :
         {GeluForm{0, 0, false, {}}, GeluForm{1, 1, true, {}}, GeluForm{2, 2, false, {1}}}) {
      SCOPED_TRACE(std::string(DataTypeName(dt)) + " scale " + std::to_string(form.scale) + " form " +
                   std::to_string(form.form));
      Builder b(dt);
      Value* x = b.Input("x", kImage);
      Value* c = b.Op("Conv", "conv", {x, b.Const("w", {4, 4, 3, 3}), b.Const("bias", {4})}, kPads1);
      b.Output(BuildGelu(b, c, form, "gelu/"));
      auto f = FuseAndCompare(*b.Done(), 2, dt == DataType::kFloat ? 1e-6 : 2e-3);
      const Node* conv = testing_build::FindOp(*f, "FusedConv");
      ASSERT_TRUE(conv);
      EXPECT_EQ(conv->attr("activation")->s, "Gelu");
      EXPECT_EQ(f->graph->num_nodes(), 1u);
    }
  {
    Builder b;
    Value* x = b.Input("x", kImage);
    Value* c = b.Op("Conv", "conv", {x, b.Const("w", {4, 4, 1, 1})});
    b.Output(b.Op("Gelu", "gelu", {c}, {{"approximate", Attribute::FromString("none")}}, "kiln"));
    auto f = FuseAndCompare(*b.Done(), 2, 0.0);
    EXPECT_EQ(f->graph->num_nodes(), 1u);
    const Node* conv = testing_build::FindOp(*f, "FusedConv");
    ASSERT_TRUE(conv);
    EXPECT_EQ(conv->attr("activation")->s, "Gelu");
  }
  {
    Builder b;
    Value* x = b.Input("x", kImage);
    Value* c = b.Op("Conv", "conv", {x, b.Const("w", {4, 4, 1, 1})});
    b.Output(b.Op("Gelu", "gelu", {c}, {{"approximate", Attribute::FromString("tanh")}}, "kiln"));
    auto f = FuseAndCompare(*b.Done(), 2, 0.0);
    EXPECT_EQ(CountOps(*f, "Gelu"), 1);
  }
  {
    Builder b;
    Value* x = b.Input("x", kImage);
    Value* c = b.Op("Conv", "conv", {x, b.Const("w", {4, 4, 1, 1})});
    b.Output(BuildGelu(b, c, {0, 0, false, {}}, "gelu/"));
    b.Output(c);
    auto f = FuseAndCompare(*b.Done(), 2, 1e-6);  // the chain still becomes one kiln.Gelu
    EXPECT_EQ(CountOps(*f, "Gelu"), 1);
    EXPECT_EQ(CountOps(*f, "Conv"), 1);  // nothing to fuse: the Conv stays as it was
  }
}

// The new attributes and kiln.Gelu survive the plan's ONNX round trip.
TEST(FuseGpu, ActivationsAndGeluSurviveOnnxRoundTrip) {
  Builder b;
  Value* x = b.Input("x", kImage);
  Value* c1 = b.Op("Conv", "conv1", {x, b.Const("w1", {4, 4, 3, 3})}, kPads1);
  Value* k1 = b.Op("Clip", "clip", {c1, nullptr, b.Scalar("six", 6)});
  Value* c2 = b.Op("Conv", "conv2", {k1, b.Const("w2", {4, 4, 1, 1})});
  Value* s2 = b.Op("Mul", "swish", {c2, b.Op("Sigmoid", "sig", {c2})});
  b.Output(BuildGelu(b, s2, {1, 1, true, {}}, "gelu/"));
  auto m = b.Done();
  auto f = FuseAndCompare(*m, 2, 1e-6);
  EXPECT_EQ(CountOps(*f, "Gelu"), 1);
  EXPECT_EQ(f->graph->num_nodes(), 3u);
  auto back = testing_build::ExpectOnnxRoundTrip(*f);
  ASSERT_TRUE(back);
  EXPECT_TRUE(VerifyModel(*back).ok());
}

// kiln.Gelu is ONNX Gelu (its functions) in any model opset.
TEST(FusedOps, KilnGeluIsOnnxGelu) {
  for (const char* approximate : {"none", "tanh"}) {
    std::vector<std::unique_ptr<Model>> models;
    for (bool kiln : {true, false}) {
      auto m = std::make_unique<Model>();
      m->ir_version = 8;
      m->opsets[""] = kiln ? 17 : 20;
      if (kiln) m->opsets["kiln"] = 1;
      m->graph = std::make_shared<Graph>();
      Graph& g = *m->graph;
      Value* x = g.AddValue("x");
      x->type = TypeInfo::Tensor(DataType::kFloat16, Shape({Dim::Symbol("n"), 7}));
      g.inputs.push_back(x);
      Node* n = g.AddNode("Gelu", "gelu", kiln ? "kiln" : "");
      n->attrs["approximate"] = Attribute::FromString(approximate);
      n->AddInput(x);
      Value* y = g.AddValue("y");
      n->AddOutput(y);
      g.outputs.push_back(y);
      ASSERT_TRUE(InferShapes(*m).ok());
      EXPECT_EQ(y->type.ToString(), "float16[n,7]");
      Status valid = VerifyModel(*m);
      EXPECT_TRUE(valid.ok()) << valid.ToString();
      models.push_back(std::move(m));
    }
    std::mt19937 rng(5);
    std::map<std::string, RtValue> feed;
    feed["x"] = RtValue::FromTensor(RandomTensor(DataType::kFloat16, {3, 7}, rng));
    auto a = ReferenceExecutor(*models[0]).Run(feed);
    auto b = ReferenceExecutor(*models[1]).Run(feed);
    ASSERT_TRUE(a.ok() && b.ok());
    const Tensor& ta = (*a)[0].tensor;
    const Tensor& tb = (*b)[0].tensor;
    for (int64_t k = 0; k < ta.numel(); ++k)
      EXPECT_EQ(ta.ScalarAt(k), tb.ScalarAt(k)) << approximate << " " << k;
  }
}

}  // namespace
}  // namespace kiln
