// The CUDA op table against its op harness, without a GPU: every row has a
// case (ggml's test-backend-ops rule: one harness, every backend op), every
// case is a valid test (the CPU reference runs it and the comparison it will
// get can fail), and the builder's capability check accepts every case, so a
// case and its row cannot drift apart. kiln_gpu_tests runs the cases on the GPU.
#include <gtest/gtest.h>

#include "backend/gpu_caps.h"
#include "build/build_passes.h"
#ifdef KILN_HAS_CUDA
#include "build/cuda/nvrtc_compile.h"
#endif
#include "fixtures.h"
#include "graph_nodes.h"
#include "ir/clone.h"
#include "onnx/import.h"
#include "op_cases/op_case.h"
#include "passes/shape_inference.h"
#include "reference/compare.h"
#include "reference/executor.h"

namespace kiln {
namespace {

using op_cases::CudaOpCases;
using op_cases::OpCase;

TEST(CudaOpCases, EveryOpTableRowHasACase) {
  std::vector<std::string> missing;
  for (const GpuOpRow& row : GpuOpRows()) {
    bool found = false;
    for (const OpCase& oc : CudaOpCases())
      found |= oc.c.op == row.op_type && oc.c.domain == row.domain;
    if (!found) missing.push_back(std::string(row.domain.empty() ? "" : "kiln.") + std::string(row.op_type));
  }
  std::string list;
  for (const std::string& m : missing) list += " " + m;
  EXPECT_TRUE(missing.empty()) << "CUDA op-table rows without an op-harness case in tests/op_cases/cuda_cases.cc:"
                               << list;
}

TEST(CudaOpCases, EveryCaseRunsOnTheReferenceAndCanFail) {
  for (const OpCase& oc : CudaOpCases()) {
    SCOPED_TRACE(oc.Label());
    std::mt19937 rng(1234);
    op_cases::CaseModel cm = op_cases::BuildCaseModel(oc.c, rng);
    ASSERT_TRUE(InferShapes(*cm.model).ok());
    std::map<std::string, RtValue> inputs;
    for (const auto& [name, t] : cm.inputs) inputs[name] = RtValue::FromTensor(t);
    auto want = ReferenceExecutor(*cm.model).Run(inputs);
    ASSERT_TRUE(want.ok()) << want.status().ToString();
    Tolerance tol;
    tol.rtol = oc.rtol;
    tol.atol = oc.atol;
    for (size_t i = 0; i < want->size(); ++i) {
      Status can_fail = CheckCanFail((*want)[i].tensor, tol);
      EXPECT_TRUE(can_fail.ok()) << "output " << i << ": " << can_fail.message();
    }
  }
}

TEST(CudaOpCases, EveryCaseFitsTheDeclaredCapabilities) {
  for (const OpCase& oc : CudaOpCases()) {
    SCOPED_TRACE(oc.Label());
    std::mt19937 rng(1234);
    op_cases::CaseModel cm = op_cases::BuildCaseModel(oc.c, rng);
    ASSERT_TRUE(InferShapes(*cm.model).ok());
    BuildOptions opts;
    opts.fp16 = oc.c.fp16;
    std::vector<std::string> notes;
    Status passes = RunBuildPasses(*cm.model, opts, &notes);
    ASSERT_TRUE(passes.ok()) << passes.ToString();
    for (const GpuGap& gap : FindGpuGaps(*cm.model, nullptr)) ADD_FAILURE() << gap.reason;
#ifdef KILN_HAS_CUDA
    // Generated kernels (kiln.Pointwise cases) generate and compile for sm_90;
    // the builder would otherwise run their bodies unfused, with a note.
    cuda::KernelCache cache;
    ASSERT_TRUE(cuda::CompilePointwiseKernels(*cm.model, 90, cache, &notes).ok());
    for (const std::string& note : notes)
      EXPECT_EQ(note.find("generated kernel failed"), std::string::npos) << note;
#endif
  }
}

// A one-node model: x (dtype, dims) → op → y, with optional constant inputs.
std::unique_ptr<Model> OneNode(const std::string& op, DataType dtype, int64_t opset,
                               std::vector<op_cases::In> extra = {}) {
  op_cases::Case c{op, {{"x", {2, 3}, dtype}}};
  c.opset = opset;
  for (op_cases::In& in : extra) c.inputs.push_back(std::move(in));
  std::mt19937 rng(1);
  auto m = op_cases::BuildCaseModel(c, rng).model;
  EXPECT_TRUE(InferShapes(*m).ok());
  return m;
}

std::string OnlyGap(const Model& m) {
  std::vector<GpuGap> gaps = FindGpuGaps(m, nullptr);
  EXPECT_EQ(gaps.size(), 1u);
  return gaps.empty() ? "" : gaps[0].reason;
}

TEST(GpuCaps, UnsupportedTypeIsRejectedAtBuildTimeNamingNodeInputAndTypes) {
  std::string why = OnlyGap(*OneNode("Relu", DataType::kInt32, 17));
  EXPECT_NE(why.find("node0"), std::string::npos) << why;
  EXPECT_NE(why.find("Relu"), std::string::npos) << why;
  EXPECT_NE(why.find("'x' int32[2,3]"), std::string::npos) << why;
  EXPECT_NE(why.find("float32, float16"), std::string::npos) << why;
  EXPECT_TRUE(FindGpuGaps(*OneNode("Relu", DataType::kFloat16, 17), nullptr).empty());
}

TEST(GpuCaps, OpsetOutsideTheRowIsRejected) {
  op_cases::In starts{"s", {1}, DataType::kInt64, true, {0}}, ends{"e", {1}, DataType::kInt64, true, {1}};
  std::string why = OnlyGap(*OneNode("Slice", DataType::kFloat, 9, {starts, ends}));
  EXPECT_NE(why.find("opset 9"), std::string::npos) << why;
}

TEST(GpuCaps, InputThatMustBeKnownOnTheHost) {
  // Tile's repeats computed from a rank-2 input (no shape tensor: only inputs
  // of rank <= 1 are) cannot be known before the run.
  std::unique_ptr<Model> m = testing_ir::NewModel(13);
  testing_ir::Builder b(m->graph.get());
  Value* x = b.Input("x", DataType::kFloat, Shape::Of({2, 3}));
  Value* r2 = b.Input("r2", DataType::kInt64, Shape::Of({1, 2}));
  Value* reps = b.Named("Reshape", "reps", {r2, b.Const(Tensor::FromVector<int64_t>(DataType::kInt64, {1}, {2}))});
  b.Output(b.Named("Tile", "tile", {x, reps}));
  ASSERT_TRUE(InferShapes(*m).ok());
  std::string why = OnlyGap(*m);
  EXPECT_NE(why.find("input 1 'reps'"), std::string::npos) << why;
  EXPECT_NE(why.find("known before the run"), std::string::npos) << why;
  EXPECT_TRUE(ShapeTensorInputs(*m->graph).empty());
}

TEST(GpuCaps, InputThatSetsAShapeIsAShapeTensor) {
  // Resize scales as a runtime float input: read on the host like a shape.
  op_cases::In roi{"", {}}, scales{"scales", {2}, DataType::kFloat};
  auto resize = OneNode("Resize", DataType::kFloat, 13, {roi, scales});
  EXPECT_TRUE(FindGpuGaps(*resize, nullptr).empty());
  EXPECT_EQ(ShapeTensorInputs(*resize->graph).size(), 1u);

  // Slice starts as a runtime int64 input: the caller gives its values on the
  // host (Context::SetInputValue), so the node is no gap.
  op_cases::In starts{"s", {1}, DataType::kInt64}, ends{"e", {1}, DataType::kInt64, true, {1}};
  auto m = OneNode("Slice", DataType::kFloat, 13, {starts, ends});
  EXPECT_TRUE(FindGpuGaps(*m, nullptr).empty());
  std::unordered_set<const Value*> shape_inputs = ShapeTensorInputs(*m->graph);
  ASSERT_EQ(shape_inputs.size(), 1u);
  EXPECT_EQ((*shape_inputs.begin())->name(), "s");
  // An integer vector that only feeds a kernel's data is no shape tensor.
  op_cases::Case neg{"Neg", {{"x", {5}, DataType::kInt64}}};
  std::mt19937 rng(1);
  auto data_only = op_cases::BuildCaseModel(neg, rng).model;
  ASSERT_TRUE(InferShapes(*data_only).ok());
  EXPECT_TRUE(ShapeTensorInputs(*data_only->graph).empty());
}

TEST(GpuCaps, OpWithoutARowIsAGapAndShapeArithmeticIsNot) {
  std::string why = OnlyGap(*OneNode("Unique", DataType::kFloat, 13));
  EXPECT_NE(why.find("no CUDA kernel"), std::string::npos) << why;
  // Shape → Gather → Concat style arithmetic runs on the host per input shape.
  EXPECT_TRUE(FindGpuGaps(*OneNode("Shape", DataType::kFloat, 17), nullptr).empty());
}

TEST(GpuCaps, DropoutIsAnAliasOnlyInInference) {
  EXPECT_TRUE(FindGpuGaps(*OneNode("Dropout", DataType::kFloat, 13), nullptr).empty());
  op_cases::In ratio{"ratio", {}, DataType::kFloat, true, {}, false, false, {0.5f}};
  op_cases::In off{"training_mode", {}, DataType::kBool, true};
  auto inference = OneNode("Dropout", DataType::kFloat, 13, {ratio, off});
  inference->graph->initializers.back()->data->mutable_data<bool>()[0] = false;
  EXPECT_TRUE(FindGpuGaps(*inference, nullptr).empty());
  auto training = OneNode("Dropout", DataType::kFloat, 13, {ratio, off});
  training->graph->initializers.back()->data->mutable_data<bool>()[0] = true;
  std::string why = OnlyGap(*training);
  EXPECT_NE(why.find("no CUDA kernel"), std::string::npos) << why;
  // torchvision's Swin: Dropout(ratio 0, training_mode true) keeps every element, unscaled.
  op_cases::In zero{"ratio", {}, DataType::kFloat, true, {}, false, false, {0.f}};
  auto keep_all = OneNode("Dropout", DataType::kFloat, 13, {zero, off});
  keep_all->graph->initializers.back()->data->mutable_data<bool>()[0] = true;
  EXPECT_TRUE(FindGpuGaps(*keep_all, nullptr).empty());
}

// Every zoo model builds for the GPU as far as the op table can tell (no GPU
// needed): a capability declared too narrowly fails here, not on the device.
TEST(GpuCaps, ZooModelsHaveNoGaps) {
  for (const char* name : {"resnet50", "mobilenet_v2", "efficientnet_b0", "vit_b_16", "bert_encoder",
                           "super_resolution"}) {
    std::string path = fixtures::ZooModel(name);
    if (path.empty()) continue;
    for (bool fp16 : {false, true}) {
      SCOPED_TRACE(std::string(name) + (fp16 ? " fp16" : " fp32"));
      auto m = LoadModel(path);
      ASSERT_TRUE(m.ok()) << m.status().ToString();
      ASSERT_TRUE(InferShapes(**m).ok());
      BuildOptions opts;
      opts.fp16 = fp16;
      std::vector<std::string> notes;
      Status passes = RunBuildPasses(**m, opts, &notes);
      ASSERT_TRUE(passes.ok()) << passes.ToString();
      for (const GpuGap& gap : FindGpuGaps(**m, nullptr)) ADD_FAILURE() << gap.reason;
    }
  }
}

// `kiln check --backend cuda` lists, on this machine without a GPU, every node
// the GPU build would reject and why, and exits 1; a model it can run passes.
TEST(KilnCheckCli, BackendCudaListsTheNodesTheGpuCannotRun) {
  std::string dir = ::testing::TempDir() + "/kiln_check_cuda";
  std::filesystem::create_directories(dir);
  op_cases::Case two{"Unique", {{"x", {2, 3}}}};
  two.opset = 13;
  std::mt19937 rng(1);
  auto bad = op_cases::BuildCaseModel(two, rng).model;
  ASSERT_TRUE(SaveModel(*bad, dir + "/unique.onnx").ok());
  fixtures::CliResult r = fixtures::RunKiln("check '" + dir + "/unique.onnx' --backend cuda", dir);
  EXPECT_EQ(r.rc, 1) << r.out;
  EXPECT_NE(r.out.find("node 'node0' (Unique): no CUDA kernel"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("1 of 1 nodes"), std::string::npos) << r.out;

  auto good = op_cases::BuildCaseModel({"Relu", {{"x", {2, 3}}}}, rng).model;
  ASSERT_TRUE(SaveModel(*good, dir + "/relu.onnx").ok());
  r = fixtures::RunKiln("check '" + dir + "/relu.onnx' --backend cuda", dir);
  EXPECT_EQ(r.rc, 0) << r.out;
  EXPECT_NE(r.out.find("0 of 1 nodes"), std::string::npos) << r.out;
}

// `kiln check --backend cuda --save-built F` writes the graph the GPU builder
// makes. The oracle: F run on kiln's CPU reference (every kiln op has one)
// against onnxruntime on the original model, through `kiln compare`.
TEST(KilnCheckCli, SaveBuiltWritesTheBuildersGraphAndItComputesTheModel) {
  std::string dir = ::testing::TempDir() + "/kiln_check_save_built";
  std::filesystem::create_directories(dir);
  const std::string model = fixtures::ZooModel("super_resolution"), built = dir + "/built.onnx";
  fixtures::CliResult r = fixtures::RunKiln("check '" + model + "' --backend cuda --save-built '" + built + "'", dir);
  ASSERT_EQ(r.rc, 0) << r.out;
  EXPECT_NE(r.out.find("built graph written to"), std::string::npos) << r.out;
  auto loaded = LoadModel(built);
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  int kiln_ops = 0;
  for (const Node* n : (*loaded)->graph->nodes()) kiln_ops += n->domain == "kiln";
  EXPECT_GT(kiln_ops, 0) << "the builder's fused ops are in the saved graph";
  r = fixtures::RunKiln("compare '" + built + "' --backend cpu --reference-model '" + model + "' --random --python '" +
                            fixtures::Python() + "'",
                        dir);
  EXPECT_EQ(r.rc, 0) << r.out;
  const double rel_l2 = fixtures::CompareRelL2(r.out, "output");
  EXPECT_GE(rel_l2, 0) << r.out;
  EXPECT_LT(rel_l2, 1e-5) << r.out;
  r = fixtures::RunKiln("check '" + model + "' --save-built '" + built + "'", dir);
  EXPECT_NE(r.rc, 0);
  EXPECT_NE(r.out.find("add --backend cuda"), std::string::npos) << r.out;
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace kiln
