// transpose_shapes: a Transpose read only by Shape nodes goes; the Shapes read
// its input's dims in the permutation's order. The oracle is the graph before
// the pass on the CPU reference (dynamic dims, so the shapes are computed).
#include "passes/transpose_shapes.h"

#include <gtest/gtest.h>

#include "graph_builder.h"

namespace kiln {
namespace {

using testing_build::CountOps;
using testing_build::GraphBuilder;
using testing_build::RunPassAndCompare;

// y = Reshape(x2, Shape(Transpose(x, perm))): x2 takes the transposed x's dims.
std::unique_ptr<Model> ShapeOfTranspose(bool also_read) {
  GraphBuilder b;
  Value* x = b.Input("x", Shape({Dim::Symbol("b"), Dim::Symbol("s"), 4, 16}));
  Value* t = b.Op("Transpose", "kt", {x}, {{"perm", Attribute::FromInts({0, 2, 1, 3})}});
  Value* dims = b.Op("Shape", "kt_shape", {t});
  Value* x2 = b.Input("x2", Shape({Dim::Symbol("b"), 4, Dim::Symbol("s"), 16}));
  b.Output(b.Op("Reshape", "y", {x2, dims}));
  if (also_read) b.Output(b.Op("Relu", "r", {t}));
  return b.Done();
}

TEST(TransposeShapes, ATransposeReadOnlyForItsShapeGoes) {
  std::mt19937 rng(3);
  const std::map<std::string, RtValue> feed = {
      {"x", RtValue::FromTensor(testing_build::RandomTensor(DataType::kFloat, {2, 3, 4, 16}, rng))},
      {"x2", RtValue::FromTensor(testing_build::RandomTensor(DataType::kFloat, {2, 4, 3, 16}, rng))}};
  auto f = RunPassAndCompare(*ShapeOfTranspose(false), RunTransposeShapes, 0, 0.0, &feed);
  EXPECT_EQ(CountOps(*f, "Transpose"), 0);
  auto kept = RunPassAndCompare(*ShapeOfTranspose(true), RunTransposeShapes, 0, 0.0, &feed);
  EXPECT_EQ(CountOps(*kept, "Transpose"), 1) << "another reader needs the data";
}

}  // namespace
}  // namespace kiln
