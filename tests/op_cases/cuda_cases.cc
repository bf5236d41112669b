// The CUDA op harness's cases (see op_case.h): every row of the CUDA op table
// (backend/cuda/cuda_ops.def) has at least one; kiln_gpu_tests runs them on
// the GPU against the CPU reference, and a unit test checks, without a GPU,
// that each case is valid (the reference runs it, the comparison can fail)
// and that its nodes fit the rows' declared capabilities.
#include <cmath>

#include "op_cases/cuda_cases_kiln.h"
#include "op_cases/op_case.h"

namespace kiln::op_cases {
namespace {

// Deterministic values spread over [lo, hi] (inputs of ops with a domain).
In Spread(const char* name, std::vector<int64_t> dims, float lo, float hi) {
  int64_t n = 1;
  for (int64_t d : dims) n *= d;
  std::vector<float> v(static_cast<size_t>(n));
  for (size_t i = 0; i < v.size(); ++i) v[i] = lo + (hi - lo) * (0.5f + 0.5f * std::sin(1.7f * static_cast<float>(i) + 0.3f));
  return In{name, dims, DataType::kFloat, false, {}, false, false, v};
}

void Unary(const Sink& RunCase) {
  for (const char* op : {"Relu", "Sigmoid", "Tanh", "Exp", "Erf", "Neg", "Abs", "Softplus", "HardSwish", "Floor",
                         "LeakyRelu", "Elu", "Sin"})
    RunCase({op, {{"x", {3, 5, 7}}}});
  RunCase({"Gelu", {{"x", {2, 33}}}, {{"approximate", Attribute::FromString("tanh")}}, 1, 20});
  RunCase({"Clip", {{"x", {4, 9}}, {"lo", {}, DataType::kFloat, true}, {"hi", {}, DataType::kFloat, true}}});
}

void BinaryBroadcast(const Sink& RunCase) {
  for (const char* op : {"Add", "Sub", "Mul", "Div", "Max", "Min"}) {
    RunCase({op, {{"a", {2, 3, 5}}, {"b", {5}}}});
    RunCase({op, {{"a", {2, 1, 5}}, {"b", {3, 1}}}});
    RunCase({op, {{"a", {7, 13}}, {"b", {7, 13}}}});
    // 16-byte vector paths: same shape, a row of whole vectors, a scalar; float16 too.
    RunCase({op, {{"a", {6, 40}}, {"b", {6, 40}}}});
    RunCase({op, {{"a", {3, 5, 16}}, {"b", {16}}}});
    RunCase({op, {{"a", {1}}, {"b", {4, 24}}}});
    RunCase({op, {{"a", {5, 64}, DataType::kFloat16}, {"b", {64}, DataType::kFloat16}}}, 1e-3, 1e-3);
    RunCase({op, {{"a", {3, 8, 8}, DataType::kFloat16}, {"b", {3, 8, 8}, DataType::kFloat16}}}, 1e-3, 1e-3);
    // A row per block: an NHWC SE gate [N, 1, 1, C] (vectors when C fills them), NCHW's [N, C, 1, 1].
    RunCase({op, {{"a", {2, 1, 1, 16}}, {"b", {2, 3, 5, 16}}}});
    RunCase({op, {{"a", {2, 3, 5, 24}, DataType::kFloat16}, {"b", {2, 1, 1, 24}, DataType::kFloat16}}}, 1e-3, 1e-3);
    RunCase({op, {{"a", {2, 3, 5, 6}}, {"b", {2, 1, 1, 6}}}});
    RunCase({op, {{"a", {2, 4, 3, 5}}, {"b", {2, 4, 1, 1}}}});
    RunCase({op, {{"a", {3, 2, 4, 8}}, {"b", {3, 1, 4, 8}}}});
  }
  RunCase({"Greater", {{"a", {4, 6}}, {"b", {6}}}});
  In special{"x", {5, 7}};
  special.special = true;
  RunCase({"IsNaN", {special}});
  RunCase({"IsInf", {special}});
  RunCase({"Where", {{"c", {3, 1}, DataType::kBool}, {"x", {3, 4}}, {"y", {4}}}});
}

void Cast(const Sink& RunCase) {
  Case c{"Cast", {{"x", {5, 7}}}, {{"to", Attribute::FromInt(static_cast<int64_t>(DataType::kFloat16))}}};
  RunCase(c, 1e-3, 1e-3);
  RunCase({"Cast", {{"x", {9}, DataType::kInt64}}, {{"to", Attribute::FromInt(1)}}});
  RunCase({"CastLike", {{"x", {9}, DataType::kInt64}, {"like", {1}, DataType::kFloat, true}}});
  RunCase({"CastLike", {{"x", {4, 5}}, {"like", {1}, DataType::kFloat16, true}}}, 1e-3, 1e-3);
  // The small types (cast_small.cu): float8 with and without saturate (values
  // past every format's range), e8m0 rounding modes, float4, sub-byte integers
  // from floats (out of range → 0) and from integers (wrap), and back.
  auto to = [](DataType dt) { return Attribute::FromInt(static_cast<int64_t>(dt)); };
  const In wide = Spread("x", {7, 9}, -600.f, 600.f);
  for (DataType dt : {DataType::kFloat8E4M3FN, DataType::kFloat8E4M3FNUZ, DataType::kFloat8E5M2,
                      DataType::kFloat8E5M2FNUZ, DataType::kFloat4E2M1, DataType::kFloat8E8M0}) {
    RunCase({"Cast", {wide}, {{"to", to(dt)}}, 1, 23});
    RunCase({"Cast", {{"x", {5, 11}, dt}}, {{"to", to(DataType::kFloat)}}, 1, 23});
    RunCase({"Cast", {{"x", {5, 11}, dt}}, {{"to", to(DataType::kFloat16)}}, 1, 23});
  }
  RunCase({"Cast", {wide}, {{"to", to(DataType::kFloat8E4M3FN)}, {"saturate", Attribute::FromInt(0)}}, 1, 23});
  RunCase({"Cast", {wide}, {{"to", to(DataType::kFloat8E5M2)}, {"saturate", Attribute::FromInt(0)}}, 1, 23});
  for (const char* mode : {"down", "nearest"})
    RunCase({"Cast", {Spread("x", {6, 6}, 0.01f, 900.f)},
             {{"to", to(DataType::kFloat8E8M0)}, {"round_mode", Attribute::FromString(mode)}}, 1, 24});
  const In small = Spread("x", {4, 10}, -12.f, 12.f);
  for (DataType dt : {DataType::kInt4, DataType::kUInt4, DataType::kInt2, DataType::kUInt2}) {
    RunCase({"Cast", {small}, {{"to", to(dt)}}, 1, 25});
    RunCase({"Cast", {{"x", {3, 13}, DataType::kInt32, false, {-9, -3, 0, 2, 7, 8, 15, 17, -1}}},
             {{"to", to(dt)}}, 1, 25});
    RunCase({"Cast", {{"x", {3, 13}, dt}}, {{"to", to(DataType::kFloat)}}, 1, 25});
    RunCase({"Cast", {{"x", {3, 13}, dt}}, {{"to", to(DataType::kInt8)}}, 1, 25});
  }
  // BitCast: same-width reinterpretation, sub-byte sign extension.
  RunCase({"BitCast", {{"x", {5, 7}}}, {{"to", to(DataType::kInt32)}}, 1, 26});
  RunCase({"BitCast", {{"x", {6}, DataType::kInt64, false,  // 1.0, 2.0, -1.5, 0.5, 3.0, -2.0 as doubles
                         {4607182418800017408LL, 4611686018427387904LL, -4613937818241073152LL,
                          4602678819172646912LL, 4613937818241073152LL, -4611686018427387904LL}}},
           {{"to", to(DataType::kDouble)}}, 1, 26});
  RunCase({"BitCast", {{"x", {3, 11}, DataType::kUInt4}}, {{"to", to(DataType::kInt4)}}, 1, 26});
  RunCase({"CastLike", {{"x", {4, 5}}, {"like", {1}, DataType::kFloat8E4M3FN, true}}, {}, 1, 23});
  RunCase({"CastLike", {{"x", {4, 5}, DataType::kInt4}, {"like", {1}, DataType::kFloat16, true}}, {}, 1, 25});
}

void Conv(const Sink& RunCase) {
  RunCase({"Conv", {{"x", {2, 3, 11, 13}}, {"w", {8, 3, 3, 3}, DataType::kFloat, true}, {"b", {8}, DataType::kFloat, true}},
           {{"pads", Attribute::FromInts({1, 1, 1, 1})}, {"strides", Attribute::FromInts({2, 2})}}}, 1e-4, 1e-4);
  RunCase({"Conv", {{"x", {1, 6, 9, 9}}, {"w", {6, 1, 3, 3}, DataType::kFloat, true}},
           {{"group", Attribute::FromInt(6)}, {"dilations", Attribute::FromInts({2, 2})}, {"pads", Attribute::FromInts({2, 2, 2, 2})}}}, 1e-4, 1e-4);
  RunCase({"Conv", {{"x", {1, 4, 17}}, {"w", {5, 4, 3}, DataType::kFloat, true}}, {{"auto_pad", Attribute::FromString("SAME_UPPER")}}},
          1e-4, 1e-4);
}

// Linear quantization (quant.cu): exact against the CPU reference (same float
// division and round-half-even), per tensor and per axis, int8 and uint8.
void Quantization(const Sink& RunCase) {
  const In s{"s", {}, DataType::kFloat, true, {}, false, false, {0.02f}};
  const In s_axis{"s", {6}, DataType::kFloat, true, {}, false, false, {0.01f, 0.02f, 0.03f, 0.05f, 0.015f, 0.04f}};
  const AttributeMap axis1 = {{"axis", Attribute::FromInt(1)}};
  RunCase({"QuantizeLinear", {{"x", {4, 6, 5}}, s, {"zp", {}, DataType::kInt8, true, {3}}}}, 0, 0);
  RunCase({"QuantizeLinear", {{"x", {4, 6, 5}}, s, {"zp", {}, DataType::kUInt8, true, {128}}}}, 0, 0);
  RunCase({"QuantizeLinear", {{"x", {4, 6, 5}}, s_axis, {"zp", {6}, DataType::kInt8, true, {0, 1, -2, 3, 0, 5}}}, axis1},
          0, 0);
  RunCase({"DequantizeLinear", {{"q", {4, 6, 5}, DataType::kInt8}, s, {"zp", {}, DataType::kInt8, true, {-3}}}}, 0, 0);
  RunCase({"DequantizeLinear", {{"q", {4, 6, 5}, DataType::kUInt8}, s, {"zp", {}, DataType::kUInt8, true, {128}}}}, 0, 0);
  RunCase({"DequantizeLinear", {{"q", {4, 6, 5}, DataType::kInt8}, s_axis}, axis1}, 0, 0);
  RunCase({"DynamicQuantizeLinear", {{"x", {3, 37}}}, {}, 3, 11}, 0, 0);
}

// Every op again through the FP16 build (casts at the edges, FP16 inside).
void Fp16Builds(const Sink& RunCase) {
  auto fp16 = [&](Case c) {
    c.fp16 = true;
    RunCase(c, 2e-2, 3e-2);
  };
  fp16({"Conv", {{"x", {1, 6, 9, 9}}, {"w", {6, 1, 3, 3}, DataType::kFloat, true}, {"b", {6}, DataType::kFloat, true}},
        {{"group", Attribute::FromInt(6)}, {"pads", Attribute::FromInts({1, 1, 1, 1})}}});
  fp16({"Conv", {{"x", {2, 32, 14, 14}}, {"w", {32, 1, 3, 3}, DataType::kFloat, true}},
        {{"group", Attribute::FromInt(32)}, {"strides", Attribute::FromInts({2, 2})}, {"pads", Attribute::FromInts({1, 1, 1, 1})}}});
  fp16({"Conv", {{"x", {2, 16, 7, 7}}, {"w", {24, 16, 1, 1}, DataType::kFloat, true}, {"b", {24}, DataType::kFloat, true}}});
  In lo{"lo", {}, DataType::kFloat, true}, hi{"hi", {}, DataType::kFloat, true};
  lo.values = {-0.7f};
  hi.values = {1.1f};
  fp16({"Clip", {{"x", {4, 9}}, lo, hi}});
  fp16({"Sigmoid", {{"x", {3, 17}}}});
  fp16({"Mul", {{"a", {2, 8, 5, 5}}, {"b", {2, 8, 1, 1}}}});
  fp16({"GlobalAveragePool", {{"x", {2, 24, 7, 7}}}});
  fp16({"Gemm", {{"a", {2, 40}}, {"b", {10, 40}, DataType::kFloat, true}, {"c", {10}, DataType::kFloat, true}},
        {{"transB", Attribute::FromInt(1)}}});
  fp16({"MatMul", {{"a", {2, 7, 32}}, {"b", {32, 24}, DataType::kFloat, true}}});
  fp16({"Softmax", {{"x", {3, 7, 33}}}});
  // Rows of issue #10 through the FP16 build.
  fp16({"Einsum", {{"q", {2, 3, 5, 8}}, {"k", {2, 3, 6, 8}}}, {{"equation", Attribute::FromString("bhid,bhjd->bhij")}}, 1, 12});
  fp16({"Sum", {{"a", {2, 3, 5}}, {"b", {5}}, {"c", {3, 1}}}});
  fp16({"LpNormalization", {{"x", {4, 33}}}});
  fp16({"ReduceLogSumExp", {{"x", {4, 30}}}, {{"axes", Attribute::FromInts({1})}}, 1, 13});
  fp16({"Atan", {{"x", {3, 17}}}});
  fp16({"LayerNormalization", {{"x", {4, 3, 37}}, {"s", {37}, DataType::kFloat, true}, {"b", {37}, DataType::kFloat, true}}});
}

// ONNX Attention (opset 23, onnx_attention.cu): 4-D and packed 3-D inputs,
// grouped heads, bool and additive masks (broadcast, shorter than the keys),
// causal and window masks, a KV cache with present outputs, nonpad lengths,
// softcap, every qk_matmul_output mode, value heads past 128.
void OnnxAttention(const Sink& RunCase) {
  const DataType f16 = DataType::kFloat16, b8 = DataType::kBool, i64 = DataType::kInt64;
  auto I = [](int64_t v) { return Attribute::FromInt(v); };
  auto F = [](float v) { return Attribute::FromFloat(v); };
  const In none{""};
  RunCase({"Attention", {{"q", {2, 6, 37, 16}}, {"k", {2, 2, 45, 16}}, {"v", {2, 2, 45, 24}}, {"m", {37, 45}, b8}},
           {{"is_causal", I(1)}}, 1, 23}, 1e-4, 1e-5);
  RunCase({"Attention", {{"q", {2, 5, 32}}, {"k", {2, 40, 16}}, {"v", {2, 40, 24}}, {"m", {2, 1, 5, 40}}},
           {{"q_num_heads", I(4)}, {"kv_num_heads", I(2)}, {"softcap", F(2.f)}, {"scale", F(0.3f)}}, 1, 23},
          1e-4, 1e-5);
  RunCase({"Attention", {{"q", {1, 4, 3, 20}}, {"k", {1, 4, 3, 20}}, {"v", {1, 4, 3, 20}}, {"m", {3, 31}},
                         {"pk", {1, 4, 30, 20}}, {"pv", {1, 4, 30, 20}}},
           {{"is_causal", I(1)}, {"qk_matmul_output_mode", I(3)}}, 4, 23}, 1e-4, 1e-5);
  RunCase({"Attention", {{"q", {2, 3, 9, 8}}, {"k", {2, 3, 33, 8}}, {"v", {2, 3, 33, 8}}, {"m", {3, 9, 33}}},
           {{"left_window_size", I(5)}, {"right_window_size", I(2)}, {"qk_matmul_output_mode", I(2)}}, 4, 23},
          1e-4, 1e-5);
  RunCase({"Attention", {{"q", {2, 4, 1, 64}}, {"k", {2, 2, 70, 64}}, {"v", {2, 2, 70, 64}}, none, none, none,
                         {"n", {2}, i64, false, {50, 70}}},
           {{"is_causal", I(1)}}, 1, 23}, 1e-4, 1e-5);
  RunCase({"Attention", {{"q", {1, 7, 40}}, {"k", {1, 9, 40}}, {"v", {1, 9, 400}}, none, {"pk", {1, 2, 4, 20}},
                         {"pv", {1, 2, 4, 200}}},
           {{"q_num_heads", I(2)}, {"kv_num_heads", I(2)}, {"qk_matmul_output_mode", I(1)}}, 4, 23}, 1e-4, 1e-5);
  RunCase({"Attention", {{"q", {2, 8, 70, 64}, f16}, {"k", {2, 4, 70, 64}, f16}, {"v", {2, 4, 70, 64}, f16}},
           {{"is_causal", I(1)}}, 1, 23}, 1e-2, 1e-2);
}

// NegativeLogLikelihoodLoss / SoftmaxCrossEntropyLoss (loss.cu): every
// reduction, class weights, ignore_index (also negative), extra dims, int32
// targets, SCE's log_prob output.
void Loss(const Sink& RunCase) {
  const DataType i64 = DataType::kInt64, i32 = DataType::kInt32;
  auto S = [](const char* v) { return Attribute::FromString(v); };
  auto I = [](int64_t v) { return Attribute::FromInt(v); };
  RunCase({"NegativeLogLikelihoodLoss", {{"x", {5, 7}}, {"t", {5}, i64, false, {3, 0, 6, 2, 5}}},
           {{"reduction", S("none")}}});
  RunCase({"NegativeLogLikelihoodLoss", {{"x", {3, 4, 5, 6}}, {"t", {3, 5, 6}, i32, false, {1, 3, 0, 2, 2, 1, 3}},
                                         {"w", {4}, DataType::kFloat, false, {}, true}},
           {{"reduction", S("mean")}, {"ignore_index", I(2)}}});
  RunCase({"NegativeLogLikelihoodLoss", {{"x", {2, 9, 33}}, {"t", {2, 33}, i32, false, {8, 0, -1, 4, 7}}},
           {{"reduction", S("sum")}, {"ignore_index", I(-1)}}});
  RunCase({"SoftmaxCrossEntropyLoss", {{"x", {6, 11}}, {"t", {6}, i64, false, {10, 0, 3, 7, 1, 5}}},
           {{"reduction", S("mean")}}, 2});
  RunCase({"SoftmaxCrossEntropyLoss", {{"x", {2, 5, 7, 3}}, {"t", {2, 7, 3}, i32, false, {4, 0, 1, 3, 2}},
                                       {"w", {5}, DataType::kFloat, false, {}, true}},
           {{"reduction", S("none")}, {"ignore_index", I(3)}}, 2});
  RunCase({"SoftmaxCrossEntropyLoss", {{"x", {4, 300}}, {"t", {4}, i64, false, {299, 0, 150, 17}}},
           {{"reduction", S("sum")}}});
}

// GridSample (grid_sample.cu): every mode and padding, align_corners, 1 to 3
// spatial dims, grid values past [-1, 1] (the padding rules), a float16 grid.
void GridSample(const Sink& RunCase) {
  auto attrs = [](const char* mode, const char* pad, int64_t align) {
    return AttributeMap{{"mode", Attribute::FromString(mode)}, {"padding_mode", Attribute::FromString(pad)},
                        {"align_corners", Attribute::FromInt(align)}};
  };
  const In x{"x", {2, 3, 7, 9}}, grid{"g", {2, 5, 6, 2}};
  for (const char* pad : {"zeros", "border", "reflection"})
    for (int64_t align : {0, 1})
      for (const char* mode : {"nearest", "linear", "cubic"})
        RunCase({"GridSample", {x, grid}, attrs(mode, pad, align), 1, 20});
  RunCase({"GridSample", {x, grid}, attrs("bilinear", "zeros", 0), 1, 16});
  RunCase({"GridSample", {{"x", {1, 2, 4, 5, 6}}, {"g", {1, 3, 4, 5, 3}}}, attrs("linear", "border", 0), 1, 20});
  RunCase({"GridSample", {{"x", {1, 2, 4, 5, 6}}, {"g", {1, 3, 4, 5, 3}}}, attrs("nearest", "reflection", 1), 1, 20});
  RunCase({"GridSample", {{"x", {2, 4, 11}}, {"g", {2, 7, 1}}}, attrs("cubic", "zeros", 0), 1, 20});
  RunCase({"GridSample", {{"x", {1, 2, 8, 8}}, {"g", {1, 4, 4, 2}, DataType::kFloat16}}, attrs("linear", "zeros", 0),
           1, 20});
}

// Range / ConstantOfShape (generate.cu): their value inputs known on the host.
void Generate(const Sink& RunCase) {
  const DataType i64 = DataType::kInt64, i32 = DataType::kInt32;
  RunCase({"Range", {{"s", {}, i64, true, {-3}}, {"l", {}, i64, true, {40}}, {"d", {}, i64, true, {3}}}});
  RunCase({"Range", {{"s", {}, i32, true, {10}}, {"l", {}, i32, true, {-7}}, {"d", {}, i32, true, {-2}}}});
  RunCase({"Range", {{"s", {}, DataType::kFloat, true, {}, false, false, {0.5f}},
                     {"l", {}, DataType::kFloat, true, {}, false, false, {9.25f}},
                     {"d", {}, DataType::kFloat, true, {}, false, false, {0.75f}}}});
  Tensor v(DataType::kFloat, {1});
  v.mutable_data<float>()[0] = 1.5f;
  Tensor vi(DataType::kInt64, {1});
  vi.mutable_data<int64_t>()[0] = -7;
  RunCase({"ConstantOfShape", {{"shape", {3}, i64, true, {2, 3, 5}}}, {{"value", Attribute::FromTensor(v)}}});
  RunCase({"ConstantOfShape", {{"shape", {2}, i64, true, {4, 7}}}, {{"value", Attribute::FromTensor(vi)}}});
}

// The integer types only the binary kernels take (int16, uint16, uint32,
// uint64): arithmetic (zero divisors, wrap), Mod (signs), comparisons past
// float's 24-bit mantissa, bitwise ops and shifts, BitwiseNot.
void WideIntegers(const Sink& RunCase) {
  const std::vector<int64_t> a = {7, -3, 1000, 0, 65, -32768, 32767, 9, 12, -1, 3, 5};
  const std::vector<int64_t> b = {2, 5, -7, 3, 0, 2, 1, -4, 12, 7, 3, 9};
  const std::vector<int64_t> big_a = {16777217, 4294967295LL, 1, 9007199254740993LL, 5, 6};
  const std::vector<int64_t> big_b = {16777216, 4294967294LL, 1, 9007199254740992LL, 7, 6};
  for (DataType dt : {DataType::kInt16, DataType::kUInt16, DataType::kUInt32, DataType::kUInt64}) {
    const bool wide = dt == DataType::kUInt64 || dt == DataType::kUInt32;
    for (const char* op : {"Add", "Sub", "Mul", "Div", "Mod", "Max", "Min", "BitwiseAnd", "BitwiseOr", "BitwiseXor"})
      RunCase({op, {{"a", {2, 6}, dt, false, a}, {"b", {6}, dt, false, b}}, {}, 1, 18});
    for (const char* op : {"Equal", "Less", "Greater", "LessOrEqual", "GreaterOrEqual"})
      RunCase({op, {{"a", {2, 6}, dt, false, wide ? big_a : a}, {"b", {2, 6}, dt, false, wide ? big_b : b}}, {}, 1,
               18});
    for (const char* dir : {"LEFT", "RIGHT"})
      RunCase({"BitShift", {{"a", {2, 6}, dt, false, a}, {"s", {6}, dt, false, {0, 1, 3, 15, 16, 2}}},
               {{"direction", Attribute::FromString(dir)}}});
    RunCase({"BitwiseNot", {{"a", {2, 6}, dt, false, a}}, {}, 1, 18});
  }
  RunCase({"Mod", {{"a", {2, 6}, DataType::kInt16, false, a}, {"b", {6}, DataType::kInt16, false, b}},
           {{"fmod", Attribute::FromInt(0)}}});
}

void Pool(const Sink& RunCase) {
  RunCase({"MaxPool", {{"x", {2, 3, 9, 11}}}, {{"kernel_shape", Attribute::FromInts({3, 3})}, {"strides", Attribute::FromInts({2, 2})}, {"pads", Attribute::FromInts({1, 1, 1, 1})}}});
  RunCase({"AveragePool", {{"x", {1, 2, 8, 8}}}, {{"kernel_shape", Attribute::FromInts({2, 2})}, {"strides", Attribute::FromInts({2, 2})}}});
  // Windows cuDNN cannot express (kiln's window_pool.h): GoogLeNet's ceil_mode MaxPool (112 → 56, no pads),
  // asymmetric pads (count_include_pad off and on), a dilated window.
  RunCase({"MaxPool",
           {{"x", {2, 3, 12, 12}}},
           {{"kernel_shape", Attribute::FromInts({3, 3})},
            {"strides", Attribute::FromInts({2, 2})},
            {"ceil_mode", Attribute::FromInt(1)}}});
  RunCase({"AveragePool",
           {{"x", {1, 3, 9, 10}}},
           {{"kernel_shape", Attribute::FromInts({3, 2})},
            {"strides", Attribute::FromInts({2, 2})},
            {"pads", Attribute::FromInts({0, 1, 2, 0})}}});
  RunCase({"AveragePool",
           {{"x", {1, 3, 9, 10}}},
           {{"kernel_shape", Attribute::FromInts({3, 3})},
            {"pads", Attribute::FromInts({1, 0, 0, 1})},
            {"count_include_pad", Attribute::FromInt(1)}}});
  RunCase({"MaxPool",
           {{"x", {1, 2, 11, 9}}},
           {{"kernel_shape", Attribute::FromInts({2, 3})},
            {"dilations", Attribute::FromInts({2, 2})},
            {"pads", Attribute::FromInts({1, 1, 1, 1})}}});
  RunCase({"GlobalAveragePool", {{"x", {2, 5, 7, 3}}}});
}

void MatMulGemm(const Sink& RunCase) {
  RunCase({"MatMul", {{"a", {17, 33}}, {"b", {33, 65}, DataType::kFloat, true}}}, 1e-4, 1e-4);
  RunCase({"MatMul", {{"a", {2, 5, 7, 9}}, {"b", {2, 5, 9, 3}}}}, 1e-4, 1e-4);
  RunCase({"MatMul", {{"a", {3, 7, 16}}, {"b", {16, 10}, DataType::kFloat, true}}}, 1e-4, 1e-4);
  RunCase({"Gemm", {{"a", {6, 20}}, {"b", {12, 20}, DataType::kFloat, true}, {"c", {12}, DataType::kFloat, true}},
           {{"transB", Attribute::FromInt(1)}}}, 1e-4, 1e-4);
  RunCase({"Gemm", {{"a", {20, 6}}, {"b", {20, 12}}, {"c", {6, 12}}}, {{"transA", Attribute::FromInt(1)}, {"alpha", Attribute::FromFloat(0.5f)}, {"beta", Attribute::FromFloat(2.f)}}},
          1e-4, 1e-4);
}

void Movement(const Sink& RunCase) {
  RunCase({"Transpose", {{"x", {2, 3, 5, 7}}}, {{"perm", Attribute::FromInts({0, 2, 3, 1})}}});
  In starts{"s", {2}, DataType::kInt64, true, {1, -1}}, ends{"e", {2}, DataType::kInt64, true, {4, -100}};
  In axes{"a", {2}, DataType::kInt64, true, {1, 2}}, steps{"st", {2}, DataType::kInt64, true, {2, -2}};
  RunCase({"Slice", {{"x", {3, 6, 9}}, starts, ends, axes, steps}});
  RunCase({"Concat", {{"a", {2, 3, 4}}, {"b", {2, 5, 4}}}, {{"axis", Attribute::FromInt(1)}}});
  RunCase({"Split", {{"x", {4, 9}}}, {{"axis", Attribute::FromInt(1)}, {"num_outputs", Attribute::FromInt(3)}}, 3, 18});
  RunCase({"Expand", {{"x", {3, 1}}, {"shape", {3}, DataType::kInt64, true, {2, 3, 4}}}});
  RunCase({"DepthToSpace", {{"x", {1, 8, 3, 5}}}, {{"blocksize", Attribute::FromInt(2)}}});
  RunCase({"DepthToSpace", {{"x", {2, 18, 2, 3}}}, {{"blocksize", Attribute::FromInt(3)}, {"mode", Attribute::FromString("CRD")}}});
  RunCase({"SpaceToDepth", {{"x", {1, 3, 4, 6}}}, {{"blocksize", Attribute::FromInt(2)}}});
  RunCase({"SpaceToDepth", {{"x", {2, 3, 4, 6}}}, {{"blocksize", Attribute::FromInt(2)}, {"mode", Attribute::FromString("CRD")}}, 1, 25});
  RunCase({"Pad", {{"x", {2, 3}}, {"p", {4}, DataType::kInt64, true, {1, 0, 2, 3}}}});
  RunCase({"Gather", {{"x", {5, 4, 3}}, {"i", {2, 2}, DataType::kInt64, true, {0, 3, -1, 2}}}, {{"axis", Attribute::FromInt(1)}}});

  // The copy kernel's paths: 16/8/4-byte words (inner dims contiguous on both
  // sides), the tiled transpose (last dim moves), element-wise fallbacks (odd
  // sizes and offsets); each in FP32 and through the FP16 build.
  auto both = [&](Case c) {
    RunCase(c);
    c.fp16 = true;
    RunCase(c, 2e-2, 3e-2);
  };
  auto perm = [](std::vector<int64_t> p) { return AttributeMap{{"perm", Attribute::FromInts(p)}}; };
  both({"Transpose", {{"x", {4, 197, 3, 12, 64}}}, perm({2, 0, 3, 1, 4})});  // ViT qkv split: 256-byte rows
  both({"Transpose", {{"x", {2, 37, 65}}}, perm({0, 2, 1})});                // tiled, partial tiles
  both({"Transpose", {{"x", {2, 24, 13, 17}}}, perm({0, 2, 3, 1})});         // NCHW→NHWC: tiled over C × HW
  both({"Transpose", {{"x", {40, 3, 48}}}, perm({2, 1, 0})});                // tiled, batch dim in the middle
  both({"Transpose", {{"x", {6, 5, 3}}}, perm({1, 0, 2})});                  // odd inner: element-wise
  both({"Concat", {{"a", {2, 3, 5}}, {"b", {2, 3, 7}}}, {{"axis", Attribute::FromInt(2)}}});     // odd: element-wise
  both({"Concat", {{"a", {2, 3, 8}}, {"b", {2, 3, 16}}}, {{"axis", Attribute::FromInt(2)}}});    // 16-byte words
  both({"Concat", {{"a", {3, 2, 6}}, {"b", {3, 1, 6}}}, {{"axis", Attribute::FromInt(1)}}});     // 8-byte words (fp32)
  // One launch covers 8 inputs: ten channel blocks of an NHWC concat (two launches), one of them empty.
  {
    Case c{"Concat", {}, {{"axis", Attribute::FromInt(3)}}};
    for (int64_t k = 0; k < 10; ++k) c.inputs.push_back({"x" + std::to_string(k), {2, 3, 5, k == 4 ? 0 : 8 * (k % 3 + 1)}});
    both(c);
  }
  both({"Concat", {{"a", {1, 4, 3}}, {"b", {2, 4, 3}}}, {{"axis", Attribute::FromInt(0)}}});  // one row: axis 0
  In s7{"s", {1}, DataType::kInt64, true, {1}}, e7{"e", {1}, DataType::kInt64, true, {8}}, a2{"a", {1}, DataType::kInt64, true, {2}};
  both({"Slice", {{"x", {3, 6, 9}}, s7, e7, a2}});  // 7 of 9 from offset 1: element-wise
  In s8{"s", {1}, DataType::kInt64, true, {4}}, e8{"e", {1}, DataType::kInt64, true, {12}};
  both({"Slice", {{"x", {4, 6, 16}}, s8, e8, a2}});  // 8 of 16 from offset 4: 16/8-byte words
  both({"Split", {{"x", {3, 16}}}, {{"axis", Attribute::FromInt(1)}, {"num_outputs", Attribute::FromInt(2)}}, 2, 18});
  both({"Expand", {{"x", {3, 1, 8}}, {"shape", {3}, DataType::kInt64, true, {3, 5, 8}}}});

  // Gather: words when inner·elem allows (inner 8, 24, 16), else elements (inner 3, 1, 5).
  both({"Gather", {{"x", {5, 6, 8}}, {"i", {3}, DataType::kInt64, true, {0, 5, -1}}}, {{"axis", Attribute::FromInt(1)}}});
  both({"Gather", {{"x", {7, 24}}, {"i", {2, 2}, DataType::kInt64, true, {6, 0, -2, 3}}}});
  both({"Gather", {{"x", {3, 197, 16}}, {"i", {}, DataType::kInt64, true, {0}}}, {{"axis", Attribute::FromInt(1)}}});  // class token
  both({"Gather", {{"x", {1, 7, 2, 3, 16}}, {"i", {}, DataType::kInt64, true, {2}}}, {{"axis", Attribute::FromInt(3)}}});  // Q/K/V split (gather_transpose)
  both({"Gather", {{"x", {9, 5}}, {"i", {4}, DataType::kInt64, true, {4, 1, 1, -5}}}, {{"axis", Attribute::FromInt(1)}}});
  both({"Gather", {{"x", {4, 7, 5}}, {"i", {2}, DataType::kInt64, true, {3, -7}}}, {{"axis", Attribute::FromInt(1)}}});
}

// GatherND: index tuples (k = 1, 2, 3), batch_dims, negative indices, int32 indices.
void GatherND(const Sink& RunCase) {
  RunCase({"GatherND", {{"x", {5, 4, 3}}, {"i", {2, 2}, DataType::kInt64, true, {0, 1, 4, 3}}}, {}, 1, 13});
  RunCase({"GatherND", {{"x", {5, 4, 3}}, {"i", {3, 1}, DataType::kInt64, true, {4, -1, 2}}}, {}, 1, 13});
  RunCase({"GatherND", {{"x", {5, 4, 3}}, {"i", {2, 1, 3}, DataType::kInt64, true, {0, 1, 2, 4, 3, -3}}}, {}, 1, 13});
  RunCase({"GatherND", {{"x", {2, 3, 4}}, {"i", {2, 2, 1}, DataType::kInt64, true, {2, 0, 1, -1}}},
           {{"batch_dims", Attribute::FromInt(1)}}, 1, 13});
  RunCase({"GatherND", {{"x", {2, 3, 4, 5}, DataType::kFloat16}, {"i", {2, 3, 2}, DataType::kInt64, true,
                                                                   {0, 1, 2, 3, 1, -4, 0, 0, 2, 2, 1, 1}}},
           {{"batch_dims", Attribute::FromInt(1)}}, 1, 13});
}

void Normalization(const Sink& RunCase) {
  RunCase({"Softmax", {{"x", {3, 7, 33}}}});
  RunCase({"Softmax", {{"x", {2, 5, 3}}}, {{"axis", Attribute::FromInt(1)}}});
  RunCase({"LayerNormalization", {{"x", {4, 3, 37}}, {"s", {37}, DataType::kFloat, true}, {"b", {37}, DataType::kFloat, true}}});

  // Softmax / LogSoftmax paths: warp per row (scalar loads: 197, 33; 16-byte
  // loads: 64, 1000, 1024), block per row (2500, and inner != 1); FP32 and the FP16 build.
  auto both = [&](Case c, double rtol, double atol) {
    RunCase(c, rtol, atol);
    c.fp16 = true;
    RunCase(c, 2e-2, 3e-2);
  };
  const AttributeMap axis1 = {{"axis", Attribute::FromInt(1)}};
  for (const char* op : {"Softmax", "LogSoftmax"}) {
    both({op, {{"x", {5, 197}}}}, 1e-4, 1e-5);
    both({op, {{"x", {6, 64}}}}, 1e-4, 1e-5);
    both({op, {{"x", {3, 7, 1000}}}}, 1e-4, 1e-5);
    both({op, {{"x", {2, 1024}}}}, 1e-4, 1e-5);
    both({op, {{"x", {2, 3, 2500}}}}, 1e-4, 1e-5);
    both({op, {{"x", {3, 197, 4}}}, axis1}, 1e-4, 1e-5);
    both({op, {{"x", {2, 3, 40}}}, axis1, 1, 11}, 1e-4, 1e-5);  // opset 11: rows of 3·40
  }
  // LayerNorm: warp per row (768 and 100 in 16-byte loads, 197 scalar, no bias), block per row (2000).
  auto layer_norm = [&](std::vector<int64_t> dims, bool bias) {
    int64_t len = dims.back();
    Case c{"LayerNormalization", {{"x", dims}, {"s", {len}, DataType::kFloat, true}}};
    if (bias) c.inputs.push_back({"b", {len}, DataType::kFloat, true});
    both(c, 1e-4, 1e-4);
  };
  layer_norm({2, 5, 768}, true);
  layer_norm({4, 100}, false);
  layer_norm({3, 197}, true);
  layer_norm({3, 2000}, true);
  // Short rows, several a warp (4, 8 or 16 lanes a row; rows past the end of the last warp): MaxViT's 64
  // channels, 32, 24 (three 16-byte packs in FP16) and 13 (scalar).
  layer_norm({29, 64}, true);
  layer_norm({5, 7, 32}, false);
  layer_norm({3, 11, 24}, true);
  layer_norm({9, 13}, true);
  RunCase({"ReduceMean", {{"x", {3, 5, 7}}}, {{"axes", Attribute::FromInts({1})}}, 1, 13});
  RunCase({"BatchNormalization", {{"x", {2, 4, 5, 3}}, {"s", {4}, DataType::kFloat, true}, {"b", {4}, DataType::kFloat, true},
                                  {"m", {4}, DataType::kFloat, true}, {"v", {4}, DataType::kFloat, true, {}, true}}});
}

// The rest of the elementwise rows: inputs kept where each op is defined and
// not degenerate (Log/Sqrt/Reciprocal/Pow on positives, Equal on small
// integers that repeat, Mod by nonzero divisors).
void Elementwise(const Sink& RunCase) {
  for (const char* op : {"Ceil", "HardSigmoid", "Cos", "Sign", "Round", "Selu", "Mish", "Softsign"})
    RunCase({op, {{"x", {3, 5, 7}}}});
  for (const char* op : {"Log", "Sqrt", "Reciprocal"}) RunCase({op, {{"x", {4, 9}, DataType::kFloat, false, {}, true}}});
  RunCase({"Gelu", {{"x", {2, 33}}}, {}, 1, 17, "kiln"});
  RunCase({"Gelu", {{"x", {2, 33}}}, {{"approximate", Attribute::FromString("tanh")}}, 1, 17, "kiln"});
  RunCase({"Pow", {{"a", {3, 8}, DataType::kFloat, false, {}, true}, {"b", {8}}}});
  for (const char* op : {"Less", "LessOrEqual", "GreaterOrEqual"}) RunCase({op, {{"a", {4, 6}}, {"b", {6}}}});
  RunCase({"Equal", {{"a", {4, 6}, DataType::kInt64}, {"b", {6}, DataType::kInt64}}});
  for (const char* op : {"And", "Or", "Xor"}) RunCase({op, {{"a", {6, 8}, DataType::kBool}, {"b", {8}, DataType::kBool}}});
  RunCase({"PRelu", {{"x", {2, 4, 5}}, {"slope", {4, 1}}}});
  RunCase({"Mod", {{"a", {2, 5}, DataType::kInt64}, {"b", {5}, DataType::kInt64, true, {3, -2, 4, 7, -5}}}});
  RunCase({"Mod", {{"a", {2, 5}}, {"b", {5}, DataType::kFloat, true, {}, false, false, {1.5f, -0.7f, 2.f, 0.3f, -1.1f}}},
           {{"fmod", Attribute::FromInt(1)}}});
  RunCase({"Mod", {{"a", {2, 5}}, {"b", {5}, DataType::kFloat, true, {}, false, false, {1.5f, -0.7f, 2.f, 0.3f, -1.1f}}}});
  RunCase({"Mod", {{"a", {2, 5}, DataType::kInt64}, {"b", {5}, DataType::kInt64, true, {3, -2, 4, 7, -5}}},
           {{"fmod", Attribute::FromInt(1)}}});
}

// Reductions over one or several adjacent axes; ReduceSum takes its axes as an input from opset 13.
void Reductions(const Sink& RunCase) {
  for (const char* op : {"ReduceMax", "ReduceMin", "ReduceSumSquare", "ReduceL2", "ReduceL1"}) {
    RunCase({op, {{"x", {3, 5, 7}}}, {{"axes", Attribute::FromInts({1})}}, 1, 13});
    RunCase({op, {{"x", {2, 3, 4, 5}}}, {{"axes", Attribute::FromInts({2, 3})}, {"keepdims", Attribute::FromInt(0)}}, 1, 13});
  }
  // Integer sums (wrapping in the element type), max and min; ReduceProd near 1 (no under/overflow).
  const DataType i64 = DataType::kInt64, i32 = DataType::kInt32;
  RunCase({"ReduceSum", {{"x", {4, 37}, i64}, {"axes", {1}, i64, true, {1}}}, {}, 1, 13});
  RunCase({"ReduceSum", {{"x", {3, 5, 7}, i32}, {"axes", {2}, i64, true, {0, 1}}}, {{"keepdims", Attribute::FromInt(0)}}, 1, 13});
  RunCase({"ReduceMax", {{"x", {5, 9}, i64}}, {{"axes", Attribute::FromInts({0})}}, 1, 13});
  RunCase({"ReduceMin", {{"x", {2, 7, 2}, i32}}, {{"axes", Attribute::FromInts({-1})}}, 1, 13});
  RunCase({"ReduceMin", {{"x", {2, 4}, i64, false, {3, -9, 4, 1, 0, 2, -1, 8}}}, {{"axes", Attribute::FromInts({1})}}, 1, 13});
  RunCase({"ReduceProd", {Spread("x", {3, 6, 5}, 0.7f, 1.4f)}, {{"axes", Attribute::FromInts({1})}}, 1, 13});
  RunCase({"ReduceProd", {{"x", {4, 9}}}, {{"axes", Attribute::FromInts({-1})}, {"keepdims", Attribute::FromInt(0)}}, 1, 13});
  RunCase({"ReduceProd", {Spread("x", {2, 300}, 0.95f, 1.05f)}, {{"axes", Attribute::FromInts({1})}}, 1, 13});
  // LogSum over positives; LogSumExp over large values (the max shift keeps exp finite), float16.
  RunCase({"ReduceLogSum", {{"x", {3, 5, 7}, DataType::kFloat, false, {}, true}}, {{"axes", Attribute::FromInts({-1})}}, 1, 13});
  RunCase({"ReduceLogSum", {{"x", {2, 3, 4, 5}, DataType::kFloat, false, {}, true}},
           {{"axes", Attribute::FromInts({1, 2})}, {"keepdims", Attribute::FromInt(0)}}, 1, 13});
  RunCase({"ReduceLogSumExp", {{"x", {4, 300}}}, {{"axes", Attribute::FromInts({1})}}, 1, 13});
  RunCase({"ReduceLogSumExp", {Spread("x", {3, 6, 5}, 80.f, 120.f)}, {{"axes", Attribute::FromInts({1})}}, 1, 13});
  RunCase({"ReduceLogSumExp", {{"x", {5, 33}, DataType::kFloat16}}, {{"axes", Attribute::FromInts({-1})}}, 1, 13}, 1e-3, 1e-3);
  RunCase({"ReduceSum", {{"x", {3, 5, 7}}, {"axes", {1}, DataType::kInt64, true, {-1}}}, {}, 1, 13});
  RunCase({"ReduceSum", {{"x", {2, 33, 4}}, {"axes", {1}, DataType::kInt64, true, {1}}}, {{"keepdims", Attribute::FromInt(0)}}, 1, 13});
  // float64 (the expanded ReduceLogSumExp/ReduceLogSum tests): every op, reduced in float64.
  const DataType f64 = DataType::kDouble;
  for (const char* op : {"ReduceMax", "ReduceMin", "ReduceMean", "ReduceSumSquare", "ReduceL2", "ReduceL1",
                         "ReduceLogSumExp", "ReduceProd"})
    RunCase({op, {{"x", {3, 300, 5}, f64}}, {{"axes", Attribute::FromInts({1})}}, 1, 13}, 1e-10, 1e-12);
  RunCase({"ReduceLogSum", {{"x", {3, 5, 7}, f64, false, {}, true}}, {{"axes", Attribute::FromInts({-1})}}, 1, 13},
          1e-10, 1e-12);
  RunCase({"ReduceSum", {{"x", {2, 33, 4}, f64}, {"axes", {1}, DataType::kInt64, true, {1}}}, {}, 1, 13}, 1e-10, 1e-12);
  RunCase({"GlobalMaxPool", {{"x", {2, 5, 7, 3}}}});
  // A row of -inf (a fully masked attention row): max -inf, min over +inf rows +inf.
  std::vector<float> masked = {-INFINITY, -INFINITY, -INFINITY, 1.f, -2.f, 0.5f};
  RunCase({"ReduceMax", {{"x", {2, 3}, DataType::kFloat, false, {}, false, false, masked}}, {{"axes", Attribute::FromInts({1})}}, 1, 13});
  RunCase({"ReduceMin", {{"x", {2, 3}, DataType::kFloat, false, {}, false, false, {INFINITY, INFINITY, INFINITY, 1.f, -2.f, 0.5f}}},
           {{"axes", Attribute::FromInts({1})}}, 1, 13});
}

// Resize / Upsample: every mode and coordinate transformation, up and down,
// scales or sizes, axes, antialias, tf_crop_and_resize's extrapolation, 5-D.
void Resize(const Sink& RunCase) {
  auto scales = [](std::vector<float> v) {
    return In{"scales", {static_cast<int64_t>(v.size())}, DataType::kFloat, true, {}, false, false, v};
  };
  auto sizes = [](std::vector<int64_t> v) { return In{"sizes", {static_cast<int64_t>(v.size())}, DataType::kInt64, true, v}; };
  auto attrs = [](const char* mode, const char* coord, const char* nearest = "round_prefer_floor") {
    return AttributeMap{{"mode", Attribute::FromString(mode)},
                        {"coordinate_transformation_mode", Attribute::FromString(coord)},
                        {"nearest_mode", Attribute::FromString(nearest)}};
  };
  const In x{"x", {2, 3, 5, 7}}, none{""};
  RunCase({"Resize", {x, none, scales({1, 1, 2, 2})}, attrs("nearest", "half_pixel"), 1, 13});
  // Channels last (layout_nhwc's Resize): the middle axes resized, FP16, torch's nearest and bilinear.
  const In nhwc{"x", {2, 5, 7, 24}, DataType::kFloat16};
  RunCase({"Resize", {nhwc, none, scales({1, 2, 2, 1})}, attrs("nearest", "asymmetric", "floor"), 1, 13});
  RunCase({"Resize", {nhwc, none, scales({1, 2, 1.5f, 1})}, attrs("linear", "half_pixel"), 1, 13}, 2e-3,
          2e-3);
  RunCase({"Resize", {x, none, scales({1, 1, 2, 2})}, attrs("nearest", "asymmetric", "floor"), 1, 13});  // torch's nearest
  RunCase({"Resize", {x, none, scales({1, 1, 1.5f, 0.6f})}, attrs("nearest", "tf_half_pixel_for_nn", "round_prefer_ceil"), 1, 13});
  RunCase({"Resize", {x, none, scales({1, 1, 3, 0.5f})}, attrs("nearest", "align_corners", "ceil"), 1, 13});
  RunCase({"Resize", {x, none, scales({1, 1, 2, 2})}, attrs("linear", "half_pixel"), 1, 13});
  RunCase({"Resize", {x, none, scales({1, 1, 1.5f, 0.6f})}, attrs("linear", "pytorch_half_pixel"), 1, 13});
  RunCase({"Resize", {x, none, none, sizes({2, 3, 4, 9})}, attrs("linear", "align_corners"), 1, 13});
  RunCase({"Resize", {x, none, none, sizes({2, 3, 9, 4})}, attrs("linear", "asymmetric"), 1, 13});
  AttributeMap cubic = attrs("cubic", "half_pixel");
  cubic["exclude_outside"] = Attribute::FromInt(1);
  RunCase({"Resize", {x, none, scales({1, 1, 1.6f, 2.2f})}, cubic, 1, 13});
  RunCase({"Resize", {x, none, scales({1, 1, 0.8f, 1.3f})}, attrs("cubic", "pytorch_half_pixel"), 1, 13});
  AttributeMap aa = attrs("linear", "half_pixel");
  aa["antialias"] = Attribute::FromInt(1);
  RunCase({"Resize", {{"x", {1, 2, 12, 15}}, none, scales({1, 1, 0.5f, 0.4f})}, aa, 1, 18});
  AttributeMap crop = attrs("linear", "tf_crop_and_resize");
  crop["extrapolation_value"] = Attribute::FromFloat(0.5f);
  In roi{"roi", {8}, DataType::kFloat, true, {}, false, false, {0, 0, -0.2f, 0.1f, 1, 1, 0.9f, 1.3f}};
  RunCase({"Resize", {x, roi, none, sizes({2, 3, 6, 8})}, crop, 1, 13});
  AttributeMap axes = attrs("linear", "half_pixel");
  axes["axes"] = Attribute::FromInts({2, 3});
  RunCase({"Resize", {x, none, scales({2, 3})}, axes, 1, 18});
  RunCase({"Resize", {{"x", {1, 2, 3, 4, 5}}, none, scales({1, 1, 2, 1.5f, 0.6f})}, attrs("linear", "half_pixel"), 1, 13});
  RunCase({"Upsample", {x, scales({1, 1, 2, 3})}, {{"mode", Attribute::FromString("nearest")}}, 1, 9});
  RunCase({"Upsample", {x, scales({1, 1, 2, 2})}, {{"mode", Attribute::FromString("linear")}}, 1, 9});
  Case half{"Resize", {x, none, scales({1, 1, 2, 2})}, attrs("linear", "half_pixel"), 1, 13};
  half.fp16 = true;
  RunCase(half, 1e-2, 2e-2);
  RunCase({"Resize", {{"x", {2, 3, 5, 7}, DataType::kFloat16}, none, scales({1, 1, 2, 2})}, attrs("nearest", "asymmetric", "floor"), 1, 13});
}

void GroupNorm(const Sink& RunCase) {
  RunCase({"InstanceNormalization", {{"x", {2, 3, 5, 7}}, {"s", {3}, DataType::kFloat, true}, {"b", {3}, DataType::kFloat, true}}},
          1e-4, 1e-4);
  RunCase({"InstanceNormalization", {{"x", {1, 4, 33}}, {"s", {4}, DataType::kFloat, true}, {"b", {4}, DataType::kFloat, true}},
           {{"epsilon", Attribute::FromFloat(1e-3f)}}}, 1e-4, 1e-4);
  RunCase({"GroupNormalization", {{"x", {2, 6, 5, 7}}, {"s", {6}, DataType::kFloat, true}, {"b", {6}, DataType::kFloat, true}},
           {{"num_groups", Attribute::FromInt(3)}}, 1, 21}, 1e-4, 1e-4);
  RunCase({"GroupNormalization", {{"x", {2, 8, 300}}, {"s", {2}, DataType::kFloat, true}, {"b", {2}, DataType::kFloat, true}},
           {{"num_groups", Attribute::FromInt(2)}}, 1, 18}, 1e-4, 1e-4);  // opset 18: per-group scale and bias
  Case half{"InstanceNormalization", {{"x", {2, 3, 9, 9}}, {"s", {3}, DataType::kFloat, true}, {"b", {3}, DataType::kFloat, true}}};
  half.fp16 = true;
  RunCase(half, 1e-2, 2e-2);
  // Few long rows, split into chunks: GroupNorm(1, C) as torch exports it (InstanceNormalization of [N, 1,
  // C·H·W], PoolFormer's), one group per image, and a UNet's 32 groups at batch 1 in FP16.
  RunCase({"InstanceNormalization",
           {{"x", {1, 1, 200704}}, {"s", {1}, DataType::kFloat, true}, {"b", {1}, DataType::kFloat, true}}},
          1e-4, 1e-4);
  RunCase({"GroupNormalization",
           {{"x", {2, 64, 28, 28}}, {"s", {64}, DataType::kFloat, true}, {"b", {64}, DataType::kFloat, true}},
           {{"num_groups", Attribute::FromInt(1)}},
           1,
           21},
          1e-4, 1e-4);
  RunCase({"GroupNormalization",
           {{"x", {1, 64, 64, 64}, DataType::kFloat16},
            {"s", {64}, DataType::kFloat16, true},
            {"b", {64}, DataType::kFloat16, true}},
           {{"num_groups", Attribute::FromInt(32)}},
           1,
           21},
          1e-2, 2e-2);
}

// ConvTranspose: strides, pads, output_padding, groups, dilations, output_shape, SAME_UPPER, 1-D and 3-D, bias.
void ConvTranspose(const Sink& RunCase) {
  auto ints = [](std::vector<int64_t> v) { return Attribute::FromInts(v); };
  const In x{"x", {2, 4, 5, 6}}, w{"w", {4, 3, 3, 3}, DataType::kFloat, true}, b{"b", {3}, DataType::kFloat, true};
  RunCase({"ConvTranspose", {x, w, b}}, 1e-4, 1e-4);
  RunCase({"ConvTranspose", {x, w, b}, {{"strides", ints({2, 2})}, {"pads", ints({1, 1, 1, 1})},
                                         {"output_padding", ints({1, 1})}}}, 1e-4, 1e-4);
  RunCase({"ConvTranspose", {x, {"w", {4, 2, 4, 4}, DataType::kFloat, true}}, {{"strides", ints({2, 2})},
                                                                               {"pads", ints({1, 1, 1, 1})}, {"group", Attribute::FromInt(2)}}},
          1e-4, 1e-4);  // U-Net / DCGAN style 4x4 stride 2, two groups
  RunCase({"ConvTranspose", {x, w}, {{"dilations", ints({2, 1})}, {"strides", ints({1, 2})}}}, 1e-4, 1e-4);
  RunCase({"ConvTranspose", {x, w, b}, {{"strides", ints({2, 2})}, {"output_shape", ints({11, 13})}}}, 1e-4, 1e-4);
  RunCase({"ConvTranspose", {x, {"w", {4, 3, 2, 2}, DataType::kFloat, true}}, {{"strides", ints({2, 2})},
                                                                               {"auto_pad", Attribute::FromString("SAME_UPPER")}}},
          1e-4, 1e-4);
  RunCase({"ConvTranspose", {{"x", {1, 3, 9}}, {"w", {3, 5, 3}, DataType::kFloat, true}, {"b", {5}, DataType::kFloat, true}},
           {{"strides", ints({3})}}}, 1e-4, 1e-4);
  RunCase({"ConvTranspose", {{"x", {1, 2, 3, 4, 5}}, {"w", {2, 3, 3, 3, 3}, DataType::kFloat, true}},
           {{"strides", ints({2, 2, 2})}, {"pads", ints({1, 1, 1, 1, 1, 1})}}}, 1e-4, 1e-4);
  Case half{"ConvTranspose", {x, w, b}, {{"strides", ints({2, 2})}, {"pads", ints({1, 1, 1, 1})}}};
  half.fp16 = true;
  RunCase(half, 1e-2, 2e-2);
}

void RmsNorm(const Sink& RunCase) {
  RunCase({"RMSNormalization", {{"x", {2, 5, 64}}, {"s", {64}, DataType::kFloat, true}}, {}, 1, 23}, 1e-4, 1e-4);
  RunCase({"RMSNormalization", {{"x", {3, 4, 7}}, {"s", {4, 7}, DataType::kFloat, true}}, {{"axis", Attribute::FromInt(1)}}, 1, 23},
          1e-4, 1e-4);
  RunCase({"RMSNormalization", {{"x", {4, 300}, DataType::kFloat16}, {"s", {300}, DataType::kFloat16, true}},
           {{"epsilon", Attribute::FromFloat(1e-6f)}}, 1, 23}, 1e-2, 1e-2);
}

void AxisOps(const Sink& RunCase) {
  RunCase({"ArgMax", {{"x", {3, 7, 5}}}, {{"axis", Attribute::FromInt(1)}}});
  RunCase({"ArgMin", {{"x", {3, 7, 5}}}, {{"axis", Attribute::FromInt(-1)}, {"keepdims", Attribute::FromInt(0)}}});
  // Ties (small integers): first or last index.
  RunCase({"ArgMax", {{"x", {4, 9}, DataType::kInt64}}, {{"axis", Attribute::FromInt(1)}, {"select_last_index", Attribute::FromInt(1)}}});
  RunCase({"ArgMin", {{"x", {4, 9}, DataType::kInt64}}, {{"axis", Attribute::FromInt(0)}}});
  RunCase({"ArgMax", {{"x", {2, 1000}, DataType::kFloat16}}, {{"axis", Attribute::FromInt(1)}}});
  In axis1{"axis", {}, DataType::kInt64, true, {1}};
  RunCase({"CumSum", {{"x", {3, 6, 4}}, axis1}});
  RunCase({"CumSum", {{"x", {3, 6, 4}}, axis1}, {{"exclusive", Attribute::FromInt(1)}, {"reverse", Attribute::FromInt(1)}}});
  RunCase({"CumSum", {{"x", {5, 7}, DataType::kInt64}, {"axis", {}, DataType::kInt64, true, {-1}}}});
  RunCase({"CumProd", {{"x", {3, 6, 4}}, axis1}, {}, 1, 26});
  RunCase({"CumProd", {{"x", {3, 6, 4}}, axis1}, {{"exclusive", Attribute::FromInt(1)}, {"reverse", Attribute::FromInt(1)}}, 1, 26});
  RunCase({"CumProd", {{"x", {5, 9}, DataType::kInt32}, {"axis", {}, DataType::kInt64, true, {-1}}}, {}, 1, 26});
  // Hardmax: ties among small integers (first maximum), the 2-D view before opset 13, float16.
  RunCase({"Hardmax", {{"x", {3, 7, 5}}}, {{"axis", Attribute::FromInt(1)}}});
  RunCase({"Hardmax", {{"x", {4, 9}}}});
  RunCase({"Hardmax", {{"x", {2, 3, 4}}}, {{"axis", Attribute::FromInt(1)}}, 1, 11});
  RunCase({"Hardmax", {{"x", {6, 40}, DataType::kFloat16}}, {{"axis", Attribute::FromInt(-1)}}});
  // LpNormalization: p = 1 and 2, inner axes, negative axis, a zero line, float16.
  RunCase({"LpNormalization", {{"x", {3, 7, 5}}}, {{"axis", Attribute::FromInt(1)}, {"p", Attribute::FromInt(1)}}});
  RunCase({"LpNormalization", {{"x", {4, 33}}}});
  RunCase({"LpNormalization", {{"x", {2, 3, 4}, DataType::kFloat, false, {}, false, false,
                                {0, 0, 0, 0, 1, 2, 3, 4, -1, 0.5f, 2, 0, 0, 0, 0, 0, 3, 3, 3, 3, 1, 1, 1, 1}}},
                               {{"axis", Attribute::FromInt(-1)}}});
  RunCase({"LpNormalization", {{"x", {5, 16}, DataType::kFloat16}}, {{"axis", Attribute::FromInt(0)}}}, 1e-3, 1e-3);
}

void Indexing(const Sink& RunCase) {
  RunCase({"Tile", {{"x", {2, 3}}, {"r", {2}, DataType::kInt64, true, {2, 3}}}});
  RunCase({"Tile", {{"x", {2, 1, 5}, DataType::kFloat16}, {"r", {3}, DataType::kInt64, true, {1, 4, 1}}}});
  RunCase({"Tile", {{"x", {3, 4}, DataType::kInt64}, {"r", {2}, DataType::kInt64, true, {3, 1}}}});
  RunCase({"GatherElements", {{"x", {3, 4}}, {"i", {3, 2}, DataType::kInt64, true, {0, 3, -1, 2, 1, 0}}}, {{"axis", Attribute::FromInt(1)}}});
  RunCase({"GatherElements", {{"x", {6, 5}}, {"i", {2, 5}, DataType::kInt64}}, {{"axis", Attribute::FromInt(0)}}});
  RunCase({"GatherElements", {{"x", {2, 6, 3}, DataType::kFloat16}, {"i", {2, 4, 3}, DataType::kInt32}}, {{"axis", Attribute::FromInt(1)}}});
  RunCase({"Trilu", {{"x", {2, 5, 7}}}});
  RunCase({"Trilu", {{"x", {6, 4}}, {"k", {}, DataType::kInt64, true, {-1}}}, {{"upper", Attribute::FromInt(0)}}});
  RunCase({"Trilu", {{"x", {3, 4, 4}, DataType::kInt64}, {"k", {}, DataType::kInt64, true, {2}}}});
  // OneHot: every axis, negative and out-of-range indices, int32 / float
  // indices, [off, on] on the device or constant, int64 values.
  In depth{"depth", {}, DataType::kInt64, true, {4}};
  In values{"values", {2}, DataType::kFloat, false, {}, false, false, {-0.5f, 2.f}};
  In values_const{"values", {2}, DataType::kFloat, true, {}, false, false, {0.f, 1.f}};
  RunCase({"OneHot", {{"i", {2, 3}, DataType::kInt64, false, {0, 3, -1, 4, -5, 2}}, depth, values}});
  RunCase({"OneHot", {{"i", {2, 3}, DataType::kInt64, false, {0, 3, -1, 4, -5, 2}}, depth, values_const},
           {{"axis", Attribute::FromInt(0)}}});
  RunCase({"OneHot", {{"i", {3, 5}, DataType::kInt32}, {"depth", {1}, DataType::kInt64, true, {6}}, values},
           {{"axis", Attribute::FromInt(1)}}});
  RunCase({"OneHot", {Spread("i", {7}, -3.f, 4.5f), depth, values}, {{"axis", Attribute::FromInt(-2)}}});
  RunCase({"OneHot", {{"i", {4}, DataType::kInt64}, depth, {"values", {2}, DataType::kInt64, false, {3, 9}}}});
}

// TopK: largest and smallest, every axis position (negative too), ties among
// small integers and float16 values (lower index first), NaN/±Inf (NaN ranks
// largest), K = the whole axis and K = 0, K as an attribute (opset 1-9).
void TopK(const Sink& RunCase) {
  auto k = [](int64_t v) { return In{"k", {1}, DataType::kInt64, true, {v}}; };
  auto attrs = [](int64_t axis, int64_t largest) {
    return AttributeMap{{"axis", Attribute::FromInt(axis)}, {"largest", Attribute::FromInt(largest)}};
  };
  RunCase({"TopK", {{"x", {3, 7, 5}}, k(3)}, {}, 2});
  RunCase({"TopK", {{"x", {3, 7, 5}}, k(4)}, attrs(1, 0), 2});
  RunCase({"TopK", {{"x", {2, 9, 3, 4}}, k(9)}, attrs(-3, 1), 2});
  RunCase({"TopK", {{"x", {4, 11}, DataType::kInt64}, k(6)}, attrs(-1, 1), 2});
  RunCase({"TopK", {{"x", {5, 13}, DataType::kInt32}, k(5)}, attrs(1, 0), 2});
  RunCase({"TopK", {{"x", {2, 300}, DataType::kFloat16}, k(17)}, attrs(-1, 1), 2});
  RunCase({"TopK", {{"x", {6, 3}, DataType::kFloat16}, k(2)}, attrs(0, 0), 2});
  In special{"x", {4, 9}};
  special.special = true;
  RunCase({"TopK", {special, k(5)}, attrs(1, 1), 2});
  RunCase({"TopK", {special, k(5)}, attrs(1, 0), 2});
  RunCase({"TopK", {{"x", {3, 4}}, k(0)}, {}, 2});
  RunCase({"TopK", {{"x", {3, 8}}}, {{"k", Attribute::FromInt(3)}, {"axis", Attribute::FromInt(0)}}, 2, 9});
}

// ScatterElements / ScatterND: every reduction, duplicate indices (the
// reference's order: later updates win or fold in), negative indices, indices
// smaller than the data off the axis, int32 indices, integer and float16 data,
// no updates at all.
void Scatter(const Sink& RunCase) {
  auto red = [](const char* r, int64_t axis = 0) {
    return AttributeMap{{"reduction", Attribute::FromString(r)}, {"axis", Attribute::FromInt(axis)}};
  };
  const DataType i64 = DataType::kInt64, i32 = DataType::kInt32, f16 = DataType::kFloat16;
  // Random int64/int32 indices are in [0, 5): duplicates along every line.
  RunCase({"ScatterElements", {{"x", {6, 5}}, {"i", {3, 5}, i64}, {"u", {3, 5}}}, red("none"), 1, 18});
  In neg{"i", {3, 2}, i64, false, {0, -1, 3, -4, 2, 2}};
  for (const char* r : {"add", "mul", "max", "min"})
    RunCase({"ScatterElements", {{"x", {3, 4}}, neg, {"u", {3, 2}}}, red(r, -1), 1, 18});
  RunCase({"ScatterElements", {{"x", {4, 5, 6}}, {"i", {3, 7, 4}, i32}, {"u", {3, 7, 4}}}, red("add", 1), 1, 18});
  RunCase({"ScatterElements", {{"x", {5, 6}, i64}, {"i", {5, 3}, i32}, {"u", {5, 3}, i64}}, red("max", 1), 1, 18});
  RunCase({"ScatterElements", {{"x", {7, 3}, f16}, {"i", {4, 3}, i64}, {"u", {4, 3}, f16}}, red("add"), 1, 18}, 1e-3, 1e-3);
  RunCase({"ScatterElements", {{"x", {3, 9}}, {"i", {3, 0}, i64}, {"u", {3, 0}}}, red("none", 1), 1, 18});
  RunCase({"Scatter", {{"x", {5, 4}}, {"i", {2, 4}, i64}, {"u", {2, 4}}}, {}, 1, 10});

  In dup{"i", {3, 2}, i64, false, {0, 1, 3, -1, 0, 1}};  // tuples 0 and 2 hit the same slab
  RunCase({"ScatterND", {{"x", {4, 5, 6}}, dup, {"u", {3, 6}}}, {}, 1, 13});
  for (const char* r : {"add", "mul", "max", "min"})
    RunCase({"ScatterND", {{"x", {4, 5, 6}}, dup, {"u", {3, 6}}}, red(r), 1, 18});
  RunCase({"ScatterND", {{"x", {4, 5}}, {"i", {2, 3, 2}, i64, false, {0, 0, 3, 4, -1, -1, 1, 2, 2, 1, 0, 0}},
                         {"u", {2, 3}}}, red("add"), 1, 18});
  RunCase({"ScatterND", {{"x", {6, 3}, i64}, {"i", {4, 1}, i64, false, {5, 0, -1, 2}}, {"u", {4, 3}, i64}}, red("add"), 1, 18});
  RunCase({"ScatterND", {{"x", {5, 7}, f16}, {"i", {3, 1}, i32}, {"u", {3, 7}, f16}}, red("mul"), 1, 18}, 1e-3, 1e-3);
  RunCase({"ScatterND", {{"x", {2, 3, 8, 4}}, {"i", {2, 1, 3}, i64, false, {0, 1, 7, 1, 2, 0}}, {"u", {2, 1, 4}}}, {}, 1, 13});
  RunCase({"ScatterND", {{"x", {4, 6}}, {"i", {0, 1}, i64}, {"u", {0, 6}}}, {}, 1, 13});
}

// The unary math rows beyond the activations: trigonometric and hyperbolic
// functions inside their domains, ThresholdedRelu / Celu / Shrink with their
// attributes, float16 storage.
void UnaryMath(const Sink& RunCase) {
  for (const char* op : {"Tan", "Atan", "Sinh", "Cosh", "Asinh"}) RunCase({op, {{"x", {3, 5, 7}}}});
  for (const char* op : {"Asin", "Acos", "Atanh"}) RunCase({op, {Spread("x", {4, 9}, -0.95f, 0.95f)}});
  RunCase({"Acosh", {Spread("x", {4, 9}, 1.05f, 4.f)}});
  RunCase({"ThresholdedRelu", {{"x", {3, 17}}}, {{"alpha", Attribute::FromFloat(0.4f)}}});
  RunCase({"Celu", {{"x", {3, 17}}}, {{"alpha", Attribute::FromFloat(0.7f)}}, 1, 12});
  RunCase({"Shrink", {{"x", {5, 11}}}, {{"lambd", Attribute::FromFloat(0.6f)}, {"bias", Attribute::FromFloat(0.25f)}}});
  RunCase({"Shrink", {{"x", {33}}}});
  RunCase({"Atan", {{"x", {2, 40}, DataType::kFloat16}}}, 1e-3, 1e-3);
  RunCase({"Celu", {{"x", {7, 9}, DataType::kFloat16}}}, 1e-3, 1e-3);
  // Clip bounds on the device: both, one (the other omitted), one of each kind.
  In lo{"lo", {}, DataType::kFloat, false, {}, false, false, {-0.6f}};
  In hi{"hi", {}, DataType::kFloat, false, {}, false, false, {0.9f}};
  In hi_const{"hi", {}, DataType::kFloat, true, {}, false, false, {1.3f}};
  RunCase({"Clip", {{"x", {4, 9}}, lo, hi}});
  RunCase({"Clip", {{"x", {4, 9}}, lo}});
  RunCase({"Clip", {{"x", {4, 9}}, In{""}, hi}});
  RunCase({"Clip", {{"x", {3, 7}}, lo, hi_const}});
  RunCase({"Clip", {{"x", {5, 8}, DataType::kFloat16}, {"lo", {}, DataType::kFloat16}}}, 1e-3, 1e-3);
}

// Not, BitwiseNot/And/Or/Xor, BitShift (both directions, negative values
// (sign fill), shifts past the width) with broadcasting.
void Bitwise(const Sink& RunCase) {
  const DataType i64 = DataType::kInt64, i32 = DataType::kInt32;
  RunCase({"Not", {{"x", {6, 7}, DataType::kBool}}});
  RunCase({"BitwiseNot", {{"x", {5, 6}, i32}}, {}, 1, 18});
  RunCase({"BitwiseNot", {{"x", {4}, i64, false, {0, -1, 5, -77}}}, {}, 1, 18});
  In a{"a", {2, 6}, i64, false, {13, -6, 255, 1024, 7, -1, 0, 9, -100, 3, 77, 64}};
  for (const char* op : {"BitwiseAnd", "BitwiseOr", "BitwiseXor"}) {
    RunCase({op, {a, {"b", {6}, i64, false, {1, -2, 12, 1023, 5, 6}}}, {}, 1, 18});
    RunCase({op, {{"a", {3, 5}, i32}, {"b", {3, 1}, i32}}, {}, 1, 18});
  }
  In shift{"s", {6}, i64, false, {0, 1, 3, 63, 64, 2}};
  RunCase({"BitShift", {a, shift}, {{"direction", Attribute::FromString("LEFT")}}});
  RunCase({"BitShift", {a, shift}, {{"direction", Attribute::FromString("RIGHT")}}});
  RunCase({"BitShift", {{"a", {4, 5}, i32}, {"s", {5}, i32}}, {{"direction", Attribute::FromString("LEFT")}}});
}

// Variadic Sum / Mean / Max / Min: one to ten inputs (ten chain two launches),
// every broadcast, NaN propagation (two-input Max/Min too), integers, float16.
void Variadic(const Sink& RunCase) {
  const In a{"a", {2, 3, 5}}, b{"b", {5}}, c{"c", {3, 1}};
  for (const char* op : {"Sum", "Mean", "Max", "Min"}) {
    RunCase({op, {a, b, c}});
    RunCase({op, {{"a", {4, 7}}}});
  }
  std::vector<In> ten;
  for (int i = 0; i < 10; ++i) ten.push_back({"x" + std::to_string(i), i % 3 ? std::vector<int64_t>{4, 6} : std::vector<int64_t>{6}});
  RunCase({"Sum", ten});
  RunCase({"Mean", ten});
  RunCase({"Max", ten});
  RunCase({"Sum", {{"a", {3, 4}, DataType::kInt64}, {"b", {4}, DataType::kInt64}, {"c", {3, 1}, DataType::kInt64}}});
  RunCase({"Min", {{"a", {3, 4}, DataType::kInt32}, {"b", {4}, DataType::kInt32}, {"c", {3, 4}, DataType::kInt32}}});
  RunCase({"Mean", {{"a", {5, 8}, DataType::kFloat16}, {"b", {8}, DataType::kFloat16}, {"c", {5, 8}, DataType::kFloat16}}},
          1e-3, 1e-3);
  In special{"s", {5, 7}};
  special.special = true;
  for (const char* op : {"Max", "Min"}) {
    RunCase({op, {special, {"b", {5, 7}}}});
    RunCase({op, {{"b", {7}}, special, {"c", {5, 1}}}});
  }
}

// Data-dependent ops (GpuOp::OutputBounds: outputs sized at their bounds, real
// dims written on the device): NonZero, Compress, TopK with K on the device.
void DataDependent(const Sink& RunCase) {
  const DataType i64 = DataType::kInt64;
  RunCase({"NonZero", {{"x", {3, 4}, i64}}});
  RunCase({"NonZero", {{"x", {5, 6}, DataType::kBool}}});
  RunCase({"NonZero", {{"x", {2, 3, 4}, DataType::kFloat, false, {}, false, false,
                        {0, 1, 0, 0, -2, 0, 0, 0, 3, 0, 0.5f, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7, 0, -1}}}});
  RunCase({"NonZero", {{"x", {2, 1500}, DataType::kInt32}}});  // several scan chunks
  RunCase({"Compress", {{"x", {3, 5, 2}}, {"c", {5}, DataType::kBool}}, {{"axis", Attribute::FromInt(1)}}});
  RunCase({"Compress", {{"x", {3, 4}}, {"c", {7}, DataType::kBool}}});
  RunCase({"Compress", {{"x", {4, 6}, DataType::kFloat16}, {"c", {6}, DataType::kBool}}, {{"axis", Attribute::FromInt(-1)}}});
  RunCase({"Compress", {{"x", {6, 3}, i64}, {"c", {4}, DataType::kBool}}, {{"axis", Attribute::FromInt(0)}}});
  // NonMaxSuppression: corner boxes (corners in either order) and center boxes,
  // thresholds as constants or device values, max boxes per class 0, 2 and
  // above the box count; random scores in [-2, 2) give ties-free orders.
  auto boxes = [](int64_t batches, int64_t n) {
    std::vector<float> v;
    for (int64_t i = 0; i < batches * n; ++i) {
      const float x = static_cast<float>(i % 5) * 0.7f, y = static_cast<float>(i % 3) * 0.9f;
      const float w = 1.f + static_cast<float>(i % 4) * 0.3f, h = 1.2f + static_cast<float>(i % 2) * 0.5f;
      if (i % 2) v.insert(v.end(), {y, x, y + h, x + w});
      else v.insert(v.end(), {y + h, x + w, y, x});  // reversed corners
    }
    return In{"boxes", {batches, n, 4}, DataType::kFloat, false, {}, false, false, v};
  };
  auto scalar = [](const char* name, float v, bool constant) {
    return In{name, {1}, DataType::kFloat, constant, {}, false, false, {v}};
  };
  auto max_out = [](int64_t v, bool constant) { return In{"max", {1}, i64, constant, {v}}; };
  RunCase({"NonMaxSuppression", {boxes(2, 9), {"scores", {2, 3, 9}}, max_out(3, true), scalar("iou", 0.3f, true),
                                 scalar("score", -1.f, true)}, {}, 1, 11});
  RunCase({"NonMaxSuppression", {boxes(1, 12), {"scores", {1, 2, 12}}, max_out(20, false), scalar("iou", 0.5f, false),
                                 scalar("score", 0.f, false)}, {}, 1, 11});
  RunCase({"NonMaxSuppression", {boxes(2, 7), {"scores", {2, 1, 7}}, max_out(2, true), scalar("iou", 0.1f, true)}, {}, 1, 11});
  RunCase({"NonMaxSuppression", {boxes(1, 8), {"scores", {1, 2, 8}}, max_out(8, true), scalar("iou", 0.4f, true)},
           {{"center_point_box", Attribute::FromInt(1)}}, 1, 11});
  RunCase({"NonMaxSuppression", {boxes(1, 6), {"scores", {1, 2, 6}}, max_out(0, false)}, {}, 1, 11});
  In k{"k", {1}, i64, false, {4}};
  RunCase({"TopK", {{"x", {3, 9, 5}}, k}, {{"axis", Attribute::FromInt(1)}}, 2});
  RunCase({"TopK", {{"x", {4, 11}, i64}, k}, {{"largest", Attribute::FromInt(0)}}, 2});
}

// RoiAlign: both coordinate modes (opset 10's output_half_pixel default), avg
// and max, fixed and adaptive sampling, spatial_scale, ROIs partly outside the
// image, reversed and degenerate ROIs, int32 batch indices, float16.
void RoiAlign(const Sink& RunCase) {
  const In x{"x", {2, 3, 10, 12}};
  const In rois{"rois", {5, 4}, DataType::kFloat, false, {}, false, false,
                {1.f, 1.f, 9.f, 7.f, 0.f, 2.5f, 20.f, 19.f, -3.f, -2.f, 4.f, 5.f, 8.f, 6.f, 2.f, 1.f, 5.f, 5.f, 5.5f, 5.f}};
  const In idx{"idx", {5}, DataType::kInt64, false, {0, 1, 1, 0, 1}};
  auto attrs = [](const char* mode, const char* ctm, int64_t ratio, float scale, int64_t h, int64_t w) {
    AttributeMap a{{"mode", Attribute::FromString(mode)}, {"sampling_ratio", Attribute::FromInt(ratio)},
                   {"spatial_scale", Attribute::FromFloat(scale)}, {"output_height", Attribute::FromInt(h)},
                   {"output_width", Attribute::FromInt(w)}};
    if (*ctm) a["coordinate_transformation_mode"] = Attribute::FromString(ctm);
    return a;
  };
  RunCase({"RoiAlign", {x, rois, idx}, attrs("avg", "half_pixel", 2, 1.f, 3, 4), 1, 16});
  RunCase({"RoiAlign", {x, rois, idx}, attrs("avg", "", 0, 0.5f, 2, 2), 1, 16});
  RunCase({"RoiAlign", {x, rois, idx}, attrs("max", "half_pixel", 0, 1.f, 3, 3), 1, 16});
  RunCase({"RoiAlign", {x, rois, idx}, attrs("max", "output_half_pixel", 2, 0.75f, 4, 2), 1, 16});
  RunCase({"RoiAlign", {x, rois, idx}, attrs("avg", "", 0, 1.f, 5, 3), 1, 10});
  RunCase({"RoiAlign", {x, rois, idx}, attrs("max", "", 3, 1.f, 2, 3), 1, 10});
  RunCase({"RoiAlign", {{"x", {5, 2, 8, 9}}, rois, {"idx", {5}, DataType::kInt32}},  // random int32 indices in [0, 5)
           attrs("avg", "half_pixel", 1, 1.f, 2, 2), 1, 16});
  RunCase({"RoiAlign", {{"x", {1, 4, 7, 9}, DataType::kFloat16},
                        {"rois", {2, 4}, DataType::kFloat16, false, {}, false, false, {}},
                        {"idx", {2}, DataType::kInt64, false, {0, 0}}},
           attrs("avg", "half_pixel", 2, 1.f, 2, 3), 1, 16}, 1e-3, 1e-3);
}

// Einsum in the forms exporters write: batched products (attention's
// "bhid,bhjd->bhij" and back), transposes, reductions, a diagonal, a dot
// product to a scalar, ellipsis broadcasting, the implicit output, three
// operands, float16.
void Einsum(const Sink& RunCase) {
  auto eq = [](const char* e) { return AttributeMap{{"equation", Attribute::FromString(e)}}; };
  RunCase({"Einsum", {{"a", {2, 3, 4}}, {"b", {2, 4, 5}}}, eq("bij,bjk->bik"), 1, 12}, 1e-4, 1e-4);
  RunCase({"Einsum", {{"q", {2, 3, 5, 8}}, {"k", {2, 3, 6, 8}}}, eq("bhid,bhjd->bhij"), 1, 12}, 1e-4, 1e-4);
  RunCase({"Einsum", {{"p", {2, 3, 5, 6}}, {"v", {2, 3, 6, 7}}}, eq("bhij,bhjd->bhid"), 1, 12}, 1e-4, 1e-4);
  RunCase({"Einsum", {{"x", {3, 5}}}, eq("ij->ji"), 1, 12});
  RunCase({"Einsum", {{"x", {3, 5, 4}}}, eq("ijk->ki"), 1, 12}, 1e-4, 1e-4);
  RunCase({"Einsum", {{"x", {4, 4}}}, eq("ii->i"), 1, 12});
  RunCase({"Einsum", {{"a", {7}}, {"b", {7}}}, eq("i,i->"), 1, 12}, 1e-4, 1e-4);
  RunCase({"Einsum", {{"a", {2, 1, 3, 4}}, {"b", {5, 4, 2}}}, eq("...ij,...jk->...ik"), 1, 12}, 1e-4, 1e-4);
  RunCase({"Einsum", {{"a", {3, 4}}, {"b", {4, 6}}}, eq("ij,jk"), 1, 12}, 1e-4, 1e-4);
  RunCase({"Einsum", {{"a", {2, 3, 4}}, {"b", {4, 5}}, {"c", {5, 3}}}, eq("abc,cd,de->abe"), 1, 12}, 1e-4, 1e-4);
  RunCase({"Einsum", {{"a", {2, 5, 8}, DataType::kFloat16}, {"b", {2, 8, 3}, DataType::kFloat16}}, eq("bij,bjk->bik"), 1, 12},
          1e-2, 1e-2);
}

}  // namespace

const std::vector<OpCase>& CudaOpCases() {
  static const std::vector<OpCase> cases = [] {
    std::vector<OpCase> all;
    auto group = [&](const char* name, void (*add)(const Sink&)) { add(Sink{name, &all}); };
    group("Unary", Unary);
    group("BinaryBroadcast", BinaryBroadcast);
    group("Cast", Cast);
    group("Conv", Conv);
    group("FusedConv", FusedConv);
    group("FusedConvActivations", FusedConvActivations);
    group("ChannelsLast", ChannelsLast);
    group("FusedMatMul", FusedMatMul);
    group("Quantization", Quantization);
    group("Int8Products", Int8Products);
    group("Fp8Products", Fp8Products);
    group("Fp16Builds", Fp16Builds);
    group("Attention", Attention);
    group("OnnxAttention", OnnxAttention);
    group("Loss", Loss);
    group("GridSample", GridSample);
    group("Generate", Generate);
    group("WideIntegers", WideIntegers);
    group("Pool", Pool);
    group("MatMulGemm", MatMulGemm);
    group("Movement", Movement);
    group("GatherND", GatherND);
    group("Normalization", Normalization);
    group("Elementwise", Elementwise);
    group("Reductions", Reductions);
    group("Resize", Resize);
    group("GroupNorm", GroupNorm);
    group("ConvTranspose", ConvTranspose);
    group("RmsNorm", RmsNorm);
    group("AxisOps", AxisOps);
    group("Indexing", Indexing);
    group("TopK", TopK);
    group("Scatter", Scatter);
    group("UnaryMath", UnaryMath);
    group("Bitwise", Bitwise);
    group("Variadic", Variadic);
    group("RoiAlign", RoiAlign);
    group("Einsum", Einsum);
    group("DataDependent", DataDependent);
    group("Pointwise", Pointwise);
    return all;
  }();
  return cases;
}

}  // namespace kiln::op_cases
