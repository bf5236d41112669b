// An inference-mode BatchNormalization's affine map (see batchnorm_params.h).
#include "passes/batchnorm_params.h"

#include <cmath>

#include "passes/pass_util.h"

namespace kiln::passes {

std::optional<BnParams> ReadBn(Graph& root, const Node& bn, int64_t opset) {
  if (bn.num_inputs() < 5) return std::nullopt;
  for (size_t i = 1; i < 5; ++i)
    if (!IsConstant(bn.input(i))) return std::nullopt;
  for (size_t i = 1; i < bn.num_outputs(); ++i) {
    const Value* v = bn.output(i);
    if (v && (!v->uses().empty() || IsAnyGraphOutput(root, v))) return std::nullopt;
  }
  if (AttrInt(bn, "training_mode", 0) != 0) return std::nullopt;
  if (opset < 9 && AttrInt(bn, "spatial", 1) != 1) return std::nullopt;
  if (opset < 7 && AttrInt(bn, "is_test", 0) == 0) return std::nullopt;
  double eps = AttrFloat(bn, "epsilon", 1e-5f);
  std::vector<double> gamma = ToDoubles(*bn.input(1)->data), beta = ToDoubles(*bn.input(2)->data),
                      mean = ToDoubles(*bn.input(3)->data), var = ToDoubles(*bn.input(4)->data);
  size_t c = gamma.size();
  if (beta.size() != c || mean.size() != c || var.size() != c || c == 0) return std::nullopt;
  BnParams p;
  for (size_t k = 0; k < c; ++k) {
    double s = gamma[k] / std::sqrt(var[k] + eps);
    p.scale.push_back(s);
    p.shift.push_back(beta[k] - mean[k] * s);
  }
  return p;
}

std::optional<Tensor> ScaleAlong(const Tensor& w, int axis, const std::vector<double>& s) {
  if (!IsArithmeticFloat(w.dtype()) || axis >= w.rank() || w.dim(axis) != static_cast<int64_t>(s.size()))
    return std::nullopt;
  std::vector<double> v = ToDoubles(w);
  int64_t inner = 1;
  for (int d = axis + 1; d < w.rank(); ++d) inner *= w.dim(d);
  const int64_t c = w.dim(axis);
  for (size_t i = 0; i < v.size(); ++i) v[i] *= s[static_cast<size_t>((static_cast<int64_t>(i) / inner) % c)];
  return FromDoubles(w.dtype(), w.dims(), v);
}

}  // namespace kiln::passes
