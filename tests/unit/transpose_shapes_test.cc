// transpose_shapes: Shape nodes reading a Transpose read its input's dims in
// the permutation's order, and a Transpose left without readers goes. The oracle is the graph before
// the pass on the CPU reference (dynamic dims, so the shapes are computed).
#include "passes/transpose_shapes.h"

#include <gtest/gtest.h>

#include "graph_builder.h"

namespace kiln {
namespace {

using testing_build::CountOps;
using testing_build::GraphBuilder;
using testing_build::RunPassAndCompare;

// y = Reshape(x2, Shape(Transpose(x, perm))): x2 takes the transposed x's dims. With `slice`, the Shape
// reads dims [-3, -1) of it, [4, s] (Shape-15's start/end), and x2 is [s, 4].
std::unique_ptr<Model> ShapeOfTranspose(bool also_read, bool slice = false) {
  GraphBuilder b;
  Value* x = b.Input("x", Shape({Dim::Symbol("b"), Dim::Symbol("s"), 4, 16}));
  Value* t = b.Op("Transpose", "kt", {x}, {{"perm", Attribute::FromInts({0, 2, 1, 3})}});
  AttributeMap range;
  if (slice) range = {{"start", Attribute::FromInt(-3)}, {"end", Attribute::FromInt(-1)}};
  Value* dims = b.Op("Shape", "kt_shape", {t}, range);
  Value* x2 = b.Input(
      "x2", slice ? Shape({Dim::Symbol("s"), 4}) : Shape({Dim::Symbol("b"), 4, Dim::Symbol("s"), 16}));
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
  for (const Node* n : kept->graph->nodes()) {
    if (n->op_type != "Transpose") continue;
    EXPECT_EQ(n->output(0)->uses().size(), 1u) << "the Shape reads x itself";
  }
}

// GPT-2's `query.size(-2)` on the transposed query: a Shape with start/end reads the permuted dims it names.
TEST(TransposeShapes, AShapeWithStartAndEndReadsThePermutedDims) {
  std::mt19937 rng(4);
  const std::map<std::string, RtValue> feed = {
      {"x", RtValue::FromTensor(testing_build::RandomTensor(DataType::kFloat, {2, 3, 4, 16}, rng))},
      {"x2", RtValue::FromTensor(testing_build::RandomTensor(DataType::kFloat, {3, 4}, rng))}};
  auto f = RunPassAndCompare(*ShapeOfTranspose(false, true), RunTransposeShapes, 0, 0.0, &feed);
  EXPECT_EQ(CountOps(*f, "Transpose"), 0);
}

}  // namespace
}  // namespace kiln
