// ONNX import: models built as protobufs in the test, written to a temp folder
// and loaded back; bad files; external data; every dtype; local functions.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <set>

#include "fixtures.h"
#include "onnx/import.h"
#include "onnx_test_util.h"

namespace kiln {
namespace {

using namespace testing_onnx;  // NOLINT

std::unique_ptr<Model> MustParse(const onnx::ModelProto& m, const std::string& dir = ".",
                                 const LoadOptions& opts = {}) {
  std::string bytes = m.SerializeAsString();
  auto r = ParseModel(bytes.data(), bytes.size(), dir, opts);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return r.ok() ? std::move(r).value() : nullptr;
}

Status ParseStatus(const onnx::ModelProto& m, const std::string& dir = ".", const LoadOptions& opts = {}) {
  std::string bytes = m.SerializeAsString();
  auto r = ParseModel(bytes.data(), bytes.size(), dir, opts);
  return r.status();
}

bool Contains(const std::string& s, const std::string& sub) { return s.find(sub) != std::string::npos; }

#define EXPECT_ERROR_HAS(status_expr, text)                                   \
  do {                                                                        \
    Status st_ = (status_expr);                                               \
    EXPECT_FALSE(st_.ok());                                                   \
    EXPECT_TRUE(Contains(st_.message(), text)) << "message: " << st_.message(); \
    EXPECT_EQ(st_.message().find('\n'), std::string::npos) << st_.message();  \
  } while (0)

TEST(OnnxImport, SimpleModel) {
  auto m = SimpleModel();
  auto* kv = m.add_metadata_props();
  kv->set_key("author");
  kv->set_value("me");
  auto model = MustParse(m);
  ASSERT_TRUE(model);
  EXPECT_EQ(model->ir_version, 8);
  EXPECT_EQ(model->OpsetOf(""), 17);
  EXPECT_EQ(model->OpsetOf("ai.onnx"), 17);
  EXPECT_EQ(model->producer_name, "kiln-test");
  EXPECT_EQ(model->metadata["author"], "me");
  const Graph& g = *model->graph;
  EXPECT_EQ(g.name, "main");
  ASSERT_EQ(g.inputs.size(), 1u);
  EXPECT_EQ(g.inputs[0]->name(), "X");
  EXPECT_EQ(g.inputs[0]->type.ToString(), "float32[batch,3]");
  ASSERT_EQ(g.initializers.size(), 1u);
  ASSERT_TRUE(g.initializers[0]->data);
  EXPECT_EQ(g.initializers[0]->data->ToInt64s().size(), 3u);
  EXPECT_FLOAT_EQ(g.initializers[0]->data->data<float>()[2], 3.f);
  auto nodes = g.nodes();
  ASSERT_EQ(nodes.size(), 2u);
  EXPECT_EQ(nodes[0]->name, "add");
  EXPECT_EQ(nodes[1]->name, "Relu_1");  // generated
  EXPECT_EQ(nodes[1]->input(0), nodes[0]->output(0));
  EXPECT_EQ(nodes[0]->input(1), g.initializers[0]);
  ASSERT_EQ(g.outputs.size(), 1u);
  EXPECT_EQ(g.outputs[0]->producer(), nodes[1]);
  EXPECT_EQ(g.outputs[0]->type.ToString(), "float32[batch,3]");
}

TEST(OnnxImport, LoadFromFileAndTypes) {
  std::string dir = TestDir();
  auto m = SimpleModel();
  auto* g = m.mutable_graph();
  // unknown dim, value_info, optional input omitted, omitted output.
  *g->mutable_input(0) = TensorInfo("X", onnx::TensorProto::FLOAT, {-1, 3});
  *g->add_value_info() = TensorInfo("S", onnx::TensorProto::FLOAT, {7, 3});
  AddNode(g, "Clip", {"Y", "", "W"}, {"C"});
  AddNode(g, "Dropout", {"C"}, {"D", ""});
  onnx::ValueInfoProto seq;
  seq.set_name("Q");
  seq.mutable_type()->mutable_sequence_type()->mutable_elem_type()->mutable_tensor_type()->set_elem_type(7);
  *g->add_input() = seq;
  onnx::ValueInfoProto opt;
  opt.set_name("O");
  opt.mutable_type()->mutable_optional_type()->mutable_elem_type()->mutable_tensor_type()->set_elem_type(1);
  *g->add_input() = opt;
  std::string path = WriteModel(m, dir);
  auto r = LoadModel(path);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  const Graph& graph = *r.value()->graph;
  EXPECT_EQ(r.value()->path, path);
  // A dynamic input dim without a name gets a fresh symbol of its own.
  EXPECT_EQ(graph.inputs[0]->type.ToString(), "float32[X_dim0,3]");
  EXPECT_EQ(graph.FindValue("S")->type.ToString(), "float32[7,3]");
  EXPECT_EQ(graph.inputs[1]->type.kind, ValueKind::kSequence);
  EXPECT_EQ(graph.inputs[1]->type.dtype, DataType::kInt64);
  EXPECT_EQ(graph.inputs[2]->type.kind, ValueKind::kOptional);
  EXPECT_EQ(graph.inputs[2]->type.elem_kind, ValueKind::kTensor);
  Node* clip = graph.nodes()[2];
  EXPECT_EQ(clip->num_inputs(), 3u);
  EXPECT_EQ(clip->input(1), nullptr);
  Node* drop = graph.nodes()[3];
  EXPECT_EQ(drop->num_outputs(), 2u);
  EXPECT_EQ(drop->output(1), nullptr);
}

TEST(OnnxImport, InitializerThatIsAlsoInput) {
  auto m = SimpleModel(3, 9);
  *m.mutable_graph()->add_input() = TensorInfo("W", onnx::TensorProto::FLOAT, {3});
  auto model = MustParse(m);
  ASSERT_TRUE(model);
  const Graph& g = *model->graph;
  ASSERT_EQ(g.inputs.size(), 2u);
  EXPECT_EQ(g.inputs[1], g.initializers[0]);
  EXPECT_TRUE(g.inputs[1]->data.has_value());
}

TEST(OnnxImport, SubgraphSeesOuterScope) {
  auto m = SimpleModel();
  auto* g = m.mutable_graph();
  *g->add_input() = TensorInfo("cond", onnx::TensorProto::BOOL, {});
  auto* ifn = AddNode(g, "If", {"cond"}, {"Z"}, "if");
  for (const char* branch : {"then_branch", "else_branch"}) {
    auto* a = ifn->add_attribute();
    a->set_name(branch);
    a->set_type(onnx::AttributeProto::GRAPH);
    auto* sg = a->mutable_g();
    sg->set_name(branch);
    // Uses S (outer) and, nested deeper, Y (outer-outer via a Loop-free If).
    AddNode(sg, "Neg", {"S"}, {std::string(branch) + "_out"});
    *sg->add_output() = TensorInfo(std::string(branch) + "_out", onnx::TensorProto::FLOAT, {-1, 3});
  }
  *g->add_output() = TensorInfo("Z", onnx::TensorProto::FLOAT, {});
  auto model = MustParse(m);
  ASSERT_TRUE(model);
  const Graph& main = *model->graph;
  Node* if_node = main.nodes().back();
  ASSERT_EQ(if_node->op_type, "If");
  const Attribute* then_attr = if_node->attr("then_branch");
  ASSERT_TRUE(then_attr && then_attr->type == Attribute::Type::kGraph);
  const Graph& sub = *then_attr->g;
  EXPECT_EQ(sub.parent, model->graph.get());
  Node* neg = sub.nodes()[0];
  EXPECT_EQ(neg->input(0), main.FindValue("S"));  // resolved in the enclosing graph
  EXPECT_EQ(sub.FindValue("S"), nullptr);
  EXPECT_EQ(sub.outputs[0]->producer(), neg);
}

TEST(OnnxImport, NestedSubgraphReferencesTwoLevelsUp) {
  auto m = SimpleModel();
  auto* g = m.mutable_graph();
  *g->add_input() = TensorInfo("cond", onnx::TensorProto::BOOL, {});
  auto* outer_if = AddNode(g, "If", {"cond"}, {"Z"}, "outer_if");
  auto* a = outer_if->add_attribute();
  a->set_name("then_branch");
  a->set_type(onnx::AttributeProto::GRAPH);
  auto* inner_if = AddNode(a->mutable_g(), "If", {"cond"}, {"inner_out"}, "inner_if");
  *a->mutable_g()->add_output() = TensorInfo("inner_out", 1, {});
  auto* b = inner_if->add_attribute();
  b->set_name("then_branch");
  b->set_type(onnx::AttributeProto::GRAPH);
  AddNode(b->mutable_g(), "Identity", {"W"}, {"deep"});
  *b->mutable_g()->add_output() = TensorInfo("deep", 1, {});
  *g->add_output() = TensorInfo("Z", 1, {});
  auto model = MustParse(m);
  ASSERT_TRUE(model);
  const Graph& lvl1 = *model->graph->nodes().back()->attr("then_branch")->g;
  const Graph& lvl2 = *lvl1.nodes()[0]->attr("then_branch")->g;
  EXPECT_EQ(lvl2.parent, &lvl1);
  EXPECT_EQ(lvl2.nodes()[0]->input(0), model->graph->FindValue("W"));
}

TEST(OnnxImport, AllAttributeTypes) {
  auto m = SimpleModel();
  auto* n = m.mutable_graph()->mutable_node(1);
  auto add = [&](const std::string& name, onnx::AttributeProto::AttributeType t) {
    auto* a = n->add_attribute();
    a->set_name(name);
    a->set_type(t);
    return a;
  };
  add("f", onnx::AttributeProto::FLOAT)->set_f(1.5f);
  add("i", onnx::AttributeProto::INT)->set_i(-7);
  add("s", onnx::AttributeProto::STRING)->set_s("hello");
  *add("t", onnx::AttributeProto::TENSOR)->mutable_t() = FloatTensor("", {2}, {4.f, 5.f});
  auto* fs = add("fs", onnx::AttributeProto::FLOATS);
  fs->add_floats(0.5f);
  fs->add_floats(0.25f);
  AddIntsAttr(n, "is", {1, 2, 3});
  auto* ss = add("ss", onnx::AttributeProto::STRINGS);
  ss->add_strings("a");
  ss->add_strings("b");
  auto* ts = add("ts", onnx::AttributeProto::TENSORS);
  *ts->add_tensors() = FloatTensor("", {1}, {9.f});
  auto* tp = add("tp", onnx::AttributeProto::TYPE_PROTO);
  tp->mutable_tp()->mutable_tensor_type()->set_elem_type(10);
  auto* gs = add("gs", onnx::AttributeProto::GRAPHS);
  AddNode(gs->add_graphs(), "Identity", {"X"}, {"gx"});
  // Untyped (old files): inferred from the field.
  auto* old = n->add_attribute();
  old->set_name("old");
  old->set_i(3);
  auto model = MustParse(m);
  ASSERT_TRUE(model);
  const Node* r = model->graph->nodes()[1];
  EXPECT_FLOAT_EQ(r->attr("f")->f, 1.5f);
  EXPECT_EQ(r->attr("i")->i, -7);
  EXPECT_EQ(r->attr("s")->s, "hello");
  EXPECT_EQ(r->attr("t")->type, Attribute::Type::kTensor);
  EXPECT_FLOAT_EQ(r->attr("t")->t.data<float>()[1], 5.f);
  EXPECT_EQ(r->attr("fs")->floats.size(), 2u);
  EXPECT_EQ(r->attr("is")->ints, (std::vector<int64_t>{1, 2, 3}));
  EXPECT_EQ(r->attr("ss")->strings, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(r->attr("ts")->tensors.size(), 1u);
  EXPECT_EQ(r->attr("tp")->type_proto.dtype, DataType::kFloat16);
  ASSERT_EQ(r->attr("gs")->graphs.size(), 1u);
  EXPECT_EQ(r->attr("gs")->graphs[0]->parent, model->graph.get());
  EXPECT_EQ(r->attr("old")->type, Attribute::Type::kInt);
  EXPECT_EQ(r->attr("old")->i, 3);
}

// ---- tensors ----

Expected<Tensor> ParseTensor(const onnx::TensorProto& t) {
  std::string dir = TestDir();
  WriteFile(dir + "/t.pb", t.SerializeAsString());
  return LoadTensorFile(dir + "/t.pb");
}

onnx::TensorProto RawTensor(int32_t dtype, const std::vector<int64_t>& dims, const std::string& raw) {
  onnx::TensorProto t;
  t.set_name("t");
  t.set_data_type(dtype);
  for (int64_t d : dims) t.add_dims(d);
  t.set_raw_data(raw);
  return t;
}

TEST(OnnxTensor, RawDataNumeric) {
  float vals[3] = {1.f, -2.f, 3.5f};
  auto r = ParseTensor(RawTensor(1, {3}, std::string(reinterpret_cast<char*>(vals), sizeof vals)));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->Describe(), "float32[3]");
  EXPECT_FLOAT_EQ(r->data<float>()[2], 3.5f);
  int64_t iv[2] = {-5, 1LL << 40};
  auto r2 = ParseTensor(RawTensor(7, {2, 1}, std::string(reinterpret_cast<char*>(iv), sizeof iv)));
  ASSERT_TRUE(r2.ok());
  EXPECT_EQ(r2->ToInt64s(), (std::vector<int64_t>{-5, 1LL << 40}));
  // Scalar and empty tensors.
  auto r3 = ParseTensor(RawTensor(1, {}, std::string(reinterpret_cast<char*>(vals), 4)));
  ASSERT_TRUE(r3.ok());
  EXPECT_EQ(r3->rank(), 0);
  auto r4 = ParseTensor(RawTensor(1, {0, 5}, ""));
  ASSERT_TRUE(r4.ok()) << r4.status().ToString();
  EXPECT_EQ(r4->numel(), 0);
}

TEST(OnnxTensor, SubByteRawDataUnpacksAndSignExtends) {
  // int4: elements 1, -1(0xF), -8(0x8), 7 , 2 → bytes 0xF1, 0x78, 0x02
  auto r = ParseTensor(RawTensor(22, {5}, std::string("\xF1\x78\x02", 3)));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  const int8_t* p = r->data<int8_t>();
  EXPECT_EQ(p[0], 1);
  EXPECT_EQ(p[1], -1);
  EXPECT_EQ(p[2], -8);
  EXPECT_EQ(p[3], 7);
  EXPECT_EQ(p[4], 2);
  auto u = ParseTensor(RawTensor(21, {3}, std::string("\xF1\x08", 2)));
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u->data<uint8_t>()[1], 15);
  EXPECT_EQ(u->data<uint8_t>()[2], 8);
  // int2: 0b11'10'01'00 = 0xE4 → 0, 1, -2, -1
  auto i2 = ParseTensor(RawTensor(26, {4}, std::string("\xE4", 1)));
  ASSERT_TRUE(i2.ok());
  EXPECT_EQ(i2->data<int8_t>()[0], 0);
  EXPECT_EQ(i2->data<int8_t>()[1], 1);
  EXPECT_EQ(i2->data<int8_t>()[2], -2);
  EXPECT_EQ(i2->data<int8_t>()[3], -1);
  auto u2 = ParseTensor(RawTensor(25, {3}, std::string("\xE4", 1)));
  ASSERT_TRUE(u2.ok());
  EXPECT_EQ(u2->data<uint8_t>()[2], 2);
  // Wrong packed size.
  EXPECT_FALSE(ParseTensor(RawTensor(22, {5}, std::string("\xF1\x78", 2))).ok());
}

TEST(OnnxTensor, TypedFields) {
  onnx::TensorProto t;
  t.set_data_type(3);  // int8 via int32_data
  t.add_dims(3);
  t.add_int32_data(-1);
  t.add_int32_data(127);
  t.add_int32_data(-128);
  auto r = ParseTensor(t);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->data<int8_t>()[0], -1);
  EXPECT_EQ(r->data<int8_t>()[2], -128);

  onnx::TensorProto h;  // float16 bits via int32_data
  h.set_data_type(10);
  h.add_dims(1);
  h.add_int32_data(0x3C00);
  auto rh = ParseTensor(h);
  ASSERT_TRUE(rh.ok());
  EXPECT_FLOAT_EQ(static_cast<float>(rh->ScalarAt(0)), 1.0f);

  onnx::TensorProto b;
  b.set_data_type(9);
  b.add_dims(2);
  b.add_int32_data(1);
  b.add_int32_data(0);
  auto rb = ParseTensor(b);
  ASSERT_TRUE(rb.ok());
  EXPECT_EQ(rb->data<uint8_t>()[0], 1);

  onnx::TensorProto u32;
  u32.set_data_type(12);
  u32.add_dims(1);
  u32.add_uint64_data(4000000000u);
  auto ru = ParseTensor(u32);
  ASSERT_TRUE(ru.ok());
  EXPECT_EQ(ru->data<uint32_t>()[0], 4000000000u);

  onnx::TensorProto d;
  d.set_data_type(11);
  d.add_double_data(2.5);  // scalar
  auto rd = ParseTensor(d);
  ASSERT_TRUE(rd.ok());
  EXPECT_DOUBLE_EQ(rd->data<double>()[0], 2.5);

  onnx::TensorProto s;
  s.set_data_type(8);
  s.add_dims(2);
  s.add_string_data("ab");
  s.add_string_data("");
  auto rs = ParseTensor(s);
  ASSERT_TRUE(rs.ok());
  EXPECT_EQ(rs->strings()[0], "ab");

  onnx::TensorProto c;
  c.set_data_type(14);
  c.add_dims(1);
  c.add_float_data(1.f);
  c.add_float_data(-1.f);
  auto rc = ParseTensor(c);
  ASSERT_TRUE(rc.ok()) << rc.status().ToString();
  EXPECT_FLOAT_EQ(rc->data<float>()[1], -1.f);

  onnx::TensorProto i4;  // int4 packed into int32_data, one byte per entry
  i4.set_data_type(22);
  i4.add_dims(3);
  i4.add_int32_data(0xF1);
  i4.add_int32_data(0x08);
  auto ri4 = ParseTensor(i4);
  ASSERT_TRUE(ri4.ok()) << ri4.status().ToString();
  EXPECT_EQ(ri4->data<int8_t>()[1], -1);
  EXPECT_EQ(ri4->data<int8_t>()[2], -8);
}

TEST(OnnxTensor, BadTensorsNameTheTensor) {
  onnx::TensorProto neg = FloatTensor("w", {2, -3}, {});
  EXPECT_ERROR_HAS(ParseTensor(neg).status(), "negative dimension -3");
  EXPECT_ERROR_HAS(ParseTensor(neg).status(), "'w'");
  onnx::TensorProto huge = FloatTensor("h", {1LL << 40, 1LL << 40}, {});
  EXPECT_ERROR_HAS(ParseTensor(huge).status(), "overflow");
  onnx::TensorProto big = FloatTensor("b", {1LL << 30, 1LL << 30}, {});  // 2^60: no data
  EXPECT_FALSE(ParseTensor(big).ok());
  onnx::TensorProto few = FloatTensor("f", {4}, {1.f, 2.f});
  EXPECT_ERROR_HAS(ParseTensor(few).status(), "needs 4 values in float_data but has 2");
  EXPECT_ERROR_HAS(ParseTensor(RawTensor(1, {3}, "abc")).status(), "needs 12 bytes");
  onnx::TensorProto undef;
  undef.set_name("u");
  EXPECT_ERROR_HAS(ParseTensor(undef).status(), "UNDEFINED");
  onnx::TensorProto weird = RawTensor(99, {1}, "x");
  EXPECT_ERROR_HAS(ParseTensor(weird).status(), "data_type 99");
  onnx::TensorProto mismatch;
  mismatch.set_name("m");
  mismatch.set_data_type(1);
  mismatch.add_dims(1);
  mismatch.add_int64_data(1);
  EXPECT_ERROR_HAS(ParseTensor(mismatch).status(), "int64_data");
  // Initializer errors name the initializer and the file.
  std::string dir = TestDir();
  auto m = SimpleModel();
  m.mutable_graph()->mutable_initializer(0)->set_dims(0, -1);
  auto r = LoadModel(WriteModel(m, dir));
  EXPECT_ERROR_HAS(r.status(), "initializer 'W'");
  EXPECT_ERROR_HAS(r.status(), "model.onnx");
}

// ---- bad files ----

TEST(OnnxBadFiles, EachGivesOneLineErrorNamingTheFile) {
  std::string dir = TestDir();
  std::string good = SimpleModel().SerializeAsString();
  std::mt19937 rng(42);
  std::string random(4096, '\0');
  for (char& c : random) c = static_cast<char>(rng());
  onnx::TensorProto tensor = FloatTensor("t", {2}, {1.f, 2.f});
  struct Case {
    std::string name, bytes, expect;
  } cases[] = {
      {"empty.onnx", "", "empty file"},
      {"random.onnx", random, "not"},
      {"truncated.onnx", good.substr(0, good.size() / 2), "not"},
      {"truncated1.onnx", good.substr(0, good.size() - 1), ""},
      {"png.onnx", std::string("\x89PNG\r\n\x1a\n\0\0\0\rIHDR", 16), "not"},
      {"text.onnx", "hello world, this is not a model\n", "not"},
      {"tensor.onnx", tensor.SerializeAsString(), ""},
  };
  for (const auto& c : cases) {
    std::string path = dir + "/" + c.name;
    WriteFile(path, c.bytes);
    auto r = LoadModel(path);
    EXPECT_FALSE(r.ok()) << c.name;
    EXPECT_ERROR_HAS(r.status(), path);
    if (!c.expect.empty()) EXPECT_ERROR_HAS(r.status(), c.expect);
  }
  // Every prefix of a valid model fails cleanly or loads (never crashes).
  for (size_t n = 0; n < good.size(); ++n) {
    auto r = ParseModel(good.data(), n, dir);
    if (r.ok()) ADD_FAILURE() << "prefix of " << n << " bytes loaded";
  }
  // Random bit flips: no crash.
  for (int i = 0; i < 300; ++i) {
    std::string b = good;
    b[rng() % b.size()] ^= static_cast<char>(1 << (rng() % 8));
    auto r = ParseModel(b.data(), b.size(), dir);
    (void)r;
  }
  EXPECT_ERROR_HAS(LoadModel(dir + "/missing.onnx").status(), "cannot open");
  EXPECT_ERROR_HAS(LoadModel(dir).status(), "not a regular file");
}

TEST(OnnxBadFiles, Versions) {
  EXPECT_ERROR_HAS(ParseStatus(SimpleModel(2, 1)), "IR version 2");
  EXPECT_ERROR_HAS(ParseStatus(SimpleModel(15, 17)), "IR version 15");
  EXPECT_ERROR_HAS(ParseStatus(SimpleModel(8, 29)), "opset 29");
  EXPECT_ERROR_HAS(ParseStatus(SimpleModel(8, 0)), "opset 0");
  EXPECT_TRUE(ParseStatus(SimpleModel(3, 1)).ok());
  EXPECT_TRUE(ParseStatus(SimpleModel(14, 28)).ok());
  auto m = SimpleModel();
  m.clear_opset_import();
  EXPECT_ERROR_HAS(ParseStatus(m), "no opset_import");
  auto ms = SimpleModel();  // unknown domains import fine
  auto* op = ms.add_opset_import();
  op->set_domain("com.microsoft");
  op->set_version(1);
  auto* n = AddNode(ms.mutable_graph(), "FusedGelu", {"Y"}, {"G"});
  n->set_domain("com.microsoft");
  auto model = MustParse(ms);
  ASSERT_TRUE(model);
  EXPECT_EQ(model->OpsetOf("com.microsoft"), 1);
  EXPECT_EQ(model->graph->nodes().back()->domain, "com.microsoft");
}

TEST(OnnxBadFiles, StructuralErrorsStrictAndLenient) {
  LoadOptions lenient;
  lenient.strict = false;
  {  // dangling input
    auto m = SimpleModel();
    AddNode(m.mutable_graph(), "Neg", {"nowhere"}, {"N"}, "neg");
    EXPECT_ERROR_HAS(ParseStatus(m), "'nowhere' is not produced");
    EXPECT_ERROR_HAS(ParseStatus(m), "node 'neg' (Neg)");
    auto model = MustParse(m, ".", lenient);
    ASSERT_TRUE(model);
    Value* v = model->graph->FindValue("nowhere");
    ASSERT_TRUE(v);
    EXPECT_EQ(v->producer(), nullptr);
  }
  {  // two producers
    auto m = SimpleModel();
    AddNode(m.mutable_graph(), "Neg", {"X"}, {"S"}, "neg");
    EXPECT_ERROR_HAS(ParseStatus(m), "output 'S' is also produced by node 'add' (Add)");
    EXPECT_TRUE(MustParse(m, ".", lenient));
  }
  {  // duplicate graph output names
    auto m = SimpleModel();
    *m.mutable_graph()->add_output() = m.graph().output(0);
    EXPECT_ERROR_HAS(ParseStatus(m), "graph output 'Y' is listed twice");
    auto model = MustParse(m, ".", lenient);
    ASSERT_TRUE(model);
    EXPECT_EQ(model->graph->outputs.size(), 2u);
  }
  {  // cycle
    auto m = SimpleModel();
    auto* g = m.mutable_graph();
    g->mutable_node(0)->set_input(1, "Y");  // add uses relu's output
    EXPECT_ERROR_HAS(ParseStatus(m), "cycle");
    EXPECT_TRUE(MustParse(m, ".", lenient));
  }
  {  // out of order nodes are sorted
    auto m = SimpleModel();
    auto* g = m.mutable_graph();
    g->mutable_node()->SwapElements(0, 1);
    auto model = MustParse(m);
    ASSERT_TRUE(model);
    EXPECT_EQ(model->graph->nodes()[0]->op_type, "Add");
  }
  {  // sparse initializer: unsupported
    auto m = SimpleModel();
    auto* sp = m.mutable_graph()->add_sparse_initializer();
    sp->mutable_values()->set_name("sp");
    EXPECT_ERROR_HAS(ParseStatus(m), "sparse");
  }
}

// ---- external data ----

onnx::TensorProto ExternalTensor(const std::string& name, const std::vector<int64_t>& dims, const std::string& loc,
                                 int64_t offset, int64_t length) {
  onnx::TensorProto t;
  t.set_name(name);
  t.set_data_type(1);
  for (int64_t d : dims) t.add_dims(d);
  t.set_data_location(onnx::TensorProto::EXTERNAL);
  auto add = [&](const std::string& k, const std::string& v) {
    auto* kv = t.add_external_data();
    kv->set_key(k);
    kv->set_value(v);
  };
  add("location", loc);
  if (offset >= 0) add("offset", std::to_string(offset));
  if (length >= 0) add("length", std::to_string(length));
  return t;
}

onnx::ModelProto ModelWithExternal(const onnx::TensorProto& w) {
  auto m = SimpleModel();
  *m.mutable_graph()->mutable_initializer(0) = w;
  return m;
}

TEST(OnnxExternalData, LoadsAndBorrowsMappedBytes) {
  std::string dir = TestDir();
  std::vector<float> data = {0.f, 0.f, 1.f, 2.f, 3.f, 4.f};  // W at offset 8
  WriteFile(dir + "/weights.bin", std::string(reinterpret_cast<char*>(data.data()), data.size() * 4));
  std::string path = WriteModel(ModelWithExternal(ExternalTensor("W", {3}, "weights.bin", 8, 12)), dir);
  for (bool use_mmap : {true, false}) {
    LoadOptions opts;
    opts.mmap_external_data = use_mmap;
    auto r = LoadModel(path, opts);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    const Tensor& w = *r.value()->graph->FindValue("W")->data;
    EXPECT_FLOAT_EQ(w.data<float>()[0], 1.f);
    EXPECT_FLOAT_EQ(w.data<float>()[2], 3.f);
    Tensor copy = w;
    copy.mutable_data<float>()[0] = 42.f;  // copy-on-write, the mapping is read-only
    EXPECT_FLOAT_EQ(w.data<float>()[0], 1.f);
  }
  // The mapping outlives the model.
  Tensor kept;
  {
    auto r = LoadModel(path);
    ASSERT_TRUE(r.ok());
    kept = *r.value()->graph->FindValue("W")->data;
  }
  EXPECT_FLOAT_EQ(kept.data<float>()[1], 2.f);
  // Subfolders are fine; no length means "to the end of the file".
  std::filesystem::create_directories(dir + "/sub");
  WriteFile(dir + "/sub/w.bin", std::string(reinterpret_cast<char*>(data.data()) + 12, 12));
  auto r2 = LoadModel(WriteModel(ModelWithExternal(ExternalTensor("W", {3}, "sub/w.bin", -1, -1)), dir, "m2.onnx"));
  ASSERT_TRUE(r2.ok()) << r2.status().ToString();
  EXPECT_FLOAT_EQ(r2.value()->graph->FindValue("W")->data->data<float>()[2], 4.f);
  // Misaligned offset: copied, still right.
  WriteFile(dir + "/odd.bin", std::string("\x01", 1) + std::string(reinterpret_cast<char*>(data.data()) + 8, 12));
  auto r3 = LoadModel(WriteModel(ModelWithExternal(ExternalTensor("W", {3}, "odd.bin", 1, 12)), dir, "m3.onnx"));
  ASSERT_TRUE(r3.ok()) << r3.status().ToString();
  EXPECT_FLOAT_EQ(r3.value()->graph->FindValue("W")->data->data<float>()[0], 1.f);
}

TEST(OnnxExternalData, RefusesBadLocationsAndRanges) {
  std::string root = TestDir();
  std::string dir = root + "/model";
  std::filesystem::create_directories(dir);
  WriteFile(root + "/outside.bin", std::string(12, '\0'));
  WriteFile(dir + "/w.bin", std::string(12, '\0'));
  std::filesystem::create_symlink(root + "/outside.bin", dir + "/link.bin");
  struct Case {
    onnx::TensorProto t;
    std::string expect;
  } cases[] = {
      {ExternalTensor("W", {3}, root + "/outside.bin", 0, 12), "absolute path"},
      {ExternalTensor("W", {3}, "../outside.bin", 0, 12), "leaves the model folder"},
      {ExternalTensor("W", {3}, "sub/../../outside.bin", 0, 12), "leaves the model folder"},
      {ExternalTensor("W", {3}, "link.bin", 0, 12), "outside the model folder"},
      {ExternalTensor("W", {3}, "w.bin", 4, 12), "past the end"},
      {ExternalTensor("W", {3}, "w.bin", 100, -1), "past the end"},
      {ExternalTensor("W", {3}, "w.bin", 0, 8), "needs 12 bytes"},
      {ExternalTensor("W", {3}, "missing.bin", 0, 12), "missing.bin"},
      {ExternalTensor("W", {3}, "", 0, 12), "no 'location'"},
      {ExternalTensor("W", {3}, "w.bin", -1, 12), "offset '-5'"},
  };
  auto* bad_offset = cases[9].t.add_external_data();
  bad_offset->set_key("offset");
  bad_offset->set_value("-5");
  for (const auto& c : cases) {
    std::string path = WriteModel(ModelWithExternal(c.t), dir);
    auto r = LoadModel(path);
    SCOPED_TRACE(c.expect);
    EXPECT_ERROR_HAS(r.status(), c.expect);
    EXPECT_ERROR_HAS(r.status(), "initializer 'W'");
  }
}

TEST(OnnxExternalData, BeyondTwoGigabytesIsMappedNotCopied) {
  // A sparse 3 GiB file: a 2.25 GiB tensor at offset 0 and a small one past
  // 2^31. Mapping touches no pages, so this is cheap.
  std::string dir = TestDir();
  const uint64_t big_elems = (uint64_t{9} << 30) / 16;  // 2.25 GiB of float32
  const uint64_t small_off = (uint64_t{5} << 29) + 4096;  // 2.5 GiB + 4 KiB
  std::string path = dir + "/big.bin";
  {
    std::ofstream f(path, std::ios::binary);
    f.seekp(static_cast<std::streamoff>(small_off));
    float v[3] = {7.f, 8.f, 9.f};
    f.write(reinterpret_cast<const char*>(v), sizeof v);
    f.seekp(static_cast<std::streamoff>(uint64_t{3} << 30) - 1);
    f.put('\0');
  }
  auto m = SimpleModel();
  *m.mutable_graph()->mutable_initializer(0) = ExternalTensor("W", {3}, "big.bin", static_cast<int64_t>(small_off), 12);
  *m.mutable_graph()->add_initializer() =
      ExternalTensor("Big", {static_cast<int64_t>(big_elems)}, "big.bin", 0, static_cast<int64_t>(big_elems * 4));
  auto r = LoadModel(WriteModel(m, dir));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  const Tensor& w = *r.value()->graph->FindValue("W")->data;
  EXPECT_FLOAT_EQ(w.data<float>()[2], 9.f);
  const Tensor& big = *r.value()->graph->FindValue("Big")->data;
  EXPECT_EQ(big.nbytes(), big_elems * 4);
  EXPECT_EQ(big.data<float>()[big_elems - 1], 0.f);
  r = Status(StatusCode::kInternal, "released");  // drop the mapping before removing the file
  std::filesystem::remove(path);
}

// ---- model-local functions ----

TEST(OnnxFunctions, InlinedWithAttributesAndUniqueNames) {
  auto m = SimpleModel();
  auto* op = m.add_opset_import();
  op->set_domain("local");
  op->set_version(1);
  // local.ScaledRelu(x) = LeakyRelu(Neg(x), alpha=@alpha); called twice.
  auto* f = m.add_functions();
  f->set_name("ScaledRelu");
  f->set_domain("local");
  f->add_input("x");
  f->add_output("y");
  f->add_attribute("alpha");
  auto* fop = f->add_opset_import();
  fop->set_domain("");
  fop->set_version(17);
  auto* neg = f->add_node();
  neg->set_op_type("Neg");
  neg->add_input("x");
  neg->add_output("t");
  auto* lr = f->add_node();
  lr->set_op_type("LeakyRelu");
  lr->add_input("t");
  lr->add_output("y");
  auto* ref = lr->add_attribute();
  ref->set_name("alpha");
  ref->set_type(onnx::AttributeProto::FLOAT);
  ref->set_ref_attr_name("alpha");
  // Outer function calling the inner one (nested inlining).
  auto* f2 = m.add_functions();
  f2->set_name("Twice");
  f2->set_domain("local");
  f2->add_input("a");
  f2->add_output("b");
  auto* c1 = f2->add_node();
  c1->set_op_type("ScaledRelu");
  c1->set_domain("local");
  c1->add_input("a");
  c1->add_output("mid");
  auto* c2 = f2->add_node();
  c2->set_op_type("ScaledRelu");
  c2->set_domain("local");
  c2->add_input("mid");
  c2->add_output("b");
  auto* g = m.mutable_graph();
  auto* call = AddNode(g, "ScaledRelu", {"Y"}, {"F1"}, "call1");
  call->set_domain("local");
  auto* a = call->add_attribute();
  a->set_name("alpha");
  a->set_type(onnx::AttributeProto::FLOAT);
  a->set_f(0.5f);
  auto* call2 = AddNode(g, "Twice", {"F1"}, {"F2"}, "call2");
  call2->set_domain("local");
  *g->add_output() = TensorInfo("F2", 1, {-1, 3});
  auto model = MustParse(m);
  ASSERT_TRUE(model);
  EXPECT_TRUE(model->functions.empty());
  std::vector<std::string> ops;
  std::set<std::string> values;
  for (Node* n : model->graph->nodes()) {
    ops.push_back(n->op_type);
    for (Value* v : n->outputs()) EXPECT_TRUE(values.insert(v->name()).second) << v->name();
  }
  EXPECT_EQ(ops, (std::vector<std::string>{"Add", "Relu", "Neg", "LeakyRelu", "Neg", "LeakyRelu", "Neg", "LeakyRelu"}));
  auto nodes = model->graph->nodes();
  EXPECT_EQ(nodes[2]->name, "call1/Neg_0");
  EXPECT_EQ(nodes[2]->input(0)->name(), "Y");
  EXPECT_EQ(nodes[3]->output(0)->name(), "F1");
  ASSERT_TRUE(nodes[3]->attr("alpha"));
  EXPECT_FLOAT_EQ(nodes[3]->attr("alpha")->f, 0.5f);
  EXPECT_TRUE(nodes[3]->attr("alpha")->ref_attr_name.empty());
  EXPECT_EQ(nodes[5]->attr("alpha"), nullptr);  // not given by the caller, no default: dropped
  EXPECT_EQ(nodes[7]->output(0), model->graph->outputs[1]);
}

TEST(OnnxFunctions, RecursionIsAnError) {
  auto m = SimpleModel();
  auto* f = m.add_functions();
  f->set_name("Loop");
  f->set_domain("local");
  f->add_input("x");
  f->add_output("y");
  auto* n = f->add_node();
  n->set_op_type("Loop");
  n->set_domain("local");
  n->add_input("x");
  n->add_output("y");
  AddNode(m.mutable_graph(), "Loop", {"Y"}, {"Z"})->set_domain("local");
  EXPECT_ERROR_HAS(ParseStatus(m), "recursively");
}

// ---- the ONNX backend node tests (fixture "nodetests") ----

TEST(OnnxNodeTests, EveryModelAndTensorLoads) {
  const std::string root = fixtures::NodeTests();
  if (root.empty()) return;
  int models = 0, tensors = 0;
  for (const auto& entry : std::filesystem::directory_iterator(root)) {
    std::string model_path = entry.path().string() + "/model.onnx";
    if (!std::filesystem::exists(model_path)) continue;
    auto r = LoadModel(model_path);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    ++models;
    for (const auto& ds : std::filesystem::directory_iterator(entry.path())) {
      if (!ds.is_directory()) continue;
      for (const auto& pb : std::filesystem::directory_iterator(ds.path())) {
        if (pb.path().extension() != ".pb") continue;
        auto t = LoadTensorFile(pb.path().string());
        // Sequence/optional outputs are SequenceProto/OptionalProto files, not tensors.
        if (t.ok()) ++tensors;
        else if (std::getenv("KILN_VERBOSE")) std::printf("%s\n", t.status().message().c_str());
      }
    }
  }
  EXPECT_GT(models, 1000);
  EXPECT_GT(tensors, 4000);
  std::printf("loaded %d node-test models, %d tensors\n", models, tensors);
}

}  // namespace
}  // namespace kiln
