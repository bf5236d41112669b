// Tests for the channels-last pass (src/passes/layout_nhwc.h) and its ops
// (src/ops/kiln_layout.cc): which nodes move to NHWC, where Transposes stay,
// and that the CPU reference computes bit for bit what the NCHW model does.
#include "passes/layout_nhwc.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdio>

#include "graph_builder.h"
#include "int8_graph.h"
#include "passes/fuse_gpu.h"
#include "passes/permute_chains.h"

namespace kiln {
namespace {

using testing_build::CountOps;
using testing_build::GraphBuilder;
using testing_build::RunPassAndCompare;

const Shape kImage({Dim::Symbol("batch"), 4, 8, 8});

AttributeMap Pads1() { return {{"pads", Attribute::FromInts({1, 1, 1, 1})}}; }

// conv → relu → maxpool → conv + residual → mul(const) → sigmoid → global pool → flatten,
// with the residual sum also a graph output.
std::unique_ptr<Model> Block(DataType dt) {
  GraphBuilder b(dt);
  Value* x = b.Input("x", kImage);
  Value* c1 = b.Op("Conv", "conv1", {x, b.Const("w1", {8, 4, 3, 3}), b.Const("b1", {8})}, Pads1());
  Value* r1 = b.Op("Relu", "relu1", {c1});
  Value* p = b.Op("MaxPool", "pool", {r1},
                  {{"kernel_shape", Attribute::FromInts({3, 3})},
                   {"strides", Attribute::FromInts({2, 2})},
                   {"pads", Attribute::FromInts({1, 1, 1, 1})}});
  Value* c2 = b.Op("Conv", "conv2", {p, b.Const("w2", {8, 8, 3, 3})}, Pads1());
  Value* sum = b.Op("Add", "add", {c2, p});
  Value* scaled = b.Op("Mul", "mul", {sum, b.Const("scale", {8, 1, 1})});
  Value* s = b.Op("Sigmoid", "sigmoid", {scaled});
  Value* g = b.Op("GlobalAveragePool", "gap", {s});
  b.Output(b.Op("Flatten", "flatten", {g}));
  b.Output(sum);
  return b.Done();
}

// An INT8 layer after a float convolution (ResNet's stem, then its blocks): the QuantizeLinear and kiln.QConv
// with its epilogue's residual move to NHWC (kiln.QConvNhwc), bit for bit, and no Transpose is left between.
TEST(LayoutNhwc, Int8LayerWithResidualRunsChannelsLast) {
  namespace q8 = testing_int8;
  GraphBuilder b;
  Value* x = b.Input("x", kImage);
  Value* stem = b.Op("Relu", "stem_relu", {b.Op("Conv", "stem", {x, b.Const("w0", {8, 4, 3, 3})}, Pads1())});
  Value* r = b.Op("Conv", "side", {x, b.Const("w1", {16, 4, 3, 3})}, Pads1());
  Value* y = q8::QConv(b, "qconv", q8::Quantize(b, "xq", stem, 0.01f), 0.01f);
  Node* layer = y->producer();
  layer->AddInput(nullptr);  // y_scale, y_zp: the requantization below
  layer->AddInput(nullptr);
  layer->SetInput(7, q8::ScalarOf(b, "ys", 0.05f));
  layer->SetInput(8, q8::Int8Zero(b, "yzp"));
  layer->AddInput(r);  // z
  layer->attrs["activation"] = Attribute::FromString("Relu");
  y->type = TypeInfo::Tensor(DataType::kInt8, Shape());
  b.Output(q8::Dequantize(b, "ydq", y, 0.05f));
  auto f = RunPassAndCompare(*b.Done(), RunChannelsLast);
  EXPECT_EQ(CountOps(*f, "QConvNhwc"), 1);
  EXPECT_EQ(CountOps(*f, "QConv"), 0);
  for (const Node* n : f->graph->nodes()) {
    if (n->op_type != "QConvNhwc") continue;
    EXPECT_EQ(n->input(0)->producer()->op_type, "QuantizeLinear");
    EXPECT_EQ(n->input(9)->producer()->op_type, "FusedConvNhwc") << "z read channels-last";
    EXPECT_EQ(n->input(3)->shape().ToString(), Shape({16, 3, 3, 8}).ToString()) << "w [M, R, S, C]";
  }
  EXPECT_EQ(CountOps(*f, "Transpose"), 2) << "the input's and the output's only";
}

// YOLO's C2f: a convolution's output split in two along the channels, one half into the next convolution,
// both into a Concat: the Split runs on the channels-last tensor (axis 1 → 3), no Transpose between.
TEST(LayoutNhwc, ChannelSplitRunsChannelsLast) {
  GraphBuilder b;
  Value* x = b.Input("x", kImage);
  Value* c = b.Op("Conv", "cv1", {x, b.Const("w1", {8, 4, 3, 3})}, Pads1());
  Value* lo = b.Op("Split", "split", {c, b.Int64s("sizes", {3, 5})}, {{"axis", Attribute::FromInt(1)}});
  Node* split = lo->producer();
  Value* hi = split->graph()->AddValue("split_hi");
  split->AddOutput(hi);
  Value* y = b.Op("Conv", "cv2", {hi, b.Const("w2", {5, 5, 3, 3})}, Pads1());
  b.Output(b.Op("Concat", "cat", {lo, y}, {{"axis", Attribute::FromInt(1)}}));
  auto f = RunPassAndCompare(*b.Done(), RunChannelsLast);
  EXPECT_EQ(CountOps(*f, "Split"), 1);
  for (const Node* n : f->graph->nodes()) {
    if (n->op_type == "Split") {
      EXPECT_EQ(n->attr("axis")->i, 3);
    }
  }
  EXPECT_EQ(CountOps(*f, "Transpose"), 2) << "the input's and the output's only";
}

TEST(LayoutNhwc, ConvPoolElementwiseBlock) {
  auto m = Block(DataType::kFloat);
  auto f = RunPassAndCompare(*m, RunChannelsLast);
  EXPECT_EQ(CountOps(*f, "FusedConvNhwc"), 2);
  EXPECT_EQ(CountOps(*f, "PoolNhwc"), 2);
  EXPECT_EQ(CountOps(*f, "Conv"), 0);
  EXPECT_EQ(CountOps(*f, "MaxPool"), 0);
  // x → NHWC once; back to NCHW only for the graph output `add` and for Flatten.
  EXPECT_EQ(CountOps(*f, "Transpose"), 3);
  EXPECT_EQ(f->graph->outputs[0]->name(), "flatten");
  EXPECT_EQ(f->graph->outputs[1]->name(), "add");
  EXPECT_EQ(f->graph->outputs[1]->shape().ToString(), "[batch,8,4,4]");
  // Weights were permuted to [K,R,S,C] once.
  for (const Node* n : f->graph->nodes())
    if (n->op_type == "FusedConvNhwc") {
      EXPECT_EQ(n->input(1)->shape().ToString(), n->name == "conv1" ? "[8,3,3,4]" : "[8,3,3,8]");
      EXPECT_EQ(n->output(0)->shape().rank(), 4);
    }
}

// MaxViT's MBConv between convolutions: an inference BatchNormalization
// (not foldable into a conv: a GELU comes first) and fuse_gpu's kiln.Gelu run
// on the NHWC tensors; no Transpose between the two convolutions.
TEST(LayoutNhwc, BatchNormAndKilnGeluStayChannelsLast) {
  GraphBuilder b;
  Value* x = b.Input("x", kImage);
  Value* c1 = b.Op("Conv", "conv1", {x, b.Const("w1", {8, 4, 3, 3}), b.Const("b1", {8})}, Pads1());
  Value* g = b.Op("Gelu", "gelu", {c1}, {{"approximate", Attribute::FromString("none")}}, "kiln");
  Value* bn =
      b.Op("BatchNormalization", "bn",
           {g, b.Const("gamma", {8}), b.Const("beta", {8}), b.Const("mean", {8}), b.Scalar("var", 0.7, {8})},
           {{"epsilon", Attribute::FromFloat(1e-3f)}});
  b.Output(b.Op("Conv", "conv2", {bn, b.Const("w2", {8, 8, 3, 3})}, Pads1()));
  auto m = b.Done();
  auto f = RunPassAndCompare(*m, RunChannelsLast, 2, 1e-5);
  EXPECT_EQ(CountOps(*f, "FusedConvNhwc"), 2);
  EXPECT_EQ(CountOps(*f, "BatchNormalization"), 0);
  // x → NHWC, and the result back to NCHW: nothing in between.
  EXPECT_EQ(CountOps(*f, "Transpose"), 2);
}

// MaxViT's window departition (a Transpose, then a Reshape to NCHW) feeding the
// next block's BatchNorm and its Pad + AveragePool shortcut: a value a
// permutation makes is free to have in NHWC, so all three run channels-last,
// and permute_chains folds the Transpose to NHWC into the departition's.
TEST(LayoutNhwc, PermutedValueFeedsChannelsLastOps) {
  GraphBuilder b;
  const Dim batch = Dim::Symbol("batch");
  Value* windows = b.Input("windows", Shape({batch, 4, 16, 4}));  // [B, 2x2 windows, 4x4 pixels, C]
  Value* split = b.Op("Reshape", "split", {windows, b.Int64s("split_shape", {0, 2, 2, 4, 4, 4})});
  Value* nchw =
      b.Op("Transpose", "departition", {split}, {{"perm", Attribute::FromInts({0, 5, 1, 3, 2, 4})}});
  Value* x = b.Op("Reshape", "image", {nchw, b.Int64s("image_shape", {0, 4, 8, 8})});
  Value* bn =
      b.Op("BatchNormalization", "bn",
           {x, b.Const("gamma", {4}), b.Const("beta", {4}), b.Const("mean", {4}), b.Scalar("var", 0.7, {4})});
  Value* padded = b.Op("Pad", "pad", {x, b.Int64s("pads", {0, 0, 1, 1, 0, 0, 1, 1})});
  Value* pooled =
      b.Op("AveragePool", "pool", {padded},
           {{"kernel_shape", Attribute::FromInts({3, 3})}, {"strides", Attribute::FromInts({2, 2})}});
  b.Output(b.Op("Conv", "conv", {bn, b.Const("w", {4, 4, 3, 3})}, Pads1()));
  b.Output(b.Op("Conv", "shortcut", {pooled, b.Const("ws", {4, 4, 1, 1})}));
  auto f = RunPassAndCompare(*b.Done(), RunChannelsLast, 2, 1e-5);
  EXPECT_EQ(CountOps(*f, "BatchNormalization"), 0);
  EXPECT_EQ(CountOps(*f, "PoolNhwc"), 1);
  auto chained = RunPassAndCompare(*f, RunPermuteChains, 2, 0.0);
  // The departition (now straight to NHWC) and the two outputs back to NCHW.
  EXPECT_EQ(CountOps(*chained, "Transpose"), 3);
}

// Attention's rank-4 values (Llama's rotary embedding on the [B, H, S, D]
// heads, after a Transpose) feed only elementwise ops: they stay as they are.
TEST(LayoutNhwc, PermutedValueWithoutConvUsersStays) {
  GraphBuilder b;
  Value* x = b.Input("x", Shape({Dim::Symbol("batch"), 5, 2, 4}));
  Value* heads = b.Op("Transpose", "heads", {x}, {{"perm", Attribute::FromInts({0, 2, 1, 3})}});
  b.Output(b.Op("Add", "rotary", {b.Op("Mul", "cos", {heads, b.Const("c", {5, 4})}), heads}));
  auto m = b.Done();
  PassContext ctx;
  ASSERT_TRUE(RunChannelsLast(*m, ctx).ok());
  EXPECT_FALSE(ctx.changed);
  EXPECT_EQ(CountOps(*m, "Transpose"), 1);
}

TEST(LayoutNhwc, Float16BitExact) {
  auto m = Block(DataType::kFloat16);
  RunPassAndCompare(*m, RunChannelsLast);
}

TEST(LayoutNhwc, FusedConvWithResidualAndGroups) {
  // Depthwise FusedConv (group 4) whose residual Z comes from the NCHW input.
  GraphBuilder b;
  Value* x = b.Input("x", kImage);
  AttributeMap attrs = Pads1();
  attrs["group"] = Attribute::FromInt(4);
  attrs["activation"] = Attribute::FromString("Relu");
  Value* y = b.Op("FusedConv", "dw", {x, b.Const("w", {4, 1, 3, 3}), b.Const("b", {4}), x}, attrs, "kiln");
  b.Output(b.Op("Relu", "relu", {y}));
  auto m = b.Done();
  auto f = RunPassAndCompare(*m, RunChannelsLast);
  EXPECT_EQ(CountOps(*f, "FusedConvNhwc"), 1);
  EXPECT_EQ(CountOps(*f, "Transpose"), 2);  // x (shared by X and Z) in, relu out
}

TEST(LayoutNhwc, LeavesOtherConvsAlone) {
  // 1-D conv and a conv with non-constant weights stay NCHW; so does an
  // elementwise op with no NHWC input, and a pool fed by an NCHW value.
  GraphBuilder b;
  Value* x1 = b.Input("x1", Shape({Dim::Symbol("batch"), 4, 9}));
  b.Output(b.Op("Conv", "conv1d", {x1, b.Const("w1d", {2, 4, 3})}));
  Value* x = b.Input("x", kImage);
  Value* w = b.Input("w", Shape({2, 4, 1, 1}));
  b.Output(b.Op("Conv", "dynamic_w", {x, w}));
  Value* r = b.Op("Relu", "relu", {x});
  b.Output(b.Op("MaxPool", "pool", {r}, {{"kernel_shape", Attribute::FromInts({2, 2})}}));
  auto m = b.Done();
  auto f = RunPassAndCompare(*m, RunChannelsLast);
  EXPECT_EQ(CountOps(*f, "FusedConvNhwc"), 0);
  EXPECT_EQ(CountOps(*f, "Transpose"), 0);
  EXPECT_FALSE(f->opsets.count("kiln"));
}

TEST(LayoutNhwc, BroadcastFromLowerRankStaysNchw) {
  // Add of a [8] non-constant vector broadcasts along W in NCHW: not rewritten.
  GraphBuilder b;
  Value* x = b.Input("x", kImage);
  Value* v = b.Input("v", Shape({8}));
  Value* c = b.Op("Conv", "conv", {x, b.Const("w", {4, 4, 1, 1})});
  b.Output(b.Op("Add", "add", {c, v}));
  auto m = b.Done();
  auto f = RunPassAndCompare(*m, RunChannelsLast);
  EXPECT_EQ(CountOps(*f, "FusedConvNhwc"), 1);
  EXPECT_EQ(CountOps(*f, "Add"), 1);
  EXPECT_EQ(CountOps(*f, "Transpose"), 2);
}

TEST(LayoutNhwc, BadPoolAttributeIsAClearError) {
  auto m = std::make_unique<Model>();
  m->opsets[""] = 17;
  m->opsets["kiln"] = 1;
  m->graph = std::make_shared<Graph>();
  Value* x = m->graph->AddValue("x");
  x->type = TypeInfo::Tensor(DataType::kFloat, Shape({1, 4, 4, 3}));
  m->graph->inputs.push_back(x);
  Node* n = m->graph->AddNode("PoolNhwc", "p", "kiln");
  n->attrs["pool"] = Attribute::FromString("LpPool");
  n->AddInput(x);
  n->AddOutput(m->graph->AddValue("y"));
  m->graph->outputs.push_back(n->output(0));
  Status s = InferShapes(*m);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("LpPool"), std::string::npos) << s.ToString();
  EXPECT_NE(s.message().find("'p'"), std::string::npos) << s.ToString();
}

// Inception-style: two conv branches concatenated on channels, padded, pooled,
// then a channel slice: all NHWC, one Transpose in and one out.
TEST(LayoutNhwc, ConcatPadPoolSliceFollowTheConvs) {
  for (int64_t opset : {17, 18}) {
    GraphBuilder g;
    g.Opset(opset);
    Value* gx = g.Input("x", kImage);
    Value* g1 = g.Op("Conv", "conv1", {gx, g.Const("w1", {8, 4, 1, 1})});
    Value* g2 = g.Op("Conv", "conv2", {gx, g.Const("w2", {6, 4, 3, 3})}, Pads1());
    Value* gcat = g.Op("Concat", "cat", {g1, g2}, {{"axis", Attribute::FromInt(-3)}});
    std::vector<Value*> pad_in;
    if (opset >= 18)  // pads for the listed axes only
      pad_in = {gcat, g.Int64s("pads", {1, 2, 2, 1}), nullptr, g.Int64s("pad_axes", {2, -1})};
    else
      pad_in = {gcat, g.Int64s("pads", {0, 0, 1, 2, 0, 0, 2, 1})};
    Value* gpad = g.Op("Pad", "pad", pad_in);
    Value* pool = g.Op("AveragePool", "pool", {gpad}, {{"kernel_shape", Attribute::FromInts({3, 3})}});
    Value* sl = g.Op("Slice", "slice",
                     {pool, g.Int64s("starts", {2}), g.Int64s("ends", {12}), g.Int64s("slice_axes", {1})});
    g.Output(g.Op("Relu", "relu", {sl}));
    auto f = RunPassAndCompare(*g.Done(), RunChannelsLast);
    EXPECT_EQ(CountOps(*f, "Transpose"), 2) << "opset " << opset;
    EXPECT_EQ(CountOps(*f, "PoolNhwc"), 1);
    for (const Node* n : f->graph->nodes()) {
      if (n->op_type == "Concat") {
        EXPECT_EQ(n->attr("axis")->i, 3);
      }
    }
  }
}

// Slice without an axes input, and the attribute forms before opset 10/11.
TEST(LayoutNhwc, SliceAndPadOlderForms) {
  for (int64_t opset : {9, 13}) {
    GraphBuilder b;
    b.Opset(opset);
    Value* x = b.Input("x", kImage);
    Value* c = b.Op("Conv", "conv", {x, b.Const("w", {8, 4, 3, 3})}, Pads1());
    Value* sl;
    Value* pad;
    if (opset < 10) {
      sl = b.Op("Slice", "slice", {c},
                {{"starts", Attribute::FromInts({0, 1, 2})}, {"ends", Attribute::FromInts({2, 7, 8})}});
      pad = b.Op("Pad", "pad", {sl}, {{"pads", Attribute::FromInts({0, 1, 0, 2, 0, 0, 1, 0})}});
    } else {
      sl = b.Op("Slice", "slice", {c, b.Int64s("starts", {0, 1, 2}), b.Int64s("ends", {2, 7, 8})});
      pad = b.Op("Pad", "pad", {sl, b.Int64s("pads", {0, 1, 0, 2, 0, 0, 1, 0})});
    }
    b.Output(b.Op("Sigmoid", "sig", {pad}));
    auto f = RunPassAndCompare(*b.Done(), RunChannelsLast);
    EXPECT_EQ(CountOps(*f, "Transpose"), 2) << "opset " << opset;
    // N: min(2, batch); C 1..7 + 1; H 2..8 + 1; W + 2.
    EXPECT_EQ(f->graph->outputs[0]->shape().ToString(), "[?,7,7,10]") << "opset " << opset;
  }
}

// ShuffleNet's channel shuffle runs on the NHWC twin: its own Transpose only.
TEST(LayoutNhwc, ChannelShuffleStaysChannelsLast) {
  GraphBuilder b;
  Value* x = b.Input("x", kImage);
  Value* c = b.Op("Conv", "conv", {x, b.Const("w", {8, 4, 1, 1})});
  Value* split = b.Op("Reshape", "split", {c, b.Int64s("split_shape", {0, 2, 4, 8, 8})});
  Value* t = b.Op("Transpose", "swap", {split}, {{"perm", Attribute::FromInts({0, 2, 1, 3, 4})}});
  Value* merged = b.Op("Reshape", "merge", {t, b.Int64s("merge_shape", {0, 8, 8, 8})});
  b.Output(b.Op("Conv", "conv2", {merged, b.Const("w2", {4, 8, 1, 1})}));
  auto f = RunPassAndCompare(*b.Done(), RunChannelsLast);
  EXPECT_EQ(CountOps(*f, "FusedConvNhwc"), 2);
  EXPECT_EQ(CountOps(*f, "Transpose"), 3);  // x in, the shuffle, the output back
  for (const Node* n : f->graph->nodes()) {
    if (n->op_type == "Transpose" && n->output(0)->shape().rank() == 5) {
      EXPECT_EQ(n->attr("perm")->ints, (std::vector<int64_t>{0, 1, 2, 4, 3}));
    }
  }
}

// An FPN/HRNet upsampling between convolutions: the Resize runs on the NHWC twin with its scales (or sizes,
// or a tf_crop_and_resize roi) permuted, so no Transpose goes back to NCHW around it. Opset 10's Resize(X,
// scales) stays NCHW.
TEST(LayoutNhwc, ResizeRunsChannelsLast) {
  struct Form {
    const char* label;
    std::vector<std::string> inputs;  // "roi", "scales", "sizes", "" (omitted)
    const char* mode;
  };
  for (const Form& form : {Form{"scales, nearest", {"", "scales"}, "asymmetric"},
                           Form{"sizes, linear", {"", "", "sizes"}, "half_pixel"},
                           Form{"roi, tf_crop_and_resize", {"roi", "scales"}, "tf_crop_and_resize"}}) {
    SCOPED_TRACE(form.label);
    GraphBuilder b;
    Value* x = b.Input("x", kImage);
    Value* c = b.Op("Conv", "conv", {x, b.Const("w", {8, 4, 1, 1})});
    std::vector<Value*> in = {c};
    for (const std::string& k : form.inputs) {
      if (k.empty()) in.push_back(nullptr);
      if (k == "roi")
        in.push_back(b.Fixed("roi", Tensor::FromVector<float>(DataType::kFloat, {8},
                                                              {0.f, 0.f, 0.1f, 0.2f, 1.f, 1.f, 0.9f, 0.7f})));
      if (k == "scales")
        in.push_back(
            b.Fixed("scales", Tensor::FromVector<float>(DataType::kFloat, {4}, {1.f, 1.f, 2.f, 1.5f})));
      if (k == "sizes") in.push_back(b.Int64s("sizes", {2, 8, 12, 16}));
    }
    AttributeMap attrs = {{"coordinate_transformation_mode", Attribute::FromString(form.mode)},
                          {"mode", Attribute::FromString(form.inputs.size() == 3 ? "linear" : "nearest")}};
    Value* up = b.Op("Resize", "up", in, attrs);
    b.Output(b.Op("Conv", "conv2", {up, b.Const("w2", {4, 8, 1, 1})}));
    auto f = RunPassAndCompare(*b.Done(), RunChannelsLast);
    EXPECT_EQ(CountOps(*f, "FusedConvNhwc"), 2);
    EXPECT_EQ(CountOps(*f, "Transpose"), 2) << "x in, the output back\n" << PrintGraph(*f);
  }
  GraphBuilder b;
  b.Opset(10);
  Value* c = b.Op("Conv", "conv", {b.Input("x", kImage), b.Const("w", {8, 4, 1, 1})});
  Value* up =
      b.Op("Resize", "up",
           {c, b.Fixed("scales", Tensor::FromVector<float>(DataType::kFloat, {4}, {1.f, 1.f, 2.f, 2.f}))});
  b.Output(b.Op("Conv", "conv2", {up, b.Const("w2", {4, 8, 1, 1})}));
  auto f = RunPassAndCompare(*b.Done(), RunChannelsLast);
  EXPECT_EQ(CountOps(*f, "Transpose"), 4) << "around the opset-10 Resize too";
}

// The GPU build order on the exported ResNet-50: simplifier, fuse_gpu, then
// layout: every conv and both pools go NHWC; two Transposes remain (input,
// and before Flatten).
TEST(LayoutNhwc, ResNet50Zoo) {
  std::unique_ptr<Model> m = testing_build::SimplifiedZooModel("resnet50");
  if (!m) return;  // the fixture is missing: a failure is recorded
  PassContext ctx;
  ASSERT_TRUE(RunFuseForGpu(*m, ctx).ok());
  auto f = RunPassAndCompare(*m, RunChannelsLast, 1);
  EXPECT_EQ(CountOps(*f, "FusedConvNhwc"), 53);
  EXPECT_EQ(CountOps(*f, "PoolNhwc"), 2);
  EXPECT_EQ(CountOps(*f, "Transpose"), 2);

  // Shape inference of the NHWC ops reads shapes only. It used to permute
  // every weight into an NCHW copy at each inference: 85 ms for ResNet-50 at
  // each new input shape (plan load, every GPU context preparation), against
  // 0.3 ms without the copies (2026-12-05, this 2-core machine).
  double best_ms = 1e9;
  for (int run = 0; run < 3; ++run) {
    std::unique_ptr<Model> c = CloneModel(*f);
    ShapeInferenceOptions opt;
    opt.input_shapes["input"] = Shape::Of({4, 3, 64, 64});
    auto t0 = std::chrono::steady_clock::now();
    ASSERT_TRUE(InferShapes(*c, opt).ok());
    best_ms = std::min(
        best_ms, std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  std::printf("  shape inference of NHWC ResNet-50: %.2f ms\n", best_ms);
  EXPECT_LT(best_ms, 15.0) << "shape inference of NHWC ResNet-50 took " << best_ms << " ms";
}

}  // namespace
}  // namespace kiln

namespace kiln {
namespace {

// The GPU op harness's form: every input a graph input or initializer of fixed shape.
TEST(LayoutNhwc, FixedShapeOpInfers) {
  GraphBuilder b;
  Value* x = b.Input("x", Shape({2, 9, 11, 8}));
  Value* z = b.Input("z", Shape({2, 9, 11, 16}));
  AttributeMap a = {{"activation", Attribute::FromString("Relu")},
                    {"pads", Attribute::FromInts({1, 1, 1, 1})}};
  b.Output(b.Op("FusedConvNhwc", "c", {x, b.Const("w", {16, 3, 3, 8}), b.Const("b", {16}), z}, a, "kiln"));
  auto m = b.Done();
  EXPECT_EQ(m->graph->outputs[0]->shape().ToString(), "[2,9,11,16]");
}

}  // namespace
}  // namespace kiln
