// reshape_epilogue: a residual Add behind same-dims Reshapes after a product, and an activation behind
// Reshapes after a convolution, go into their epilogues. Oracles: the graph before the pass on the CPU
// reference (bit for bit: the fused ops add Z and activate as the unfused ones did), and a ConvNeXt block's
// GPU build.
#include "passes/reshape_epilogue.h"

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

TEST(ReshapeEpilogue, ThroughSameDimsReshapes) {
  for (bool fused : {false, true}) {
    SCOPED_TRACE(fused ? "FusedMatMul with a bias" : "MatMul");
    GraphBuilder b;
    Value* x = b.Input("x", Shape({Dim::Symbol("n"), 3, 3, 8}));
    Value* y = fused ? b.Op("FusedMatMul", "fc2", {x, b.Const("w", {8, 8}), b.Const("bias", {8})}, {}, "kiln")
                     : b.Op("MatMul", "fc2", {x, b.Const("w", {8, 8})});
    Value* r = b.Op("Reshape", "same", {y, b.Int64s("shape", {0, 3, 3, 8})});
    b.Output(b.Op("Add", "res", {x, r}));
    auto m = RunPassAndCompare(*b.Done(), RunReshapeEpilogue, 2);
    EXPECT_EQ(CountOps(*m, "Add"), 0);
    EXPECT_EQ(CountOps(*m, "Reshape"), 0);
    EXPECT_EQ(CountOps(*m, "FusedMatMul"), 1);
  }
}

// An activation comes after the residual in the epilogue, so a product with one keeps its Add; so does one
// whose Reshape changes the dims, or whose output is read elsewhere.
TEST(ReshapeEpilogue, OtherAddsStay) {
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
  auto m = RunPassAndCompare(*b.Done(), RunReshapeEpilogue, 2);
  EXPECT_EQ(CountOps(*m, "Add"), 3);
}

// SegFormer's Mix-FFN: tokens viewed as an image, a depthwise convolution, viewed back as tokens, GELU; and a
// LeakyRelu after a Reshape of a dense one. A convolution with an activation already keeps the next one.
TEST(ReshapeEpilogue, ActivationsThroughReshapes) {
  GraphBuilder b;
  Value* t = b.Input("tokens", Shape({Dim::Symbol("n"), 16, 8}));
  Value* img = b.Op("Reshape", "to_image", {t, b.Int64s("image", {0, 4, 4, 8})});
  AttributeMap dw = {{"group", Attribute::FromInt(8)},
                     {"pads", Attribute::FromInts({1, 1, 1, 1})},
                     {"activation", Attribute::FromString("")}};
  Value* c =
      b.Op("FusedConvNhwc", "dwconv", {img, b.Const("w", {8, 3, 3, 1}), b.Const("b", {8})}, dw, "kiln");
  Value* back = b.Op("Reshape", "to_tokens", {c, b.Int64s("tokens_shape", {0, 16, 8})});
  b.Output(b.Op("Gelu", "gelu", {back}, {}, "kiln"));
  AttributeMap dense = {{"activation", Attribute::FromString("")}};
  Value* d = b.Op("FusedConvNhwc", "dense", {img, b.Const("wd", {4, 1, 1, 8})}, dense, "kiln");
  Value* flat = b.Op("Reshape", "flat", {d, b.Int64s("flat_shape", {0, 64})});
  b.Output(b.Op("LeakyRelu", "leaky", {flat}, {{"alpha", Attribute::FromFloat(0.2f)}}));
  AttributeMap relu = {{"activation", Attribute::FromString("Relu")}};
  Value* r = b.Op("FusedConvNhwc", "has_act", {img, b.Const("wr", {4, 1, 1, 8})}, relu, "kiln");
  b.Output(b.Op("Sigmoid", "sig", {b.Op("Reshape", "flat2", {r, b.Int64s("flat2_shape", {0, 64})})}));
  auto m = RunPassAndCompare(*b.Done(), RunReshapeEpilogue, 2);
  EXPECT_EQ(CountOps(*m, "Gelu") + CountOps(*m, "LeakyRelu"), 0) << PrintGraph(*m);
  EXPECT_EQ(CountOps(*m, "Sigmoid"), 1);
}

// A ConvNeXt block as torchvision writes it (depthwise conv, permute, LayerNorm, MLP with GELU, layer scale,
// permute back, residual), FP16 GPU build: the scale folds into fc2 and the residual joins fc2's epilogue, so
// the block is a convolution, a LayerNorm and two products.
TEST(ReshapeEpilogue, ConvNextBlockIsFourKernels) {
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
  ASSERT_TRUE(testing_build::RunGpuBuild(*m));
  EXPECT_EQ(CountOps(*m, "Add") + CountOps(*m, "Mul") + CountOps(*m, "Pointwise"), 0) << PrintGraph(*m);
  EXPECT_EQ(CountOps(*m, "FusedMatMul"), 2) << PrintGraph(*m);
}

}  // namespace
}  // namespace kiln
