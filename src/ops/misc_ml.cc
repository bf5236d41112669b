// ai.onnx.ml ops: LabelEncoder (opset 1 classes_strings form and opset 2+
// keys_*/values_* form), Binarizer, ArrayFeatureExtractor and TreeEnsemble
// (opset 5; post transforms as in onnxruntime's TreeEnsembleRegressor).
#include <cmath>
#include <limits>
#include <map>
#include <unordered_map>

#include "ops/op_table.h"
#include "ops/op_util.h"

namespace kiln {
namespace ops {

// ---------------------------------------------------------------- LabelEncoder

namespace {

template <class T>
Tensor Vec(DataType dt, const std::vector<T>& v) {
  return Tensor::FromVector<T>(dt, {static_cast<int64_t>(v.size())}, v);
}

Tensor StringVec(const std::vector<std::string>& v) {
  Tensor t(DataType::kString, {static_cast<int64_t>(v.size())});
  t.mutable_strings() = v;
  return t;
}

// One-element tensor of type dt holding the ONNX default for missing keys.
Tensor DefaultOf(DataType dt) {
  if (dt == DataType::kString) return StringVec({"_Unused"});
  Tensor t(dt, {1});
  if (IsFloatingPoint(dt)) {
    DispatchFloat(dt, [&](auto tag) {
      using T = decltype(tag);
      t.mutable_data<T>()[0] = FromCompute<T>(static_cast<compute_t<T>>(-0.0f));
    });
  } else {
    DispatchInteger(dt, [&](auto tag) {
      using T = decltype(tag);
      t.mutable_data<T>()[0] = static_cast<T>(-1);
    });
  }
  return t;
}

struct LabelMap {
  Tensor keys, values, fallback;
};

Expected<LabelMap> GetLabelMap(const NodeContext& ctx, DataType in_dtype) {
  LabelMap m;
  if (ctx.opset() < 2 || ctx.has_attr("classes_strings")) {  // opset 1: string <-> index in classes_strings
    std::vector<std::string> classes = ctx.attr_strings("classes_strings");
    std::vector<int64_t> ids(classes.size());
    for (size_t i = 0; i < ids.size(); ++i) ids[i] = static_cast<int64_t>(i);
    if (in_dtype == DataType::kString) {
      m = {StringVec(classes), Vec(DataType::kInt64, ids),
           Vec<int64_t>(DataType::kInt64, {ctx.attr_int("default_int64", -1)})};
    } else {
      m = {Vec(DataType::kInt64, ids), StringVec(classes),
           StringVec({ctx.attr_string("default_string", "_Unused")})};
    }
    return m;
  }
  if (ctx.has_attr("keys_strings"))
    m.keys = StringVec(ctx.attr_strings("keys_strings"));
  else if (ctx.has_attr("keys_int64s"))
    m.keys = Vec(DataType::kInt64, ctx.attr_ints("keys_int64s"));
  else if (ctx.has_attr("keys_floats"))
    m.keys = Vec(DataType::kFloat, ctx.attr_floats("keys_floats"));
  else if (const Tensor* t = ctx.attr_tensor("keys_tensor"))
    m.keys = *t;
  else
    return ctx.Error("needs one of keys_strings, keys_int64s, keys_floats, keys_tensor");
  if (ctx.has_attr("values_strings")) {
    m.values = StringVec(ctx.attr_strings("values_strings"));
    m.fallback = StringVec({ctx.attr_string("default_string", "_Unused")});
  } else if (ctx.has_attr("values_int64s")) {
    m.values = Vec(DataType::kInt64, ctx.attr_ints("values_int64s"));
    m.fallback = Vec<int64_t>(DataType::kInt64, {ctx.attr_int("default_int64", -1)});
  } else if (ctx.has_attr("values_floats")) {
    m.values = Vec(DataType::kFloat, ctx.attr_floats("values_floats"));
    m.fallback = Vec<float>(DataType::kFloat, {ctx.attr_float("default_float", -0.0f)});
  } else if (const Tensor* t = ctx.attr_tensor("values_tensor")) {
    m.values = *t;
    const Tensor* d = ctx.attr_tensor("default_tensor");
    m.fallback = d ? *d : DefaultOf(t->dtype());
    if (m.fallback.dtype() != t->dtype() || m.fallback.numel() != 1)
      return ctx.Error("default_tensor must be one value of the values' type");
  } else {
    return ctx.Error("needs one of values_strings, values_int64s, values_floats, values_tensor");
  }
  if (m.keys.numel() != m.values.numel()) return ctx.Error("keys and values differ in length");
  return m;
}

}  // namespace

Status InferLabelEncoder(InferContext& ctx) {
  KILN_ASSIGN_OR_RETURN(LabelMap m, GetLabelMap(ctx, ctx.input_dtype(0)));
  ctx.set_output(0, m.values.dtype(), ctx.input_shape(0));
  return Status::Ok();
}

Status RunLabelEncoder(RunContext& ctx) {
  const Tensor& x = ctx.input(0);
  KILN_ASSIGN_OR_RETURN(LabelMap m, GetLabelMap(ctx, x.dtype()));
  const bool x_str = x.dtype() == DataType::kString, k_str = m.keys.dtype() == DataType::kString;
  if (x_str != k_str || (!x_str && IsFloatingPoint(x.dtype()) != IsFloatingPoint(m.keys.dtype())))
    return ctx.Error("input type " + std::string(DataTypeName(x.dtype())) +
                     " does not match the keys' type " + std::string(DataTypeName(m.keys.dtype())));
  // Index of the value for each key (the last of repeated keys wins).
  std::unordered_map<std::string, int64_t> by_string;
  std::map<int64_t, int64_t> by_int;
  std::map<double, int64_t> by_float;
  int64_t nan_index = -1;
  const bool is_float = IsFloatingPoint(m.keys.dtype());
  for (int64_t i = 0; i < m.keys.numel(); ++i) {
    if (k_str)
      by_string[m.keys.strings()[static_cast<size_t>(i)]] = i;
    else if (!is_float)
      by_int[m.keys.IntAt(i)] = i;
    else if (std::isnan(m.keys.ScalarAt(i)))
      nan_index = i;
    else
      by_float[m.keys.ScalarAt(i)] = i;
  }
  Tensor y(m.values.dtype(), x.dims());
  ElementCopier from_values(m.values, y);
  ElementCopier from_default(m.fallback, y);
  for (int64_t i = 0; i < x.numel(); ++i) {
    int64_t found = -1;
    if (x_str) {
      auto it = by_string.find(x.strings()[static_cast<size_t>(i)]);
      if (it != by_string.end()) found = it->second;
    } else if (!is_float) {
      auto it = by_int.find(x.IntAt(i));
      if (it != by_int.end()) found = it->second;
    } else {
      double v = x.ScalarAt(i);
      if (std::isnan(v)) {
        found = nan_index;
      } else {
        auto it = by_float.find(v);
        if (it != by_float.end()) found = it->second;
      }
    }
    if (found >= 0)
      from_values.Copy(found, i);
    else
      from_default.Copy(0, i);
  }
  ctx.set_output(0, std::move(y));
  return Status::Ok();
}

// ---------------------------------------------------------------- Binarizer

Status InferBinarizer(InferContext& ctx) { return InferSameAsInput(ctx); }

Status RunBinarizer(RunContext& ctx) {
  const Tensor& x = ctx.input(0);
  const double threshold = ctx.attr_float("threshold", 0.0f);
  Tensor y(x.dtype(), x.dims());
  bool ok = DispatchNumeric(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T* xd = x.data<T>();
    T* yd = y.mutable_data<T>();
    for (int64_t i = 0; i < x.numel(); ++i)
      yd[i] = FromCompute<T>(
          static_cast<compute_t<T>>(static_cast<double>(ToCompute(xd[i])) > threshold ? 1 : 0));
  });
  if (!ok) return ctx.Error("input must be numeric");
  ctx.set_output(0, std::move(y));
  return Status::Ok();
}

// ---------------------------------------------------------------- ArrayFeatureExtractor
// Picks entries of the last axis: [..., N] x indices (k of them) -> [..., k];
// 1-D data gives [1, k] (as onnxruntime).

Status InferArrayFeatureExtractor(InferContext& ctx) {
  const Shape& x = ctx.input_shape(0);
  const Shape& idx = ctx.input_shape(1);
  Dim k = idx.NumElements();
  if (!x.rank_known()) {
    ctx.set_output(0, ctx.input_dtype(0), Shape::Unranked());
    return Status::Ok();
  }
  std::vector<Dim> dims = x.dims();
  if (dims.size() <= 1)
    dims = {Dim(1), k};
  else
    dims.back() = k;
  ctx.set_output(0, ctx.input_dtype(0), Shape(std::move(dims)));
  return Status::Ok();
}

Status RunArrayFeatureExtractor(RunContext& ctx) {
  const Tensor& x = ctx.input(0);
  const Tensor& idx_t = ctx.input(1);
  if (x.rank() < 1) return ctx.Error("data must have rank >= 1");
  std::vector<int64_t> idx = idx_t.ToInt64s();
  const int64_t n = x.dims().back();
  for (int64_t i : idx)
    if (i < 0 || i >= n)
      return ctx.Error("index " + std::to_string(i) + " is out of range for " + std::to_string(n));
  const int64_t k = static_cast<int64_t>(idx.size());
  std::vector<int64_t> dims = x.dims();
  if (dims.size() == 1)
    dims = {1, k};
  else
    dims.back() = k;
  Tensor y(x.dtype(), dims);
  if (y.numel() > 0) {
    ElementCopier copy(x, y);
    const int64_t rows = x.numel() / std::max<int64_t>(n, 1);
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t j = 0; j < k; ++j) copy.Copy(r * n + idx[static_cast<size_t>(j)], r * k + j);
  }
  ctx.set_output(0, std::move(y));
  return Status::Ok();
}

// ---------------------------------------------------------------- TreeEnsemble

namespace {

enum TreeMode { kLeq = 0, kLt, kGte, kGt, kEq, kNeq, kMember };

struct TreeNodes {
  std::vector<int64_t> feature, mode, true_id, false_id, true_leaf, false_leaf, missing_true;
  std::vector<double> split;
  std::vector<std::vector<double>> members;  // per node (MEMBER nodes only)
  std::vector<double> leaf_weight;
  std::vector<int64_t> leaf_target;
  std::vector<int64_t> roots;
  int64_t n_targets = 0;
};

std::vector<double> TensorDoubles(const Tensor* t) {
  std::vector<double> v;
  if (!t) return v;
  for (int64_t i = 0; i < t->numel(); ++i) v.push_back(t->ScalarAt(i));
  return v;
}

Expected<TreeNodes> GetTrees(const NodeContext& ctx) {
  TreeNodes t;
  t.feature = ctx.attr_ints("nodes_featureids");
  t.true_id = ctx.attr_ints("nodes_truenodeids");
  t.false_id = ctx.attr_ints("nodes_falsenodeids");
  t.true_leaf = ctx.attr_ints("nodes_trueleafs");
  t.false_leaf = ctx.attr_ints("nodes_falseleafs");
  t.missing_true = ctx.attr_ints("nodes_missing_value_tracks_true");
  t.leaf_target = ctx.attr_ints("leaf_targetids");
  t.roots = ctx.attr_ints("tree_roots");
  t.n_targets = ctx.attr_int("n_targets", 0);
  t.split = TensorDoubles(ctx.attr_tensor("nodes_splits"));
  t.leaf_weight = TensorDoubles(ctx.attr_tensor("leaf_weights"));
  const Tensor* modes = ctx.attr_tensor("nodes_modes");
  if (modes) t.mode = modes->ToInt64s();
  const size_t n = t.feature.size();
  t.missing_true.resize(n, 0);
  if (t.true_id.size() != n || t.false_id.size() != n || t.true_leaf.size() != n ||
      t.false_leaf.size() != n || t.mode.size() != n || t.split.size() != n)
    return ctx.Error("the nodes_* attributes differ in length");
  if (t.leaf_target.size() != t.leaf_weight.size())
    return ctx.Error("the leaf_* attributes differ in length");
  if (t.n_targets <= 0) return ctx.Error("n_targets must be positive");
  std::vector<double> members = TensorDoubles(ctx.attr_tensor("membership_values"));
  size_t mpos = 0;
  t.members.resize(n);
  for (size_t i = 0; i < n; ++i) {
    if (t.mode[i] < kLeq || t.mode[i] > kMember)
      return ctx.Error("unknown node mode " + std::to_string(t.mode[i]));
    if (t.mode[i] != kMember) continue;
    if (mpos >= members.size()) return ctx.Error("membership_values has too few sets");
    while (mpos < members.size() && !std::isnan(members[mpos])) t.members[i].push_back(members[mpos++]);
    ++mpos;  // the NaN delimiter
  }
  for (size_t i = 0; i < n; ++i) {
    size_t nt = t.true_leaf[i] ? t.leaf_weight.size() : n, nf = t.false_leaf[i] ? t.leaf_weight.size() : n;
    if (t.true_id[i] < 0 || static_cast<size_t>(t.true_id[i]) >= nt || t.false_id[i] < 0 ||
        static_cast<size_t>(t.false_id[i]) >= nf)
      return ctx.Error("node " + std::to_string(i) + " branches out of range");
  }
  for (int64_t r : t.roots)
    if (r < 0 || static_cast<size_t>(r) >= n) return ctx.Error("tree root out of range");
  for (int64_t tgt : t.leaf_target)
    if (tgt < 0 || tgt >= t.n_targets) return ctx.Error("leaf target id out of range");
  return t;
}

bool TakeTrue(const TreeNodes& t, size_t node, double x) {
  if (std::isnan(x) && t.missing_true[node]) return true;
  const double s = t.split[node];
  switch (t.mode[node]) {
    case kLeq:
      return x <= s;
    case kLt:
      return x < s;
    case kGte:
      return x >= s;
    case kGt:
      return x > s;
    case kEq:
      return x == s;
    case kNeq:
      return x != s;
    default:
      for (double m : t.members[node])
        if (m == x) return true;
      return false;
  }
}

// Leaf index reached by row x from root.
int64_t FindLeaf(const TreeNodes& t, size_t root, const double* x, int64_t n_features, bool* ok) {
  size_t node = root;
  for (size_t steps = 0; steps <= t.feature.size(); ++steps) {
    const int64_t f = t.feature[node];
    if (f < 0 || f >= n_features) break;
    bool go_true = TakeTrue(t, node, x[f]);
    int64_t next = go_true ? t.true_id[node] : t.false_id[node];
    if (go_true ? t.true_leaf[node] : t.false_leaf[node]) return next;
    node = static_cast<size_t>(next);
  }
  *ok = false;  // bad feature id or a cycle
  return 0;
}

double Probit(double p) {
  // sqrt(2) * erfinv(2p - 1), erfinv by Newton steps on erf.
  double y = 2.0 * p - 1.0;
  if (y <= -1.0) return -INFINITY;
  if (y >= 1.0) return INFINITY;
  double w = -std::log((1.0 - y) * (1.0 + y)), x;
  if (w < 5.0) {
    w -= 2.5;
    x = 2.81022636e-08;
    for (double c : {3.43273939e-07, -3.5233877e-06, -4.39150654e-06, 0.00021858087, -0.00125372503,
                     -0.00417768164, 0.246640727, 1.50140941})
      x = c + x * w;
  } else {
    w = std::sqrt(w) - 3.0;
    x = -0.000200214257;
    for (double c : {0.000100950558, 0.00134934322, -0.00367342844, 0.00573950773, -0.0076224613,
                     0.00943887047, 1.00167406, 2.83297682})
      x = c + x * w;
  }
  x *= y;
  const double two_over_sqrt_pi = 1.1283791670955126;
  for (int i = 0; i < 2; ++i) x -= (std::erf(x) - y) / (two_over_sqrt_pi * std::exp(-x * x));
  return std::sqrt(2.0) * x;
}

void PostTransform(int64_t kind, std::vector<double>* v) {
  std::vector<double>& s = *v;
  if (kind == 1 || kind == 3) {  // SOFTMAX, SOFTMAX_ZERO (zeros stay zero)
    double mx = -INFINITY, sum = 0.0;
    for (double x : s) mx = std::max(mx, x);
    for (double& x : s) {
      x = (kind == 3 && x == 0.0) ? 0.0 : std::exp(x - mx);
      sum += x;
    }
    for (double& x : s) x = sum > 0 ? x / sum : 0.0;
  } else if (kind == 2) {  // LOGISTIC
    for (double& x : s) x = 1.0 / (1.0 + std::exp(-x));
  } else if (kind == 4) {  // PROBIT
    for (double& x : s) x = Probit(x);
  }
}

}  // namespace

Status InferTreeEnsemble(InferContext& ctx) {
  const Shape& x = ctx.input_shape(0);
  if (x.rank_known() && x.rank() != 2) return ctx.Error("X must be [N, F]");
  Dim n = x.rank_known() ? x[0] : Dim::Unknown();
  ctx.set_output(0, ctx.input_dtype(0), Shape({n, Dim(ctx.attr_int("n_targets", 0))}));
  return Status::Ok();
}

Status RunTreeEnsemble(RunContext& ctx) {
  const Tensor& xt = ctx.input(0);
  if (xt.rank() != 2 || !IsFloatingPoint(xt.dtype())) return ctx.Error("X must be a float [N, F]");
  KILN_ASSIGN_OR_RETURN(TreeNodes t, GetTrees(ctx));
  const int64_t agg = ctx.attr_int("aggregate_function", 1);
  const int64_t post = ctx.attr_int("post_transform", 0);
  if (agg < 0 || agg > 3 || post < 0 || post > 4)
    return ctx.Error("unknown aggregate_function or post_transform");
  const int64_t rows = xt.dim(0), feats = xt.dim(1);
  std::vector<double> x(static_cast<size_t>(xt.numel()));
  for (int64_t i = 0; i < xt.numel(); ++i) x[static_cast<size_t>(i)] = xt.ScalarAt(i);
  const double init = agg == 2   ? std::numeric_limits<double>::max()
                      : agg == 3 ? -std::numeric_limits<double>::max()
                                 : 0.0;
  Tensor y(xt.dtype(), {rows, t.n_targets});
  std::vector<double> out(static_cast<size_t>(rows * t.n_targets));
  for (int64_t r = 0; r < rows; ++r) {
    std::vector<double> acc(static_cast<size_t>(t.n_targets), init);
    for (int64_t root : t.roots) {
      bool ok = true;
      int64_t leaf = FindLeaf(t, static_cast<size_t>(root), &x[static_cast<size_t>(r * feats)], feats, &ok);
      if (!ok)
        return ctx.Error("tree from root " + std::to_string(root) + " has a bad feature id or a cycle");
      double w = t.leaf_weight[static_cast<size_t>(leaf)];
      double& a = acc[static_cast<size_t>(t.leaf_target[static_cast<size_t>(leaf)])];
      if (agg == 0)
        a += w / static_cast<double>(t.roots.size());
      else if (agg == 1)
        a += w;
      else if (agg == 2)
        a = std::min(a, w);
      else
        a = std::max(a, w);
    }
    PostTransform(post, &acc);
    std::copy(acc.begin(), acc.end(), out.begin() + r * t.n_targets);
  }
  DispatchFloat(xt.dtype(), [&](auto tag) {
    using T = decltype(tag);
    T* yd = y.mutable_data<T>();
    for (size_t i = 0; i < out.size(); ++i) yd[i] = FromCompute<T>(static_cast<compute_t<T>>(out[i]));
  });
  ctx.set_output(0, std::move(y));
  return Status::Ok();
}

}  // namespace ops
}  // namespace kiln
