// interleave_concat: a channel shuffle of a Concat, and its chunks, become interleaving Concats of the
// operands (Slices of them for the chunks). Oracles: the graph before the pass on the CPU reference (bit for
// bit: the rewrite moves elements only), and the whole GPU build against the build without pointwise fusion.
#include "passes/interleave_concat.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "build/build_passes.h"
#include "graph_builder.h"
#include "ir/clone.h"
#include "reference/compare.h"
#include "reference/executor.h"
#ifdef KILN_HAS_CUDA
#include "build/cuda/nvrtc_compile.h"
#endif

namespace kiln {
namespace {

using testing_build::CountOps;
using testing_build::GraphBuilder;
using testing_build::RunPassAndCompare;

enum class Chunks { kSlices, kSplit, kOddSlices };

struct Form {
  bool channels_last = false;  // the shuffle on the last axis (as layout_nhwc leaves it)
  Chunks chunks = Chunks::kSlices;
  int units = 2;
};

// ShuffleNetV2's stride-1 units over 8 channels of 3x3: x1, x2 = chunk(x, 2); x = shuffle(cat(x1, f(x2)), 2),
// with f a 1x1 convolution and ReLU (NCHW) or a Relu alone (channels last). The last shuffle is an output.
std::unique_ptr<Model> ShuffleUnits(const Form& f) {
  GraphBuilder b;
  const int64_t a = f.channels_last ? 3 : 1;
  const std::vector<int64_t> grouped =
      f.channels_last ? std::vector<int64_t>{0, 3, 3, 2, 4} : std::vector<int64_t>{0, 2, 4, 3, 3};
  const std::vector<int64_t> merged =
      f.channels_last ? std::vector<int64_t>{0, 3, 3, 8} : std::vector<int64_t>{0, 8, 3, 3};
  const std::vector<int64_t> perm =
      f.channels_last ? std::vector<int64_t>{0, 1, 2, 4, 3} : std::vector<int64_t>{0, 2, 1, 3, 4};
  Value* x =
      b.Input("x", f.channels_last ? Shape({Dim::Symbol("b"), 3, 3, 8}) : Shape({Dim::Symbol("b"), 8, 3, 3}));
  for (int u = 0; u < f.units; ++u) {
    const std::string p = "u" + std::to_string(u) + "/";
    Value *x1 = nullptr, *x2 = nullptr;
    const int64_t cut = 4;
    if (f.chunks == Chunks::kSplit) {
      x1 = b.Op("Split", p + "split", {x, b.Int64s(p + "sizes", {4, 4})}, {{"axis", Attribute::FromInt(a)}});
      x2 = x1->producer()->graph()->AddValue(p + "split_1");
      x1->producer()->AddOutput(x2);
    } else {
      x1 = b.Op("Slice", p + "x1",
                {x, b.Int64s(p + "s0", {0}), b.Int64s(p + "e0", {cut}), b.Int64s(p + "a0", {a})});
      x2 = b.Op("Slice", p + "x2",
                {x, b.Int64s(p + "s1", {cut}), b.Int64s(p + "e1", {8}), b.Int64s(p + "a1", {a})});
    }
    Value* y = f.channels_last
                   ? b.Op("Relu", p + "relu", {x2})
                   : b.Op("Relu", p + "relu",
                          {b.Op("Conv", p + "conv", {x2, b.Const(p + "w", {8 - cut, 8 - cut, 1, 1})})});
    Value* cat = b.Op("Concat", p + "cat", {x1, y}, {{"axis", Attribute::FromInt(a)}});
    Value* g = b.Op("Reshape", p + "group", {cat, b.Int64s(p + "grouped", grouped)});
    Value* t = b.Op("Transpose", p + "swap", {g}, {{"perm", Attribute::FromInts(perm)}});
    x = b.Op("Reshape", p + "shuffled", {t, b.Int64s(p + "merged", merged)});
  }
  if (f.chunks == Chunks::kOddSlices) {  // the last shuffle read in chunks that cut through a group of 2
    const int64_t a = f.channels_last ? 3 : 1;
    b.Output(b.Op("Slice", "odd0",
                  {x, b.Int64s("odd_s0", {0}), b.Int64s("odd_e0", {3}), b.Int64s("odd_a0", {a})}));
    b.Output(b.Op("Slice", "odd1",
                  {x, b.Int64s("odd_s1", {3}), b.Int64s("odd_e1", {8}), b.Int64s("odd_a1", {a})}));
  } else {
    b.Output(x);
  }
  return b.Done();
}

TEST(InterleaveConcat, ShufflesAndChunksBecomeInterleavingConcats) {
  for (bool last : {false, true}) {
    SCOPED_TRACE(last ? "channels last" : "NCHW");
    Form f;
    f.channels_last = last;
    auto m = RunPassAndCompare(*ShuffleUnits(f), RunInterleaveConcat, 2);
    EXPECT_EQ(CountOps(*m, "Transpose"), 0);
    // Unit 1's two chunks of unit 0's shuffle, and unit 1's shuffle (an output): read whole.
    EXPECT_EQ(CountOps(*m, "Concat"), 3);
    EXPECT_EQ(CountOps(*m, "Slice"), 4 + 2) << "each chunk's two operand Slices, unit 0's own chunks of x";
  }
}

TEST(InterleaveConcat, SplitChunksToo) {
  Form f;
  f.chunks = Chunks::kSplit;
  auto m = RunPassAndCompare(*ShuffleUnits(f), RunInterleaveConcat, 3);
  EXPECT_EQ(CountOps(*m, "Transpose"), 0);
  EXPECT_EQ(CountOps(*m, "Split"), 1) << "unit 0's split of the input stays";
  EXPECT_EQ(CountOps(*m, "Concat"), 3);
}

// Chunks that cut through a group (channel 3 of 8 in groups of 2 is not a group boundary) read the whole
// interleave, which the pass still writes as one Concat.
TEST(InterleaveConcat, ChunksInsideAGroupReadTheWholeInterleave) {
  Form f;
  f.chunks = Chunks::kOddSlices;
  f.units = 1;
  auto m = RunPassAndCompare(*ShuffleUnits(f), RunInterleaveConcat, 2);
  EXPECT_EQ(CountOps(*m, "Transpose"), 0);
  EXPECT_EQ(CountOps(*m, "Concat"), 1);
  EXPECT_EQ(CountOps(*m, "Slice"), 4) << "the odd chunks as they were, and the unit's chunks of the input";
}

// Not a shuffle: the Transpose also moves another axis, or the Concat's operands are not one group each.
TEST(InterleaveConcat, OtherChainsStay) {
  {
    GraphBuilder b;
    Value* x = b.Input("x", Shape({2, 4, 3, 3}));
    Value* cat = b.Op("Concat", "cat", {x, b.Op("Relu", "relu", {x})}, {{"axis", Attribute::FromInt(1)}});
    Value* g = b.Op("Reshape", "group", {cat, b.Int64s("grouped", {2, 2, 4, 3, 3})});
    Value* t = b.Op("Transpose", "swap", {g}, {{"perm", Attribute::FromInts({0, 2, 1, 4, 3})}});
    b.Output(b.Op("Reshape", "merged", {t, b.Int64s("merged_shape", {2, 8, 3, 3})}));
    auto m = RunPassAndCompare(*b.Done(), RunInterleaveConcat, 2);
    EXPECT_EQ(CountOps(*m, "Transpose"), 1);
  }
  {
    GraphBuilder b;
    Value* x = b.Input("x", Shape({2, 4, 3, 3}));
    Value* cat =
        b.Op("Concat", "cat", {x, x, x, x}, {{"axis", Attribute::FromInt(1)}});  // 4 operands, 2 groups
    Value* g = b.Op("Reshape", "group", {cat, b.Int64s("grouped", {2, 2, 8, 3, 3})});
    Value* t = b.Op("Transpose", "swap", {g}, {{"perm", Attribute::FromInts({0, 2, 1, 3, 4})}});
    b.Output(b.Op("Reshape", "merged", {t, b.Int64s("merged_shape", {2, 16, 3, 3})}));
    auto m = RunPassAndCompare(*b.Done(), RunInterleaveConcat, 2);
    EXPECT_EQ(CountOps(*m, "Transpose"), 1);
  }
}

// The GPU build of the NCHW units (in FP16, layout_nhwc makes the shuffle channels-last first): no 5-D
// Transpose is left, each chunk is one kiln.Pointwise reading the operands through its Slices (only the first
// unit's chunks of the input stay Slices), the last shuffle is one Concat (in FP16, with the layout's way
// back to NCHW after it), and the built graph computes what the build without pointwise fusion does.
TEST(InterleaveConcat, TheBuildRunsEachChunkAsOneKernel) {
  for (bool fp16 : {false, true}) {
    SCOPED_TRACE(fp16 ? "fp16" : "fp32");
    Form f;
    f.units = 3;
    std::unique_ptr<Model> fused = ShuffleUnits(f), plain = CloneModel(*fused);
    BuildOptions opts;
    opts.fp16 = fp16;
    std::vector<std::string> notes;
    ASSERT_TRUE(RunBuildPasses(*fused, opts, &notes).ok());
    opts.fuse_pointwise = false;
    ASSERT_TRUE(RunBuildPasses(*plain, opts, &notes).ok());
    for (const Node* n : fused->graph->nodes())
      EXPECT_FALSE((n->op_type == "Slice" && n->input(0)->name() != "x" && n->input(0)->name() != "x_fp16") ||
                   (n->op_type == "Transpose" && n->input(0)->shape().rank() == 5))
          << n->Label() << "\n"
          << PrintGraph(*fused);
    EXPECT_EQ(CountOps(*fused, "Pointwise"), 4) << "two chunks for units 1 and 2\n" << PrintGraph(*fused);
    EXPECT_EQ(CountOps(*fused, "Concat"), 1) << "the last shuffle, whole";
    auto feed = testing_build::RandomFeed(*plain, 2);
    auto want = ReferenceExecutor(*plain).Run(feed);
    auto got = ReferenceExecutor(*fused).Run(feed);
    ASSERT_TRUE(want.ok() && got.ok());
    const Tensor& w = (*want)[0].tensor;
    EXPECT_EQ(CompareTensors(w, (*got)[0].tensor, Tolerance{}).max_abs, 0.0)
        << "elements moved, not computed";
#ifdef KILN_HAS_CUDA
    cuda::KernelCache cache;  // the interleaving kernels compile (NVRTC)
    Status compiled = cuda::CompilePointwiseKernels(*fused, 90, cache);
    EXPECT_TRUE(compiled.ok()) << compiled.ToString();
#endif
  }
}

}  // namespace
}  // namespace kiln
