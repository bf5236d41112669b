// The runtime contract of docs/PLAN.md / issue #12 on the device: SetInputShape
// does all preparation, so Enqueue may be captured into a CUDA graph (a
// cudaMalloc, a synchronisation or a timing run inside it would break the
// capture) and allocates nothing (device free memory unchanged); the captured
// graph replays with the right results. The model is a decomposed LayerNorm
// and a GELU-tanh chain around a MatMul, so the generated kernels (a row
// kernel and an elementwise one, src/build/codegen/) run end to end here too.
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "ir/clone.h"
#include "passes/shape_inference.h"
#include "reference/compare.h"
#include "reference/executor.h"
#include "runtime/gpu/gpu_engine.h"
#include "unit/graph_nodes.h"

namespace kiln {
namespace {

bool HaveGpu() {
  int n = 0;
  return cudaGetDeviceCount(&n) == cudaSuccess && n > 0;
}

Value* Scalar(testing_ir::Builder& b, float v) { return b.Const(Tensor::FromVector<float>(DataType::kFloat, {}, {v})); }

// y = gelu_tanh(LayerNorm(x) · W) over x [batch, 24, 96].
std::unique_ptr<Model> ContractModel() {
  std::unique_ptr<Model> m = testing_ir::NewModel();
  testing_ir::Builder b(m->graph.get());
  Value* x = b.Input("x", DataType::kFloat, Shape({Dim::Symbol("batch"), 24, 96}));
  const AttributeMap last = {{"axes", Attribute::FromInts({-1})}};
  Value* mean = b.Op1("ReduceMean", {x}, last);
  Value* d = b.Op1("Sub", {x, mean});
  Value* var = b.Op1("ReduceMean", {b.Op1("Mul", {d, d})}, last);
  Value* n = b.Op1("Div", {d, b.Op1("Sqrt", {b.Op1("Add", {var, Scalar(b, 1e-5f)})})});
  std::mt19937 rng(3);
  std::normal_distribution<float> g(0.f, 0.1f);
  std::vector<float> w(96 * 64);
  for (float& e : w) e = g(rng);
  Value* h = b.Op1("MatMul", {n, b.Const(Tensor::FromVector<float>(DataType::kFloat, {96, 64}, w))});
  Value* cube = b.Op1("Mul", {b.Op1("Mul", {h, h}), h});
  Value* inner = b.Op1("Mul", {b.Op1("Add", {h, b.Op1("Mul", {cube, Scalar(b, 0.044715f)})}), Scalar(b, 0.7978845608f)});
  Value* y = b.Op1("Mul", {b.Op1("Mul", {h, Scalar(b, 0.5f)}), b.Op1("Add", {b.Op1("Tanh", {inner}), Scalar(b, 1.f)})});
  b.Output(y);
  return m;
}

size_t FreeBytes() {
  size_t free = 0, total = 0;
  EXPECT_EQ(cudaMemGetInfo(&free, &total), cudaSuccess);
  return free;
}

TEST(GpuRuntimeContract, EnqueueIsCapturableAllocatesNothingAndReplays) {
  if (!HaveGpu()) GTEST_SKIP() << "no CUDA device";
  std::unique_ptr<Model> m = ContractModel();
  ASSERT_TRUE(InferShapes(*m).ok());
  BuildOptions opts;
  opts.profiles["x"] = ShapeRange{{1, 24, 96}, {4, 24, 96}, {8, 24, 96}};
  BuildReport report;
  auto engine = cuda::BuildEngine(CloneModel(*m), opts, &report);
  ASSERT_TRUE(engine.ok()) << engine.status().ToString();
  bool generated = false;
  for (const std::string& note : report.notes) generated |= note.find("pointwise kernel") != std::string::npos;
  EXPECT_TRUE(generated) << "the model should use generated kernels";
  auto ctx = (*engine)->CreateContext();
  ASSERT_TRUE(ctx.ok());
  cudaStream_t stream;
  ASSERT_EQ(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), cudaSuccess);
  for (int64_t batch : {3, 8}) {
    SCOPED_TRACE("batch " + std::to_string(batch));
    Tensor x(DataType::kFloat, {batch, 24, 96});
    std::mt19937 rng(static_cast<unsigned>(batch));
    std::normal_distribution<float> g(0.f, 2.f);
    for (int64_t i = 0; i < x.numel(); ++i) x.mutable_data<float>()[i] = g(rng);
    const size_t in_bytes = x.nbytes(), out_bytes = static_cast<size_t>(batch) * 24 * 64 * sizeof(float);
    void *din = nullptr, *dout = nullptr;
    ASSERT_EQ(cudaMalloc(&din, in_bytes), cudaSuccess);
    ASSERT_EQ(cudaMalloc(&dout, out_bytes), cudaSuccess);
    ASSERT_EQ(cudaMemcpy(din, x.raw(), in_bytes, cudaMemcpyHostToDevice), cudaSuccess);
    ASSERT_TRUE((*ctx)->SetInputShape("x", {batch, 24, 96}).ok());
    ASSERT_TRUE((*ctx)->SetTensorAddress("x", din).ok());
    ASSERT_TRUE((*ctx)->SetTensorAddress(m->graph->outputs[0]->name(), dout).ok());
    // Capture: anything but kernel launches and async copies on `stream` fails it.
    const size_t before = FreeBytes();
    ASSERT_EQ(cudaStreamBeginCapture(stream, cudaStreamCaptureModeGlobal), cudaSuccess);
    Status enq = (*ctx)->Enqueue(stream);
    cudaGraph_t graph = nullptr;
    const cudaError_t end = cudaStreamEndCapture(stream, &graph);
    ASSERT_TRUE(enq.ok()) << enq.ToString();
    ASSERT_EQ(end, cudaSuccess) << cudaGetErrorString(end);
    EXPECT_EQ(FreeBytes(), before) << "Enqueue allocated device memory";
    cudaGraphExec_t exec = nullptr;
    ASSERT_EQ(cudaGraphInstantiate(&exec, graph, 0), cudaSuccess);
    for (int replay = 0; replay < 2; ++replay) ASSERT_EQ(cudaGraphLaunch(exec, stream), cudaSuccess);
    ASSERT_EQ(cudaStreamSynchronize(stream), cudaSuccess);
    Tensor got(DataType::kFloat, {batch, 24, 64});
    ASSERT_EQ(cudaMemcpy(got.mutable_raw(), dout, out_bytes, cudaMemcpyDeviceToHost), cudaSuccess);
    std::unique_ptr<Model> ref = CloneModel(*m);
    ShapeInferenceOptions so;
    so.input_shapes["x"] = Shape::Of({batch, 24, 96});
    ASSERT_TRUE(InferShapes(*ref, so).ok());
    auto want = ReferenceExecutor(*ref).Run({{"x", RtValue::FromTensor(x)}});
    ASSERT_TRUE(want.ok()) << want.status().ToString();
    Tolerance tol;
    tol.rtol = 1e-4;
    tol.atol = 1e-4;
    Comparison c = CompareTensors((*want)[0].tensor, got, tol);
    EXPECT_TRUE(c.ok) << c.message;
    cudaGraphExecDestroy(exec);
    cudaGraphDestroy(graph);
    cudaFree(din);
    cudaFree(dout);
  }
  cudaStreamDestroy(stream);
}

}  // namespace
}  // namespace kiln
