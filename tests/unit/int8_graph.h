// Small INT8 graphs for pass tests: per-tensor QuantizeLinear / DequantizeLinear, and kiln.QConv /
// kiln.QMatMul layers with random int8 weights, per-channel scales and an int32 bias.
#pragma once

#include <random>
#include <string>
#include <vector>

#include "graph_builder.h"

namespace kiln {
namespace testing_int8 {

using testing_build::GraphBuilder;

inline Value* ScalarOf(GraphBuilder& b, const std::string& name, float v) {
  return b.Fixed(name, Tensor::FromVector<float>(DataType::kFloat, {}, {v}));
}

inline Value* Int8Zero(GraphBuilder& b, const std::string& name) {
  return b.Fixed(name, Tensor::FromVector<int8_t>(DataType::kInt8, {}, {0}));
}

// Random int8 weights, per-channel scales and an int32 bias for `m` output channels.
struct Weights {
  Value* w;
  Value* scale;
  Value* bias;
};

inline Weights MakeWeights(GraphBuilder& b, const std::string& name, std::vector<int64_t> dims, int64_t m) {
  std::mt19937 rng(static_cast<unsigned>(name.size() * 31 + m));
  std::uniform_int_distribution<int> q(-127, 127), bias(-4000, 4000);
  std::uniform_real_distribution<float> u(0.002f, 0.01f);
  Tensor w(DataType::kInt8, dims);
  for (int64_t i = 0; i < w.numel(); ++i) w.mutable_data<int8_t>()[i] = static_cast<int8_t>(q(rng));
  std::vector<float> s(static_cast<size_t>(m));
  std::vector<int32_t> bv(static_cast<size_t>(m));
  for (int64_t i = 0; i < m; ++i) {
    s[i] = u(rng);
    bv[i] = bias(rng);
  }
  return {b.Fixed(name + "_w", std::move(w)),
          b.Fixed(name + "_ws", Tensor::FromVector<float>(DataType::kFloat, {m}, s)),
          b.Fixed(name + "_b", Tensor::FromVector<int32_t>(DataType::kInt32, {m}, bv))};
}

inline Value* Quantize(GraphBuilder& b, const std::string& name, Value* x, float scale) {
  return b.Op("QuantizeLinear", name, {x, ScalarOf(b, name + "_s", scale), Int8Zero(b, name + "_zp")});
}

inline Value* Dequantize(GraphBuilder& b, const std::string& name, Value* q, float scale) {
  return b.Op("DequantizeLinear", name, {q, ScalarOf(b, name + "_s", scale), Int8Zero(b, name + "_zp")});
}

// An INT8 3x3 convolution, 8 → 16 channels, float output.
inline Value* QConv(GraphBuilder& b, const std::string& name, Value* xq, float x_scale) {
  Weights w = MakeWeights(b, name, {16, 8, 3, 3}, 16);
  return b.Op(
      "QConv", name,
      {xq, ScalarOf(b, name + "_xs", x_scale), Int8Zero(b, name + "_xzp"), w.w, w.scale, nullptr, w.bias},
      {{"pads", Attribute::FromInts({1, 1, 1, 1})}}, "kiln");
}

}  // namespace testing_int8
}  // namespace kiln
