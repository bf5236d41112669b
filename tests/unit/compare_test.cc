// reference/compare.h: the relative criterion, exact dtypes, NaN/Inf, and the
// can-fail check that rejects vacuous comparisons (degenerate references,
// tolerances that accept zeros or a 5% perturbation).
#include "reference/compare.h"

#include <gtest/gtest.h>

#include <cmath>

namespace kiln {
namespace {

Tensor Floats(std::vector<float> v) {
  return Tensor::FromVector<float>(DataType::kFloat, {static_cast<int64_t>(v.size())}, v);
}

TEST(Compare, RelativeToTheReferenceMagnitude) {
  // The same relative error passes at 1e-6 and at 1e3: the floor scales with the RMS.
  for (float scale : {1e-6f, 1.0f, 1e3f}) {
    Tensor ref = Floats({1 * scale, -2 * scale, 0.5f * scale, 0});
    Tensor near = Floats({1.00005f * scale, -2.0001f * scale, 0.50002f * scale, 1e-6f * scale});
    EXPECT_TRUE(CompareTensors(ref, near, Tolerance{}).ok) << scale << ": " << CompareTensors(ref, near, {}).message;
    Tensor off = Floats({1.01f * scale, -2 * scale, 0.5f * scale, 0});
    Comparison c = CompareTensors(ref, off, Tolerance{});
    EXPECT_FALSE(c.ok) << scale;
    EXPECT_EQ(c.worst, 0);
    EXPECT_NE(c.message.find("worst at [0]"), std::string::npos) << c.message;
  }
}

TEST(Compare, ZerosAndPerturbationsAreRejected) {
  Tensor ref = Floats({0.3f, -1.2f, 2.5f, 0.01f, -0.7f});
  EXPECT_TRUE(CheckCanFail(ref, Tolerance{}).ok());
  EXPECT_FALSE(CompareTensors(ref, Floats({0, 0, 0, 0, 0}), Tolerance{}).ok);
  EXPECT_TRUE(CheckCanFail(ref, Tolerance::RelL2(1e-2)).ok());
}

TEST(Compare, LooseTolerancesAreVacuous) {
  Tensor ref = Floats({0.3f, -1.2f, 2.5f, 0.01f, -0.7f});
  Tolerance loose;
  loose.atol = 10;  // ten times the RMS: zeros pass
  Status s = CheckCanFail(ref, loose);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("all-zeros"), std::string::npos) << s.message();
  Tolerance sloppy;
  sloppy.rtol = 0.2;
  sloppy.atol = 0.2;  // rejects zeros, but not a 5% error
  s = CheckCanFail(ref, sloppy);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("5%"), std::string::npos) << s.message();
  s = CheckCanFail(ref, Tolerance::RelL2(0.1));
  EXPECT_FALSE(s.ok()) << "rel L2 0.1 accepts a 5% perturbation";
}

// The FP16 GPU Softmax cases of 0be67c9: probabilities of ~1/2500 each against
// an absolute 3e-2 let zeros pass. The RMS-relative floor does not.
TEST(Compare, SmallProbabilitiesStillCanFail) {
  std::vector<float> p(2500);
  for (size_t i = 0; i < p.size(); ++i) p[i] = static_cast<float>(std::exp(std::sin(double(i)) * 2) / 4500.0);
  Tolerance fp16;
  fp16.rtol = 2e-2;
  fp16.atol = 3e-2;
  EXPECT_TRUE(CheckCanFail(Floats(p), fp16).ok()) << CheckCanFail(Floats(p), fp16).message();
}

TEST(Compare, DegenerateReferencesAreVacuous) {
  EXPECT_FALSE(CheckCanFail(Floats({0, 0, 0}), Tolerance{}).ok());
  EXPECT_FALSE(CheckCanFail(Floats({NAN, INFINITY}), Tolerance{}).ok());
  Tensor ints = Tensor::FromVector<int64_t>(DataType::kInt64, {3}, {0, 0, 0});
  EXPECT_FALSE(CheckCanFail(ints, Tolerance{}).ok());
  Tensor some = Tensor::FromVector<int64_t>(DataType::kInt64, {3}, {0, 4, 0});
  EXPECT_TRUE(CheckCanFail(some, Tolerance{}).ok());
  EXPECT_TRUE(CheckCanFail(Tensor(DataType::kFloat, {0, 3}), Tolerance{}).ok());  // empty: shape is the check
}

TEST(Compare, ExactTypesAndSpecialValues) {
  Tensor a = Tensor::FromVector<int64_t>(DataType::kInt64, {2, 2}, {1, 2, 3, 4});
  Tensor b = Tensor::FromVector<int64_t>(DataType::kInt64, {2, 2}, {1, 2, 3, 5});
  Comparison c = CompareTensors(a, b, Tolerance{});
  EXPECT_FALSE(c.ok);
  EXPECT_NE(c.message.find("differs at [1,1]: expected 4, got 5"), std::string::npos) << c.message;
  EXPECT_TRUE(CompareTensors(Floats({NAN, INFINITY, 1}), Floats({NAN, INFINITY, 1}), Tolerance{}).ok);
  EXPECT_FALSE(CompareTensors(Floats({NAN, 1}), Floats({0, 1}), Tolerance{}).ok);
  EXPECT_FALSE(CompareTensors(Floats({INFINITY, 1}), Floats({-INFINITY, 1}), Tolerance{}).ok);
  Comparison shape = CompareTensors(Floats({1, 2}), Floats({1, 2, 3}), Tolerance{});
  EXPECT_FALSE(shape.ok);
  EXPECT_NE(shape.message.find("shape"), std::string::npos);
  Comparison dtype = CompareTensors(a, Floats({1, 2, 3, 4}).Reshaped({2, 2}), Tolerance{});
  EXPECT_FALSE(dtype.ok);
  EXPECT_NE(dtype.message.find("type"), std::string::npos) << dtype.message;
}

TEST(Compare, ComplexValuesCompareInFull) {
  Tensor a(DataType::kComplex64, {2}), b(DataType::kComplex64, {2});
  float* pa = static_cast<float*>(a.mutable_raw());
  float* pb = static_cast<float*>(b.mutable_raw());
  for (int i = 0; i < 4; ++i) pa[i] = pb[i] = 0.5f * static_cast<float>(i + 1);
  EXPECT_TRUE(CompareTensors(a, b, Tolerance{}).ok);
  EXPECT_TRUE(CheckCanFail(a, Tolerance{}).ok());
  pb[3] = 7;  // the imaginary part of element 1
  Comparison c = CompareTensors(a, b, Tolerance{});
  EXPECT_FALSE(c.ok);
  EXPECT_EQ(c.worst, 1);
}

TEST(Compare, ExpectCloseNamesWhat) {
  Status s = ExpectClose("output 'y'", Floats({1, 2}), Floats({1, 3}), Tolerance{});
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.message().rfind("output 'y' differs", 0), 0u) << s.message();
  s = ExpectClose("output 'z'", Floats({0, 0}), Floats({0, 0}), Tolerance{});
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("vacuous"), std::string::npos) << s.message();
}

}  // namespace
}  // namespace kiln
