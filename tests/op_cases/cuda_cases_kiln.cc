// The CUDA op harness's cases for kiln's internal ops (see cuda_cases_kiln.h).
#include "op_cases/cuda_cases_kiln.h"

#include <cmath>
#include <limits>

#include "passes/pass_util.h"

namespace kiln::op_cases {

// kiln.FusedConv = act(Conv(X, W, B) + Z): cudnnConvolutionBiasActivationForward
// (zero bias when B is absent, z = y with alpha2 = 0 when Z is absent; identity
// activation only with IMPLICIT_PRECOMP_GEMM, else the unfused fallback).
void FusedConv(const Sink& RunCase) {
  const AttributeMap relu = {{"activation", Attribute::FromString("Relu")}, {"pads", Attribute::FromInts({1, 1, 1, 1})}};
  const AttributeMap ident = {{"activation", Attribute::FromString("")}, {"pads", Attribute::FromInts({1, 1, 1, 1})}};
  In x{"x", {2, 8, 9, 11}}, w{"w", {16, 8, 3, 3}, DataType::kFloat, true}, b{"b", {16}, DataType::kFloat, true};
  In z{"z", {2, 16, 9, 11}}, none{""};
  RunCase({"FusedConv", {x, w, b, z}, relu, 1, 17, "kiln"}, 1e-4, 1e-4);
  RunCase({"FusedConv", {x, w}, relu, 1, 17, "kiln"}, 1e-4, 1e-4);            // no bias: zero bias buffer
  RunCase({"FusedConv", {x, w, b}, relu, 1, 17, "kiln"}, 1e-4, 1e-4);         // no Z: z = y, alpha2 = 0
  RunCase({"FusedConv", {x, w, none, z}, relu, 1, 17, "kiln"}, 1e-4, 1e-4);   // Z without bias
  RunCase({"FusedConv", {x, w, b, z}, ident, 1, 17, "kiln"}, 1e-4, 1e-4);     // identity: PRECOMP_GEMM or fallback
  RunCase({"FusedConv", {x, w, none, z}, ident, 1, 17, "kiln"}, 1e-4, 1e-4);
  // Strided 1x1 (ResNet downsample), depthwise, 1-D.
  RunCase({"FusedConv", {{"x", {1, 8, 10, 10}}, {"w", {4, 8, 1, 1}, DataType::kFloat, true}, none, {"z", {1, 4, 5, 5}}},
           {{"activation", Attribute::FromString("Relu")}, {"strides", Attribute::FromInts({2, 2})}}, 1, 17, "kiln"}, 1e-4, 1e-4);
  RunCase({"FusedConv", {{"x", {1, 6, 9, 9}}, {"w", {6, 1, 3, 3}, DataType::kFloat, true}, {"b", {6}, DataType::kFloat, true}},
           {{"activation", Attribute::FromString("Relu")}, {"group", Attribute::FromInt(6)}, {"pads", Attribute::FromInts({1, 1, 1, 1})}}, 1, 17, "kiln"}, 1e-4, 1e-4);
  RunCase({"FusedConv", {{"x", {1, 4, 17}}, {"w", {5, 4, 3}, DataType::kFloat, true}, {"b", {5}, DataType::kFloat, true}, {"z", {1, 5, 17}}},
           {{"activation", Attribute::FromString("Relu")}, {"auto_pad", Attribute::FromString("SAME_UPPER")}}, 1, 17, "kiln"}, 1e-4, 1e-4);
  // float16 (PSEUDO_HALF: FP32 accumulation), against the reference's per-step rounding.
  In xh{"x", {2, 8, 9, 11}, DataType::kFloat16}, wh{"w", {16, 8, 3, 3}, DataType::kFloat16, true};
  In bh{"b", {16}, DataType::kFloat16, true}, zh{"z", {2, 16, 9, 11}, DataType::kFloat16};
  RunCase({"FusedConv", {xh, wh, bh, zh}, relu, 1, 17, "kiln"}, 1e-2, 2e-2);
  RunCase({"FusedConv", {xh, wh, bh, zh}, ident, 1, 17, "kiln"}, 1e-2, 2e-2);
}

// FusedConv activations cuDNN does not fuse (Clip, Sigmoid, Swish): one pass after it.
void FusedConvActivations(const Sink& RunCase) {
  In x{"x", {2, 8, 9, 11}}, w{"w", {16, 8, 3, 3}, DataType::kFloat, true}, b{"b", {16}, DataType::kFloat, true};
  In z{"z", {2, 16, 9, 11}};
  AttributeMap clip = {{"activation", Attribute::FromString("Clip")}, {"activation_min", Attribute::FromFloat(0.f)},
                       {"activation_max", Attribute::FromFloat(6.f)}, {"pads", Attribute::FromInts({1, 1, 1, 1})}};
  RunCase({"FusedConv", {x, w, b}, clip, 1, 17, "kiln"}, 1e-4, 1e-4);
  for (const char* act : {"Sigmoid", "Swish"}) {
    AttributeMap a = {{"activation", Attribute::FromString(act)}, {"pads", Attribute::FromInts({1, 1, 1, 1})}};
    RunCase({"FusedConv", {x, w, b}, a, 1, 17, "kiln"}, 1e-4, 1e-4);
    RunCase({"FusedConv", {x, w, b, z}, a, 1, 17, "kiln"}, 1e-4, 1e-4);
  }
}

// Channels-last forms (passes/layout_nhwc.cc): X/Z/Y [N,H,W,C], W [K,R,S,C/g].
void ChannelsLast(const Sink& RunCase) {
  const AttributeMap relu = {{"activation", Attribute::FromString("Relu")}, {"pads", Attribute::FromInts({1, 1, 1, 1})}};
  In x{"x", {2, 9, 11, 8}}, w{"w", {16, 3, 3, 8}, DataType::kFloat, true}, b{"b", {16}, DataType::kFloat, true};
  In z{"z", {2, 9, 11, 16}}, none{""};
  RunCase({"FusedConvNhwc", {x, w, b, z}, relu, 1, 17, "kiln"}, 1e-4, 1e-4);
  RunCase({"FusedConvNhwc", {x, w}, relu, 1, 17, "kiln"}, 1e-4, 1e-4);
  RunCase({"FusedConvNhwc", {x, w, none, z}, {{"activation", Attribute::FromString("")}, {"pads", Attribute::FromInts({1, 1, 1, 1})}}, 1, 17, "kiln"}, 1e-4, 1e-4);
  // Depthwise, strided, odd channel counts (3 input channels as resnet's stem).
  RunCase({"FusedConvNhwc", {{"x", {1, 9, 9, 6}}, {"w", {6, 3, 3, 1}, DataType::kFloat, true}, {"b", {6}, DataType::kFloat, true}},
           {{"activation", Attribute::FromString("Relu")}, {"group", Attribute::FromInt(6)}, {"pads", Attribute::FromInts({1, 1, 1, 1})}}, 1, 17, "kiln"}, 1e-4, 1e-4);
  RunCase({"FusedConvNhwc", {{"x", {2, 15, 15, 3}}, {"w", {8, 7, 7, 3}, DataType::kFloat, true}, {"b", {8}, DataType::kFloat, true}},
           {{"activation", Attribute::FromString("Relu")}, {"strides", Attribute::FromInts({2, 2})}, {"pads", Attribute::FromInts({3, 3, 3, 3})}}, 1, 17, "kiln"}, 1e-4, 1e-4);
  In xh{"x", {2, 9, 11, 8}, DataType::kFloat16}, wh{"w", {16, 3, 3, 8}, DataType::kFloat16, true};
  In bh{"b", {16}, DataType::kFloat16, true}, zh{"z", {2, 9, 11, 16}, DataType::kFloat16};
  RunCase({"FusedConvNhwc", {xh, wh, bh, zh}, relu, 1, 17, "kiln"}, 1e-2, 2e-2);
  RunCase({"FusedConvNhwc", {{"x", {2, 16, 16, 1}, DataType::kFloat16}, {"w", {64, 5, 5, 1}, DataType::kFloat16, true},
                             {"b", {64}, DataType::kFloat16, true}},
           {{"activation", Attribute::FromString("Relu")}, {"pads", Attribute::FromInts({2, 2, 2, 2})}}, 1, 17, "kiln"}, 1e-2, 2e-2);
  // 1x1 stride 1: one cuBLASLt product (bias/ReLU epilogue, Z through beta).
  In x1{"x", {2, 7, 9, 24}}, w1{"w", {40, 1, 1, 24}, DataType::kFloat, true}, b1{"b", {40}, DataType::kFloat, true};
  In z1{"z", {2, 7, 9, 40}};
  RunCase({"FusedConvNhwc", {x1, w1, b1, z1}, {{"activation", Attribute::FromString("Relu")}}, 1, 17, "kiln"}, 1e-4, 1e-4);
  RunCase({"FusedConvNhwc", {x1, w1, b1}, {{"activation", Attribute::FromString("Swish")}}, 1, 17, "kiln"}, 1e-4, 1e-4);
  RunCase({"FusedConvNhwc", {x1, w1, none, z1}, {{"activation", Attribute::FromString("")}}, 1, 17, "kiln"}, 1e-4, 1e-4);
  RunCase({"FusedConvNhwc", {{"x", {2, 7, 9, 32}, DataType::kFloat16}, {"w", {16, 1, 1, 32}, DataType::kFloat16, true},
                             {"b", {16}, DataType::kFloat16, true}, {"z", {2, 7, 9, 16}, DataType::kFloat16}},
           {{"activation", Attribute::FromString("Relu")}}, 1, 17, "kiln"}, 1e-2, 2e-2);
  // GELU (erf) as the epilogue (MaxViT's MBConv): a dense 3x3 (cuDNN's graph GELU_FWD or the legacy call and a
  // pass), a 1x1 and a depthwise 3x3 (kiln's kernel), FP16 and FP32.
  const AttributeMap gelu = {{"activation", Attribute::FromString("Gelu")}, {"pads", Attribute::FromInts({1, 1, 1, 1})}};
  RunCase({"FusedConvNhwc", {xh, wh, bh}, gelu, 1, 17, "kiln"}, 1e-2, 2e-2);
  RunCase({"FusedConvNhwc", {x1, w1, b1}, {{"activation", Attribute::FromString("Gelu")}}, 1, 17, "kiln"}, 1e-4, 1e-4);
  RunCase({"FusedConvNhwc", {{"x", {2, 14, 14, 64}, DataType::kFloat16}, {"w", {64, 3, 3, 1}, DataType::kFloat16, true},
                             {"b", {64}, DataType::kFloat16, true}},
           {{"activation", Attribute::FromString("Gelu")}, {"group", Attribute::FromInt(64)},
            {"pads", Attribute::FromInts({1, 1, 1, 1})}}, 1, 17, "kiln"}, 1e-2, 2e-2);
  // The residual after the activation (YOLO's bottlenecks: x + SiLU(conv)): cuDNN's graph in FP16, the
  // separate calls in FP32.
  AttributeMap post = {{"activation", Attribute::FromString("Swish")},
                       {"pads", Attribute::FromInts({1, 1, 1, 1})},
                       {"residual_after_activation", Attribute::FromInt(1)}};
  RunCase({"FusedConvNhwc", {xh, wh, bh, zh}, post, 1, 17, "kiln"}, 1e-2, 2e-2);
  In xf{"x", {2, 9, 11, 8}}, wf{"w", {16, 3, 3, 8}, DataType::kFloat, true},
      bf{"b", {16}, DataType::kFloat, true}, zf{"z", {2, 9, 11, 16}};
  post["activation"] = Attribute::FromString("LeakyRelu");
  RunCase({"FusedConvNhwc", {xf, wf, bf, zf}, post, 1, 17, "kiln"}, 1e-4, 1e-4);
  // LeakyReLU (Darknet/YOLO, slope 0.1): a dense 3x3 (cuDNN's graph RELU_FWD with a lower slope), a 1x1 and a
  // depthwise 3x3 (kiln's kernels), FP16 and FP32.
  const AttributeMap leaky = {{"activation", Attribute::FromString("LeakyRelu")},
                              {"activation_alpha", Attribute::FromFloat(0.1f)},
                              {"pads", Attribute::FromInts({1, 1, 1, 1})}};
  RunCase({"FusedConvNhwc", {xh, wh, bh, zh}, leaky, 1, 17, "kiln"}, 1e-2, 2e-2);
  RunCase(
      {"FusedConvNhwc",
       {x1, w1, b1},
       {{"activation", Attribute::FromString("LeakyRelu")}, {"activation_alpha", Attribute::FromFloat(0.1f)}},
       1,
       17,
       "kiln"},
      1e-4, 1e-4);
  RunCase({"FusedConvNhwc",
           {{"x", {2, 14, 14, 64}, DataType::kFloat16},
            {"w", {64, 3, 3, 1}, DataType::kFloat16, true},
            {"b", {64}, DataType::kFloat16, true}},
           {{"activation", Attribute::FromString("LeakyRelu")},
            {"group", Attribute::FromInt(64)},
            {"pads", Attribute::FromInts({1, 1, 1, 1})}},
           1,
           17,
           "kiln"},
          1e-2, 2e-2);
  // Depthwise: our own kernel (16-byte channel vectors when C allows), every epilogue.
  AttributeMap dw5 = {{"activation", Attribute::FromString("Swish")}, {"group", Attribute::FromInt(32)},
                      {"strides", Attribute::FromInts({2, 2})}, {"pads", Attribute::FromInts({2, 2, 2, 2})}};
  RunCase({"FusedConvNhwc", {{"x", {2, 15, 15, 32}}, {"w", {32, 5, 5, 1}, DataType::kFloat, true}, {"b", {32}, DataType::kFloat, true}},
           dw5, 1, 17, "kiln"}, 1e-4, 1e-4);
  AttributeMap dw3 = {{"activation", Attribute::FromString("Clip")}, {"activation_min", Attribute::FromFloat(0.f)},
                      {"activation_max", Attribute::FromFloat(6.f)}, {"group", Attribute::FromInt(16)},
                      {"pads", Attribute::FromInts({1, 1, 1, 1})}, {"dilations", Attribute::FromInts({1, 1})}};
  RunCase({"FusedConvNhwc", {{"x", {2, 14, 13, 16}, DataType::kFloat16}, {"w", {16, 3, 3, 1}, DataType::kFloat16, true},
                             {"b", {16}, DataType::kFloat16, true}, {"z", {2, 14, 13, 16}, DataType::kFloat16}},
           dw3, 1, 17, "kiln"}, 1e-2, 2e-2);
  RunCase({"FusedConvNhwc", {{"x", {1, 7, 9, 5}}, {"w", {5, 3, 3, 1}, DataType::kFloat, true}},
           {{"activation", Attribute::FromString("Sigmoid")}, {"group", Attribute::FromInt(5)}, {"dilations", Attribute::FromInts({2, 2})},
            {"pads", Attribute::FromInts({2, 2, 2, 2})}}, 1, 17, "kiln"}, 1e-4, 1e-4);
  // MobileNetV3's hard activations: HardSwish in the depthwise epilogue (FP16, 16-byte vectors, and FP32 of odd
  // channels), HardSigmoid with torch's alpha 1/6 after a 1x1 (the small-channel kernel or cuBLASLt and a pass).
  AttributeMap dw_hs = {{"activation", Attribute::FromString("HardSwish")}, {"group", Attribute::FromInt(24)},
                        {"pads", Attribute::FromInts({1, 1, 1, 1})}};
  RunCase({"FusedConvNhwc", {{"x", {2, 11, 13, 24}, DataType::kFloat16}, {"w", {24, 3, 3, 1}, DataType::kFloat16, true},
                             {"b", {24}, DataType::kFloat16, true}}, dw_hs, 1, 17, "kiln"}, 1e-2, 2e-2);
  dw_hs["group"] = Attribute::FromInt(5);
  RunCase({"FusedConvNhwc", {{"x", {1, 9, 9, 5}}, {"w", {5, 3, 3, 1}, DataType::kFloat, true}, {"b", {5}, DataType::kFloat, true}},
           dw_hs, 1, 17, "kiln"}, 1e-4, 1e-4);
  const AttributeMap hsig = {{"activation", Attribute::FromString("HardSigmoid")},
                             {"activation_alpha", Attribute::FromFloat(1.f / 6)}, {"activation_beta", Attribute::FromFloat(0.5f)}};
  RunCase({"FusedConvNhwc", {{"x", {2, 7, 9, 32}, DataType::kFloat16}, {"w", {16, 1, 1, 32}, DataType::kFloat16, true},
                             {"b", {16}, DataType::kFloat16, true}}, hsig, 1, 17, "kiln"}, 1e-2, 2e-2);
  RunCase({"FusedConvNhwc", {{"x", {2, 7, 9, 96}}, {"w", {160, 1, 1, 96}, DataType::kFloat, true}, {"b", {160}, DataType::kFloat, true}},
           hsig, 1, 17, "kiln"}, 1e-4, 1e-4);
  // The shared-memory kernel's channel tiles (272 = 34 groups of 8: a second, partial tile), its grid-stride
  // walk (33800 pixels of 32 groups: more than 4096 blocks of 8), and a 7x7 filter (the direct kernel).
  const AttributeMap dw_relu = {{"activation", Attribute::FromString("Relu")}, {"group", Attribute::FromInt(272)},
                                {"strides", Attribute::FromInts({2, 2})}, {"pads", Attribute::FromInts({1, 1, 1, 1})}};
  RunCase({"FusedConvNhwc", {{"x", {2, 9, 10, 272}, DataType::kFloat16}, {"w", {272, 3, 3, 1}, DataType::kFloat16, true},
                             {"b", {272}, DataType::kFloat16, true}}, dw_relu, 1, 17, "kiln"}, 1e-2, 2e-2);
  RunCase({"FusedConvNhwc", {{"x", {1, 130, 260, 256}, DataType::kFloat16}, {"w", {256, 3, 3, 1}, DataType::kFloat16, true}},
           {{"activation", Attribute::FromString("")}, {"group", Attribute::FromInt(256)},
            {"pads", Attribute::FromInts({1, 1, 1, 1})}}, 1, 17, "kiln"}, 1e-2, 2e-2);
  RunCase({"FusedConvNhwc", {{"x", {1, 12, 12, 8}}, {"w", {8, 7, 7, 1}, DataType::kFloat, true}, {"b", {8}, DataType::kFloat, true}},
           {{"activation", Attribute::FromString("Relu")}, {"group", Attribute::FromInt(8)},
            {"pads", Attribute::FromInts({3, 3, 3, 3})}}, 1, 17, "kiln"}, 1e-4, 1e-4);
  // kiln.Im2Col (stem_im2col): NCHW and NHWC sources, padded columns, strides, dilations, uneven pads, 2-byte words.
  RunCase({"Im2Col", {{"x", {2, 3, 17, 15}}}, {{"kernel_shape", Attribute::FromInts({7, 7})},
           {"strides", Attribute::FromInts({2, 2})}, {"pads", Attribute::FromInts({3, 3, 3, 3})},
           {"columns", Attribute::FromInt(152)}, {"channels_last", Attribute::FromInt(0)}}, 1, 17, "kiln"}, 0, 0);
  RunCase({"Im2Col", {{"x", {2, 13, 11, 4}, DataType::kFloat16}}, {{"kernel_shape", Attribute::FromInts({3, 3})},
           {"strides", Attribute::FromInts({2, 1})}, {"pads", Attribute::FromInts({1, 2, 3, 0})},
           {"dilations", Attribute::FromInts({2, 3})}, {"columns", Attribute::FromInt(40)}}, 1, 17, "kiln"}, 0, 0);
  RunCase({"Im2Col", {{"x", {1, 9, 10, 3}}}, {{"kernel_shape", Attribute::FromInts({3, 3})},  // 27 columns: per element
           {"pads", Attribute::FromInts({1, 1, 1, 1})}}, 1, 17, "kiln"}, 0, 0);
  // Tiles past one row of 32 pixels and a partial last tile (OW 45), NCHW and NHWC, converting as the Cast
  // before it did (cast_into_im2col): float32 → float16 and bfloat16, float16 → float32.
  const int64_t f16 = static_cast<int64_t>(DataType::kFloat16), bf16 = static_cast<int64_t>(DataType::kBFloat16);
  RunCase({"Im2Col", {{"x", {2, 3, 21, 90}}}, {{"kernel_shape", Attribute::FromInts({7, 7})},
           {"strides", Attribute::FromInts({2, 2})}, {"pads", Attribute::FromInts({3, 3, 3, 3})},
           {"columns", Attribute::FromInt(152)}, {"channels_last", Attribute::FromInt(0)}, {"to", Attribute::FromInt(f16)}},
           1, 17, "kiln"}, 0, 0);
  RunCase({"Im2Col", {{"x", {1, 11, 45, 3}}}, {{"kernel_shape", Attribute::FromInts({3, 3})},
           {"pads", Attribute::FromInts({1, 1, 1, 1})}, {"columns", Attribute::FromInt(32)}, {"to", Attribute::FromInt(bf16)}},
           1, 17, "kiln"}, 0, 0);
  RunCase({"Im2Col", {{"x", {1, 3, 12, 40}, DataType::kFloat16}}, {{"kernel_shape", Attribute::FromInts({3, 3})},
           {"columns", Attribute::FromInt(28)}, {"channels_last", Attribute::FromInt(0)},
           {"to", Attribute::FromInt(static_cast<int64_t>(DataType::kFloat))}}, 1, 17, "kiln"}, 0, 0);
  // A pixel's row of A wider than the block's 256 16-byte chunks (16x16x9 float32 columns = 576 chunks).
  RunCase({"Im2Col", {{"x", {1, 20, 30, 9}}}, {{"kernel_shape", Attribute::FromInts({16, 16})},
           {"strides", Attribute::FromInts({3, 1})}}, 1, 17, "kiln"}, 0, 0);
  // A window too wide for a tile (kw 11 dilated 100): the chunked gather; and converting per element (27 columns).
  RunCase({"Im2Col", {{"x", {1, 12, 1040, 7}}}, {{"kernel_shape", Attribute::FromInts({11, 11})},
           {"dilations", Attribute::FromInts({1, 100})}, {"columns", Attribute::FromInt(848)}}, 1, 17, "kiln"}, 0, 0);
  RunCase({"Im2Col", {{"x", {1, 9, 10, 3}}}, {{"kernel_shape", Attribute::FromInts({3, 3})},
           {"pads", Attribute::FromInts({1, 1, 1, 1})}, {"to", Attribute::FromInt(f16)}}, 1, 17, "kiln"}, 0, 0);
  // kiln.Im2ColConv (im2col_conv): the windows gathered in shared memory and multiplied there. A ResNet stem
  // (float32 NCHW, 7x7 stride 2, 152 columns, ReLU, bias); float16 NHWC with ReLU6 and no bias; 136 channels
  // (a second, partial tile of 64) over 437 pixels (a partial block of 128), dilated, uneven pads, HardSwish.
  RunCase({"Im2ColConv", {{"x", {2, 3, 37, 41}}, {"w", {64, 1, 1, 152}, DataType::kFloat16, true},
                          {"b", {64}, DataType::kFloat16, true}},
           {{"kernel_shape", Attribute::FromInts({7, 7})}, {"strides", Attribute::FromInts({2, 2})},
            {"pads", Attribute::FromInts({3, 3, 3, 3})}, {"columns", Attribute::FromInt(152)},
            {"channels_last", Attribute::FromInt(0)}, {"to", Attribute::FromInt(f16)},
            {"activation", Attribute::FromString("Relu")}}, 1, 17, "kiln"}, 1e-2, 2e-2);
  RunCase({"Im2ColConv", {{"x", {1, 33, 35, 3}, DataType::kFloat16}, {"w", {24, 1, 1, 32}, DataType::kFloat16, true}},
           {{"kernel_shape", Attribute::FromInts({3, 3})}, {"strides", Attribute::FromInts({2, 2})},
            {"pads", Attribute::FromInts({1, 1, 1, 1})}, {"columns", Attribute::FromInt(32)},
            {"activation", Attribute::FromString("Clip")}, {"activation_min", Attribute::FromFloat(0.f)},
            {"activation_max", Attribute::FromFloat(6.f)}}, 1, 17, "kiln"}, 1e-2, 2e-2);
  RunCase({"Im2ColConv", {{"x", {1, 3, 19, 23}, DataType::kFloat16}, {"w", {136, 1, 1, 32}, DataType::kFloat16, true},
                          {"b", {136}, DataType::kFloat16, true}},
           {{"kernel_shape", Attribute::FromInts({3, 3})}, {"dilations", Attribute::FromInts({2, 1})},
            {"pads", Attribute::FromInts({2, 0, 1, 1})}, {"columns", Attribute::FromInt(32)},
            {"channels_last", Attribute::FromInt(0)}, {"activation", Attribute::FromString("HardSwish")}},
           1, 17, "kiln"}, 1e-2, 2e-2);
  RunCase({"PoolNhwc", {{"x", {2, 9, 11, 5}}}, {{"pool", Attribute::FromString("MaxPool")},
           {"kernel_shape", Attribute::FromInts({3, 3})}, {"strides", Attribute::FromInts({2, 2})}, {"pads", Attribute::FromInts({1, 1, 1, 1})}}, 1, 17, "kiln"});
  RunCase({"PoolNhwc", {{"x", {2, 7, 7, 24}}}, {{"pool", Attribute::FromString("GlobalAveragePool")}}, 1, 17, "kiln"});
  // kiln's global pool kernel: scalar channels past one block of 32 vectors, rows not dividing the pixels, FP16, max.
  RunCase({"PoolNhwc", {{"x", {3, 5, 7, 70}}}, {{"pool", Attribute::FromString("GlobalAveragePool")}}, 1, 17, "kiln"});
  RunCase({"PoolNhwc", {{"x", {2, 6, 6, 40}, DataType::kFloat16}}, {{"pool", Attribute::FromString("GlobalAveragePool")}},
           1, 17, "kiln"}, 1e-3, 1e-3);
  RunCase({"PoolNhwc", {{"x", {2, 3, 9, 33}}}, {{"pool", Attribute::FromString("GlobalMaxPool")}}, 1, 17, "kiln"});
  // 16-byte vectors: 33 of them (two channel tiles) over 28x28 pixels, FP16 average and max; FP32 of 4-wide.
  RunCase({"PoolNhwc", {{"x", {2, 28, 28, 264}, DataType::kFloat16}}, {{"pool", Attribute::FromString("GlobalAveragePool")}},
           1, 17, "kiln"}, 1e-3, 1e-3);
  RunCase({"PoolNhwc", {{"x", {3, 7, 9, 72}, DataType::kFloat16}}, {{"pool", Attribute::FromString("GlobalMaxPool")}},
           1, 17, "kiln"});
  RunCase({"PoolNhwc", {{"x", {2, 13, 11, 36}}}, {{"pool", Attribute::FromString("GlobalMaxPool")}}, 1, 17, "kiln"});
  // kiln.GateMulNhwc (gate_mul): MobileNetV3's gate (HardSigmoid, 960 channels from 240, batch 1: 8-channel
  // slices), EfficientNet's (Sigmoid, FP32 4-wide, 56x56 pixels: chunks), FP16 channels that are not a multiple
  // of the vector (scalars), no bias.
  RunCase({"GateMulNhwc", {{"x", {1, 7, 7, 960}, DataType::kFloat16}, {"h", {1, 1, 1, 240}, DataType::kFloat16},
                           {"w", {960, 1, 1, 240}, DataType::kFloat16, true}, {"b", {960}, DataType::kFloat16, true}},
           {{"activation", Attribute::FromString("HardSigmoid")}, {"activation_alpha", Attribute::FromFloat(1.f / 6)},
            {"activation_beta", Attribute::FromFloat(0.5f)}}, 1, 17, "kiln"}, 1e-2, 1e-2);
  RunCase({"GateMulNhwc", {{"x", {2, 56, 56, 32}}, {"h", {2, 1, 1, 8}}, {"w", {32, 1, 1, 8}, DataType::kFloat, true},
                           {"b", {32}, DataType::kFloat, true}},
           {{"activation", Attribute::FromString("Sigmoid")}}, 1, 17, "kiln"}, 1e-4, 1e-4);
  RunCase({"GateMulNhwc", {{"x", {3, 5, 6, 20}, DataType::kFloat16}, {"h", {3, 1, 1, 6}, DataType::kFloat16},
                           {"w", {20, 1, 1, 6}, DataType::kFloat16, true}},
           {{"activation", Attribute::FromString("Sigmoid")}}, 1, 17, "kiln"}, 1e-2, 1e-2);
  // GoogLeNet's ceil_mode MaxPool channels-last (kiln's window kernel: cuDNN's output size differs), FP16.
  RunCase({"PoolNhwc", {{"x", {2, 14, 14, 24}, DataType::kFloat16}}, {{"pool", Attribute::FromString("MaxPool")},
           {"kernel_shape", Attribute::FromInts({3, 3})}, {"strides", Attribute::FromInts({2, 2})},
           {"ceil_mode", Attribute::FromInt(1)}}, 1, 17, "kiln"}, 1e-3, 1e-3);
  RunCase({"PoolNhwc", {{"x", {1, 8, 8, 3}}}, {{"pool", Attribute::FromString("AveragePool")},
           {"kernel_shape", Attribute::FromInts({2, 2})}, {"strides", Attribute::FromInts({2, 2})}}, 1, 17, "kiln"});
  // The 16-byte form (C a multiple of 4 floats / 8 halves): pads, both average counts, a window with no tap in X.
  RunCase({"PoolNhwc", {{"x", {2, 7, 9, 16}}}, {{"pool", Attribute::FromString("MaxPool")},
           {"kernel_shape", Attribute::FromInts({3, 3})}, {"strides", Attribute::FromInts({2, 2})},
           {"pads", Attribute::FromInts({1, 1, 1, 1})}}, 1, 17, "kiln"});
  RunCase({"PoolNhwc", {{"x", {2, 9, 9, 40}, DataType::kFloat16}}, {{"pool", Attribute::FromString("AveragePool")},
           {"kernel_shape", Attribute::FromInts({3, 3})}, {"pads", Attribute::FromInts({1, 1, 1, 1})},
           {"count_include_pad", Attribute::FromInt(1)}}, 1, 17, "kiln"}, 1e-3, 1e-3);
  RunCase({"PoolNhwc", {{"x", {1, 6, 5, 8}}}, {{"pool", Attribute::FromString("AveragePool")},
           {"kernel_shape", Attribute::FromInts({2, 2})}, {"strides", Attribute::FromInts({2, 2})},
           {"pads", Attribute::FromInts({0, 1, 1, 0})}}, 1, 17, "kiln"});
}

// kiln.FusedMatMul = act(A·B + bias): cuBLASLt BIAS / RELU_BIAS / RELU / GELU_BIAS / GELU epilogues.
void FusedMatMul(const Sink& RunCase) {
  const AttributeMap relu = {{"activation", Attribute::FromString("Relu")}};
  const AttributeMap ident = {{"activation", Attribute::FromString("")}};
  In a{"a", {3, 7, 16}}, b{"b", {16, 10}, DataType::kFloat, true}, bias{"bias", {10}, DataType::kFloat, true};
  RunCase({"FusedMatMul", {a, b, bias}, relu, 1, 17, "kiln"}, 1e-4, 1e-4);
  RunCase({"FusedMatMul", {a, b, bias}, ident, 1, 17, "kiln"}, 1e-4, 1e-4);
  RunCase({"FusedMatMul", {a, b}, relu, 1, 17, "kiln"}, 1e-4, 1e-4);
  RunCase({"FusedMatMul", {a, b, bias, {"z", {3, 7, 10}}}, relu, 1, 17, "kiln"}, 1e-4, 1e-4);  // residual
  RunCase({"FusedMatMul", {a, b, bias, {"z", {3, 7, 10}}}, ident, 1, 17, "kiln"}, 1e-4, 1e-4);
  RunCase({"FusedMatMul", {{"a", {17, 33}}, {"b", {33, 65}, DataType::kFloat, true}, {"bias", {65}, DataType::kFloat, true}},
           relu, 1, 17, "kiln"}, 1e-4, 1e-4);
  RunCase({"FusedMatMul", {{"a", {2, 9, 64}, DataType::kFloat16}, {"b", {64, 48}, DataType::kFloat16, true},
                           {"bias", {48}, DataType::kFloat16, true}},
           relu, 1, 17, "kiln"}, 1e-2, 3e-2);
  // GELU_BIAS / GELU (passes/gelu_epilogue.cc): cuBLASLt's tanh GELU against the reference's.
  const AttributeMap gelu = {{"activation", Attribute::FromString("GeluTanh")}};
  RunCase({"FusedMatMul", {a, b, bias}, gelu, 1, 17, "kiln"}, 1e-4, 1e-4);
  RunCase({"FusedMatMul", {{"a", {2, 128, 64}, DataType::kFloat16}, {"b", {64, 256}, DataType::kFloat16, true},
                           {"bias", {256}, DataType::kFloat16, true}},
           gelu, 1, 17, "kiln"}, 1e-2, 3e-2);
  RunCase({"FusedMatMul", {{"a", {5, 64}, DataType::kFloat16}, {"b", {64, 32}, DataType::kFloat16, true}}, gelu, 1,
           17, "kiln"}, 1e-2, 3e-2);
  // Per-sample weights (gate_into_projection: an SE gate folded into the projection): B batched like A, one
  // bias for every sample, a batched residual; FP16.
  RunCase({"FusedMatMul",
           {{"a", {3, 37, 24}, DataType::kFloat16},
            {"b", {3, 24, 16}, DataType::kFloat16},
            {"bias", {16}, DataType::kFloat16, true},
            {"z", {3, 37, 16}, DataType::kFloat16}},
           ident,
           1,
           17,
           "kiln"},
          1e-2, 3e-2);
}

// kiln.QConv / kiln.QMatMul (qgemm.cu): int8 cuBLASLt (K and channels multiples
// of 4, zero zero points) or the direct kernel (the rest); float and
// requantized outputs; per-tensor and per-channel weight scales. Exact against
// the CPU reference: integer accumulation, the same float epilogue.
void Int8Products(const Sink& RunCase) {
  auto xs = In{"xs", {}, DataType::kFloat, true, {}, false, false, {0.05f}};
  auto ys = In{"ys", {}, DataType::kFloat, true, {}, false, false, {0.9f}};
  auto ws_pc = [](int64_t m) {
    std::vector<float> v;
    for (int64_t i = 0; i < m; ++i) v.push_back(0.002f + 0.0005f * static_cast<float>(i % 7));
    return In{"ws", {m}, DataType::kFloat, true, {}, false, false, v};
  };
  auto ws_pt = In{"ws", {}, DataType::kFloat, true, {}, false, false, {0.003f}};
  auto zp8 = [](const char* name, int64_t v) { return In{name, {}, DataType::kInt8, true, {v}}; };
  auto bias = [](int64_t m) {
    std::vector<int64_t> v;
    for (int64_t i = 0; i < m; ++i) v.push_back((i * 37) % 201 - 100);
    return In{"bias", {m}, DataType::kInt32, true, v};
  };
  const In none{""};
  // QMatMul, cuBLASLt path: a [3, 7, 32] x b [32, 16]; float, int8 and uint8 outputs.
  In a{"a", {3, 7, 32}, DataType::kInt8}, b{"b", {32, 16}, DataType::kInt8, true};
  RunCase({"QMatMul", {a, xs, zp8("xz", 0), b, ws_pc(16), none, bias(16)}, {}, 1, 17, "kiln"}, 0, 0);
  RunCase({"QMatMul", {a, xs, none, b, ws_pt, none, bias(16), ys, zp8("yz", -3)}, {}, 1, 17, "kiln"}, 0, 0);
  RunCase({"QMatMul", {a, xs, none, b, ws_pc(16), none, none, ys, {"yz", {}, DataType::kUInt8, true, {128}}}, {}, 1, 17,
           "kiln"}, 0, 0);
  // The direct kernel: odd K / N, uint8 activations with a zero point.
  RunCase({"QMatMul", {{"a", {5, 13}, DataType::kInt8}, xs, none, {"b", {13, 9}, DataType::kInt8, true}, ws_pc(9), none,
                       bias(9)}, {}, 1, 17, "kiln"}, 0, 0);
  RunCase({"QMatMul", {{"a", {6, 32}, DataType::kUInt8}, xs, {"xz", {}, DataType::kUInt8, true, {128}}, b, ws_pc(16),
                       none, bias(16), ys, zp8("yz", 0)}, {}, 1, 17, "kiln"}, 0, 0);
  // QConv, cuBLASLt path: 3x3 pad 1 stride 1 and 2; 1x1.
  const AttributeMap k3 = {{"kernel_shape", Attribute::FromInts({3, 3})}, {"pads", Attribute::FromInts({1, 1, 1, 1})}};
  AttributeMap k3s2 = k3;
  k3s2["strides"] = Attribute::FromInts({2, 2});
  In x{"x", {2, 8, 9, 11}, DataType::kInt8}, w{"w", {16, 8, 3, 3}, DataType::kInt8, true};
  RunCase({"QConv", {x, xs, none, w, ws_pc(16), none, bias(16)}, k3, 1, 17, "kiln"}, 0, 0);
  RunCase({"QConv", {x, xs, zp8("xz", 0), w, ws_pt, zp8("wz", 0), bias(16), ys, zp8("yz", 5)}, k3s2, 1, 17, "kiln"}, 0, 0);
  RunCase({"QConv", {x, xs, none, {"w", {12, 8, 1, 1}, DataType::kInt8, true}, ws_pc(12), none, none, ys}, {}, 1, 17,
           "kiln"}, 0, 0);
  // The direct kernel: 3 input channels (K = 27), groups (depthwise), uint8 activations.
  RunCase({"QConv", {{"x", {1, 3, 10, 10}, DataType::kInt8}, xs, none, {"w", {8, 3, 3, 3}, DataType::kInt8, true},
                     ws_pc(8), none, bias(8), ys, zp8("yz", 0)}, k3, 1, 17, "kiln"}, 0, 0);
  AttributeMap dw = k3;
  dw["group"] = Attribute::FromInt(8);
  RunCase({"QConv", {x, xs, none, {"w", {8, 1, 3, 3}, DataType::kInt8, true}, ws_pc(8), none, bias(8)}, dw, 1, 17,
           "kiln"}, 0, 0);
  RunCase({"QConv", {{"x", {2, 8, 9, 11}, DataType::kUInt8}, xs, {"xz", {}, DataType::kUInt8, true, {128}}, w,
                     ws_pc(16), none, bias(16), ys, {"yz", {}, DataType::kUInt8, true, {128}}}, k3, 1, 17, "kiln"}, 0, 0);
  // The epilogue's tail (passes/qconv_epilogue.cc): residual z (float32, float16, int8 with its scale), ReLU /
  // Clip, requantized or float16 output; bit-exact with the CPU reference's float operations.
  AttributeMap k3relu = k3, k3clip = k3, k3half = k3;
  k3relu["activation"] = Attribute::FromString("Relu");
  k3clip["activation"] = Attribute::FromString("Clip");
  k3clip["activation_min"] = Attribute::FromFloat(-0.5f);
  k3clip["activation_max"] = Attribute::FromFloat(6.f);
  k3half["activation"] = Attribute::FromString("Relu");
  k3half["to"] = Attribute::FromInt(static_cast<int64_t>(DataType::kFloat16));
  const In zs{"zs", {}, DataType::kFloat, true, {}, false, false, {0.07f}};
  auto k3relu_1x1 = [] { return AttributeMap{{"activation", Attribute::FromString("Relu")}}; };
  RunCase({"QConv", {x, xs, none, w, ws_pc(16), none, bias(16), ys, zp8("yz", 0), {"z", {2, 16, 9, 11}, DataType::kFloat}},
           k3relu, 1, 17, "kiln"}, 0, 0);
  RunCase({"QConv", {x, xs, none, w, ws_pc(16), none, bias(16), ys, zp8("yz", 2), {"z", {2, 16, 9, 11}, DataType::kInt8},
                     zs, zp8("zz", -1)}, k3clip, 1, 17, "kiln"}, 0, 0);
  RunCase({"QConv", {x, xs, none, w, ws_pc(16), none, bias(16), none, none, {"z", {2, 16, 9, 11}, DataType::kFloat16}},
           k3half, 1, 17, "kiln"}, 0, 0);
  RunCase({"QMatMul", {a, xs, none, b, ws_pc(16), none, bias(16), none, none, {"z", {3, 7, 16}, DataType::kFloat}},
           {{"activation", Attribute::FromString("Relu")}}, 1, 17, "kiln"}, 0, 0);
  // kiln.QConvNhwc: 3x3 through the NHWC im2col (16-byte and 4-byte chunks), 1x1 straight from x, stride 2, the
  // epilogue's tail with an NHWC residual, and the direct kernel (3 channels, groups, uint8 with a zero point).
  In xn{"x", {2, 9, 11, 16}, DataType::kInt8}, wn{"w", {16, 3, 3, 16}, DataType::kInt8, true};
  RunCase({"QConvNhwc", {xn, xs, none, wn, ws_pc(16), none, bias(16)}, k3, 1, 17, "kiln"}, 0, 0);
  RunCase({"QConvNhwc", {{"x", {2, 9, 11, 8}, DataType::kInt8}, xs, none, {"w", {12, 3, 3, 8}, DataType::kInt8, true},
                         ws_pt, none, bias(12), ys, zp8("yz", 3)}, k3s2, 1, 17, "kiln"}, 0, 0);
  // These two take cuBLASLt's fused epilogue (int8 D, per-channel alpha, bias, beta·z, ReLU) where it has one:
  // rounding in its order of float operations, within a step of the reference's (tolerance ~1.5 steps).
  RunCase({"QConvNhwc", {xn, xs, none, {"w", {24, 1, 1, 16}, DataType::kInt8, true}, ws_pc(24), none, bias(24), ys,
                         zp8("yz", 0), {"z", {2, 9, 11, 24}, DataType::kInt8}, zs, zp8("zz", 0)}, k3relu_1x1(), 1, 17,
           "kiln"}, 0, 0.06);
  RunCase({"QConvNhwc", {xn, xs, none, wn, ws_pc(16), none, bias(16), ys, zp8("yz", 0)}, k3relu, 1, 17, "kiln"}, 0,
          0.06);
  // SiLU (YOLO's): the epilogue kernel (expf within an ulp or two of std::exp: a step at most), or cuDNN's graph.
  AttributeMap k3silu = k3;
  k3silu["activation"] = Attribute::FromString("Swish");
  RunCase({"QConvNhwc", {xn, xs, none, wn, ws_pc(16), none, bias(16), ys, zp8("yz", 0)}, k3silu, 1, 17, "kiln"}, 0,
          0.06);
  RunCase({"QConv", {x, xs, none, w, ws_pc(16), none, bias(16), ys, zp8("yz", -2)}, k3silu, 1, 17, "kiln"}, 0, 0.06);
  // A 3x3 layer with an int8 residual: cuDNN's graph API (implicit GEMM, the epilogue in its kernel) where it
  // has an engine, else the im2col and cuBLASLt's fused epilogue.
  RunCase({"QConvNhwc", {xn, xs, none, wn, ws_pc(16), none, bias(16), ys, zp8("yz", 0),
                         {"z", {2, 9, 11, 16}, DataType::kInt8}, zs, zp8("zz", 0)}, k3relu, 1, 17, "kiln"}, 0, 0.06);
  RunCase({"QConvNhwc", {xn, xs, none, wn, ws_pc(16), none, bias(16), none, none, {"z", {2, 9, 11, 16}, DataType::kFloat16}},
           k3half, 1, 17, "kiln"}, 0, 0);
  RunCase({"QConvNhwc", {{"x", {1, 10, 10, 3}, DataType::kInt8}, xs, none, {"w", {8, 3, 3, 3}, DataType::kInt8, true},
                         ws_pc(8), none, bias(8), ys, zp8("yz", 0)}, k3, 1, 17, "kiln"}, 0, 0);
  RunCase({"QConvNhwc", {{"x", {2, 9, 11, 8}, DataType::kInt8}, xs, none, {"w", {8, 3, 3, 1}, DataType::kInt8, true},
                         ws_pc(8), none, bias(8)}, dw, 1, 17, "kiln"}, 0, 0);
  RunCase({"QConvNhwc", {{"x", {2, 9, 11, 16}, DataType::kUInt8}, xs, {"xz", {}, DataType::kUInt8, true, {128}}, wn,
                         ws_pc(16), none, bias(16), ys, {"yz", {}, DataType::kUInt8, true, {128}}}, k3, 1, 17, "kiln"}, 0, 0);
  // ONNX's MatMulInteger / ConvInteger (integer_ops.cu): zero points computed at run time (non-constant inputs,
  // as DynamicQuantizeLinear's), per row / per column / per channel, mixed signedness, groups and strides.
  const DataType u8 = DataType::kUInt8, i8 = DataType::kInt8;
  RunCase({"MatMulInteger", {{"a", {2, 5, 32}, u8}, {"b", {32, 16}, i8, true}, {"az", {}, u8}}, {}, 1, 10}, 0, 0);
  RunCase({"MatMulInteger", {{"a", {7, 13}, i8}, {"b", {13, 9}, i8}, {"az", {7}, i8, true, {3, -2, 0, 5}},
                             {"bz", {9}, i8, true, {-1, 4, 2}}}, {}, 1, 10}, 0, 0);
  RunCase({"MatMulInteger", {{"a", {4, 24}, u8}, {"b", {24, 8}, u8, true}, {"az", {}, u8, true, {128}},
                             {"bz", {}, u8, true, {121}}}, {}, 1, 10}, 0, 0);
  RunCase({"ConvInteger", {{"x", {2, 8, 9, 11}, u8}, {"w", {16, 8, 3, 3}, i8, true}, {"xz", {}, u8}}, k3, 1, 10}, 0, 0);
  AttributeMap dw2 = dw;
  dw2["strides"] = Attribute::FromInts({2, 2});
  RunCase({"ConvInteger", {{"x", {1, 8, 10, 10}, i8}, {"w", {8, 1, 3, 3}, i8, true}, {"xz", {}, i8, true, {-3}},
                           {"wz", {8}, i8, true, {1, 0, -2, 3}}}, dw2, 1, 10}, 0, 0);
}

// kiln.QuantizeE4M3 and kiln.F8MatMul (f8gemm.cu).
// QuantizeE4M3 must give core/float8.h's bits exactly: x uniform in [-2, 2] at
// scale 1/224 (|x| / scale beyond 448 saturates), NaN and ±Inf among float32
// values, the 8-wide kernel (element counts multiple of 8) and the scalar one.
// F8MatMul: cuBLASLt FP8 (TN, K and N multiples of 16), float32 and float16
// output, rows off any tile. The E4M3 products are exact in FP32, but Hopper's
// FP8 tensor cores accumulate with fewer bits than FP32 (about 14 kept, as
// DeepSeek-V3's report measured on H800): on an H100 (2026-12-05) the float32
// cases were off by up to 2.2e-3 relative per element (max abs 6e-4 of the
// RMS, rel L2 1e-4 to 1.6e-4) at K = 32 and 64, so they allow rtol 5e-3 and
// atol 1e-3 of the RMS. A wrong scale, layout or code is off by O(1).
void Fp8Products(const Sink& RunCase) {
  auto scale = [](const char* name, float v) { return In{name, {}, DataType::kFloat, true, {}, false, false, {v}}; };
  const DataType f16 = DataType::kFloat16;
  // Finite E4M3 codes of both signs below `top` (0x7f / 0xff are NaN; 0x48 is 4.0).
  auto codes = [](const char* name, std::vector<int64_t> dims, int64_t top, bool constant) {
    std::vector<int64_t> c;
    for (int64_t i = 0; i < 251; ++i) c.push_back(((i * 37) % top) | (i % 2 ? 0x80 : 0));
    return In{name, std::move(dims), DataType::kFloat8E4M3FN, constant, c};
  };
  auto weight = [&](int64_t n, int64_t k) { return codes("b", {n, k}, 127, true); };
  auto act = [&](std::vector<int64_t> dims) { return codes("a", std::move(dims), 0x48, false); };
  const In xs = scale("xs", 1.f / 224), as = scale("as", 1.f / 16), bs = scale("bs", 0.04f), none{""};
  In special{"x", {5, 16}};
  special.special = true;
  RunCase({"QuantizeE4M3", {{"x", {3, 7, 32}}, xs}, {}, 1, 17, "kiln"}, 0, 0);
  RunCase({"QuantizeE4M3", {{"x", {2, 5, 64}, f16}, xs}, {}, 1, 17, "kiln"}, 0, 0);
  RunCase({"QuantizeE4M3", {{"x", {5, 7}}, xs}, {}, 1, 17, "kiln"}, 0, 0);
  RunCase({"QuantizeE4M3", {special, xs}, {}, 1, 17, "kiln"}, 0, 0);
  auto to = [](DataType dt, const char* activation = "") {
    return AttributeMap{{"to", Attribute::FromInt(static_cast<int64_t>(dt))},
                        {"activation", Attribute::FromString(activation)}};
  };
  RunCase({"F8MatMul", {act({3, 7, 32}), as, weight(16, 32), bs}, to(DataType::kFloat), 1, 17, "kiln"}, 5e-3, 1e-3);
  RunCase({"F8MatMul", {act({13, 64}), as, weight(48, 64), bs}, to(DataType::kFloat), 1, 17, "kiln"}, 5e-3, 1e-3);
  RunCase({"F8MatMul", {act({2, 5, 64}), as, weight(32, 64), bs}, to(f16), 1, 17, "kiln"}, 1e-2, 1e-2);
  // The epilogue (fuse_gpu): float16 through cuBLASLt's BIAS / RELU_BIAS / RELU with z as C; float32 through
  // C plus BiasActKernel. The residual and bias are of the product's magnitude, so a lost term shows.
  RunCase({"F8MatMul", {act({4, 33, 64}), as, weight(32, 64), bs, {"bias", {32}, f16, true}, {"z", {4, 33, 32}, f16}},
           to(f16, "Relu"), 1, 17, "kiln"}, 1e-2, 1e-2);
  RunCase({"F8MatMul", {act({7, 64}), as, weight(48, 64), bs, {"bias", {48}, f16, true}}, to(f16), 1, 17, "kiln"},
          1e-2, 1e-2);
  RunCase({"F8MatMul", {act({7, 64}), as, weight(48, 64), bs, none, {"z", {7, 48}, f16}}, to(f16, "Relu"), 1, 17,
           "kiln"}, 1e-2, 1e-2);
  RunCase({"F8MatMul", {act({13, 64}), as, weight(48, 64), bs, {"bias", {48}, DataType::kFloat, true}, {"z", {13, 48}}},
           to(DataType::kFloat, "Relu"), 1, 17, "kiln"}, 5e-3, 1e-3);
  RunCase({"F8MatMul", {act({3, 7, 32}), as, weight(16, 32), bs, {"bias", {16}, DataType::kFloat, true}},
           to(DataType::kFloat), 1, 17, "kiln"}, 5e-3, 1e-3);
  // GELU (the tanh form) and an E4M3 output (passes/f8_epilogue.cc: BERT's fc1 writing fc2's input): cuBLASLt's
  // GELU_BIAS epilogue, D E4M3 scaled by y_scale_inv (or float16 D staged in the workspace and quantized). The
  // reference rounds the epilogue to float16 on the way, cuBLASLt keeps float32: a code may differ by one E4M3
  // step (1/16 to 1/8 of the value), hence rtol 0.13; a wrong scale, GELU or layout is off by more.
  const DataType e4m3 = DataType::kFloat8E4M3FN;
  const In yi = scale("yi", 4.f);
  RunCase({"F8MatMul", {act({7, 64}), as, weight(48, 64), bs, {"bias", {48}, f16, true}}, to(f16, "GeluTanh"), 1, 17,
           "kiln"}, 1e-2, 1e-2);
  RunCase({"F8MatMul", {act({4, 33, 64}), as, weight(32, 64), bs, {"bias", {32}, f16, true}, none, yi},
           to(e4m3, "GeluTanh"), 1, 17, "kiln"}, 0.13, 0.02);
  RunCase({"F8MatMul", {act({7, 64}), as, weight(48, 64), bs, none, none, yi}, to(e4m3), 1, 17, "kiln"}, 0.13, 0.02);
  RunCase({"F8MatMul", {act({13, 64}), as, weight(48, 64), bs, {"bias", {48}, f16, true}, none, yi},
           to(e4m3, "Relu"), 1, 17, "kiln"}, 0.13, 0.02);
  // kiln.LayerNormE4M3: the LayerNorm kernels (warp per row in 16-byte words, scalar, block per row) storing
  // y and y / q_scale as E4M3; y rounds differently from the reference's in the last bit now and then, so its
  // code may move a step (rtol 0.13, as above).
  const In qs = scale("qs", 1.f / 64);
  RunCase({"LayerNormE4M3", {{"x", {2, 5, 768}, f16}, {"s", {768}, f16, true}, {"b", {768}, f16, true}, qs}, {}, 2, 17,
           "kiln"}, 0.13, 0.02);
  RunCase({"LayerNormE4M3", {{"x", {3, 197}}, {"s", {197}, DataType::kFloat, true}, none, qs}, {}, 2, 17, "kiln"},
          0.13, 0.02);
  RunCase({"LayerNormE4M3", {{"x", {3, 2000}, f16}, {"s", {2000}, f16, true}, {"b", {2000}, f16, true}, qs}, {}, 2,
           17, "kiln"}, 0.13, 0.02);
}

// kiln.Attention: kiln's kernel (float32; float16 head sizes cuDNN does not
// take) and cuDNN's fused attention (float16, head sizes multiple of 8), both
// layouts, key counts off the 32-key chunks, biases of every broadcast.
void Attention(const Sink& RunCase) {
  auto attrs = [](float scale, const char* layout) {
    return AttributeMap{{"scale", Attribute::FromFloat(scale)}, {"layout", Attribute::FromString(layout)}};
  };
  const DataType f16 = DataType::kFloat16;
  RunCase({"Attention", {{"q", {2, 3, 37, 16}}, {"k", {2, 3, 45, 16}}, {"v", {2, 3, 45, 24}}}, attrs(0.25f, "bhsd"),
           1, 17, "kiln"}, 1e-4, 1e-5);
  RunCase({"Attention", {{"q", {37, 6, 20}}, {"k", {45, 6, 20}}, {"v", {45, 6, 70}}, {"bias", {6, 37, 45}}},
           attrs(0.5f, "bshd"), 1, 17, "kiln"}, 1e-4, 1e-5);
  RunCase({"Attention", {{"q", {2, 33, 4, 8}}, {"k", {2, 64, 4, 8}}, {"v", {2, 64, 4, 8}}, {"mask", {2, 1, 1, 64}}},
           attrs(0.35f, "bshd"), 1, 17, "kiln"}, 1e-4, 1e-5);
  RunCase({"Attention", {{"q", {1, 2, 5, 200}}, {"k", {1, 2, 3, 200}}, {"v", {1, 2, 3, 256}}, {"bias", {5, 1}}},
           attrs(0.05f, "bhsd"), 1, 17, "kiln"}, 1e-4, 1e-5);
  RunCase({"Attention", {{"q", {33, 2, 3, 16}}, {"k", {40, 2, 3, 16}}, {"v", {40, 2, 3, 16}}}, attrs(0.25f, "sbhd"),
           1, 17, "kiln"}, 1e-4, 1e-5);
  RunCase({"Attention", {{"q", {77, 2, 12, 64}, f16}, {"k", {77, 2, 12, 64}, f16}, {"v", {77, 2, 12, 64}, f16}},
           attrs(0.125f, "sbhd"), 1, 17, "kiln"}, 1e-2, 1e-2);
  // float16: ViT-B/16's geometry (heads folded into N, seq first), BERT's with its mask, odd head size.
  RunCase({"Attention", {{"q", {197, 24, 64}, f16}, {"k", {197, 24, 64}, f16}, {"v", {197, 24, 64}, f16}},
           attrs(0.125f, "bshd"), 1, 17, "kiln"}, 1e-2, 1e-2);
  RunCase({"Attention", {{"q", {2, 128, 12, 64}, f16}, {"k", {2, 128, 12, 64}, f16}, {"v", {2, 128, 12, 64}, f16},
                         {"mask", {2, 1, 1, 128}, f16}},
           attrs(0.125f, "bshd"), 1, 17, "kiln"}, 1e-2, 1e-2);
  RunCase({"Attention", {{"q", {2, 3, 33, 20}, f16}, {"k", {2, 3, 50, 20}, f16}, {"v", {2, 3, 50, 20}, f16}},
           attrs(0.2f, "bhsd"), 1, 17, "kiln"}, 1e-2, 1e-2);
  RunCase({"Attention", {{"q", {2, 4, 70, 64}, f16}, {"k", {2, 4, 70, 64}, f16}, {"v", {2, 4, 70, 64}, f16}},
           attrs(0.125f, "bhsd"), 1, 17, "kiln"}, 1e-2, 1e-2);
  // Windows (MaxViT's 49 keys of head size 32 with a per-head bias; head size 64 in float32): the short-sequence
  // kernel or cuDNN's, whichever timed faster at Prepare.
  RunCase({"Attention", {{"q", {16, 49, 2, 32}, f16}, {"k", {16, 49, 2, 32}, f16}, {"v", {16, 49, 2, 32}, f16},
                         {"bias", {2, 49, 49}, f16}},
           attrs(0.176f, "bshd"), 1, 17, "kiln"}, 1e-2, 1e-2);
  RunCase({"Attention", {{"q", {4, 2, 49, 64}}, {"k", {4, 2, 64, 64}}, {"v", {4, 2, 64, 64}}}, attrs(0.125f, "bhsd"),
           1, 17, "kiln"}, 1e-4, 1e-5);
  // Grouped-query (8 query heads on 2 K/V heads) and multi-query (1 K/V head): kiln's kernel in
  // float32, cuDNN's in float16 (Llama's geometry, with a causal-style additive mask).
  RunCase({"Attention", {{"q", {2, 8, 37, 16}}, {"k", {2, 2, 45, 16}}, {"v", {2, 2, 45, 24}}}, attrs(0.25f, "bhsd"),
           1, 17, "kiln"}, 1e-4, 1e-5);
  RunCase({"Attention", {{"q", {2, 33, 6, 8}}, {"k", {2, 64, 1, 8}}, {"v", {2, 64, 1, 8}}}, attrs(0.35f, "bshd"),
           1, 17, "kiln"}, 1e-4, 1e-5);
  RunCase({"Attention", {{"q", {2, 8, 128, 64}, f16}, {"k", {2, 2, 128, 64}, f16}, {"v", {2, 2, 128, 64}, f16},
                         {"mask", {2, 1, 128, 128}, f16}},
           attrs(0.125f, "bhsd"), 1, 17, "kiln"}, 1e-2, 1e-2);
  // A layout per tensor (attention_views: Llama's V read as [B, S, H, D] and Y written so), GQA too.
  auto mixed = [&](float scale) {
    AttributeMap m = attrs(scale, "bhsd");
    Attribute names;
    names.type = Attribute::Type::kStrings;
    names.strings = {"bhsd", "bhsd", "bshd", "bshd"};
    m["layouts"] = names;
    return m;
  };
  RunCase({"Attention", {{"q", {2, 4, 37, 16}}, {"k", {2, 2, 45, 16}}, {"v", {2, 45, 2, 16}}}, mixed(0.25f), 1, 17,
           "kiln"}, 1e-4, 1e-5);
  RunCase({"Attention", {{"q", {2, 8, 128, 64}, f16}, {"k", {2, 2, 128, 64}, f16}, {"v", {2, 128, 2, 64}, f16}},
           mixed(0.125f), 1, 17, "kiln"}, 1e-2, 1e-2);
  // Head ranges (pack_qkv): Q, K and V as heads of one packed projection [B, S, Hq+Hk+Hv, D] given three
  // times (BERT's, kiln's kernel and cuDNN's; grouped-query), and K/V packed apart from Q (cross-attention).
  auto ranged = [&](float scale, std::vector<int64_t> ranges) {
    AttributeMap m = attrs(scale, "bshd");
    m["head_ranges"] = Attribute::FromInts(std::move(ranges));
    return m;
  };
  const In qkv32 = {"qkv", {2, 37, 12, 16}};
  RunCase({"Attention", {qkv32, qkv32, qkv32}, ranged(0.25f, {0, 4, 4, 4, 8, 4}), 1, 17, "kiln"}, 1e-4, 1e-5);
  const In qkv = {"qkv", {2, 128, 36, 64}, f16};
  RunCase({"Attention", {qkv, qkv, qkv, {"mask", {2, 1, 1, 128}, f16}}, ranged(0.125f, {0, 12, 12, 12, 24, 12}), 1,
           17, "kiln"}, 1e-2, 1e-2);
  const In gqa = {"qkv", {2, 128, 12, 64}, f16};
  RunCase({"Attention", {gqa, gqa, gqa}, ranged(0.125f, {0, 8, 8, 2, 10, 2}), 1, 17, "kiln"}, 1e-2, 1e-2);
  const In kv = {"kv", {2, 45, 8, 16}};
  RunCase({"Attention", {{"q", {2, 33, 4, 16}}, kv, kv}, ranged(0.35f, {0, 4, 0, 4, 4, 4}), 1, 17, "kiln"}, 1e-4,
          1e-5);
}

// kiln.Pointwise: a generated kernel (src/build/codegen/). The body computes
// y = tanh(a * b + c) and z = sigmoid(a * b + c) over inputs read three ways:
// a like the output (full), b broadcast along rows (strided), c one element.
// A kiln.Pointwise body whose inputs are `ins` (values "<prefix><name>" of
// type dt), into *in.
std::shared_ptr<Graph> NewBody(const std::string& prefix, DataType dt, const std::vector<In>& ins,
                               std::vector<Value*>* in) {
  auto body = std::make_shared<Graph>();
  body->name = prefix + "body";
  for (const In& i : ins) {
    Value* v = body->AddValue(prefix + i.name);
    v->type = TypeInfo::Tensor(dt, Shape::Of(i.dims));
    body->inputs.push_back(v);
    in->push_back(v);
  }
  return body;
}

// A node `type` of `body` reading `args`, named after `prefix`, with one output of type dt and `dims`.
Value* BodyOp(Graph& body, const std::string& prefix, DataType dt, const std::string& type,
              const std::vector<Value*>& args, const std::vector<int64_t>& dims, AttributeMap attrs) {
  Node* n = body.AddNode(type, prefix + type + std::to_string(body.num_nodes()));
  for (Value* a : args) n->AddInput(a);
  n->attrs = std::move(attrs);
  Value* out = body.AddValue(n->name + "_out");
  out->type = TypeInfo::Tensor(dt, Shape::Of(dims));
  n->AddOutput(out);
  return out;
}

std::shared_ptr<Graph> PointwiseBody(DataType dt, const std::vector<In>& ins) {
  std::vector<Value*> in;
  std::shared_ptr<Graph> body = NewBody("pw/", dt, ins, &in);
  auto op = [&](const char* type, std::vector<Value*> args) {
    Node* n = body->AddNode(type, std::string("pw/") + type);
    for (Value* a : args) n->AddInput(a);
    Value* out = body->AddValue(std::string("pw/") + type + "_out");
    out->type = TypeInfo::Tensor(dt, Shape::Of(ins[0].dims));
    n->AddOutput(out);
    return out;
  };
  Value* sum = op("Add", {op("Mul", {in[0], in[1]}), in[2]});
  body->outputs.push_back(op("Tanh", {sum}));
  body->outputs.push_back(op("Sigmoid", {sum}));
  return body;
}

// Llama's rotary embedding as the fusion pass leaves it: q * cos + cat(-q2,
// q1) * sin, where q1 and q2 are the halves of q read through Slices (each
// view its own input: the harness fills them independently, which the body
// computes just as well), cos and sin broadcast over the heads.
std::shared_ptr<Graph> RotaryBody(DataType dt, const std::vector<In>& ins, int64_t half) {
  std::vector<Value*> in;
  std::shared_ptr<Graph> body = NewBody("rot/", dt, ins, &in);
  auto ints = [&](const std::string& name, const std::vector<int64_t>& values) {
    return passes::AddInt64Initializer(*body, "rot/" + name, values);
  };
  auto op = [&](const std::string& type, std::vector<Value*> args, AttributeMap attrs = {}) {
    Node* n = body->AddNode(type, "rot/" + type + std::to_string(body->num_nodes()));
    for (Value* a : args) n->AddInput(a);
    n->attrs = std::move(attrs);
    n->AddOutput(body->AddValue(n->name + "_out"));
    return n->output(0);
  };
  Value* axes = ints("axes", {-1});
  Value* q1 = op("Slice", {in[3], ints("zero", {0}), ints("half", {half}), axes});
  Value* q2 =
      op("Slice", {in[4], ints("half2", {half}), ints("end", {std::numeric_limits<int64_t>::max()}), axes});
  Value* rot = op("Concat", {op("Neg", {q2}), q1}, {{"axis", Attribute::FromInt(-1)}});
  body->outputs.push_back(op("Add", {op("Mul", {in[0], in[1]}), op("Mul", {rot, in[2]})}));
  return body;
}

// A decomposed LayerNorm of x + r, where r broadcasts over the rows of each batch (a strided input), as
// lower_row_ops leaves one: a row kernel. ins: x [B, S, C], r [B, 1, C], gamma [C], beta [C].
std::shared_ptr<Graph> LayerNormBody(DataType dt, const std::vector<In>& ins) {
  std::vector<Value*> in;
  std::shared_ptr<Graph> body = NewBody("ln/", dt, ins, &in);
  std::vector<int64_t> row = ins[0].dims;
  row.back() = 1;
  auto op = [&](const std::string& type, std::vector<Value*> args, const std::vector<int64_t>& dims,
                AttributeMap attrs = {}) {
    return BodyOp(*body, "ln/", dt, type, args, dims, std::move(attrs));
  };
  auto mean = [&](Value* v) {
    return op("ReduceMean", {v}, row, {{"axes", Attribute::FromInts({-1})}, {"keepdims", Attribute::FromInt(1)}});
  };
  auto scalar = [&](const std::string& name, float v) {
    return passes::AddInitializer(*body, "ln/" + name, passes::FromDoubles(dt, {}, {v}));
  };
  const std::vector<int64_t>& full = ins[0].dims;
  Value* x = op("Add", {in[0], in[1]}, full);
  Value* d = op("Sub", {x, mean(x)}, full);
  Value* var = mean(op("Mul", {d, d}, full));
  Value* norm = op("Div", {d, op("Sqrt", {op("Add", {var, scalar("eps", 1e-5f)}, row)}, row)}, full);
  body->outputs.push_back(op("Add", {op("Mul", {norm, in[2]}, full), in[3]}, full));
  body->outputs.push_back(x);
  return body;
}

// ShuffleNetV2's chunk of a channel shuffle as interleave_concat leaves it: channels [lo, hi) of each operand
// (read through a Slice), interleaved along a last axis of 2. ins: two [.., C, 1] operands.
std::shared_ptr<Graph> InterleaveBody(DataType dt, const std::vector<In>& ins, int64_t lo, int64_t hi) {
  std::vector<Value*> in;
  std::shared_ptr<Graph> body = NewBody("il/", dt, ins, &in);
  const int axis = static_cast<int>(ins[0].dims.size()) - 2;
  std::vector<int64_t> part = ins[0].dims, out = ins[0].dims;
  part[axis] = out[axis] = hi - lo;
  out.back() = 2;
  auto op = [&](const std::string& type, std::vector<Value*> args, const std::vector<int64_t>& dims,
                AttributeMap attrs = {}) {
    return BodyOp(*body, "il/", dt, type, args, dims, std::move(attrs));
  };
  std::vector<Value*> parts;
  for (size_t j = 0; j < 2; ++j) {
    const std::string k = std::to_string(j);
    parts.push_back(op("Slice",
                       {in[j], passes::AddInt64Initializer(*body, "il/lo" + k, {lo}),
                        passes::AddInt64Initializer(*body, "il/hi" + k, {hi}),
                        passes::AddInt64Initializer(*body, "il/axis" + k, {axis})},
                       part));
  }
  body->outputs.push_back(op("Concat", parts, out, {{"axis", Attribute::FromInt(axis + 1)}}));
  return body;
}

void Pointwise(const Sink& RunCase) {
  // A shuffle's second chunk (channels 29..57 of 58 per operand, 7x7 NHWC), FP16: elements moved, exactly.
  const std::vector<In> halves = {{"a", {3, 7, 7, 58, 1}, DataType::kFloat16},
                                  {"b", {3, 7, 7, 58, 1}, DataType::kFloat16}};
  RunCase({"Pointwise",
           halves,
           {{"body", Attribute::FromGraph(InterleaveBody(DataType::kFloat16, halves, 29, 58))}},
           1,
           17,
           "kiln"},
          0, 0);
  // Row kernels: many short rows (a warp per row: 1400 rows of 96) in FP32 and FP16, and few long ones (a block
  // per row).
  for (DataType dt : {DataType::kFloat, DataType::kFloat16}) {
    const std::vector<In> ins = {{"x", {2, 700, 96}, dt}, {"r", {2, 1, 96}, dt}, {"gamma", {96}, dt}, {"beta", {96}, dt}};
    const double tol = dt == DataType::kFloat ? 1e-4 : 1e-2;
    RunCase({"Pointwise", ins, {{"body", Attribute::FromGraph(LayerNormBody(dt, ins))}}, 2, 17, "kiln"}, tol, tol);
  }
  const std::vector<In> long_rows = {{"x", {3, 5, 2100}}, {"r", {3, 1, 2100}}, {"gamma", {2100}}, {"beta", {2100}}};
  RunCase({"Pointwise", long_rows, {{"body", Attribute::FromGraph(LayerNormBody(DataType::kFloat, long_rows))}}, 2, 17,
           "kiln"}, 1e-4, 1e-4);
  for (DataType dt : {DataType::kFloat, DataType::kFloat16}) {  // [batch, heads, seq, 64]
    const std::vector<In> ins = {{"q", {2, 3, 37, 64}, dt},
                                 {"cos", {37, 64}, dt},
                                 {"sin", {37, 64}, dt},
                                 {"q_for_q1", {2, 3, 37, 64}, dt},
                                 {"q_for_q2", {2, 3, 37, 64}, dt}};
    const double tol = dt == DataType::kFloat ? 1e-5 : 2e-3;
    RunCase({"Pointwise", ins, {{"body", Attribute::FromGraph(RotaryBody(dt, ins, 32))}}, 1, 17, "kiln"}, tol,
            tol);
  }
  for (DataType dt : {DataType::kFloat, DataType::kFloat16}) {
    const std::vector<In> ins = {{"a", {3, 7, 33}, dt}, {"b", {7, 1}, dt}, {"c", {1}, dt}};
    AttributeMap attrs = {{"body", Attribute::FromGraph(PointwiseBody(dt, ins))}};
    const double tol = dt == DataType::kFloat ? 1e-5 : 2e-3;
    RunCase({"Pointwise", ins, attrs, 2, 17, "kiln"}, tol, tol);
  }
  // Eight elements a thread (8 | n, full inputs and outputs in packs; the big case below too), FP16.
  const std::vector<In> packed = {{"a", {4, 6, 40}, DataType::kFloat16}, {"b", {6, 1}, DataType::kFloat16},
                                  {"c", {1}, DataType::kFloat16}};
  RunCase({"Pointwise", packed, {{"body", Attribute::FromGraph(PointwiseBody(DataType::kFloat16, packed))}}, 2, 17,
           "kiln"}, 2e-3, 2e-3);
  // A domain past one grid: more elements than blocks x threads.
  const std::vector<In> big = {{"a", {64, 1031, 129}}, {"b", {1031, 1}}, {"c", {1}}};
  RunCase({"Pointwise", big, {{"body", Attribute::FromGraph(PointwiseBody(DataType::kFloat, big))}}, 2, 17, "kiln"},
          1e-5, 1e-5);
}

}  // namespace kiln::op_cases
