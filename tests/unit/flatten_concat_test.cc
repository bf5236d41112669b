// Tests for nested-Concat flattening (src/passes/flatten_concat.h): one Concat reads the inner Concats'
// inputs and the CPU reference computes the same (bit for bit); Concats on other axes, with other readers or
// that are graph outputs stay.
#include "passes/flatten_concat.h"

#include <gtest/gtest.h>

#include "graph_builder.h"
#include "passes/dce.h"

namespace kiln {
namespace {

using testing_build::CountOps;
using Builder = testing_build::GraphBuilder;

Status FlattenThenDce(Model& m, PassContext& ctx) {
  KILN_RETURN_IF_ERROR(RunFlattenConcat(m, ctx));
  return RunDeadCodeElimination(m, ctx);
}

AttributeMap Axis(int64_t a) { return {{"axis", Attribute::FromInt(a)}}; }

// Inception-v3's InceptionE block: two branches concat their two 3x3 convolutions (1x3 and 3x1), then the
// block concats its four branches; an inner Concat written with a negative axis, and a chain of three.
TEST(FlattenConcat, InceptionEBlockAndChains) {
  Builder b;
  auto x = [&](const char* name, int64_t c) { return b.Input(name, Shape({Dim::Symbol("n"), c, 4, 4})); };
  Value* b3 = b.Op("Concat", "branch3x3", {x("a", 3), x("b", 3)}, Axis(1));
  Value* dbl = b.Op("Concat", "branch3x3dbl", {x("c", 2), x("d", 2)}, Axis(-3));
  Value* deep =
      b.Op("Concat", "deep", {b.Op("Concat", "deeper", {x("e", 1), x("f", 1)}, Axis(1)), x("g", 1)}, Axis(1));
  b.Output(b.Op("Concat", "block", {x("branch1x1", 5), b3, dbl, deep, x("pool", 2)}, Axis(1)));
  auto f = testing_build::RunPassAndCompare(*b.Done(), FlattenThenDce, 2);
  EXPECT_EQ(CountOps(*f, "Concat"), 1);
  const Node* block = f->graph->outputs[0]->producer();
  ASSERT_NE(block, nullptr);
  EXPECT_EQ(block->num_inputs(), 9u);
  EXPECT_EQ(block->input(1)->name(), "a");
  EXPECT_EQ(block->input(5)->name(), "e");
  EXPECT_EQ(f->graph->outputs[0]->shape().ToString(), "[n,20,4,4]");
}

TEST(FlattenConcat, OtherConcatsStay) {
  {  // another axis
    Builder b;
    Value* inner =
        b.Op("Concat", "inner", {b.Input("a", Shape({2, 3})), b.Input("b", Shape({2, 3}))}, Axis(0));
    b.Output(b.Op("Concat", "outer", {inner, b.Input("c", Shape({4, 2}))}, Axis(1)));
    auto f = testing_build::RunPassAndCompare(*b.Done(), FlattenThenDce, 2);
    EXPECT_EQ(CountOps(*f, "Concat"), 2);
  }
  {  // the inner result has another reader
    Builder b;
    Value* inner =
        b.Op("Concat", "inner", {b.Input("a", Shape({2, 3})), b.Input("b", Shape({2, 3}))}, Axis(1));
    b.Output(b.Op("Concat", "outer", {inner, b.Input("c", Shape({2, 2}))}, Axis(1)));
    b.Output(b.Op("Relu", "other", {inner}));
    auto f = testing_build::RunPassAndCompare(*b.Done(), FlattenThenDce, 2);
    EXPECT_EQ(CountOps(*f, "Concat"), 2);
  }
  {  // the inner result is a graph output; read twice by the outer
    Builder b;
    Value* inner =
        b.Op("Concat", "inner", {b.Input("a", Shape({2, 3})), b.Input("b", Shape({2, 3}))}, Axis(1));
    b.Output(b.Op("Concat", "outer", {inner, b.Input("c", Shape({2, 2}))}, Axis(1)));
    b.Output(inner);
    Value* twice =
        b.Op("Concat", "twice", {b.Input("d", Shape({2, 1})), b.Input("e", Shape({2, 1}))}, Axis(1));
    b.Output(b.Op("Concat", "outer2", {twice, twice}, Axis(1)));
    auto f = testing_build::RunPassAndCompare(*b.Done(), FlattenThenDce, 2);
    EXPECT_EQ(CountOps(*f, "Concat"), 4);
  }
}

}  // namespace
}  // namespace kiln
