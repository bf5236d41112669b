// Tests for the expand_as removal (src/passes/drop_expand_as.h): the op reads
// x instead of Cast*(Expand(x, Shape(y))) when y is another of its inputs, and
// computes the same on the CPU reference (bit for bit); other Expands stay.
#include "passes/drop_expand_as.h"

#include <gtest/gtest.h>

#include "graph_builder.h"

namespace kiln {
namespace {

using testing_build::CountOps;
using Builder = testing_build::GraphBuilder;

// DistilBERT's mask: (mask == 0).view(b, 1, 1, k).expand_as(scores), cast to
// bool, in scores.masked_fill(mask, min) (a Where).
TEST(DropExpandAs, MaskExpandedToTheScoresItIsWhereWith) {
  Builder b;
  Value* scores = b.Input("scores", Shape({Dim::Symbol("batch"), 2, 5, 5}));
  Value* pad =
      b.Op("Less", "pad", {b.Input("keep", Shape({Dim::Symbol("batch"), 1, 1, 5})), b.Scalar("half", 0.0)});
  Value* wide = b.Op("Expand", "expand_as", {pad, b.Op("Shape", "scores_shape", {scores})});
  Value* cond =
      b.Op("Cast", "to_bool", {wide}, {{"to", Attribute::FromInt(static_cast<int64_t>(DataType::kBool))}});
  b.Output(b.Op("Where", "masked", {cond, b.Scalar("min", -1e30), scores}));
  auto m = b.Done();
  auto f = testing_build::RunPassAndCompare(*m, RunDropExpandAs, 3);
  EXPECT_EQ(CountOps(*f, "Expand"), 0);
  const Value* cast = f->graph->FindValue(cond->name());
  ASSERT_NE(cast, nullptr);
  EXPECT_EQ(cast->shape().ToString(), "[batch,1,1,5]");  // the Cast now reads the small mask
  EXPECT_EQ(f->graph->outputs[0]->shape().ToString(), "[batch,2,5,5]");
}

TEST(DropExpandAs, DirectOperandOfAnAdd) {
  Builder b;
  Value* x = b.Input("x", Shape({Dim::Symbol("n"), 4}));
  Value* row = b.Input("row", Shape({1, 4}));
  b.Output(b.Op("Add", "sum", {b.Op("Expand", "row_as_x", {row, b.Op("Shape", "x_shape", {x})}), x}));
  auto m = b.Done();
  auto f = testing_build::RunPassAndCompare(*m, RunDropExpandAs, 3);
  EXPECT_EQ(CountOps(*f, "Expand"), 0);
}

// Kept: an Expand to the shape of a value the op does not read (the expand
// may grow the output), one whose result has another reader, and one read by
// an op that does not broadcast.
TEST(DropExpandAs, OtherExpandsStay) {
  {
    Builder b;
    Value* x = b.Input("x", Shape({Dim::Symbol("n"), 4}));
    Value* other = b.Input("other", Shape({Dim::Symbol("n"), 4}));
    Value* row = b.Input("row", Shape({1, 4}));
    Value* e = b.Op("Expand", "row_as_other", {row, b.Op("Shape", "other_shape", {other})});
    b.Output(b.Op("Add", "sum", {e, b.Op("Relu", "r", {x})}));
    auto f = testing_build::RunPassAndCompare(*b.Done(), RunDropExpandAs, 3);
    EXPECT_EQ(CountOps(*f, "Expand"), 1);
  }
  {
    Builder b;
    Value* x = b.Input("x", Shape({Dim::Symbol("n"), 4}));
    Value* e = b.Op("Expand", "row_as_x", {b.Input("row", Shape({1, 4})), b.Op("Shape", "x_shape", {x})});
    b.Output(b.Op("Add", "sum", {e, x}));
    b.Output(e);
    auto f = testing_build::RunPassAndCompare(*b.Done(), RunDropExpandAs, 3);
    EXPECT_EQ(CountOps(*f, "Expand"), 1);
  }
  {
    Builder b;
    Value* x = b.Input("x", Shape({Dim::Symbol("n"), 4}));
    Value* e = b.Op("Expand", "row_as_x", {b.Input("row", Shape({1, 4})), b.Op("Shape", "x_shape", {x})});
    b.Output(b.Op("Concat", "cat", {e, x}, {{"axis", Attribute::FromInt(0)}}));
    auto f = testing_build::RunPassAndCompare(*b.Done(), RunDropExpandAs, 3);
    EXPECT_EQ(CountOps(*f, "Expand"), 1);
  }
}

}  // namespace
}  // namespace kiln
