// SaveModel: load → save → load gives the same IR (printed form and
// initializer bytes); external data files; onnx.checker accepts saved files.
#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>

#include "fixtures.h"
#include "ir/printer.h"
#include "onnx/import.h"
#include "onnx_test_util.h"

namespace kiln {
namespace {

using namespace testing_onnx;  // NOLINT

std::string Printed(const Model& m) {
  PrintOptions po;
  po.value_types = true;
  po.max_tensor_elements = 64;
  return PrintGraph(m, po);
}

// Compares initializer contents of two graphs (recursively through subgraphs
// is not needed: subgraph initializers are rare and print the same).
void ExpectSameData(const Graph& a, const Graph& b) {
  ASSERT_EQ(a.initializers.size(), b.initializers.size());
  for (size_t i = 0; i < a.initializers.size(); ++i) {
    const Tensor& ta = *a.initializers[i]->data;
    const Tensor& tb = *b.initializers[i]->data;
    EXPECT_EQ(a.initializers[i]->name(), b.initializers[i]->name());
    ASSERT_EQ(ta.Describe(), tb.Describe());
    if (ta.dtype() == DataType::kString)
      EXPECT_EQ(ta.strings(), tb.strings());
    else
      EXPECT_EQ(std::memcmp(ta.raw(), tb.raw(), ta.nbytes()), 0) << a.initializers[i]->name();
  }
}

std::unique_ptr<Model> RoundTrip(const Model& m, const std::string& path, const SaveOptions& so = {}) {
  Status st = SaveModel(m, path, so);
  EXPECT_TRUE(st.ok()) << st.ToString();
  auto r = LoadModel(path);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  if (!r.ok()) return nullptr;
  EXPECT_EQ(Printed(m), Printed(*r.value()));
  EXPECT_EQ(m.ir_version, r.value()->ir_version);
  EXPECT_EQ(m.opsets, r.value()->opsets);
  EXPECT_EQ(m.metadata, r.value()->metadata);
  ExpectSameData(*m.graph, *r.value()->graph);
  return std::move(r).value();
}

// The project's Python ($KILN_PYTHON) must have onnx: its checker is the oracle here.
bool HavePythonOnnx() {
  std::string cmd = "'" + fixtures::Python() + "' -c 'import onnx' > /dev/null 2>&1";
  bool ok = std::system(cmd.c_str()) == 0;
  EXPECT_TRUE(ok) << fixtures::Python() << " cannot import onnx (run tools/install-deps.sh)";
  return ok;
}

// onnx.checker on a saved file; "" when it passes, else its output.
std::string PythonCheck(const std::string& path) {
  std::string out = path + ".checker.txt";
  std::string cmd = "'" + fixtures::Python() +
                    "' -c \"import onnx,sys; onnx.checker.check_model(sys.argv[1], full_check=True)\" '" + path +
                    "' > '" + out + "' 2>&1";
  int rc = std::system(cmd.c_str());
  return rc == 0 ? "" : ReadFile(out);
}

onnx::ModelProto RichModel() {
  auto m = SimpleModel(8, 17);
  auto* kv = m.add_metadata_props();
  kv->set_key("k");
  kv->set_value("v");
  auto* g = m.mutable_graph();
  *g->add_input() = TensorInfo("cond", onnx::TensorProto::BOOL, {});
  *g->add_value_info() = TensorInfo("S", onnx::TensorProto::FLOAT, {-1, 3}, {"batch"});
  // Big initializer (goes external) and an int4 one (packed on save).
  onnx::TensorProto big = FloatTensor("B", {64, 64}, std::vector<float>(64 * 64, 0.25f));
  big.set_float_data(5, -1.f);
  *g->add_initializer() = big;
  onnx::TensorProto i4;
  i4.set_name("Q");
  i4.set_data_type(22);
  i4.add_dims(3);
  i4.set_raw_data(std::string("\xF1\x08", 2));
  *g->add_initializer() = i4;
  AddNode(g, "MatMul", {"Y", "B3"}, {"M"}, "mm");
  *g->add_initializer() = FloatTensor("B3", {3, 2}, {1, 2, 3, 4, 5, 6});
  auto* ifn = AddNode(g, "If", {"cond"}, {"Z"}, "if");
  for (const char* branch : {"then_branch", "else_branch"}) {
    auto* a = ifn->add_attribute();
    a->set_name(branch);
    a->set_type(onnx::AttributeProto::GRAPH);
    auto* sg = a->mutable_g();
    sg->set_name(branch);
    AddNode(sg, std::string(branch) == "then_branch" ? "Neg" : "Abs", {"M"}, {std::string(branch) + "_out"});
    *sg->add_output() = TensorInfo(std::string(branch) + "_out", onnx::TensorProto::FLOAT, {-1, 2}, {"batch"});
  }
  auto* cast = AddNode(g, "Cast", {"Z"}, {"C"}, "cast");
  AddIntAttr(cast, "to", 7);
  auto* mm = AddNode(g, "Mul", {"B", "B"}, {"BB"}, "mul");
  (void)mm;
  auto* dq = AddNode(g, "DequantizeLinear", {"Q", "W"}, {"DQ"}, "");
  AddIntAttr(dq, "axis", 0);
  *g->add_output() = TensorInfo("C", onnx::TensorProto::INT64, {-1, 2}, {"batch"});
  *g->add_output() = TensorInfo("BB", onnx::TensorProto::FLOAT, {64, 64});
  *g->add_output() = TensorInfo("DQ", onnx::TensorProto::FLOAT, {3});
  auto* op = m.mutable_opset_import(0);
  op->set_version(21);  // int4 DequantizeLinear
  m.set_ir_version(10);
  return m;
}

TEST(OnnxExport, RoundTripInline) {
  std::string dir = TestDir();
  auto r = LoadModel(WriteModel(RichModel(), dir));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  auto back = RoundTrip(*r.value(), dir + "/saved.onnx");
  ASSERT_TRUE(back);
  EXPECT_FALSE(std::filesystem::exists(dir + "/saved.onnx.data"));
  EXPECT_EQ(back->graph->FindValue("Q")->data->data<int8_t>()[1], -1);
  if (HavePythonOnnx()) {
    EXPECT_EQ(PythonCheck(dir + "/saved.onnx"), "");
  }
}

TEST(OnnxExport, RoundTripExternalData) {
  std::string dir = TestDir();
  auto r = LoadModel(WriteModel(RichModel(), dir));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  SaveOptions so;
  so.external_data = true;
  so.external_threshold_bytes = 16;
  auto back = RoundTrip(*r.value(), dir + "/ext.onnx", so);
  ASSERT_TRUE(back);
  ASSERT_TRUE(std::filesystem::exists(dir + "/ext.onnx.data"));
  // B (16 KiB) and B3 (24 bytes) are external; Q (2 bytes) stays inline.
  EXPECT_GE(std::filesystem::file_size(dir + "/ext.onnx.data"), 64u * 64u * 4u);
  EXPECT_LT(std::filesystem::file_size(dir + "/ext.onnx"), 4096u);
  EXPECT_FLOAT_EQ(back->graph->FindValue("B")->data->data<float>()[5], -1.f);
  // Saved again from the memory-mapped model: still the same.
  RoundTrip(*back, dir + "/ext2.onnx", so);
  if (HavePythonOnnx()) {
    EXPECT_EQ(PythonCheck(dir + "/ext.onnx"), "");
  }
}

TEST(OnnxExport, PythonCheckerAcceptsSavedFiles) {
  if (!HavePythonOnnx()) return;
  std::string dir = TestDir();
  auto m = SimpleModel(8, 17);
  auto r = LoadModel(WriteModel(m, dir));
  ASSERT_TRUE(r.ok());
  ASSERT_TRUE(SaveModel(*r.value(), dir + "/s.onnx").ok());
  EXPECT_EQ(PythonCheck(dir + "/s.onnx"), "");
}

TEST(OnnxExport, NodeTestsRoundTrip) {
  const std::string root = fixtures::NodeTests();
  if (root.empty()) return;
  std::string dir = TestDir();
  int n = 0;
  for (const auto& entry : std::filesystem::directory_iterator(root)) {
    std::string path = entry.path().string() + "/model.onnx";
    if (!std::filesystem::exists(path)) continue;
    auto r = LoadModel(path);
    if (!r.ok()) continue;  // onnx_import_test reports these
    SCOPED_TRACE(path);
    RoundTrip(*r.value(), dir + "/m.onnx");
    ++n;
  }
  EXPECT_GT(n, 1000);
}

}  // namespace
}  // namespace kiln
