// inner_axis_last: layout chains keep the source's last axis last in between (the oracle: the original chain
// on the CPU reference, bit for bit).
#include "passes/inner_axis_last.h"

#include <gtest/gtest.h>

#include "graph_builder.h"
#include "passes/pass_util.h"

namespace kiln {
namespace {

using testing_build::GraphBuilder;
using testing_build::Perm;
using testing_build::RunPassAndCompare;

Value* Reshaped(GraphBuilder& b, const std::string& name, Value* x, const std::vector<int64_t>& shape) {
  return b.Op("Reshape", name, {x, b.Int64s(name + "_shape", shape)});
}

// Every Transpose of the graph keeps its last axis last.
bool RowsStayRows(const Model& m) {
  for (Node* n : m.graph->nodes()) {
    if (n->op_type != "Transpose") continue;
    std::vector<int64_t> perm = *passes::AttrInts(*n, "perm");
    if (perm.back() != static_cast<int64_t>(perm.size()) - 1) return false;
  }
  return true;
}

// MaxViT's window departition into NCHW, then its grid partition back to channels-last: H = 2·3 (windows,
// pixels) regrouped as 3·2 (grid cells, pixels), C = 8 channels.
Value* DepartitionThenGrid(GraphBuilder& b, Value* x) {
  Value* nchw = b.Op("Transpose", "departition", {x}, Perm({0, 5, 1, 3, 2, 4}));  // [B, C, 2, 3, 2, 3]
  Value* g = Reshaped(b, "grid", nchw, {-1, 8, 3, 2, 3, 2});
  return b.Op("Transpose", "partition", {g}, Perm({0, 2, 4, 3, 5, 1}));  // [B, 2, 2, 3, 3, C]
}

TEST(InnerAxisLast, WindowToGridMovesRows) {
  GraphBuilder b;
  Value* x = b.Input("x", Shape({Dim::Symbol("batch"), 2, 2, 3, 3, 8}));
  b.Output(DepartitionThenGrid(b, x));
  std::unique_ptr<Model> before = b.Done();
  EXPECT_FALSE(RowsStayRows(*before));
  auto after = RunPassAndCompare(*before, RunInnerAxisLast, 2, 0.0);
  EXPECT_TRUE(RowsStayRows(*after));
}

// Reshapes that add a size-1 axis and regroup the other axes keep the 16 channels whole.
TEST(InnerAxisLast, ReshapesOfOtherAxesKeepTheRowWhole) {
  GraphBuilder b;
  Value* x = b.Input("x", Shape({2, 2, 2, 3, 3, 16}));
  Value* t = b.Op("Transpose", "to_front", {x}, Perm({0, 5, 1, 3, 2, 4}));  // [2, 16, 2, 3, 2, 3]
  Value* u = Reshaped(b, "unit", t, {2, 16, 1, 6, 6});
  Value* r = Reshaped(b, "regroup", u, {2, 16, 4, 9});
  b.Output(b.Op("Transpose", "back", {r}, Perm({0, 3, 2, 1})));  // [2, 9, 4, 16]
  auto after = RunPassAndCompare(*b.Done(), RunInnerAxisLast, 2, 0.0);
  EXPECT_TRUE(RowsStayRows(*after));
}

// A reshape that splits the last axis, a chain that ends with another axis, and rows shorter than 8 stay.
TEST(InnerAxisLast, RowsThatDoNotSurviveStay) {
  GraphBuilder b;
  Value* x = b.Input("x", Shape({2, 2, 2, 3, 3, 8}));
  Value* t = b.Op("Transpose", "t", {x}, Perm({0, 5, 1, 3, 2, 4}));  // [2, 8, 2, 3, 2, 3]
  Value* split = Reshaped(b, "split", t, {2, 4, 2, 6, 6});
  b.Output(b.Op("Transpose", "t2", {split}, Perm({0, 3, 4, 1, 2})));  // ends with 2 of the 8 channels
  Value* y = b.Input("y", Shape({2, 3, 8}));
  b.Output(b.Op("Transpose", "other", {b.Op("Transpose", "yt", {y}, Perm({0, 2, 1}))}, Perm({1, 0, 2})));
  Value* z = b.Input("z", Shape({2, 3, 4}));
  b.Output(b.Op("Transpose", "z2", {b.Op("Transpose", "z1", {z}, Perm({0, 2, 1}))}, Perm({0, 2, 1})));
  std::unique_ptr<Model> before = b.Done();
  PassContext ctx;
  std::unique_ptr<Model> after = CloneModel(*before);
  ASSERT_TRUE(RunInnerAxisLast(*after, ctx).ok());
  EXPECT_FALSE(ctx.changed);
}

}  // namespace
}  // namespace kiln
