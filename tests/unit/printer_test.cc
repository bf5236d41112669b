// Tests for the stable text IR printer (src/ir/printer.h). The expected text
// here is the format's specification: change it only on purpose.
#include "ir/printer.h"

#include <gtest/gtest.h>

#include <memory>

namespace kiln {
namespace {

Value* Input(Graph& g, const std::string& name, TypeInfo t) {
  Value* v = g.AddValue(name);
  v->type = std::move(t);
  g.inputs.push_back(v);
  return v;
}

std::unique_ptr<Model> MakeModel() {
  auto m = std::make_unique<Model>();
  m->ir_version = 8;
  m->opsets[""] = 17;
  m->opsets["com.microsoft"] = 1;
  m->graph = std::make_shared<Graph>();
  Graph& g = *m->graph;
  g.name = "main";
  Value* x = Input(g, "x", TypeInfo::Tensor(DataType::kFloat, Shape({Dim::Symbol("batch"), 3, 224, 224})));
  Value* cond = Input(g, "cond", TypeInfo::Tensor(DataType::kBool, Shape::Scalar()));
  Value* w = g.AddValue("w");
  w->type = TypeInfo::Tensor(DataType::kFloat, Shape::Of({8, 3, 3, 3}));
  w->data = Tensor(DataType::kFloat, {8, 3, 3, 3});
  g.initializers.push_back(w);

  Node* conv = g.AddNode("Conv", "/conv1/Conv");
  conv->AddInput(x);
  conv->AddInput(w);
  conv->AddInput(nullptr);  // omitted bias
  conv->attrs["pads"] = Attribute::FromInts({1, 1, 1, 1});
  conv->attrs["group"] = Attribute::FromInt(1);
  Value* y = g.AddValue("y");
  y->type = TypeInfo::Tensor(DataType::kFloat, Shape({Dim::Symbol("batch"), 8, 224, 224}));
  conv->AddOutput(y);

  Node* lrn = g.AddNode("LRN", "");
  lrn->AddInput(y);
  Attribute alpha;
  alpha.type = Attribute::Type::kFloat;
  alpha.f = 1e-4f;
  lrn->attrs["alpha"] = alpha;
  Attribute beta;
  beta.type = Attribute::Type::kFloat;
  beta.f = 1.0f;
  lrn->attrs["beta"] = beta;
  Attribute mode;
  mode.type = Attribute::Type::kString;
  mode.s = "say \"hi\"";
  lrn->attrs["mode"] = mode;
  Value* z = g.AddValue("z");
  lrn->AddOutput(z);

  auto then_g = std::make_shared<Graph>();
  then_g->name = "then_body";
  then_g->parent = &g;
  Node* c = then_g->AddNode("Constant", "c0");
  Attribute small;
  small.type = Attribute::Type::kTensor;
  small.t = Tensor::FromVector<int64_t>(DataType::kInt64, {2}, {4, -5});
  c->attrs["value"] = small;
  Value* tv = then_g->AddValue("t_out");
  tv->type = TypeInfo::Tensor(DataType::kInt64, Shape::Of({2}));
  c->AddOutput(tv);
  then_g->outputs.push_back(tv);

  auto else_g = std::make_shared<Graph>();
  else_g->name = "else_body";
  else_g->parent = &g;
  Node* c2 = else_g->AddNode("Constant", "c1");
  Attribute big;
  big.type = Attribute::Type::kTensor;
  big.t = Tensor(DataType::kFloat, {3, 4});
  c2->attrs["value"] = big;
  Value* ev = else_g->AddValue("e_out");
  ev->type = TypeInfo::Tensor(DataType::kInt64, Shape::Of({2}));
  c2->AddOutput(ev);
  else_g->outputs.push_back(ev);

  Node* iff = g.AddNode("If", "if0");
  iff->AddInput(cond);
  Attribute ta;
  ta.type = Attribute::Type::kGraph;
  ta.g = then_g;
  Attribute ea;
  ea.type = Attribute::Type::kGraph;
  ea.g = else_g;
  iff->attrs["then_branch"] = ta;
  iff->attrs["else_branch"] = ea;
  Value* r = g.AddValue("r");
  r->type = TypeInfo::Tensor(DataType::kInt64, Shape::Of({2}));
  iff->AddOutput(r);

  Node* split = g.AddNode("Split", "split", "com.microsoft");
  split->AddInput(z);
  Value* a = g.AddValue("a");
  Value* b = g.AddValue("b");
  split->AddOutput(a);
  split->AddOutput(b);

  g.outputs.push_back(y);
  g.outputs.push_back(r);
  return m;
}

TEST(Printer, GoldenText) {
  auto m = MakeModel();
  const char* kExpected =
      "opset ai.onnx=17, com.microsoft=1\n"
      "graph main {\n"
      "  input %x: float32[batch,3,224,224]\n"
      "  input %cond: bool[]\n"
      "  init %w: float32[8,3,3,3]\n"
      "  %y = Conv[group=1, pads=[1, 1, 1, 1]](%x, %w, _)  # /conv1/Conv\n"
      "  %z = LRN[alpha=0.0001, beta=1.0, mode=\"say \\\"hi\\\"\"](%y)\n"
      "  %r = If[else_branch=<graph>, then_branch=<graph>](%cond)  # if0\n"
      "    else_branch: graph else_body {\n"
      "      %e_out = Constant[value=float32[3,4]{...}]()  # c1\n"
      "      output %e_out: int64[2]\n"
      "    }\n"
      "    then_branch: graph then_body {\n"
      "      %t_out = Constant[value=int64[2]{4, -5}]()  # c0\n"
      "      output %t_out: int64[2]\n"
      "    }\n"
      "  %a, %b = com.microsoft.Split(%z)  # split\n"
      "  output %y: float32[batch,8,224,224]\n"
      "  output %r: int64[2]\n"
      "}\n";
  EXPECT_EQ(PrintGraph(*m), kExpected);
  // Deterministic.
  EXPECT_EQ(PrintGraph(*m), PrintGraph(*m));
}

TEST(Printer, ValueTypesOption) {
  auto m = MakeModel();
  PrintOptions o;
  o.value_types = true;
  std::string s = PrintGraph(*m, o);
  EXPECT_NE(s.find("  %y: float32[batch,8,224,224] = Conv["), std::string::npos) << s;
  EXPECT_NE(s.find("%z: undefined? = LRN"), std::string::npos) << s;
}

TEST(Printer, Attributes) {
  Attribute f;
  f.type = Attribute::Type::kFloats;
  f.floats = {0.5f, 2.0f, 1e-5f, -3.25f};
  EXPECT_EQ(PrintAttribute(f), "[0.5, 2.0, 1e-05, -3.25]");
  Attribute s;
  s.type = Attribute::Type::kStrings;
  s.strings = {"a", "b\nc"};
  EXPECT_EQ(PrintAttribute(s), "[\"a\", \"b\\nc\"]");
  Attribute t;
  t.type = Attribute::Type::kTensor;
  t.t = Tensor::Scalar(0.1f);
  EXPECT_EQ(PrintAttribute(t), "float32[]{0.1}");
  t.t = Tensor::FromVector<uint8_t>(DataType::kBool, {2}, {1, 0});
  EXPECT_EQ(PrintAttribute(t), "bool[2]{true, false}");
  Attribute ref;
  ref.type = Attribute::Type::kFloat;
  ref.ref_attr_name = "alpha";
  EXPECT_EQ(PrintAttribute(ref), "@alpha");
  Attribute gs;
  gs.type = Attribute::Type::kGraphs;
  gs.graphs.resize(2);
  EXPECT_EQ(PrintAttribute(gs), "<graphs:2>");
}

TEST(Printer, Functions) {
  Model m;
  m.opsets[""] = 18;
  m.graph = std::make_shared<Graph>();
  Function fn;
  fn.name = "MyRelu";
  fn.domain = "custom";
  fn.inputs = {"X"};
  fn.outputs = {"Y"};
  fn.body = std::make_shared<Graph>();
  Value* x = fn.body->AddValue("X");
  Node* n = fn.body->AddNode("Relu", "r");
  n->AddInput(x);
  n->AddOutput(fn.body->AddValue("Y"));
  m.functions.push_back(fn);
  EXPECT_EQ(PrintGraph(m),
            "opset ai.onnx=18\n"
            "graph {\n"
            "}\n"
            "function custom.MyRelu(%X) -> (%Y) {\n"
            "  %Y = Relu(%X)  # r\n"
            "}\n");
}

}  // namespace
}  // namespace kiln
