// Runs one ONNX backend node test case (see conformance_case.h).
#include "conformance_case.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string_view>

#include "cli_util.h"
#include "onnx.pb.h"
#include "onnx/import.h"
#include "onnx/proto_convert.h"
#include "ops/op_table.h"
#include "passes/shape_inference.h"
#include "reference/executor.h"

namespace kiln::cli {
namespace fs = std::filesystem;

const char* CaseResultName(CaseResult r) {
  switch (r) {
    case CaseResult::kPassed:
      return "passed";
    case CaseResult::kFailed:
      return "failed";
    case CaseResult::kUnsupported:
      return "unsupported";
  }
  return "failed";
}

namespace {

std::string Normalize(const std::string& s) {
  std::string out;
  for (char c : s)
    if (c != '_') out.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
  return out;
}

std::string OneLine(std::string s, size_t max_len = 400) {
  for (char& c : s)
    if (c == '\n' || c == '\r' || c == '\t') c = ' ';
  if (s.size() > max_len) s = s.substr(0, max_len) + "...";
  return s;
}

std::string IndexString(const std::vector<int64_t>& dims, int64_t flat) {
  std::vector<int64_t> idx(dims.size());
  for (size_t k = dims.size(); k-- > 0;) {
    if (dims[k] > 0) {
      idx[k] = flat % dims[k];
      flat /= dims[k];
    }
  }
  std::string s = "[";
  for (size_t k = 0; k < idx.size(); ++k) s += (k ? "," : "") + std::to_string(idx[k]);
  return s + "]";
}

bool IsTolerantFloat(DataType dt) {
  return dt == DataType::kFloat || dt == DataType::kDouble || dt == DataType::kFloat16 ||
         dt == DataType::kBFloat16;
}

// Element i of a float or complex tensor as doubles (complex: 2 parts).
double FloatPart(const Tensor& t, int64_t i) {
  if (t.dtype() == DataType::kComplex64) return t.data<float>()[i];
  if (t.dtype() == DataType::kComplex128) return t.data<double>()[i];
  return t.ScalarAt(i);
}

bool Close(double a, double b, double rtol, double atol) {
  if (std::isnan(a) || std::isnan(b)) return std::isnan(a) && std::isnan(b);
  if (a == b) return true;  // equal infinities too
  if (std::isinf(a) || std::isinf(b)) return false;
  return std::fabs(a - b) <= atol + rtol * std::fabs(b);
}

// ---- reading test data ----

Expected<std::string> ReadFile(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return IoError(path + ": cannot open file");
  std::ostringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

Expected<Tensor> TensorFromBytes(std::string_view bytes, const std::string& what) {
  onnx::TensorProto p;
  if (!p.ParseFromArray(bytes.data(), static_cast<int>(bytes.size())))
    return ParseError(what + ": not a valid TensorProto");
  return onnx_internal::TensorFromProto(p, nullptr, what);
}

// SequenceProto and OptionalProto (onnx-data.proto) are not compiled into
// kiln, so they are read from the protobuf wire format directly. Both have
// name = 1 (bytes), elem_type = 2 (varint) and values in fields 3..7 (bytes):
// tensor(s) = 3, sparse = 4, sequence(s) = 5, map(s) = 6, optional(s) = 7.
struct WireField {
  uint32_t number = 0;
  uint64_t varint = 0;
  std::string_view bytes;
};

bool ReadVarint(std::string_view& d, uint64_t* v) {
  *v = 0;
  for (int shift = 0; shift < 64 && !d.empty(); shift += 7) {
    auto b = static_cast<unsigned char>(d[0]);
    d.remove_prefix(1);
    *v |= static_cast<uint64_t>(b & 0x7f) << shift;
    if (!(b & 0x80)) return true;
  }
  return false;
}

// Parses `data` as a message with exactly the SequenceProto/OptionalProto
// field layout; false for anything else (e.g. a TensorProto).
bool ParseContainer(std::string_view data, std::vector<WireField>* fields) {
  while (!data.empty()) {
    uint64_t key = 0;
    if (!ReadVarint(data, &key)) return false;
    WireField f;
    f.number = static_cast<uint32_t>(key >> 3);
    int wire = static_cast<int>(key & 7);
    if (f.number == 2) {
      if (wire != 0 || !ReadVarint(data, &f.varint)) return false;
    } else if (f.number == 1 || (f.number >= 3 && f.number <= 7)) {
      uint64_t len = 0;
      if (wire != 2 || !ReadVarint(data, &len) || len > data.size()) return false;
      f.bytes = data.substr(0, static_cast<size_t>(len));
      data.remove_prefix(static_cast<size_t>(len));
    } else {
      return false;
    }
    fields->push_back(f);
  }
  return true;
}

// elem_type values shared by SequenceProto and OptionalProto.
constexpr uint64_t kElemUndefined = 0, kElemTensor = 1, kElemSequence = 3;

Expected<std::vector<Tensor>> SequenceTensors(const std::vector<WireField>& fields, const std::string& what) {
  std::vector<Tensor> items;
  for (const WireField& f : fields) {
    if (f.number == 2 && f.varint != kElemTensor && f.varint != kElemUndefined)
      return Unsupported(what + ": sequences of non-tensors are not supported");
    if (f.number >= 4) return Unsupported(what + ": sequences of non-tensors are not supported");
    if (f.number == 3) {
      KILN_ASSIGN_OR_RETURN(Tensor t,
                            TensorFromBytes(f.bytes, what + "[" + std::to_string(items.size()) + "]"));
      items.push_back(std::move(t));
    }
  }
  return items;
}

// A value file: TensorProto, or SequenceProto / OptionalProto when the
// declared type says so and the bytes have that message's layout.
Expected<RtValue> LoadValue(const std::string& path, const TypeInfo& decl) {
  if (decl.kind == ValueKind::kMap || decl.kind == ValueKind::kSparseTensor)
    return Unsupported(path + ": " + decl.ToString() + " values are not supported");
  KILN_ASSIGN_OR_RETURN(std::string bytes, ReadFile(path));
  std::vector<WireField> fields;
  bool container = (decl.kind == ValueKind::kSequence || decl.kind == ValueKind::kOptional) &&
                   ParseContainer(bytes, &fields);
  if (container && decl.kind == ValueKind::kSequence) {
    KILN_ASSIGN_OR_RETURN(std::vector<Tensor> items, SequenceTensors(fields, path));
    return RtValue::FromSequence(std::move(items));
  }
  if (container) {  // OptionalProto
    RtValue v;
    v.kind = ValueKind::kOptional;
    v.present = false;
    v.elem_kind = decl.elem_kind;
    for (const WireField& f : fields) {
      if (f.number == 3) {
        KILN_ASSIGN_OR_RETURN(v.tensor, TensorFromBytes(f.bytes, path));
        v.present = true;
        v.elem_kind = ValueKind::kTensor;
      } else if (f.number == 5) {
        std::vector<WireField> inner;
        if (!ParseContainer(f.bytes, &inner)) return ParseError(path + ": bad sequence in OptionalProto");
        KILN_ASSIGN_OR_RETURN(v.sequence, SequenceTensors(inner, path));
        v.present = true;
        v.elem_kind = ValueKind::kSequence;
      } else if (f.number >= 4) {
        return Unsupported(path + ": optionals of non-tensors/sequences are not supported");
      } else if (f.number == 2 && f.varint == kElemSequence) {
        v.elem_kind = ValueKind::kSequence;
      }
    }
    return v;
  }
  KILN_ASSIGN_OR_RETURN(Tensor t, LoadTensorFile(path));
  if (decl.kind == ValueKind::kOptional) {
    RtValue v;
    v.kind = ValueKind::kOptional;
    v.elem_kind = ValueKind::kTensor;
    v.tensor = std::move(t);
    return v;
  }
  return RtValue::FromTensor(std::move(t));
}

// Inferred type vs produced value: "" when consistent.
std::string CheckInferred(const TypeInfo& type, const RtValue& v) {
  if (type.kind != ValueKind::kTensor || v.kind != ValueKind::kTensor) return "";
  const Tensor& t = v.tensor;
  if (type.dtype != DataType::kUndefined && type.dtype != t.dtype())
    return "inferred " + type.ToString() + " but the reference produced " + t.Describe();
  if (!type.shape.rank_known()) return "";
  bool ok = type.shape.rank() == t.rank();
  for (int i = 0; ok && i < t.rank(); ++i)
    if (type.shape[i].known() && type.shape[i].value() != t.dim(i)) ok = false;
  return ok ? "" : "inferred " + type.ToString() + " but the reference produced " + t.Describe();
}

CaseOutcome Fail(const std::string& reason) { return {CaseResult::kFailed, OneLine(reason)}; }
CaseOutcome Unsup(const std::string& reason) { return {CaseResult::kUnsupported, OneLine(reason)}; }
CaseOutcome FromStatus(const std::string& stage, const Status& st) {
  std::string reason = stage + ": " + st.message();
  return st.code() == StatusCode::kUnsupported && stage != "shape inference" && stage != "run" ? Unsup(reason)
                                                                                               : Fail(reason);
}

std::vector<std::string> SortedDirs(const std::string& dir, const std::string& prefix) {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    std::string name = e.path().filename().string();
    if (name.rfind(prefix, 0) == 0 && e.is_directory(ec)) out.push_back(e.path().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace

std::string GuessGroup(const std::string& test_name, const std::vector<std::string>& candidates) {
  std::string name = test_name.rfind("test_", 0) == 0 ? test_name.substr(5) : test_name;
  std::string norm = Normalize(name);
  std::string best;
  for (const std::string& c : candidates) {
    std::string nc = Normalize(c);
    if (!nc.empty() && norm.rfind(nc, 0) == 0 && nc.size() > Normalize(best).size()) best = c;
  }
  if (!best.empty()) return best;
  size_t us = name.find('_');
  return name.substr(0, us);
}

std::string CompareTensors(const Tensor& got, const Tensor& want, double rtol, double atol) {
  if (got.dtype() != want.dtype())
    return "dtype " + std::string(DataTypeName(got.dtype())) + ", expected " +
           std::string(DataTypeName(want.dtype()));
  if (got.dims() != want.dims())
    return "shape " + got.shape().ToString() + ", expected " + want.shape().ToString();
  int64_t n = want.numel();
  int64_t bad = 0, first = -1;
  double max_diff = 0;
  std::string first_got, first_want;
  DataType dt = want.dtype();
  if (dt == DataType::kString) {
    for (int64_t i = 0; i < n; ++i) {
      if (got.strings()[static_cast<size_t>(i)] == want.strings()[static_cast<size_t>(i)]) continue;
      if (bad++ == 0) {
        first = i;
        first_got = "\"" + got.strings()[static_cast<size_t>(i)] + "\"";
        first_want = "\"" + want.strings()[static_cast<size_t>(i)] + "\"";
      }
    }
  } else if (IsTolerantFloat(dt) || dt == DataType::kComplex64 || dt == DataType::kComplex128) {
    int parts = dt == DataType::kComplex64 || dt == DataType::kComplex128 ? 2 : 1;
    for (int64_t i = 0; i < n; ++i) {
      bool ok = true;
      for (int p = 0; p < parts; ++p) {
        double a = FloatPart(got, i * parts + p), b = FloatPart(want, i * parts + p);
        if (!Close(a, b, rtol, atol)) {
          ok = false;
          if (!std::isnan(a) && !std::isnan(b) && !std::isinf(a) && !std::isinf(b))
            max_diff = std::max(max_diff, std::fabs(a - b));
        }
      }
      if (ok) continue;
      if (bad++ == 0) {
        first = i;
        first_got = fmt::format("{:.9g}", FloatPart(got, i * parts));
        first_want = fmt::format("{:.9g}", FloatPart(want, i * parts));
      }
    }
  } else {
    size_t es = ElementSize(dt);
    const auto* a = static_cast<const unsigned char*>(got.raw());
    const auto* b = static_cast<const unsigned char*>(want.raw());
    for (int64_t i = 0; i < n; ++i) {
      if (std::memcmp(a + static_cast<size_t>(i) * es, b + static_cast<size_t>(i) * es, es) == 0) continue;
      if (bad++ == 0) {
        first = i;
        bool ints = IsSignedInteger(dt) || IsUnsignedInteger(dt) || dt == DataType::kBool;
        if (ints && dt == DataType::kUInt64) {
          first_got = std::to_string(got.data<uint64_t>()[i]);
          first_want = std::to_string(want.data<uint64_t>()[i]);
        } else if (ints) {
          first_got = std::to_string(got.IntAt(i));
          first_want = std::to_string(want.IntAt(i));
        } else {
          first_got = fmt::format("0x{:02x}", a[static_cast<size_t>(i) * es]);
          first_want = fmt::format("0x{:02x}", b[static_cast<size_t>(i) * es]);
        }
      }
    }
  }
  if (bad == 0) return "";
  std::string r = fmt::format("{} of {} values differ; first at {}: got {}, expected {}", bad, n,
                              IndexString(want.dims(), first), first_got, first_want);
  if (max_diff > 0) r += fmt::format(" (max abs diff {:.3g})", max_diff);
  return r;
}

std::string CompareValues(const RtValue& got_in, const RtValue& want_in, double rtol, double atol) {
  // An optional holding a value compares like the value itself.
  auto unwrap = [](const RtValue& v) {
    if (v.kind != ValueKind::kOptional || !v.present) return v;
    RtValue u = v;
    u.kind = v.elem_kind;
    return u;
  };
  RtValue got = unwrap(got_in), want = unwrap(want_in);
  bool got_empty = got.kind == ValueKind::kOptional, want_empty = want.kind == ValueKind::kOptional;
  if (got_empty || want_empty) {
    if (got_empty && want_empty) return "";
    return "got " + got_in.Describe() + ", expected " + want_in.Describe();
  }
  if (got.kind != want.kind) return "got " + got_in.Describe() + ", expected " + want_in.Describe();
  if (want.kind == ValueKind::kSequence) {
    if (got.sequence.size() != want.sequence.size())
      return fmt::format("sequence of {} tensors, expected {}", got.sequence.size(), want.sequence.size());
    for (size_t i = 0; i < want.sequence.size(); ++i) {
      std::string r = CompareTensors(got.sequence[i], want.sequence[i], rtol, atol);
      if (!r.empty()) return fmt::format("sequence element {}: {}", i, r);
    }
    return "";
  }
  if (want.kind != ValueKind::kTensor) return "cannot compare " + want_in.Describe();
  return CompareTensors(got.tensor, want.tensor, rtol, atol);
}

CaseOutcome RunCase(const std::string& dir, const CaseOptions& options,
                    const std::function<void(const std::string&)>& on_group) {
  std::string test_name = fs::path(dir).filename().string();
  auto loaded = LoadModel((fs::path(dir) / "model.onnx").string());
  if (!loaded.ok()) return FromStatus("load", loaded.status());
  Model& model = **loaded;
  if (!model.graph) return Fail("load: model has no graph");
  const Graph& g = *model.graph;

  // The op under test.
  std::vector<Node*> nodes = g.nodes();
  std::string group;
  if (nodes.size() == 1) {
    group = nodes[0]->op_type;
  } else {
    std::vector<std::string> candidates;
    for (const OpInfo& op : AllOps()) candidates.emplace_back(op.name);
    ForEachNodeDeep(g, [&](const Node& n) { candidates.push_back(n.op_type); });
    group = GuessGroup(test_name, candidates);
  }
  if (on_group) on_group(group);

  std::set<std::string> missing;
  ForEachNodeDeep(g, [&](const Node& n) {
    if (!FindOp(n.domain, n.op_type))
      missing.insert(n.domain.empty() ? n.op_type : n.domain + "." + n.op_type);
  });
  if (!missing.empty()) {
    std::string list;
    for (const std::string& m : missing) list += (list.empty() ? "" : ", ") + m;
    return Unsup("not in the op table: " + list);
  }

  std::vector<std::string> data_sets = SortedDirs(dir, "test_data_set_");
  if (data_sets.empty()) return Unsup("no test_data_set_* folder");

  ShapeInferenceOptions sopts;
  sopts.tolerate_errors = false;
  Status inferred = InferShapes(model, sopts);
  if (!inferred.ok()) return Fail("shape inference: " + inferred.message());

  std::vector<const Value*> inputs = RuntimeInputs(g);
  ReferenceExecutor exec(model);
  for (const std::string& ds : data_sets) {
    std::string ds_name = fs::path(ds).filename().string();
    std::map<std::string, RtValue> feeds;
    for (size_t i = 0;; ++i) {
      std::string path = (fs::path(ds) / ("input_" + std::to_string(i) + ".pb")).string();
      std::error_code ec;
      if (!fs::exists(path, ec)) break;
      if (i >= inputs.size())
        return Fail(fmt::format("{} has more inputs than the model's {}", ds_name, inputs.size()));
      auto v = LoadValue(path, inputs[i]->type);
      if (!v.ok()) return FromStatus("input " + std::to_string(i), v.status());
      feeds[inputs[i]->name()] = std::move(*v);
    }
    auto results = options.run ? options.run(model, feeds) : exec.Run(feeds);
    if (!results.ok()) {
      if (options.run && results.status().code() == StatusCode::kUnsupported)
        return Unsup("backend: " + results.status().message());
      return FromStatus("run", results.status());
    }
    if (results->size() != g.outputs.size())
      return Fail(fmt::format("run: {} outputs, the model declares {}", results->size(), g.outputs.size()));
    for (size_t i = 0; i < g.outputs.size(); ++i) {
      std::string path = (fs::path(ds) / ("output_" + std::to_string(i) + ".pb")).string();
      std::error_code ec;
      if (!fs::exists(path, ec))
        return Unsup(fmt::format("{}: expected output_{}.pb is missing", ds_name, i));
      auto want = LoadValue(path, g.outputs[i]->type);
      if (!want.ok()) return FromStatus("expected output " + std::to_string(i), want.status());
      const RtValue& got = (*results)[i];
      std::string diff = CompareValues(got, *want, options.rtol, options.atol);
      if (!diff.empty()) {
        std::string where = data_sets.size() > 1 ? ds_name + " " : "";
        return Fail(fmt::format("{}output {} '{}': {}", where, i, g.outputs[i]->name(), diff));
      }
      if (options.check_inferred) {
        std::string r = CheckInferred(g.outputs[i]->type, got);
        if (!r.empty())
          return Fail(fmt::format("shape inference: output {} '{}': {}", i, g.outputs[i]->name(), r));
      }
    }
  }
  return {CaseResult::kPassed, ""};
}

}  // namespace kiln::cli
