// Dynamic input dims without a name of their own (dim_param "?" as Paddle
// writes it, an empty dim_param, or neither value nor param) are independent
// unknowns, as in onnxruntime; named symbols ("batch") still bind together.
// The run-time binding is checked through the CLI binary (`kiln run`).
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <set>

#include "fixtures.h"
#include "io/npy.h"
#include "onnx/import.h"
#include "onnx_test_util.h"
#include "passes/shape_inference.h"

namespace kiln {
namespace {

using namespace testing_onnx;  // NOLINT

std::unique_ptr<Model> Parse(const onnx::ModelProto& m) {
  std::string bytes = m.SerializeAsString();
  auto r = ParseModel(bytes.data(), bytes.size(), ".");
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return r.ok() ? std::move(r).value() : nullptr;
}

onnx::ModelProto NewModel() {
  onnx::ModelProto m;
  m.set_ir_version(8);
  auto* op = m.add_opset_import();
  op->set_domain("");
  op->set_version(17);
  m.mutable_graph()->set_name("main");
  return m;
}

// Paddle-style: x ['?',3,'?','?'] and m [<empty dim_param>, <nothing>];
// y = x * ReduceMean(x, axes=[3]) (broadcasts over W), z = Neg(m).
onnx::ModelProto PaddleStyleModel() {
  onnx::ModelProto m = NewModel();
  auto* g = m.mutable_graph();
  *g->add_input() = TensorInfo("x", onnx::TensorProto::FLOAT, {-1, 3, -1, -1}, {"?", "", "?", "?"});
  auto mi = TensorInfo("m", onnx::TensorProto::FLOAT, {-1, -1});
  mi.mutable_type()->mutable_tensor_type()->mutable_shape()->mutable_dim(0)->set_dim_param("");
  *g->add_input() = mi;
  AddIntsAttr(AddNode(g, "ReduceMean", {"x"}, {"mean"}), "axes", {3});
  AddNode(g, "Mul", {"x", "mean"}, {"y"});
  AddNode(g, "Neg", {"m"}, {"z"});
  *g->add_output() = TensorInfo("y", onnx::TensorProto::FLOAT, {-1, 3, -1, -1}, {"?", "", "?", "?"});
  *g->add_output() = TensorInfo("z", onnx::TensorProto::FLOAT, {-1, -1}, {"?", "?"});
  return m;
}

// a ['batch',4] + b ['batch',4].
onnx::ModelProto NamedBatchModel() {
  onnx::ModelProto m = NewModel();
  auto* g = m.mutable_graph();
  *g->add_input() = TensorInfo("a", onnx::TensorProto::FLOAT, {-1, 4}, {"batch"});
  *g->add_input() = TensorInfo("b", onnx::TensorProto::FLOAT, {-1, 4}, {"batch"});
  AddNode(g, "Add", {"a", "b"}, {"c"});
  *g->add_output() = TensorInfo("c", onnx::TensorProto::FLOAT, {-1, 4}, {"batch"});
  return m;
}

using fixtures::CliResult;
using fixtures::KilnBinary;
using fixtures::RunKiln;

std::string WriteInput(const std::string& dir, const std::string& name, const std::vector<int64_t>& dims) {
  Tensor t(DataType::kFloat, dims);
  for (int64_t i = 0; i < t.numel(); ++i) t.mutable_data<float>()[i] = static_cast<float>(i % 7) - 3.f;
  std::string path = dir + "/" + name + ".npy";
  EXPECT_TRUE(WriteNpy(path, t).ok());
  return path;
}

TEST(DimParam, UnnamedDynamicDimsAreIndependentSymbols) {
  auto model = Parse(PaddleStyleModel());
  ASSERT_TRUE(model);
  const Graph& g = *model->graph;
  const Shape& x = g.inputs[0]->type.shape;
  const Shape& m = g.inputs[1]->type.shape;
  ASSERT_EQ(x.rank(), 4);
  ASSERT_EQ(m.rank(), 2);
  EXPECT_EQ(x[1].value(), 3);
  std::set<std::string> names;
  for (const Dim* d : {&x[0], &x[2], &x[3], &m[0], &m[1]}) {
    ASSERT_TRUE(d->symbolic()) << g.inputs[0]->type.ToString() << " " << g.inputs[1]->type.ToString();
    EXPECT_NE(d->symbol(), "?");
    names.insert(d->symbol());
  }
  EXPECT_EQ(names.size(), 5u) << "each unnamed dim must be its own symbol";
  // Declared "?" on outputs is no symbol either: inference fills in the input's.
  ASSERT_TRUE(InferShapes(*model).ok());
  EXPECT_EQ(g.outputs[0]->type.shape, x) << g.outputs[0]->type.ToString();
  EXPECT_EQ(g.outputs[1]->type.shape, m) << g.outputs[1]->type.ToString();
}

TEST(DimParam, FreshSymbolsDoNotTakeNamesTheModelUses) {
  onnx::ModelProto p = NewModel();
  auto* g = p.mutable_graph();
  *g->add_input() = TensorInfo("x", onnx::TensorProto::FLOAT, {-1, -1}, {"x_dim1", "?"});
  AddNode(g, "Relu", {"x"}, {"y"});
  *g->add_output() = TensorInfo("y", onnx::TensorProto::FLOAT, {-1, -1}, {"x_dim1", "?"});
  auto model = Parse(p);
  ASSERT_TRUE(model);
  const Shape& x = model->graph->inputs[0]->type.shape;
  ASSERT_TRUE(x[1].symbolic());
  EXPECT_NE(x[0], x[1]) << model->graph->inputs[0]->type.ToString();
}

TEST(DimParam, CpuRunAcceptsDifferentSizesForEachQuestionMark) {
  ASSERT_TRUE(std::filesystem::exists(KilnBinary())) << KilnBinary() << " not built";
  std::string dir = TestDir();
  std::string model = WriteModel(PaddleStyleModel(), dir);
  std::string xs = WriteInput(dir, "x", {2, 3, 192, 48});
  std::string ms = WriteInput(dir, "m", {5, 7});
  CliResult r = RunKiln("run --backend cpu '" + model + "' --input x=" + xs + " --input m=" + ms +
                            " --output-dir '" + dir + "/out'",
                        dir);
  ASSERT_EQ(r.rc, 0) << r.out;
  auto y = ReadNpy(dir + "/out/y.npy");
  ASSERT_TRUE(y.ok()) << y.status().ToString();
  EXPECT_EQ(y->dims(), (std::vector<int64_t>{2, 3, 192, 48}));
  auto z = ReadNpy(dir + "/out/z.npy");
  ASSERT_TRUE(z.ok()) << z.status().ToString();
  EXPECT_EQ(z->dims(), (std::vector<int64_t>{5, 7}));
  // --random with --shapes binds each dim on its own too.
  r = RunKiln("run --backend cpu '" + model + "' --random --shapes x:1x3x40x24,m:3x2", dir);
  EXPECT_EQ(r.rc, 0) << r.out;
}

TEST(DimParam, NamedSymbolsStillBindTogether) {
  auto model = Parse(NamedBatchModel());
  ASSERT_TRUE(model);
  const Graph& g = *model->graph;
  EXPECT_EQ(g.inputs[0]->type.shape[0].symbol(), "batch");
  EXPECT_EQ(g.inputs[0]->type.shape[0], g.inputs[1]->type.shape[0]);

  ASSERT_TRUE(std::filesystem::exists(KilnBinary())) << KilnBinary() << " not built";
  std::string dir = TestDir();
  std::string path = WriteModel(NamedBatchModel(), dir);
  std::string a = WriteInput(dir, "a", {2, 4});
  std::string b_same = WriteInput(dir, "b_same", {2, 4});
  std::string b_other = WriteInput(dir, "b_other", {3, 4});
  CliResult ok = RunKiln("run --backend cpu '" + path + "' --input a=" + a + " --input b=" + b_same, dir);
  EXPECT_EQ(ok.rc, 0) << ok.out;
  CliResult bad = RunKiln("run --backend cpu '" + path + "' --input a=" + a + " --input b=" + b_other, dir);
  EXPECT_NE(bad.rc, 0) << bad.out;
  EXPECT_NE(bad.out.find("input 'b'"), std::string::npos) << bad.out;
  EXPECT_NE(bad.out.find("dim 0 ('batch') is 3"), std::string::npos) << bad.out;
  EXPECT_NE(bad.out.find("set 'batch' to 2"), std::string::npos) << bad.out;
  CliResult bad_shapes = RunKiln("run --backend cpu '" + path + "' --random --shapes a:2x4,b:3x4", dir);
  EXPECT_NE(bad_shapes.rc, 0) << bad_shapes.out;
  EXPECT_NE(bad_shapes.out.find("'batch'"), std::string::npos) << bad_shapes.out;
}

}  // namespace
}  // namespace kiln
