// Hostile models (and a PNG): each gives a Status error that names the value or node and
// says what is wrong, with no crash and no huge allocation. (External data
// paths leaving the model folder, initializers whose data disagrees with their
// dims and cycles are in onnx_import_test.cc; plans with a valid checksum but
// bad sizes in plan_file_test.cc; inputs the fuzzers found in
// fuzz_regression_test.cc.)
#include <gtest/gtest.h>

#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include "ir/verifier.h"
#include "onnx/import.h"
#include "ops/misc_image.h"
#include "ops/op_table.h"
#include "onnx_test_util.h"
#include "passes/shape_inference.h"

namespace kiln {
namespace {

using namespace testing_onnx;  // NOLINT

constexpr int64_t kHuge = int64_t{1} << 62;

Expected<std::unique_ptr<Model>> Parse(const onnx::ModelProto& m, const LoadOptions& opts = {}) {
  std::string bytes = m.SerializeAsString();
  return ParseModel(bytes.data(), bytes.size(), ".", opts);
}

bool Has(const Status& s, const std::string& text) { return s.message().find(text) != std::string::npos; }

// y = op(x, c) with x: float[2,3] and c an int64 initializer.
onnx::ModelProto OpWithConstant(const std::string& op, const std::vector<int64_t>& c, bool input_x = true) {
  onnx::ModelProto m = SimpleModel();
  auto* g = m.mutable_graph();
  g->clear_node();
  g->clear_initializer();
  g->clear_input();
  g->clear_output();
  *g->add_input() = TensorInfo("x", onnx::TensorProto::FLOAT, {2, 3});
  auto* t = g->add_initializer();
  t->set_name("c");
  t->set_data_type(onnx::TensorProto::INT64);
  t->add_dims(static_cast<int64_t>(c.size()));
  for (int64_t v : c) t->add_int64_data(v);
  if (input_x)
    AddNode(g, op, {"x", "c"}, {"y"}, "the_" + op);
  else
    AddNode(g, op, {"c"}, {"y"}, "the_" + op);
  auto* out = g->add_output();
  out->set_name("y");
  return m;
}

TEST(HostileInput, DeclaredDimsWhoseProductOverflowsAreErrors) {
  {  // a graph input
    onnx::ModelProto m = SimpleModel();
    *m.mutable_graph()->mutable_input(0) = TensorInfo("X", onnx::TensorProto::FLOAT, {kHuge, kHuge, 3});
    Status s = Parse(m).status();
    EXPECT_TRUE(Has(s, "input 'X': declared dims [4611686018427387904,4611686018427387904,3] overflow")) << s.ToString();
  }
  {  // a graph output
    onnx::ModelProto m = SimpleModel();
    *m.mutable_graph()->mutable_output(0) = TensorInfo("Y", onnx::TensorProto::FLOAT, {kHuge, 4});
    Status s = Parse(m).status();
    EXPECT_TRUE(Has(s, "output 'Y': declared dims")) << s.ToString();
  }
  {  // value_info
    onnx::ModelProto m = SimpleModel();
    *m.mutable_graph()->add_value_info() = TensorInfo("S", onnx::TensorProto::FLOAT, {3, kHuge});
    Status s = Parse(m).status();
    EXPECT_TRUE(Has(s, "value_info 'S': declared dims [3,4611686018427387904] overflow")) << s.ToString();
  }
  {  // a zero dim makes the tensor empty: fine
    onnx::ModelProto m = SimpleModel();
    *m.mutable_graph()->mutable_input(0) = TensorInfo("X", onnx::TensorProto::FLOAT, {kHuge, kHuge, 0});
    EXPECT_TRUE(Parse(m).ok());
  }
}

TEST(HostileInput, NegativeDeclaredDimsAreUnknown) {
  // Like onnxruntime, a negative dim_value in a declared shape is read as an
  // unknown dim, never as a known negative one.
  onnx::ModelProto m = SimpleModel();
  auto* dim = m.mutable_graph()->mutable_input(0)->mutable_type()->mutable_tensor_type()->mutable_shape()->mutable_dim(1);
  dim->set_dim_value(-3);
  auto model = Parse(m);
  ASSERT_TRUE(model.ok()) << model.status().ToString();
  const Shape& x = (*model)->graph->inputs[0]->type.shape;
  ASSERT_EQ(x.rank(), 2);
  EXPECT_FALSE(x[1].known());
  ASSERT_TRUE(InferShapes(**model).ok());
  for (const Dim& d : (*model)->graph->outputs[0]->type.shape.dims()) EXPECT_FALSE(d.known() && d.value() < 0);
}

TEST(HostileInput, InferredShapesWhoseProductOverflowsAreErrors) {
  struct Case {
    std::string op;
    std::vector<int64_t> c;
    bool input_x;
  };
  const Case cases[] = {
      {"Expand", {kHuge, kHuge, 1, 1}, true},  // [2^62, 2^62, 2, 3]
      {"ConstantOfShape", {kHuge, kHuge}, false},
  };
  for (const Case& c : cases) {
    auto model = Parse(OpWithConstant(c.op, c.c, c.input_x));
    ASSERT_TRUE(model.ok()) << model.status().ToString();
    Status s = InferShapes(**model);
    EXPECT_FALSE(s.ok()) << c.op;
    EXPECT_TRUE(Has(s, "node 'the_" + c.op + "' (" + c.op + ")")) << s.ToString();
    EXPECT_TRUE(Has(s, "overflow")) << s.ToString();
    // Tolerating errors leaves the output unknown, never an overflowing shape.
    ShapeInferenceOptions tolerant;
    tolerant.tolerate_errors = true;
    EXPECT_TRUE(InferShapes(**model, tolerant).ok());
    EXPECT_FALSE((*model)->graph->outputs[0]->type.shape.KnownDimsOverflow());
  }
}

TEST(HostileInput, HugeAndNegativeShapeConstantsNeverGiveNegativeDims) {
  struct Case {
    std::string op;
    std::vector<int64_t> c;
    bool input_x;
  };
  const Case cases[] = {
      {"Reshape", {-5, 4}, true},        {"Reshape", {kHuge, 4}, true},    {"Reshape", {-1, -1}, true},
      {"Expand", {-2, 3}, true},         {"ConstantOfShape", {-3}, false}, {"ConstantOfShape", {int64_t{1} << 40}, false},
      {"Tile", {-1, 2}, true},           {"Reshape", {0, kHuge}, true},    {"Tile", {kHuge, kHuge}, true},
      {"Expand", {kHuge, kHuge, 3}, true},
  };
  for (const Case& c : cases) {
    auto model = Parse(OpWithConstant(c.op, c.c, c.input_x));
    ASSERT_TRUE(model.ok()) << model.status().ToString();
    Status s = InferShapes(**model);
    if (!s.ok()) {
      EXPECT_TRUE(Has(s, "node 'the_" + c.op + "'")) << s.ToString();
      continue;
    }
    const Shape& y = (*model)->graph->outputs[0]->type.shape;
    for (const Dim& d : y.dims()) EXPECT_FALSE(d.known() && d.value() < 0) << c.op << " " << y.ToString();
    EXPECT_FALSE(y.KnownDimsOverflow()) << c.op << " " << y.ToString();
    EXPECT_FALSE((*model)->graph->outputs[0]->data.has_value()) << c.op << ": folded a huge or invalid result";
  }
  // A shape given by the caller is checked too.
  auto model = Parse(SimpleModel());
  ASSERT_TRUE(model.ok());
  ShapeInferenceOptions opts;
  opts.input_shapes["X"] = Shape::Of({kHuge, 3});
  Status s = InferShapes(**model, opts);
  EXPECT_TRUE(Has(s, "input 'X': the given shape [4611686018427387904,3]")) << s.ToString();
}

TEST(HostileInput, ResizeScalesPastAnyValidSizeAreErrors) {
  // floor(3 * 1e30) does not fit int64: converting it was undefined behaviour.
  for (float scale : {1e30f, std::numeric_limits<float>::infinity()}) {
    onnx::ModelProto m = OpWithConstant("Resize", {});
    auto* g = m.mutable_graph();
    g->clear_initializer();
    *g->add_initializer() = FloatTensor("sc", {2}, {1.f, scale});
    g->mutable_node(0)->clear_input();
    for (const char* in : {"x", "", "sc"}) g->mutable_node(0)->add_input(in);
    auto model = Parse(m);
    ASSERT_TRUE(model.ok()) << model.status().ToString();
    Status s = InferShapes(**model);
    EXPECT_TRUE(Has(s, "node 'the_Resize' (Resize): scales make output dim 1")) << scale << ": " << s.ToString();
  }
}

TEST(HostileInput, PngOver64MegapixelsIsRefusedBeforeInflating) {
  std::string png("\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR\0\x01\0\0\0\x01\0\0\x08\x02\0\0\0\0\0\0\0", 33);
  png += std::string("\0\0\0\0IEND\0\0\0\0", 12);
  auto img = image::DecodeImage(reinterpret_cast<const uint8_t*>(png.data()), png.size());
  EXPECT_TRUE(Has(img.status(), "PNG: images over 64 megapixels are not supported")) << img.status().ToString();
}

TEST(HostileInput, CyclicGraphLoadedLeniently) {
  // Strict loads reject cycles (onnx_import_test.cc); `kiln check` loads them
  // leniently, and its checks must report the cycle, not recurse forever.
  onnx::ModelProto m = SimpleModel();
  auto* g = m.mutable_graph();
  g->clear_node();
  AddNode(g, "Relu", {"B"}, {"A"}, "a");
  AddNode(g, "Relu", {"A"}, {"B"}, "b");
  AddNode(g, "Add", {"X", "A"}, {"Y"}, "y");
  EXPECT_TRUE(Has(Parse(m).status(), "cycle"));
  LoadOptions lenient;
  lenient.strict = false;
  auto model = Parse(m, lenient);
  ASSERT_TRUE(model.ok()) << model.status().ToString();
  bool cycle = false;
  for (const Issue& i : CheckModel(**model)) cycle |= i.message.find("cycle through node 'a' (Relu)") != std::string::npos;
  EXPECT_TRUE(cycle);
  (void)CheckShapes(**model);
  EXPECT_TRUE(Has(InferShapes(**model), "cycle"));
}

TEST(HostileInput, RawDataLongerThanDimsIsAnError) {
  onnx::ModelProto m = SimpleModel();
  auto* w = m.mutable_graph()->mutable_initializer(0);
  w->clear_float_data();
  w->set_raw_data(std::string(16, '\0'));  // float[3] needs 12
  Status s = Parse(m).status();
  EXPECT_TRUE(Has(s, "initializer 'W': float32[3] needs 12 bytes but its raw_data holds 16")) << s.ToString();
}

// ---- deeply nested subgraphs ----

void PutVarint(std::string* out, uint64_t v) {
  while (v >= 0x80) {
    out->push_back(static_cast<char>((v & 0x7F) | 0x80));
    v >>= 7;
  }
  out->push_back(static_cast<char>(v));
}

size_t VarintSize(uint64_t v) {
  size_t n = 1;
  while (v >= 0x80) {
    v >>= 7;
    ++n;
  }
  return n;
}

// A ModelProto whose graph holds an If whose then_branch holds an If ...
// `depth` levels deep, written straight in protobuf's wire format (building
// it with protobuf would recurse as deep as the test wants the parser to).
// Each level is a prefix followed by the inner graph, so the sizes are
// computed from the innermost level out and the prefixes written outermost
// first.
std::string NestedIfModel(int depth) {
  const std::string attr_head = std::string("\x0a\x0bthen_branch", 13) + std::string("\xa0\x01\x05", 3);
  std::vector<std::string> prefixes;
  uint64_t inner = 0;  // size of the innermost (empty) graph
  for (int i = 0; i < depth; ++i) {
    std::string attr = attr_head + "\x32";
    PutVarint(&attr, inner);
    const uint64_t attr_size = attr.size() + inner;
    std::string node("\x22\x02If\x0a\x01" "c" "\x2a", 8);
    PutVarint(&node, attr_size);
    const uint64_t node_size = node.size() + attr_size;
    std::string graph("\x0a", 1);
    PutVarint(&graph, node_size);
    prefixes.push_back(graph + node + attr);
    inner = graph.size() + node_size;
  }
  std::string out("\x08\x08\x42\x02\x10\x11\x3a", 7);  // ir_version 8, opset 17, graph
  PutVarint(&out, inner);
  for (auto it = prefixes.rbegin(); it != prefixes.rend(); ++it) out += *it;
  EXPECT_EQ(out.size(), 7 + VarintSize(inner) + inner);
  return out;
}

TEST(HostileInput, DeeplyNestedSubgraphsAreBounded) {
  // Shallow nesting of the same form parses (and fails later for its own reasons).
  std::string shallow = NestedIfModel(3);
  auto ok = ParseModel(shallow.data(), shallow.size(), ".");
  EXPECT_FALSE(Has(ok.status(), "protobuf parsing failed")) << ok.status().ToString();
  for (int depth : {40, 10000}) {
    std::string bytes = NestedIfModel(depth);
    auto r = ParseModel(bytes.data(), bytes.size(), ".");
    ASSERT_FALSE(r.ok()) << depth;
    EXPECT_TRUE(Has(r.status(), "nested more than 100 deep")) << r.status().ToString();
  }
}

TEST(HostileInput, NestingUpToTheBoundLoadsVerifiesAndInfers) {
  // 30 levels of If (each: If(cond) then Identity(x) / else Identity(x)) stay
  // within the bound; the importer, verifier and shape inference recurse that deep.
  auto branch = [](onnx::GraphProto inner, const std::string& name) {
    onnx::GraphProto g;
    g.set_name(name);
    auto* n = AddNode(&g, "If", {"cond"}, {name + "_out"}, name + "_if");
    auto* then_attr = n->add_attribute();
    then_attr->set_name("then_branch");
    then_attr->set_type(onnx::AttributeProto::GRAPH);
    *then_attr->mutable_g() = inner;
    onnx::GraphProto leaf;
    leaf.set_name(name + "_else");
    AddNode(&leaf, "Identity", {"x"}, {name + "_e"});
    leaf.add_output()->set_name(name + "_e");
    auto* else_attr = n->add_attribute();
    else_attr->set_name("else_branch");
    else_attr->set_type(onnx::AttributeProto::GRAPH);
    *else_attr->mutable_g() = leaf;
    g.add_output()->set_name(name + "_out");
    return g;
  };
  onnx::GraphProto g;
  g.set_name("leaf");
  AddNode(&g, "Identity", {"x"}, {"leaf_out"});
  g.add_output()->set_name("leaf_out");
  for (int i = 0; i < 30; ++i) g = branch(g, "level" + std::to_string(i));
  onnx::ModelProto m = SimpleModel();
  auto* mg = m.mutable_graph();
  mg->clear_node();
  mg->clear_initializer();
  mg->clear_input();
  mg->clear_output();
  *mg->add_input() = TensorInfo("x", onnx::TensorProto::FLOAT, {2, 3});
  *mg->add_input() = TensorInfo("cond", onnx::TensorProto::BOOL, {});
  auto* top = AddNode(mg, "If", {"cond"}, {"y"}, "top");
  for (const char* name : {"then_branch", "else_branch"}) {
    auto* a = top->add_attribute();
    a->set_name(name);
    a->set_type(onnx::AttributeProto::GRAPH);
    *a->mutable_g() = g;
  }
  mg->add_output()->set_name("y");
  auto model = Parse(m);
  ASSERT_TRUE(model.ok()) << model.status().ToString();
  EXPECT_TRUE(VerifyModel(**model).ok()) << VerifyModel(**model).ToString();
  ASSERT_TRUE(InferShapes(**model).ok());
  EXPECT_EQ((*model)->graph->outputs[0]->type.shape, Shape::Of({2, 3}));
}

// An op that throws (a std::length_error from a size a hostile plan makes,
// as the plan fuzzer once met in CI) gives an error naming the node, not the
// end of the process: OpInfo::Infer and Run are what every caller uses.
TEST(HostileInput, AnOpThatThrowsIsAnInternalErrorNamingTheNode) {
  Model m;
  m.graph = std::make_shared<Graph>();
  Node* node = m.graph->AddNode("Fake", "thrower", "");
  const OpInfo fake{"", "Fake", [](InferContext&) -> Status { throw std::bad_alloc(); },
                    [](RunContext&) -> Status { throw std::length_error("vector::reserve"); }};
  RunContext run(*node, 21, {});
  Status s = fake.Run(run);
  EXPECT_EQ(s.code(), StatusCode::kInternal);
  EXPECT_NE(s.message().find("node 'thrower' (Fake)"), std::string::npos) << s.ToString();
  EXPECT_NE(s.message().find(std::string(kOpThrew) + "vector::reserve"), std::string::npos) << s.ToString();
  InferContext infer(*node, 21);
  s = fake.Infer(infer);
  EXPECT_EQ(s.code(), StatusCode::kInternal);
  EXPECT_NE(s.message().find("std::bad_alloc"), std::string::npos) << s.ToString();
}

}  // namespace
}  // namespace kiln
