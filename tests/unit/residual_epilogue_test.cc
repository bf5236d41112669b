// residual_epilogue: a residual Add behind same-dims Reshapes after a product goes into its epilogue.
// Oracles: the graph before the pass on the CPU reference (bit for bit: kiln.FusedMatMul adds Z as the Add
// did), and a ConvNeXt block's GPU build.
#include "passes/residual_epilogue.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "build/build_passes.h"
#include "graph_builder.h"

namespace kiln {
namespace {

using testing_build::CountOps;
using testing_build::GraphBuilder;
using testing_build::RunPassAndCompare;

TEST(ResidualEpilogue, ThroughSameDimsReshapes) {
  for (bool fused : {false, true}) {
    SCOPED_TRACE(fused ? "FusedMatMul with a bias" : "MatMul");
    GraphBuilder b;
    Value* x = b.Input("x", Shape({Dim::Symbol("n"), 3, 3, 8}));
    Value* y = fused ? b.Op("FusedMatMul", "fc2", {x, b.Const("w", {8, 8}), b.Const("bias", {8})}, {}, "kiln")
                     : b.Op("MatMul", "fc2", {x, b.Const("w", {8, 8})});
    Value* r = b.Op("Reshape", "same", {y, b.Int64s("shape", {0, 3, 3, 8})});
    b.Output(b.Op("Add", "res", {x, r}));
    auto m = RunPassAndCompare(*b.Done(), RunResidualEpilogue, 2);
    EXPECT_EQ(CountOps(*m, "Add"), 0);
    EXPECT_EQ(CountOps(*m, "Reshape"), 0);
    EXPECT_EQ(CountOps(*m, "FusedMatMul"), 1);
  }
}

// An activation comes after the residual in the epilogue, so a product with one keeps its Add; so does one
// whose Reshape changes the dims, or whose output is read elsewhere.
TEST(ResidualEpilogue, OtherAddsStay) {
  GraphBuilder b;
  Value* x = b.Input("x", Shape({2, 3, 8}));
  Value* w = b.Const("w", {8, 8});
  AttributeMap relu = {{"activation", Attribute::FromString("Relu")}};
  Value* act = b.Op("FusedMatMul", "act", {x, w}, relu, "kiln");
  b.Output(b.Op("Add", "a0", {x, b.Op("Reshape", "r0", {act, b.Int64s("s0", {0, 3, 8})})}));
  Value* flat = b.Op("Reshape", "r1", {b.Op("MatMul", "m1", {x, w}), b.Int64s("s1", {0, 24})});
  b.Output(b.Op("Add", "a1", {flat, b.Input("z", Shape({2, 24}))}));
  Value* shared = b.Op("MatMul", "m2", {x, w});
  b.Output(shared);
  b.Output(b.Op("Add", "a2", {x, b.Op("Reshape", "r2", {shared, b.Int64s("s2", {0, 3, 8})})}));
  auto m = RunPassAndCompare(*b.Done(), RunResidualEpilogue, 2);
  EXPECT_EQ(CountOps(*m, "Add"), 3);
}

// A ConvNeXt block as torchvision writes it (depthwise conv, permute, LayerNorm, MLP with GELU, layer scale,
// permute back, residual), FP16 GPU build: the scale folds into fc2 and the residual joins fc2's epilogue, so
// the block is a convolution, a LayerNorm and two products.
TEST(ResidualEpilogue, ConvNextBlockIsFourKernels) {
  GraphBuilder b;
  Value* x = b.Input("x", Shape({Dim::Symbol("n"), 16, 6, 6}));
  AttributeMap dw = {{"group", Attribute::FromInt(16)}, {"pads", Attribute::FromInts({3, 3, 3, 3})}};
  Value* c = b.Op("Conv", "dw", {x, b.Const("wd", {16, 1, 7, 7}), b.Const("bd", {16})}, dw);
  Value* t = b.Op("Transpose", "to_last", {c}, {{"perm", Attribute::FromInts({0, 2, 3, 1})}});
  Value* ln = b.Op("LayerNormalization", "ln", {t, b.Const("lw", {16}), b.Const("lb", {16})},
                   {{"axis", Attribute::FromInt(-1)}});
  Value* h = b.Op("Add", "fc1", {b.Op("MatMul", "m1", {ln, b.Const("w1", {16, 64})}), b.Const("b1", {64})});
  h = b.Op("Relu", "act", {h});
  Value* y = b.Op("Add", "fc2", {b.Op("MatMul", "m2", {h, b.Const("w2", {64, 16})}), b.Const("b2", {16})});
  Value* back = b.Op("Transpose", "to_nchw", {y}, {{"perm", Attribute::FromInts({0, 3, 1, 2})}});
  Value* scaled = b.Op("Mul", "ls", {b.Const("gamma", {16, 1, 1}), back});
  b.Output(b.Op("Add", "res", {scaled, x}));
  std::unique_ptr<Model> m = b.Done();
  BuildOptions opts;
  opts.fp16 = true;
  std::vector<std::string> notes;
  ASSERT_TRUE(RunBuildPasses(*m, opts, &notes).ok());
  EXPECT_EQ(CountOps(*m, "Add") + CountOps(*m, "Mul") + CountOps(*m, "Pointwise"), 0) << PrintGraph(*m);
  EXPECT_EQ(CountOps(*m, "FusedMatMul"), 2) << PrintGraph(*m);
}

}  // namespace
}  // namespace kiln
