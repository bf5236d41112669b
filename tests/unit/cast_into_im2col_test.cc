// Tests for kiln.Im2Col reading through the float Cast before it
// (src/passes/cast_into_im2col.h): an FP16 build's RGB stem gathers straight
// from the model's FP32 input and converts each element itself, bit for bit
// what the Cast then the gather gave (CPU reference); a Cast something else
// reads stays, and non-float Casts are left alone (the op's own checks of 'to': stem_im2col_test.cc).
#include "passes/cast_into_im2col.h"

#include <gtest/gtest.h>

#include "graph_builder.h"
#include "passes/fp16.h"
#include "passes/layout_nhwc.h"
#include "passes/stem_im2col.h"

namespace kiln {
namespace {

using testing_build::CountOps;
using testing_build::FindOp;
using testing_build::GraphBuilder;
using testing_build::RunPassAndCompare;

// A float32 CNN stem through the build's passes up to this one: NHWC, the stem as a GEMM, FP16.
std::unique_ptr<Model> Fp16Stem() {
  GraphBuilder b;
  Value* x = b.Input("x", Shape({Dim::Symbol("batch"), 3, 40, 36}));
  Value* stem = b.Op("Conv", "stem", {x, b.Const("w", {8, 3, 7, 7}), b.Const("bias", {8})},
                     {{"pads", Attribute::FromInts({3, 3, 3, 3})}, {"strides", Attribute::FromInts({2, 2})}});
  b.Output(b.Op("Relu", "relu", {stem}));
  std::unique_ptr<Model> m = b.Done();
  PassContext ctx;
  EXPECT_TRUE(RunChannelsLast(*m, ctx).ok());
  EXPECT_TRUE(RunStemIm2Col(*m, ctx).ok());
  EXPECT_TRUE(RunConvertToFp16(*m, ctx).ok());
  return m;
}

TEST(CastIntoIm2Col, StemGathersTheFp32InputItself) {
  std::unique_ptr<Model> m = Fp16Stem();
  ASSERT_EQ(CountOps(*m, "Cast"), 2);  // the input to FP16, the output back to FP32
  auto f = RunPassAndCompare(*m, RunCastIntoIm2Col, 2, 0.0);
  EXPECT_EQ(CountOps(*f, "Cast"), 1);
  const Node* im2col = FindOp(*f, "Im2Col");
  ASSERT_TRUE(im2col);
  EXPECT_EQ(im2col->input(0)->name(), "x");
  EXPECT_EQ(im2col->input(0)->dtype(), DataType::kFloat);
  ASSERT_TRUE(im2col->attr("to"));
  EXPECT_EQ(im2col->attr("to")->i, static_cast<int64_t>(DataType::kFloat16));
  EXPECT_EQ(im2col->output(0)->dtype(), DataType::kFloat16);
}

// The converted input read by another op too: the Cast stays for it.
TEST(CastIntoIm2Col, CastWithOtherReadersStays) {
  GraphBuilder b;
  Value* x = b.Input("x", Shape({2, 9, 10, 3}));
  Value* h =
      b.Op("Cast", "to_half", {x}, {{"to", Attribute::FromInt(static_cast<int64_t>(DataType::kFloat16))}});
  b.Output(b.Op("Im2Col", "windows", {h},
                {{"kernel_shape", Attribute::FromInts({3, 3})},
                 {"pads", Attribute::FromInts({1, 1, 1, 1})},
                 {"columns", Attribute::FromInt(32)}},
                "kiln"));
  b.Output(b.Op("Relu", "relu", {h}));
  auto f = RunPassAndCompare(*b.Done(), RunCastIntoIm2Col, 2, 0.0);
  EXPECT_EQ(CountOps(*f, "Cast"), 1);
  ASSERT_TRUE(FindOp(*f, "Im2Col")->attr("to"));
  EXPECT_EQ(FindOp(*f, "Im2Col")->input(0)->name(), "x");
}

// Integer to float is a conversion the gather does not make.
TEST(CastIntoIm2Col, IntegerCastStays) {
  GraphBuilder b(DataType::kInt32);
  Value* x = b.Input("x", Shape({1, 8, 8, 3}));
  Value* f32 =
      b.Op("Cast", "to_float", {x}, {{"to", Attribute::FromInt(static_cast<int64_t>(DataType::kFloat))}});
  b.Output(b.Op("Im2Col", "windows", {f32}, {{"kernel_shape", Attribute::FromInts({3, 3})}}, "kiln"));
  std::unique_ptr<Model> m = b.Done();
  PassContext ctx;
  ASSERT_TRUE(RunCastIntoIm2Col(*m, ctx).ok());
  EXPECT_FALSE(ctx.changed);
  EXPECT_EQ(CountOps(*m, "Cast"), 1);
  EXPECT_FALSE(FindOp(*m, "Im2Col")->attr("to"));
}

}  // namespace
}  // namespace kiln
