// scatter_nd_grid: a ScatterND whose index grid lists every position of its data is its updates (the oracle:
// the original ScatterND on the CPU reference, bit for bit).
#include "passes/scatter_nd_grid.h"

#include <gtest/gtest.h>

#include "graph_builder.h"

namespace kiln {
namespace {

using testing_build::CountOps;
using testing_build::GraphBuilder;
using testing_build::RunPassAndCompare;

AttributeMap Axis(int64_t a) { return {{"axis", Attribute::FromInt(a)}}; }

Value* Int64Scalar(GraphBuilder& b, const std::string& name, int64_t v) {
  Tensor t(DataType::kInt64, {});
  t.mutable_data<int64_t>()[0] = v;
  return b.Fixed(name, std::move(t));
}

// One index component: `source` broadcast to the grid's shape, with a trailing axis of 1.
Value* Component(GraphBuilder& b, const std::string& name, Value* source, Value* grid_shape) {
  Value* e = b.Op("Expand", name + "_expand", {source, grid_shape});
  return b.Op("Unsqueeze", name, {e, b.Int64s(name + "_axes", {-1})});
}

// HF Llama's `mask[:, :, :, :seq] = masked` as torch.onnx writes it, on data [B, 1, 4, 6]: the batch
// coordinate from Range(0, B, 1), the others constants. `columns` the slice's width (6: every column), `rows`
// the row coordinates (0..3: each row in place).
std::unique_ptr<Model> MaskAssignment(int64_t columns, std::vector<int64_t> rows_at = {0, 1, 2, 3}) {
  GraphBuilder b;
  Value* x = b.Input("x", Shape({Dim::Symbol("batch"), 1, 4, 6}));
  Value* data = b.Op("Relu", "data", {x});
  Value* slice =
      b.Op("Slice", "slice",
           {data, b.Int64s("starts", {0}), b.Int64s("ends", {columns}), b.Int64s("slice_axes", {3})});
  Value* updates = b.Op("Neg", "updates", {slice});
  Value* grid_shape = b.Op("Shape", "grid_shape", {updates});
  Value* batch = b.Op("Gather", "batch", {b.Op("Shape", "x_shape", {x}), b.Int64s("zero", {0})}, Axis(0));
  Value* n = b.Op("Squeeze", "n", {batch, b.Int64s("sq_axes", {0})});
  Value* range = b.Op("Range", "range", {Int64Scalar(b, "start", 0), n, Int64Scalar(b, "delta", 1)});
  Value* c0 =
      Component(b, "c0", b.Op("Reshape", "r0", {range, b.Int64s("r0_shape", {-1, 1, 1, 1})}), grid_shape);
  Value* c1 = Component(b, "c1", b.Int64s("zeros", {0}), grid_shape);
  Value* rows = b.Op("Reshape", "rows", {b.Int64s("rows_1d", rows_at), b.Int64s("rows_shape", {4, 1})});
  std::vector<int64_t> cols;
  for (int64_t i = 0; i < columns; ++i) cols.push_back(i);
  Value* c2 = Component(b, "c2", rows, grid_shape);
  Value* c3 = Component(b, "c3", b.Int64s("cols", cols), grid_shape);
  Value* indices = b.Op("Concat", "indices", {c0, c1, c2, c3}, Axis(-1));
  b.Output(b.Op("ScatterND", "assign", {data, indices, updates}));
  return b.Done();
}

TEST(ScatterNdGrid, AssignmentOfTheWholeTensorIsItsUpdates) {
  auto after = RunPassAndCompare(*MaskAssignment(6), RunScatterNdGrid, 3, 0.0);
  EXPECT_EQ(CountOps(*after, "ScatterND"), 0);
}

// Part of the columns, and the rows written in reverse: each stays a ScatterND.
TEST(ScatterNdGrid, PartialOrMovedWritesStay) {
  auto partial = RunPassAndCompare(*MaskAssignment(4), RunScatterNdGrid, 3, 0.0);
  EXPECT_EQ(CountOps(*partial, "ScatterND"), 1);
  auto reversed = RunPassAndCompare(*MaskAssignment(6, {3, 2, 1, 0}), RunScatterNdGrid, 3, 0.0);
  EXPECT_EQ(CountOps(*reversed, "ScatterND"), 1);
}

}  // namespace
}  // namespace kiln
