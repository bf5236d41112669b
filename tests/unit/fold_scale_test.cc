// fold_scale: a per-channel constant scale after a product folds into its weights (layer scales). Oracle: the
// graph before the pass on the CPU reference (within rounding: W·g is rounded once, (x·W)·g twice).
#include "passes/fold_scale.h"

#include <gtest/gtest.h>

#include <string>

#include "graph_builder.h"

namespace kiln {
namespace {

using testing_build::CountOps;
using testing_build::GraphBuilder;
using testing_build::RunPassAndCompare;

// timm's ConvNeXt tail: x + gamma · (MLP output + bias), channels last.
TEST(FoldScale, LayerScaleAfterABiasedProduct) {
  for (bool gamma_first : {false, true}) {
    GraphBuilder b;
    Value* x = b.Input("x", Shape({Dim::Symbol("n"), 3, 3, 8}));
    Value* y = b.Op("Add", "fc2", {b.Op("MatMul", "mm", {x, b.Const("w", {8, 8})}), b.Const("bias", {8})});
    Value* g = b.Const("gamma", {8});
    Value* scaled = b.Op("Mul", "ls", gamma_first ? std::vector<Value*>{g, y} : std::vector<Value*>{y, g});
    b.Output(b.Op("Add", "res", {x, scaled}));
    auto m = RunPassAndCompare(*b.Done(), RunFoldScale, 2, 1e-6);
    EXPECT_EQ(CountOps(*m, "Mul"), 0);
  }
}

// torchvision's ConvNeXt: the scale [C, 1, 1] after the permutation back to NCHW; and a convolution's output
// channels, with its own bias and with a bias Add after it.
TEST(FoldScale, ThroughATransposeAndIntoConvolutions) {
  {
    GraphBuilder b;
    Value* x = b.Input("x", Shape({2, 3, 3, 8}));
    Value* y = b.Op("Add", "fc2", {b.Op("MatMul", "mm", {x, b.Const("w", {8, 8})}), b.Const("bias", {8})});
    Value* t = b.Op("Transpose", "back", {y}, {{"perm", Attribute::FromInts({0, 3, 1, 2})}});
    b.Output(b.Op("Mul", "ls", {b.Const("gamma", {8, 1, 1}), t}));
    auto m = RunPassAndCompare(*b.Done(), RunFoldScale, 2, 1e-6);
    EXPECT_EQ(CountOps(*m, "Mul"), 0);
  }
  for (bool separate_bias : {false, true}) {
    GraphBuilder b;
    Value* x = b.Input("x", Shape({2, 4, 5, 5}));
    Value* c = separate_bias
                   ? b.Op("Add", "bias",
                          {b.Op("Conv", "conv", {x, b.Const("w", {6, 4, 3, 3})}), b.Const("b", {6, 1, 1})})
                   : b.Op("Conv", "conv", {x, b.Const("w", {6, 4, 3, 3}), b.Const("b", {6})});
    b.Output(b.Op("Mul", "ls", {c, b.Const("gamma", {1, 6, 1, 1})}));
    auto m = RunPassAndCompare(*b.Done(), RunFoldScale, 2, 1e-6);
    EXPECT_EQ(CountOps(*m, "Mul"), 0);
  }
}

// Scalars (an attention's query scale), scales along another axis than the product's channels, a bias that
// does not hold one value per channel, products read elsewhere, and non-constant weights keep their Mul.
TEST(FoldScale, OtherScalesStay) {
  GraphBuilder b;
  Value* x = b.Input("x", Shape({2, 4, 8}));
  Value* w = b.Const("w", {8, 8});
  b.Output(b.Op("Mul", "scalar", {b.Op("MatMul", "m0", {x, w}), b.Const("s", {1})}));
  b.Output(b.Op("Mul", "rows", {b.Op("MatMul", "m1", {x, w}), b.Const("r", {4, 1})}));
  Value* scalar_bias = b.Op("Add", "sb", {b.Op("MatMul", "m2", {x, w}), b.Const("one_bias", {1})});
  b.Output(b.Op("Mul", "after_scalar_bias", {scalar_bias, b.Const("g2", {8})}));
  Value* shared = b.Op("MatMul", "m3", {x, w});
  b.Output(shared);
  b.Output(b.Op("Mul", "read_elsewhere", {shared, b.Const("g3", {8})}));
  b.Output(b.Op("Mul", "activations",
                {b.Op("MatMul", "m4", {x, b.Input("y", Shape({8, 8}))}), b.Const("g4", {8})}));
  auto m = RunPassAndCompare(*b.Done(), RunFoldScale, 2, 1e-6);
  EXPECT_EQ(CountOps(*m, "Mul"), 5);
}

}  // namespace
}  // namespace kiln
