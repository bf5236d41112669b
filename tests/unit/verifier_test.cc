// The IR verifier (CheckModel / VerifyModel / CheckShapes) on models loaded
// leniently from hand-built protobufs and on IR built by hand; and `kiln check`
// on bad files when the CLI binary is built.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>


#include "fixtures.h"
#include "ir/verifier.h"
#include "onnx/import.h"
#include "onnx_test_util.h"

namespace kiln {
namespace {

using namespace testing_onnx;  // NOLINT

std::unique_ptr<Model> Lenient(const onnx::ModelProto& m) {
  std::string bytes = m.SerializeAsString();
  LoadOptions opts;
  opts.strict = false;
  auto r = ParseModel(bytes.data(), bytes.size(), ".", opts);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return r.ok() ? std::move(r).value() : nullptr;
}

// All issue lines of the given severity, joined by newlines.
std::string Lines(const std::vector<Issue>& issues, Issue::Severity s) {
  std::string out;
  for (const Issue& i : issues)
    if (i.severity == s) out += i.message + "\n";
  return out;
}

std::string Errors(const Model& m) {
  VerifyOptions o;
  o.check_op_support = false;
  return Lines(CheckModel(m, o), Issue::Severity::kError);
}

bool Has(const std::string& s, const std::string& sub) { return s.find(sub) != std::string::npos; }

TEST(Verifier, ValidModelIsClean) {
  auto m = Lenient(SimpleModel());
  ASSERT_TRUE(m);
  EXPECT_EQ(Errors(*m), "");
  EXPECT_TRUE(VerifyModel(*m).ok());
}

TEST(Verifier, MissingInitializerIsDangling) {
  auto p = SimpleModel();
  p.mutable_graph()->clear_initializer();
  auto m = Lenient(p);
  ASSERT_TRUE(m);
  std::string e = Errors(*m);
  EXPECT_TRUE(Has(e, "node 'add' (Add): input 'W' is not produced by any node and is not a graph input or initializer"))
      << e;
  Status st = VerifyModel(*m);
  EXPECT_FALSE(st.ok());
  EXPECT_TRUE(Has(st.message(), "'W'"));
}

TEST(Verifier, DanglingInSubgraphAndOuterScopeIsFine) {
  auto p = SimpleModel();
  auto* g = p.mutable_graph();
  *g->add_input() = TensorInfo("cond", onnx::TensorProto::BOOL, {});
  auto* ifn = AddNode(g, "If", {"cond"}, {"Z"}, "if");
  const char* uses[] = {"S", "ghost"};  // S: outer value (fine); ghost: nowhere
  int k = 0;
  for (const char* branch : {"then_branch", "else_branch"}) {
    auto* a = ifn->add_attribute();
    a->set_name(branch);
    a->set_type(onnx::AttributeProto::GRAPH);
    a->mutable_g()->set_name(branch);
    AddNode(a->mutable_g(), "Neg", {uses[k++]}, {std::string(branch) + "_o"}, std::string(branch) + "_neg");
    *a->mutable_g()->add_output() = TensorInfo(std::string(branch) + "_o", 1, {});
  }
  *g->add_output() = TensorInfo("Z", 1, {});
  auto m = Lenient(p);
  ASSERT_TRUE(m);
  std::string e = Errors(*m);
  EXPECT_FALSE(Has(e, "'S'")) << e;
  EXPECT_TRUE(Has(e, "node 'else_branch_neg' (Neg) in graph 'else_branch': input 'ghost' is not produced")) << e;
}

TEST(Verifier, DuplicateProducersAndOutputs) {
  auto p = SimpleModel();
  AddNode(p.mutable_graph(), "Neg", {"X"}, {"S"}, "neg");
  *p.mutable_graph()->add_output() = p.graph().output(0);
  auto m = Lenient(p);
  ASSERT_TRUE(m);
  std::string e = Errors(*m);
  EXPECT_TRUE(Has(e, "value 'S' is defined 2 times (by node 'add' (Add), node 'neg' (Neg))")) << e;
  EXPECT_TRUE(Has(e, "graph output 'Y' is listed twice")) << e;
}

TEST(Verifier, Cycle) {
  auto p = SimpleModel();
  p.mutable_graph()->mutable_node(0)->set_input(1, "Y");
  p.mutable_graph()->clear_initializer();
  auto m = Lenient(p);
  ASSERT_TRUE(m);
  std::string e = Errors(*m);
  EXPECT_TRUE(Has(e, "has a cycle through node 'add' (Add), node 'Relu_1' (Relu)")) << e;
}

TEST(Verifier, OutOfOrderNodes) {
  auto p = SimpleModel();
  p.mutable_graph()->mutable_node()->SwapElements(0, 1);
  auto m = Lenient(p);  // lenient keeps file order
  ASSERT_TRUE(m);
  EXPECT_TRUE(Has(Errors(*m), "not in topological order"));
  ASSERT_TRUE(m->graph->TopologicalSort().ok());
  EXPECT_EQ(Errors(*m), "");
}

TEST(Verifier, AttributeTypesAndRequiredAttributes) {
  auto p = SimpleModel();
  auto* g = p.mutable_graph();
  *g->add_initializer() = FloatTensor("K", {1, 1, 1, 1}, {1.f});
  auto* conv = AddNode(g, "Conv", {"Y", "K"}, {"C"}, "conv");
  AddIntAttr(conv, "strides", 1);  // must be INTS
  AddIntsAttr(conv, "group", {1});  // must be INT
  AddNode(g, "Cast", {"C"}, {"D"}, "cast");  // 'to' missing
  auto* tr = AddNode(g, "Transpose", {"D"}, {"E"}, "tr");
  AddIntsAttr(tr, "perm", {1, 0});  // fine
  auto m = Lenient(p);
  ASSERT_TRUE(m);
  std::string e = Errors(*m);
  EXPECT_TRUE(Has(e, "node 'conv' (Conv): attribute 'strides' must be ints, not int")) << e;
  EXPECT_TRUE(Has(e, "node 'conv' (Conv): attribute 'group' must be int, not ints")) << e;
  EXPECT_TRUE(Has(e, "node 'cast' (Cast): required attribute 'to' is missing")) << e;
  EXPECT_FALSE(Has(e, "perm")) << e;
}

TEST(Verifier, VersionsAndDomains) {
  auto p = SimpleModel();
  auto* n = AddNode(p.mutable_graph(), "Custom", {"Y"}, {"Q"}, "custom");
  n->set_domain("org.example");
  auto m = Lenient(p);
  ASSERT_TRUE(m);
  m->ir_version = 2;
  m->opsets[""] = 29;
  std::string e = Errors(*m);
  EXPECT_TRUE(Has(e, "IR version 2 is not supported")) << e;
  EXPECT_TRUE(Has(e, "default-domain opset 29 is not supported")) << e;
  EXPECT_TRUE(Has(e, "node 'custom' (org.example.Custom): the model imports no opset for domain 'org.example'")) << e;
}

TEST(Verifier, UnsupportedOpsAreListedByNode) {
  auto p = SimpleModel();
  auto* op = p.add_opset_import();
  op->set_domain("com.microsoft");
  op->set_version(1);
  AddNode(p.mutable_graph(), "FusedGelu", {"Y"}, {"G1"}, "gelu1")->set_domain("com.microsoft");
  AddNode(p.mutable_graph(), "FusedGelu", {"G1"}, {"G2"}, "gelu2")->set_domain("com.microsoft");
  auto m = Lenient(p);
  ASSERT_TRUE(m);
  auto issues = CheckModel(*m);
  std::string u = Lines(issues, Issue::Severity::kUnsupported);
  EXPECT_TRUE(Has(u, "node 'gelu1' (com.microsoft.FusedGelu): kiln has no implementation of op "
                     "'com.microsoft.FusedGelu'"))
      << u;
  EXPECT_TRUE(Has(u, "gelu2")) << u;
  EXPECT_EQ(Lines(issues, Issue::Severity::kError), "");
  EXPECT_TRUE(VerifyModel(*m).ok());  // unsupported is not invalid
  for (const Issue& i : issues) {
    if (i.severity == Issue::Severity::kUnsupported) {
      EXPECT_FALSE(i.node.empty());
    }
  }
}

TEST(Verifier, HandBuiltIrProblems) {
  Model m;
  m.ir_version = 8;
  m.opsets[""] = 17;
  m.graph = std::make_shared<Graph>();
  Graph& g = *m.graph;
  g.name = "g";
  Value* x = g.AddValue("x");
  x->type = TypeInfo::Tensor(DataType::kFloat, Shape::Of({2}));
  g.inputs.push_back(x);
  Value* w = g.AddValue("w");
  w->type = TypeInfo::Tensor(DataType::kFloat, Shape::Of({3}));
  w->data = Tensor(DataType::kFloat, {2});  // declared [3], holds [2]
  g.initializers.push_back(w);
  Node* relu = g.AddNode("Relu", "relu");
  relu->AddInput(x);
  relu->AddOutput(x);  // a graph input produced by a node
  Graph other;
  Value* foreign = other.AddValue("foreign");
  other.inputs.push_back(foreign);
  Node* neg = g.AddNode("Neg", "neg");
  neg->AddInput(foreign);
  neg->AddOutput(g.AddValue("y"));
  g.outputs.push_back(neg->output(0));
  std::string e = Errors(m);
  EXPECT_TRUE(Has(e, "initializer 'w' is declared float32[3] but holds float32[2]")) << e;
  EXPECT_TRUE(Has(e, "graph input 'x' is also produced by node 'relu' (Relu)")) << e;
  EXPECT_TRUE(Has(e, "node 'neg' (Neg): input 'foreign' belongs to a graph out of scope")) << e;
}

TEST(Verifier, CheckShapesFindsContradictions) {
  auto p = SimpleModel();
  // X: [batch,3] + W: [3] → S: [batch,3]; declare S as int64[batch,4].
  *p.mutable_graph()->add_value_info() = TensorInfo("S", onnx::TensorProto::INT64, {-1, 4}, {"batch"});
  auto m = Lenient(p);
  ASSERT_TRUE(m);
  auto issues = CheckShapes(*m);
  std::string e = Lines(issues, Issue::Severity::kError);
  EXPECT_TRUE(Has(e, "value 'S' (output of node 'add' (Add)): declared int64[batch,4] but inference gives float32"))
      << e;
  // Consistent declarations give nothing.
  auto ok = Lenient(SimpleModel());
  ASSERT_TRUE(ok);
  EXPECT_EQ(Lines(CheckShapes(*ok), Issue::Severity::kError), "");
}

TEST(Verifier, NodeTestsAreClean) {
  const std::string root = fixtures::NodeTests();
  if (root.empty()) return;
  int n = 0;
  for (const auto& entry : std::filesystem::directory_iterator(root)) {
    std::string path = entry.path().string() + "/model.onnx";
    if (!std::filesystem::exists(path)) continue;
    auto r = LoadModel(path);
    if (!r.ok()) continue;
    Status st = VerifyModel(*r.value());
    EXPECT_TRUE(st.ok()) << path << ": " << st.message();
    ++n;
  }
  EXPECT_GT(n, 1000);
}

// ---- kiln check, through the CLI binary ----

// $KILN_BIN (set by ctest) is the binary under test.
using fixtures::CliResult;
using fixtures::KilnBinary;

CliResult RunCheck(const std::string& model, const std::string& dir) {
  return fixtures::RunKiln("check '" + model + "'", dir);
}

TEST(KilnCheckCli, BadFilesGiveClearErrorsAndExit1) {
  ASSERT_TRUE(std::filesystem::exists(KilnBinary())) << KilnBinary() << " not built";
  std::string dir = TestDir();
  std::string good = SimpleModel().SerializeAsString();
  struct Case {
    std::string name;
    std::string bytes;
    std::string expect;
  };
  std::vector<Case> cases = {
      {"empty.onnx", "", "empty file"},
      {"random.onnx", std::string("\x13\x99\xfe\x01\x7f\x80garbage\xff\xff\xff\xff", 18), "not"},
      {"truncated.onnx", good.substr(0, good.size() / 2), "not"},
      {"magic.onnx", std::string("\x89PNG\r\n\x1a\n", 8), "not"},
  };
  auto add_model = [&](const std::string& name, const onnx::ModelProto& m, const std::string& expect) {
    cases.push_back({name, m.SerializeAsString(), expect});
  };
  {
    auto m = SimpleModel();
    m.mutable_graph()->clear_initializer();
    add_model("missing_init.onnx", m, "input 'W' is not produced");
  }
  {
    auto m = SimpleModel();
    m.mutable_graph()->mutable_node(0)->set_input(1, "Y");
    add_model("cycle.onnx", m, "cycle");
  }
  {
    auto m = SimpleModel();
    *m.mutable_graph()->add_output() = m.graph().output(0);
    add_model("dup_out.onnx", m, "listed twice");
  }
  {
    auto m = SimpleModel();
    AddNode(m.mutable_graph(), "NoSuchOp", {"Y"}, {"Z"}, "mystery");
    add_model("unknown_op.onnx", m, "unsupported: node 'mystery' (NoSuchOp)");
  }
  {
    auto m = SimpleModel();
    AddIntAttr(m.mutable_graph()->mutable_node(1), "alpha", 1);
    auto* c = AddNode(m.mutable_graph(), "Cast", {"Y"}, {"Z"}, "cast");
    AddIntsAttr(c, "to", {1});
    add_model("attr_type.onnx", m, "attribute 'to' must be int, not ints");
  }
  {
    auto m = SimpleModel();
    m.mutable_graph()->mutable_initializer(0)->set_dims(0, -3);
    add_model("neg_dim.onnx", m, "negative dimension -3");
  }
  {
    auto m = SimpleModel();
    m.mutable_graph()->mutable_initializer(0)->set_dims(0, int64_t{1} << 62);
    m.mutable_graph()->mutable_initializer(0)->add_dims(int64_t{1} << 62);
    add_model("huge_dim.onnx", m, "overflow");
  }
  auto external = [&](const std::string& loc, const std::string& offset) {
    auto m = SimpleModel();
    auto* t = m.mutable_graph()->mutable_initializer(0);
    t->clear_float_data();
    t->set_data_location(onnx::TensorProto::EXTERNAL);
    auto* kv = t->add_external_data();
    kv->set_key("location");
    kv->set_value(loc);
    kv = t->add_external_data();
    kv->set_key("offset");
    kv->set_value(offset);
    return m;
  };
  WriteFile(dir + "/w.bin", std::string(12, '\0'));
  add_model("ext_outside.onnx", external("../w.bin", "0"), "leaves the model folder");
  add_model("ext_past_end.onnx", external("w.bin", "100"), "past the end");
  for (const auto& c : cases) {
    std::string path = dir + "/" + c.name;
    WriteFile(path, c.bytes);
    CliResult r = RunCheck(path, dir);
    EXPECT_EQ(r.rc, 1) << c.name << ": " << r.out;
    EXPECT_TRUE(Has(r.out, c.expect)) << c.name << ": " << r.out;
    EXPECT_TRUE(Has(r.out, c.name)) << c.name << " output does not name the file: " << r.out;
  }
  // A valid, supported model: exit 0.
  std::string ok_path = WriteModel(SimpleModel(), dir, "ok.onnx");
  CliResult ok = RunCheck(ok_path, dir);
  EXPECT_EQ(ok.rc, 0) << ok.out;
  EXPECT_TRUE(Has(ok.out, "valid")) << ok.out;
}

}  // namespace
}  // namespace kiln
