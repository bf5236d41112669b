// The model the refit tests swap weights in (tests/unit/refit_test.cc on the
// CPU, tests/gpu/refit_gpu_test.cc on the GPU): Conv → BatchNormalization →
// Relu → Flatten → Gemm, so the build passes fold BatchNorm and the bias into
// the conv, fuse the epilogues, and with --fp16 permute and cast the weights.
// `seed` picks the weights; the other knobs make a different architecture.
#pragma once

#include <memory>
#include <random>
#include <string>

#include "ir/graph.h"
#include "onnx/import.h"
#include "unit/graph_nodes.h"

namespace kiln::refit_test {

struct RefitModelSpec {
  uint32_t seed = 1;
  int64_t channels = 4;     // conv output channels
  bool extra_relu = false;  // one more node
};

inline std::unique_ptr<Model> MakeRefitModel(const RefitModelSpec& spec) {
  std::unique_ptr<Model> m = testing_ir::NewModel();
  Graph& g = *m->graph;
  testing_ir::Builder b(&g);
  std::mt19937 rng(spec.seed);
  std::uniform_real_distribution<float> u(0.1f, 1.f);
  auto weight = [&](const std::string& name, std::vector<int64_t> dims) {
    Value* v = g.AddValue(name);
    Tensor t(DataType::kFloat, std::move(dims));
    for (int64_t i = 0; i < t.numel(); ++i) t.mutable_data<float>()[i] = u(rng) - 0.5f;
    if (name == "bn.var")
      for (int64_t i = 0; i < t.numel(); ++i) t.mutable_data<float>()[i] += 1.f;
    v->type = TypeInfo::Tensor(DataType::kFloat, t.shape());
    v->data = t;
    g.initializers.push_back(v);
    return v;
  };
  const int64_t c = spec.channels;
  Value* x = b.Input("x", DataType::kFloat, Shape::Of({1, 3, 8, 8}));
  Value* y = b.Named("Conv", "conv", {x, weight("conv.w", {c, 3, 3, 3}), weight("conv.b", {c})},
                     {{"pads", Attribute::FromInts({1, 1, 1, 1})}});
  y = b.Named("BatchNormalization", "bn",
              {y, weight("bn.scale", {c}), weight("bn.bias", {c}), weight("bn.mean", {c}), weight("bn.var", {c})});
  y = b.Named("Relu", "relu", {y});
  if (spec.extra_relu) y = b.Named("Relu", "relu2", {y});
  y = b.Named("Flatten", "flat", {y});
  y = b.Named("Gemm", "fc", {y, weight("fc.w", {10, c * 64}), weight("fc.b", {10})}, {{"transB", Attribute::FromInt(1)}});
  b.Output(y);
  return m;
}

// Writes the model to `path`; "" on success, else the error.
inline std::string SaveRefitModel(const RefitModelSpec& spec, const std::string& path) {
  Status s = SaveModel(*MakeRefitModel(spec), path);
  return s.ok() ? "" : s.ToString();
}

}  // namespace kiln::refit_test
