#include <gtest/gtest.h>

#include "core/shape.h"
#include "ops/op_util.h"

namespace kiln {
namespace {

TEST(Dim, SymbolicArithmetic) {
  Dim b = Dim::Symbol("batch");
  EXPECT_EQ((b * Dim(1)).ToString(), "batch");
  EXPECT_EQ((b * Dim(3)).ToString(), "batch*3");
  EXPECT_EQ((Dim(2) * Dim(3)).value(), 6);
  EXPECT_TRUE((b * Dim::Unknown()).unknown());
  EXPECT_EQ((b - b).value(), 0);
}

TEST(Shape, ToStringAndEquality) {
  Shape s({Dim::Symbol("batch"), Dim(3), Dim::Unknown()});
  EXPECT_EQ(s.ToString(), "[batch,3,?]");
  EXPECT_EQ(Shape().ToString(), "?");
  EXPECT_EQ(Shape::Scalar().ToString(), "[]");
  EXPECT_FALSE(s.fully_known());
  EXPECT_EQ(Shape::Of({2, 3}).concrete()->at(1), 3);
}

TEST(Broadcast, SymbolicAndConcrete) {
  auto r = BroadcastShapes({Shape({Dim::Symbol("batch"), Dim(1), Dim(4)}), Shape::Of({3, 1})});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->ToString(), "[batch,3,4]");
  EXPECT_FALSE(BroadcastShapes({Shape::Of({2}), Shape::Of({3})}).ok());
  std::vector<int64_t> out;
  EXPECT_TRUE(BroadcastDims({{2, 1, 4}, {3, 1}}, &out));
  EXPECT_EQ(out, (std::vector<int64_t>{2, 3, 4}));
}

}  // namespace
}  // namespace kiln
