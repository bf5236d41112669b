// The IR text printer (see printer.h for the format).
#include "ir/printer.h"

#include <fmt/format.h>

#include <cmath>
#include <cstdio>
#include <string_view>

namespace kiln {
namespace {

std::string Indent(int n) { return std::string(static_cast<size_t>(n), ' '); }

std::string Quote(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out.push_back('\\');
      out.push_back(c);
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\t') {
      out += "\\t";
    } else if (u < 0x20 || u == 0x7f) {
      out += fmt::format("\\x{:02x}", u);
    } else {
      out.push_back(c);
    }
  }
  return out + "\"";
}

// Shortest round-trip form, always with a '.' or exponent so floats and ints differ.
std::string FormatFloat(double v, bool is_float32) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  std::string s = is_float32 ? fmt::format("{}", static_cast<float>(v)) : fmt::format("{}", v);
  if (s.find_first_of(".eE") == std::string::npos) s += ".0";
  return s;
}

std::string ValueName(const Value* v) { return v ? "%" + v->name() : "_"; }

std::string TensorElement(const Tensor& t, int64_t i) {
  switch (t.dtype()) {
    case DataType::kString:
      return Quote(t.strings()[static_cast<size_t>(i)]);
    case DataType::kFloat:
      return FormatFloat(t.data<float>()[i], true);
    case DataType::kFloat16:
    case DataType::kBFloat16:
      return FormatFloat(t.ScalarAt(i), true);
    case DataType::kDouble:
      return FormatFloat(t.data<double>()[i], false);
    case DataType::kBool:
      return t.data<uint8_t>()[i] ? "true" : "false";
    case DataType::kUInt64:
      return std::to_string(t.data<uint64_t>()[i]);
    case DataType::kInt64:
      return std::to_string(t.data<int64_t>()[i]);
    default:
      return std::to_string(static_cast<int64_t>(t.ScalarAt(i)));
  }
}

bool PrintableElements(DataType dt) {
  switch (dt) {
    case DataType::kFloat:
    case DataType::kFloat16:
    case DataType::kBFloat16:
    case DataType::kDouble:
    case DataType::kBool:
    case DataType::kString:
    case DataType::kInt8:
    case DataType::kInt16:
    case DataType::kInt32:
    case DataType::kInt64:
    case DataType::kUInt8:
    case DataType::kUInt16:
    case DataType::kUInt32:
    case DataType::kUInt64:
    case DataType::kInt4:
    case DataType::kUInt4:
    case DataType::kInt2:
    case DataType::kUInt2:
      return true;
    default:
      return false;
  }
}

std::string FormatTensor(const Tensor& t, const PrintOptions& o) {
  if (!t.defined()) return "<undefined tensor>";
  std::string s = std::string(DataTypeName(t.dtype())) + t.shape().ToString();
  int64_t n = t.numel();
  if (n > o.max_tensor_elements || !PrintableElements(t.dtype())) return s + "{...}";
  s += "{";
  for (int64_t i = 0; i < n; ++i) {
    if (i) s += ", ";
    s += TensorElement(t, i);
  }
  return s + "}";
}

template <class T, class F>
std::string List(const std::vector<T>& items, F format) {
  std::string s = "[";
  for (size_t i = 0; i < items.size(); ++i) {
    if (i) s += ", ";
    s += format(items[i]);
  }
  return s + "]";
}

void PrintNodes(const Graph& g, const PrintOptions& o, int indent, std::string* out);

void PrintSubgraphs(const Node& n, const PrintOptions& o, int indent, std::string* out) {
  for (const auto& [name, attr] : n.attrs) {
    if (attr.type == Attribute::Type::kGraph && attr.g) {
      *out +=
          Indent(indent) + name + ": " + PrintGraph(*attr.g, o, indent).substr(static_cast<size_t>(indent));
    } else if (attr.type == Attribute::Type::kGraphs) {
      for (size_t i = 0; i < attr.graphs.size(); ++i) {
        if (!attr.graphs[i]) continue;
        *out += Indent(indent) + name + "[" + std::to_string(i) +
                "]: " + PrintGraph(*attr.graphs[i], o, indent).substr(static_cast<size_t>(indent));
      }
    }
  }
}

void PrintNode(const Node& n, const PrintOptions& o, int indent, std::string* out) {
  std::string line = Indent(indent);
  for (size_t i = 0; i < n.num_outputs(); ++i) {
    if (i) line += ", ";
    const Value* v = n.output(i);
    line += ValueName(v);
    if (o.value_types && v) line += ": " + v->type.ToString();
  }
  if (n.num_outputs()) line += " = ";
  line += n.domain.empty() ? n.op_type : n.domain + "." + n.op_type;
  if (!n.attrs.empty()) {
    line += "[";
    bool first = true;
    for (const auto& [name, attr] : n.attrs) {
      if (!first) line += ", ";
      first = false;
      line += name + "=" + PrintAttribute(attr, o);
    }
    line += "]";
  }
  line += "(";
  for (size_t i = 0; i < n.num_inputs(); ++i) {
    if (i) line += ", ";
    line += ValueName(n.input(i));
  }
  line += ")";
  if (!n.name.empty()) line += "  # " + n.name;
  *out += line + "\n";
  PrintSubgraphs(n, o, indent + 2, out);
}

void PrintNodes(const Graph& g, const PrintOptions& o, int indent, std::string* out) {
  for (const Node* n : g.nodes()) PrintNode(*n, o, indent, out);
}

std::string OpsetLine(const Model& m) {
  std::string s = "opset";
  bool first = true;
  for (const auto& [domain, version] : m.opsets) {
    s += first ? " " : ", ";
    first = false;
    s += (domain.empty() ? std::string("ai.onnx") : domain) + "=" + std::to_string(version);
  }
  return s + "\n";
}

std::string NameList(const std::vector<std::string>& names) {
  std::string s;
  for (size_t i = 0; i < names.size(); ++i) {
    if (i) s += ", ";
    s += names[i].empty() ? "_" : "%" + names[i];
  }
  return s;
}

}  // namespace

std::string PrintAttribute(const Attribute& a, const PrintOptions& o) {
  using T = Attribute::Type;
  if (!a.ref_attr_name.empty()) return "@" + a.ref_attr_name;
  switch (a.type) {
    case T::kUndefined:
      return "<undefined>";
    case T::kFloat:
      return FormatFloat(a.f, true);
    case T::kInt:
      return std::to_string(a.i);
    case T::kString:
      // Binary payloads (a generated kernel's cubin) print as their size.
      if (a.s.size() > 256) return "<" + std::to_string(a.s.size()) + " bytes>";
      return Quote(a.s);
    case T::kTensor:
      return FormatTensor(a.t, o);
    case T::kGraph:
      return "<graph>";
    case T::kFloats:
      return List(a.floats, [](float f) { return FormatFloat(f, true); });
    case T::kInts:
      return List(a.ints, [](int64_t i) { return std::to_string(i); });
    case T::kStrings:
      return List(a.strings, [](const std::string& s) { return Quote(s); });
    case T::kTensors:
      return List(a.tensors, [&](const Tensor& t) { return FormatTensor(t, o); });
    case T::kGraphs:
      return "<graphs:" + std::to_string(a.graphs.size()) + ">";
    case T::kSparseTensor:
      return "<sparse tensor>";
    case T::kTypeProto:
      return "<type " + a.type_proto.ToString() + ">";
  }
  return "<unknown>";
}

std::string PrintGraph(const Graph& g, const PrintOptions& o, int indent) {
  std::string out = Indent(indent) + "graph" + (g.name.empty() ? "" : " " + g.name) + " {\n";
  std::string in = Indent(indent + 2);
  for (const Value* v : g.inputs) out += in + "input " + ValueName(v) + ": " + v->type.ToString() + "\n";
  for (const Value* v : g.initializers) out += in + "init " + ValueName(v) + ": " + v->type.ToString() + "\n";
  PrintNodes(g, o, indent + 2, &out);
  for (const Value* v : g.outputs) out += in + "output " + ValueName(v) + ": " + v->type.ToString() + "\n";
  return out + Indent(indent) + "}\n";
}

std::string PrintGraph(const Model& m, const PrintOptions& o) {
  std::string out = OpsetLine(m);
  if (m.graph)
    out += PrintGraph(*m.graph, o, 0);
  else
    out += "graph <none>\n";
  for (const Function& f : m.functions) {
    out += "function " + (f.domain.empty() ? f.name : f.domain + "." + f.name) + "(" + NameList(f.inputs) +
           ") -> (" + NameList(f.outputs) + ")";
    if (!f.attributes.empty()) out += " attrs " + List(f.attributes, [](const std::string& s) { return s; });
    out += " {\n";
    if (f.body) PrintNodes(*f.body, o, 2, &out);
    out += "}\n";
  }
  return out;
}

}  // namespace kiln
