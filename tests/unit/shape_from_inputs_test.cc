// shape_from_inputs: a Shape of an intermediate tensor whose dims are constants or graph inputs' symbols
// reads the inputs' shapes; the tensor loses that use. The oracle is the graph before the pass on the CPU
// reference, at dims other than the export's (the shapes are computed at run time).
#include "passes/shape_from_inputs.h"

#include <gtest/gtest.h>

#include "graph_builder.h"

namespace kiln {
namespace {

using testing_build::CountOps;
using testing_build::GraphBuilder;
using testing_build::RunPassAndCompare;

// h = Relu(x) [b, s, 8]; y = Reshape(z, Shape(h)[start:end]), z of the read dims' size.
std::unique_ptr<Model> ShapeOfIntermediate(AttributeMap range, Shape z_shape) {
  GraphBuilder b;
  Value* x = b.Input("x", Shape({Dim::Symbol("b"), Dim::Symbol("s"), 8}));
  Value* h = b.Op("Relu", "h", {x});
  Value* dims = b.Op("Shape", "h_shape", {h}, std::move(range));
  Value* z = b.Input("z", std::move(z_shape));
  b.Output(b.Op("Reshape", "y", {z, dims}));
  b.Output(b.Op("Sigmoid", "h_out", {h}));  // h has another reader: the Shape's use is what goes
  return b.Done();
}

std::map<std::string, RtValue> Feed(std::vector<int64_t> z_dims) {
  std::mt19937 rng(5);
  return {{"x", RtValue::FromTensor(testing_build::RandomTensor(DataType::kFloat, {3, 5, 8}, rng))},
          {"z", RtValue::FromTensor(testing_build::RandomTensor(DataType::kFloat, z_dims, rng))}};
}

// The Shape nodes of `m` read graph inputs only.
void ExpectShapesReadInputs(const Model& m) {
  for (const Node* n : m.graph->nodes()) {
    if (n->op_type != "Shape") continue;
    EXPECT_EQ(n->input(0)->producer(), nullptr) << n->name << " reads an intermediate";
  }
}

TEST(ShapeFromInputs, SymbolsAndConstantsReadTheInputShape) {
  const auto feed = Feed({5, 3, 8});
  auto all = RunPassAndCompare(*ShapeOfIntermediate({}, Shape({Dim::Symbol("s"), Dim::Symbol("b"), 8})),
                               RunShapeFromInputs, 0, 0.0, &feed);
  ExpectShapesReadInputs(*all);
  EXPECT_EQ(CountOps(*all, "Concat"), 1) << "the constant 8 joins the input's dims";
}

TEST(ShapeFromInputs, StartAndEndPickTheDims) {
  const auto feed = Feed({5});
  AttributeMap last_two = {{"start", Attribute::FromInt(-2)}, {"end", Attribute::FromInt(-1)}};
  auto f = RunPassAndCompare(*ShapeOfIntermediate(last_two, Shape({Dim::Symbol("s")})), RunShapeFromInputs, 0,
                             0.0, &feed);
  ExpectShapesReadInputs(*f);
  EXPECT_EQ(CountOps(*f, "Concat"), 0) << "one input's dim, no constants";
}

// p = MatMul(x [b, s, 8], w [8, k]): its dims come from two inputs.
TEST(ShapeFromInputs, DimsOfTwoInputs) {
  GraphBuilder b;
  Value* x = b.Input("x", Shape({Dim::Symbol("b"), Dim::Symbol("s"), 8}));
  Value* w = b.Input("w", Shape({8, Dim::Symbol("k")}));
  Value* p = b.Op("MatMul", "p", {x, w});
  Value* z = b.Input("z", Shape({Dim::Symbol("k"), Dim::Symbol("s"), Dim::Symbol("b")}));
  b.Output(b.Op("Reshape", "y", {z, b.Op("Shape", "p_shape", {p})}));
  b.Output(p);
  std::mt19937 rng(6);
  const std::map<std::string, RtValue> feed = {
      {"x", RtValue::FromTensor(testing_build::RandomTensor(DataType::kFloat, {2, 3, 8}, rng))},
      {"w", RtValue::FromTensor(testing_build::RandomTensor(DataType::kFloat, {8, 4}, rng))},
      {"z", RtValue::FromTensor(testing_build::RandomTensor(DataType::kFloat, {4, 3, 2}, rng))}};
  auto f = RunPassAndCompare(*b.Done(), RunShapeFromInputs, 0, 0.0, &feed);
  ExpectShapesReadInputs(*f);
  EXPECT_EQ(CountOps(*f, "Shape"), 2);
}

// A dim that is an expression of symbols (batch·seq after a flatten) is no input's: the Shape stays.
TEST(ShapeFromInputs, AnExpressionDimLeavesTheShape) {
  GraphBuilder b;
  Value* x = b.Input("x", Shape({Dim::Symbol("b"), Dim::Symbol("s"), 8}));
  Value* flat = b.Op("Reshape", "flat", {x, b.Int64s("to2d", {-1, 8})});
  Value* dims = b.Op("Shape", "flat_shape", {flat});
  b.Output(b.Op("Reshape", "y", {b.Op("Relu", "r", {flat}), dims}));
  std::unique_ptr<Model> m = b.Done();
  PassContext ctx;
  ASSERT_TRUE(RunShapeFromInputs(*m, ctx).ok());
  EXPECT_FALSE(ctx.changed);
}

}  // namespace
}  // namespace kiln
