// The CPU engine (BuildOptions::Backend::kCpu): the public Engine/Context API on
// the reference executor; results equal the executor's, plans round-trip, and
// value-dependent outputs go through the OutputAllocator.
#include <gtest/gtest.h>

#include <cstring>
#include <random>

#include "kiln/engine.h"
#include "onnx/import.h"
#include "onnx_test_util.h"
#include "reference/executor.h"

namespace kiln {
namespace {

using namespace testing_onnx;

BuildOptions CpuOptions() {
  BuildOptions o;
  o.backend = BuildOptions::Backend::kCpu;
  return o;
}

std::shared_ptr<Engine> BuildCpu(const std::string& path, BuildOptions o = CpuOptions()) {
  auto e = Engine::Build(path, o);
  EXPECT_TRUE(e.ok()) << e.status().ToString();
  return e.ok() ? *e : nullptr;
}

// Y = Relu(X + W) with X float[batch,3].
TEST(CpuEngine, RunsSimpleModelWithDynamicBatch) {
  std::string path = WriteModel(SimpleModel(), TestDir());
  auto engine = BuildCpu(path);
  ASSERT_TRUE(engine);
  ASSERT_EQ(engine->Inputs().size(), 1u);
  EXPECT_EQ(engine->Inputs()[0].dims, (std::vector<int64_t>{-1, 3}));
  EXPECT_EQ(engine->Inputs()[0].names[0], "batch");
  EXPECT_EQ(engine->Outputs()[0].dtype, "float32");
  auto ctx = engine->CreateContext();
  ASSERT_TRUE(ctx.ok());
  Context& c = **ctx;
  ASSERT_TRUE(c.SetInputShape("X", {2, 3}).ok());
  auto shape = c.GetOutputShape("Y");
  ASSERT_TRUE(shape.ok()) << shape.status().ToString();
  EXPECT_EQ(*shape, (std::vector<int64_t>{2, 3}));
  std::vector<float> x = {-5, 0, 1, 2, -3, -4}, y(6, -1.f);
  ASSERT_TRUE(c.SetTensorAddress("X", x.data()).ok());
  ASSERT_TRUE(c.SetTensorAddress("Y", y.data()).ok());
  Status st = c.Enqueue(nullptr);
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(y, (std::vector<float>{0, 2, 4, 3, 0, 0}));
  EXPECT_FALSE(c.SetInputShape("X", {2, 4}).ok());  // fixed dim
  EXPECT_FALSE(c.SetInputShape("nope", {2, 3}).ok());
}

TEST(CpuEngine, ProfileBoundsInputShapes) {
  std::string path = WriteModel(SimpleModel(), TestDir());
  BuildOptions o = CpuOptions();
  o.profiles["X"] = ShapeRange{{1, 3}, {2, 3}, {4, 3}};
  auto engine = BuildCpu(path, o);
  ASSERT_TRUE(engine);
  auto ctx = engine->CreateContext();
  ASSERT_TRUE(ctx.ok());
  EXPECT_TRUE((*ctx)->SetInputShape("X", {4, 3}).ok());
  Status st = (*ctx)->SetInputShape("X", {5, 3});
  EXPECT_EQ(st.code(), StatusCode::kOutOfRange);
  EXPECT_NE(st.message().find("profile"), std::string::npos) << st.message();
  BuildOptions fp16 = CpuOptions();
  fp16.fp16 = true;
  EXPECT_EQ(Engine::Build(path, fp16).status().code(), StatusCode::kUnsupported);
}

TEST(CpuEngine, UnknownOpFailsTheBuildNamingTheNode) {
  onnx::ModelProto m = SimpleModel();
  m.mutable_graph()->mutable_node(1)->set_op_type("NoSuchOp");
  m.mutable_graph()->mutable_node(1)->set_name("weird");
  auto e = Engine::Build(WriteModel(m, TestDir()), CpuOptions());
  ASSERT_FALSE(e.ok());
  EXPECT_NE(e.status().message().find("weird"), std::string::npos) << e.status().message();
}

class HostAllocator : public OutputAllocator {
 public:
  void* Reallocate(const std::string& name, void* current, size_t bytes) override {
    buffer.resize(bytes);
    return buffer.data();
  }
  void NotifyShape(const std::string& name, const std::vector<int64_t>& d) override { dims = d; }
  std::vector<char> buffer;
  std::vector<int64_t> dims;
};

TEST(CpuEngine, ValueDependentOutputGoesThroughTheAllocator) {
  onnx::ModelProto m = SimpleModel();
  auto* g = m.mutable_graph();
  g->clear_node();
  g->clear_output();
  AddNode(g, "NonZero", {"X"}, {"Y"}, "nz");
  *g->add_output() = testing_onnx::TensorInfo("Y", onnx::TensorProto::INT64, {2, -1});
  auto engine = BuildCpu(WriteModel(m, TestDir()));
  ASSERT_TRUE(engine);
  auto ctx = engine->CreateContext();
  ASSERT_TRUE(ctx.ok());
  Context& c = **ctx;
  ASSERT_TRUE(c.SetInputShape("X", {2, 3}).ok());
  auto before = c.GetOutputShape("Y");
  ASSERT_TRUE(before.ok()) << before.status().ToString();
  EXPECT_EQ(before->size(), 2u);
  EXPECT_EQ(before->back(), -1);
  std::vector<float> x = {0, 1, 0, 2, 0, 3};
  HostAllocator alloc;
  ASSERT_TRUE(c.SetTensorAddress("X", x.data()).ok());
  ASSERT_TRUE(c.SetOutputAllocator("Y", &alloc).ok());
  Status st = c.Enqueue(nullptr);
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(alloc.dims, (std::vector<int64_t>{2, 3}));
  std::vector<int64_t> y(6);
  ASSERT_EQ(alloc.buffer.size(), sizeof(int64_t) * 6);
  std::memcpy(y.data(), alloc.buffer.data(), alloc.buffer.size());
  EXPECT_EQ(y, (std::vector<int64_t>{0, 1, 1, 1, 0, 2}));
  EXPECT_EQ(*c.GetOutputShape("Y"), (std::vector<int64_t>{2, 3}));
}

// The bundled model: the CPU engine equals the reference executor, before
// and after a plan round trip.
TEST(CpuEngine, SuperResolutionMatchesTheReferenceAndRoundTrips) {
  std::string onnx_path = std::string(KILN_SOURCE_DIR) + "/models/super_resolution.onnx";
  auto engine = BuildCpu(onnx_path);
  ASSERT_TRUE(engine);
  std::string plan = TestDir() + "/sr.plan";
  ASSERT_TRUE(engine->Save(plan).ok());
  // The lean runtime's load (no reference support) refuses a CPU plan and says what to pass.
  auto lean = Engine::Load(plan);
  ASSERT_FALSE(lean.ok());
  EXPECT_NE(lean.status().message().find("kiln::BuilderLoadOptions()"), std::string::npos)
      << lean.status().ToString();
  auto loaded = Engine::Load(plan, BuilderLoadOptions());
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();

  const kiln::TensorInfo in = engine->Inputs()[0];
  std::vector<int64_t> dims = in.dims;
  for (int64_t& d : dims)
    if (d < 0) d = 1;
  int64_t n = 1;
  for (int64_t d : dims) n *= d;
  std::vector<float> x(static_cast<size_t>(n));
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> u(0.f, 1.f);
  for (float& v : x) v = u(rng);

  auto model = LoadModel(onnx_path);
  ASSERT_TRUE(model.ok());
  ReferenceExecutor ref(**model);
  auto expected = ref.Run({{in.name, RtValue::FromTensor(Tensor::FromVector(DataType::kFloat, dims, x))}});
  ASSERT_TRUE(expected.ok()) << expected.status().ToString();
  const Tensor& want = (*expected)[0].tensor;

  for (const std::shared_ptr<Engine>& e : {engine, *loaded}) {
    auto ctx = e->CreateContext();
    ASSERT_TRUE(ctx.ok());
    ASSERT_TRUE((*ctx)->SetInputShape(in.name, dims).ok());
    auto out_dims = (*ctx)->GetOutputShape(e->Outputs()[0].name);
    ASSERT_TRUE(out_dims.ok());
    EXPECT_EQ(*out_dims, want.dims());
    std::vector<float> y(static_cast<size_t>(want.numel()));
    ASSERT_TRUE((*ctx)->SetTensorAddress(in.name, x.data()).ok());
    ASSERT_TRUE((*ctx)->SetTensorAddress(e->Outputs()[0].name, y.data()).ok());
    Status st = (*ctx)->Enqueue(nullptr);
    ASSERT_TRUE(st.ok()) << st.ToString();
    EXPECT_EQ(std::memcmp(y.data(), want.raw(), want.nbytes()), 0);
  }
}

}  // namespace
}  // namespace kiln
