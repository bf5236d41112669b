// Model inputs for the subcommands that run a model (see feeds.h).
#include "feeds.h"

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <limits>
#include <random>
#include <utility>

#include "cli_util.h"
#include "io/npy.h"
#include "passes/pass_util.h"
#include "reference/equivalence.h"

namespace kiln::cli {
namespace {

Status CheckAgainstDecl(const Value& decl, const Tensor& t, const std::string& path,
                        std::map<std::string, int64_t>* symbols) {
  auto mismatch = [&](const std::string& what) {
    return InvalidArgument("input '" + decl.name() + "' from " + path + ": " + what + ": expected " +
                           decl.type.ToString() + ", got " + t.Describe());
  };
  if (decl.type.dtype != DataType::kUndefined && t.dtype() != decl.type.dtype) return mismatch("wrong dtype");
  const Shape& s = decl.type.shape;
  if (!s.rank_known()) return Status::Ok();
  if (s.rank() != t.rank()) return mismatch("wrong rank");
  for (int i = 0; i < s.rank(); ++i) {
    if (s[i].known() && s[i].value() != t.dim(i)) return mismatch("wrong dim " + std::to_string(i));
    if (s[i].symbolic()) {
      auto it = symbols->find(s[i].symbol());
      if (it == symbols->end()) {
        (*symbols)[s[i].symbol()] = t.dim(i);
      } else if (it->second != t.dim(i)) {
        return mismatch("dim " + std::to_string(i) + " ('" + s[i].symbol() + "') is " +
                        std::to_string(t.dim(i)) + " but another input set '" + s[i].symbol() + "' to " +
                        std::to_string(it->second));
      }
    }
  }
  return Status::Ok();
}

}  // namespace

Tensor NpyWritable(const Tensor& t, std::string* note) {
  if (NpyCompatible(t.dtype())) return t;
  DataType to = DataType::kFloat;
  if (t.dtype() == DataType::kInt4 || t.dtype() == DataType::kInt2) to = DataType::kInt8;
  if (t.dtype() == DataType::kUInt4 || t.dtype() == DataType::kUInt2) to = DataType::kUInt8;
  Tensor out(to, t.dims());
  for (int64_t i = 0; i < t.numel(); ++i) {
    double v = t.ScalarAt(i);
    if (to == DataType::kFloat)
      out.mutable_data<float>()[i] = static_cast<float>(v);
    else if (to == DataType::kInt8)
      out.mutable_data<int8_t>()[i] = static_cast<int8_t>(v);
    else
      out.mutable_data<uint8_t>()[i] = static_cast<uint8_t>(v);
  }
  *note = std::string("written as ") + std::string(DataTypeName(to)) + " (.npy has no " +
          std::string(DataTypeName(t.dtype())) + ")";
  return out;
}

namespace {

struct ValRange {
  double lo = 0, hi = 0;
};

// "[NAME:]LO,HI", brackets around LO,HI allowed; NAME "" = every input. The
// name is what precedes the last ':' (ONNX names may hold ':').
Expected<std::pair<std::string, ValRange>> ParseValRange(const std::string& spec) {
  const size_t colon = spec.rfind(':');
  const std::string name = colon == std::string::npos ? "" : spec.substr(0, colon);
  std::string range = colon == std::string::npos ? spec : spec.substr(colon + 1);
  if (range.size() >= 2 && range.front() == '[' && range.back() == ']')
    range = range.substr(1, range.size() - 2);
  const size_t comma = range.find(',');
  auto number = [](const std::string& s, double* v) {
    char* end = nullptr;
    *v = std::strtod(s.c_str(), &end);
    return !s.empty() && end == s.c_str() + s.size() && std::isfinite(*v);
  };
  ValRange r;
  if (comma == std::string::npos || !number(range.substr(0, comma), &r.lo) ||
      !number(range.substr(comma + 1), &r.hi))
    return InvalidArgument("bad --val-range '" + spec + "': expected [NAME:]LO,HI with finite numbers");
  if (r.lo > r.hi) return InvalidArgument("bad --val-range '" + spec + "': LO is above HI");
  return std::make_pair(name, r);
}

template <class T>
Status FillInts(Tensor* t, const ValRange& r, std::mt19937_64& rng, const std::string& name) {
  const double lo = std::ceil(r.lo), hi = std::floor(r.hi);
  if (lo > hi || lo < static_cast<double>(std::numeric_limits<T>::lowest()) ||
      hi > static_cast<double>(std::numeric_limits<T>::max()))
    return InvalidArgument("--val-range for '" + name + "' (" + std::string(DataTypeName(t->dtype())) +
                           ") holds no value of its type");
  std::uniform_int_distribution<int64_t> d(static_cast<int64_t>(lo), static_cast<int64_t>(hi));
  T* p = t->mutable_data<T>();
  for (int64_t i = 0; i < t->numel(); ++i) p[i] = static_cast<T>(d(rng));
  return Status::Ok();
}

// Values uniform in the range: [lo, hi) for floats (lo when lo == hi), [lo, hi] for integers and bools.
Expected<Tensor> RangeTensor(DataType dt, const std::vector<int64_t>& dims, const ValRange& r,
                             std::mt19937_64& rng, const std::string& name) {
  Tensor t(dt, dims);
  std::uniform_real_distribution<double> real(r.lo, r.hi);
  auto reals = [&] {
    std::vector<double> v(static_cast<size_t>(t.numel()));
    for (double& x : v) x = r.lo == r.hi ? r.lo : real(rng);
    return passes::FromDoubles(dt, dims, v);
  };
  switch (dt) {
    case DataType::kFloat:
    case DataType::kDouble:
    case DataType::kFloat16:
    case DataType::kBFloat16:
      return reals();
    case DataType::kBool:
      KILN_RETURN_IF_ERROR(FillInts<uint8_t>(&t, {std::max(r.lo, 0.0), std::min(r.hi, 1.0)}, rng, name));
      break;
    case DataType::kInt8: KILN_RETURN_IF_ERROR(FillInts<int8_t>(&t, r, rng, name)); break;
    case DataType::kUInt8: KILN_RETURN_IF_ERROR(FillInts<uint8_t>(&t, r, rng, name)); break;
    case DataType::kInt16: KILN_RETURN_IF_ERROR(FillInts<int16_t>(&t, r, rng, name)); break;
    case DataType::kUInt16: KILN_RETURN_IF_ERROR(FillInts<uint16_t>(&t, r, rng, name)); break;
    case DataType::kInt32: KILN_RETURN_IF_ERROR(FillInts<int32_t>(&t, r, rng, name)); break;
    case DataType::kUInt32: KILN_RETURN_IF_ERROR(FillInts<uint32_t>(&t, r, rng, name)); break;
    case DataType::kInt64: KILN_RETURN_IF_ERROR(FillInts<int64_t>(&t, r, rng, name)); break;
    case DataType::kUInt64: KILN_RETURN_IF_ERROR(FillInts<uint64_t>(&t, r, rng, name)); break;
    default:
      return InvalidArgument("--val-range cannot fill '" + name + "' of type " +
                             std::string(DataTypeName(dt)) +
                             "; give it with --input");
  }
  return t;
}

// Inputs named like masks (attention_mask): --random fills them with 1, everything visible, unless a
// --val-range covers them. Random masks were no test of anything: values up to 9 made BERT's
// (1 - mask)·-10000 = 80000, beyond float16 (the FP16 build compared as NaN), and zeros mask whole rows of a
// causal model (every key a query may see), rows whose outputs no two implementations agree on.
bool IsMaskInput(const Value& v) {
  std::string name = v.name();
  std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return std::tolower(c); });
  return name.find("mask") != std::string::npos;
}

}  // namespace

Expected<std::map<std::string, RtValue>> MakeFeeds(const Graph& g, const FeedOptions& o) {
  auto shapes = ParseShapes(o.shapes);
  if (!shapes.ok()) return shapes.status();
  // Every graph input may be fed (inputs with an initializer are optional).
  std::string all_names;
  for (const Value* v : g.inputs) all_names += (all_names.empty() ? "" : ", ") + v->name();
  auto find_input = [&](const std::string& name) -> const Value* {
    for (const Value* v : g.inputs)
      if (v->name() == name) return v;
    return nullptr;
  };

  // --input NAME=FILE: the name is the longest prefix before a '=' that names an input.
  std::map<std::string, std::string> files;
  for (const std::string& spec : o.inputs) {
    std::string name, path;
    for (size_t p = spec.find('='); p != std::string::npos; p = spec.find('=', p + 1)) {
      if (find_input(spec.substr(0, p))) {
        name = spec.substr(0, p);
        path = spec.substr(p + 1);
      }
    }
    if (name.empty()) {
      size_t p = spec.find('=');
      if (p == std::string::npos || p == 0)
        return InvalidArgument("bad --input '" + spec + "': expected NAME=FILE.npy");
      return InvalidArgument("--input names '" + spec.substr(0, p) +
                             "', which is not a model input (inputs: " + all_names + ")");
    }
    if (files.count(name)) return InvalidArgument("--input gives '" + name + "' twice");
    files[name] = path;
  }
  for (const auto& [name, dims] : *shapes)
    if (!find_input(name))
      return InvalidArgument("--shapes names '" + name +
                             "', which is not a model input (inputs: " + all_names + ")");

  std::map<std::string, ValRange> ranges;  // "" = every input without its own
  for (const std::string& spec : o.val_ranges) {
    KILN_ASSIGN_OR_RETURN(auto named, ParseValRange(spec));
    if (!named.first.empty() && !find_input(named.first))
      return InvalidArgument("--val-range names '" + named.first + "', which is not a model input (inputs: " +
                             all_names + ")");
    if (files.count(named.first))
      return InvalidArgument("--val-range names '" + named.first + "', which --input gives");
    if (!ranges.emplace(named.first, named.second).second) {
      const std::string what = named.first.empty() ? std::string("the default range") : "'" + named.first + "'";
      return InvalidArgument("--val-range gives " + what + " twice");
    }
  }

  std::map<std::string, RtValue> feeds;
  std::map<std::string, int64_t> symbols;
  for (const auto& [name, path] : files) {
    const Value* decl = find_input(name);
    if (decl->type.kind != ValueKind::kTensor)
      return InvalidArgument("input '" + name + "' has type " + decl->type.ToString() +
                             "; only tensor inputs can be fed");
    auto t = ReadNpy(path);
    if (!t.ok()) return InvalidArgument("input '" + name + "': " + t.status().message());
    Status st = CheckAgainstDecl(*decl, *t, path, &symbols);
    KILN_RETURN_IF_ERROR(st);
    auto sh = shapes->find(name);
    if (sh != shapes->end() && sh->second != t->dims())
      return InvalidArgument("input '" + name + "': --shapes says " + DimsToString(sh->second) + " but " +
                             path + " holds " + t->Describe());
    feeds[name] = RtValue::FromTensor(std::move(*t));
  }
  // Shapes of the inputs --random makes: those named in --shapes first, so
  // their symbols (batch, seq) carry over to the others; then values in input order.
  std::map<std::string, std::vector<int64_t>> random_dims;
  for (int pass = 0; pass < 2; ++pass) {
    for (const Value* v : RuntimeInputs(g)) {
      auto sh = shapes->find(v->name());
      if (feeds.count(v->name()) || (sh != shapes->end()) != (pass == 0)) continue;
      if (!o.random)
        return InvalidArgument("input '" + v->name() + "' (" + v->type.ToString() +
                               ") not given: use --input " + v->name() + "=FILE.npy or --random");
      if (v->type.kind != ValueKind::kTensor)
        return InvalidArgument("input '" + v->name() + "' has type " + v->type.ToString() +
                               "; --random makes tensors only");
      if (v->type.dtype == DataType::kUndefined)
        return InvalidArgument("input '" + v->name() + "' has no declared dtype; give it with --input");
      auto dims = ConcreteDims(*v, sh != shapes->end() ? &sh->second : nullptr, &symbols);
      if (!dims.ok()) return dims.status();
      random_dims[v->name()] = *dims;
    }
  }
  std::mt19937_64 rng(o.seed);
  for (const Value* v : RuntimeInputs(g)) {
    auto it = random_dims.find(v->name());
    if (it == random_dims.end()) continue;
    auto range = ranges.find(v->name());
    if (range == ranges.end()) range = ranges.find("");
    if (range == ranges.end() && !IsMaskInput(*v)) {
      feeds[v->name()] = RtValue::FromTensor(RandomTensor(v->type.dtype, it->second, 10, rng));
      continue;
    }
    const ValRange r = range != ranges.end() ? range->second : ValRange{1.0, 1.0};
    KILN_ASSIGN_OR_RETURN(Tensor t, RangeTensor(v->type.dtype, it->second, r, rng, v->name()));
    feeds[v->name()] = RtValue::FromTensor(std::move(t));
  }

  return feeds;
}

void AddFeedFlags(CLI::App* app, FeedOptions* o) {
  app->add_option("--input", o->inputs, "NAME=FILE.npy; repeat for each input")->allow_extra_args(false);
  app->add_flag("--random", o->random,
                "Random values for inputs not given with --input (floats in [-1,1), ints in [0,10), 8-bit "
                "ints smaller; inputs named like masks all 1 unless a --val-range covers them)");
  app->add_option("--seed", o->seed, "Seed for --random")->capture_default_str();
  app->add_option("--val-range", o->val_ranges,
                  "[NAME:]LO,HI: --random values in [LO,HI) (integers in [LO,HI]) for NAME, or for every "
                  "input without its own range; e.g. attention_mask:1,1")
      ->allow_extra_args(false);
  app->add_option("--shapes", o->shapes, "Input shapes, e.g. input:1x3x224x224 (symbolic dims default to 1)")
      ->allow_extra_args(false);
}

Status WriteOutputNpy(const std::string& dir, const std::string& name, const Tensor& t, std::string* note) {
  return WriteNpy((std::filesystem::path(dir) / (SanitizeFileName(name) + ".npy")).string(), NpyWritable(t, note));
}

}  // namespace kiln::cli
