// kiln IR → ONNX ModelProto (SaveModel), optionally with large initializers in
// an external data file beside the model.
#include <climits>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <unordered_map>
#include <unordered_set>

#include "onnx/import.h"
#include "onnx/proto_convert.h"

namespace kiln {
namespace {

using onnx_internal::TensorRawBytes;
using onnx_internal::TensorToProto;
using onnx_internal::TypeToProto;

// Offsets in the external data file are aligned so tensors can be mapped
// (and read as their element type) in place.
constexpr uint64_t kSmallAlign = 64;
constexpr uint64_t kPageAlign = 4096;
constexpr size_t kPageAlignFrom = 64 * 1024;

class Exporter {
 public:
  Exporter(const SaveOptions& options, std::string data_path, std::string data_location)
      : options_(options), data_path_(std::move(data_path)), data_location_(std::move(data_location)) {}

  Status ExportGraph(const Graph& g, onnx::GraphProto* gp) {
    gp->set_name(g.name);
    if (!g.doc_string.empty()) gp->set_doc_string(g.doc_string);
    std::unordered_set<const Value*> inputs(g.inputs.begin(), g.inputs.end());
    std::unordered_set<const Value*> outputs(g.outputs.begin(), g.outputs.end());

    // Initializers: the listed ones, then constants with no producer that
    // something uses (e.g. added by a pass without listing them).
    std::vector<const Value*> inits(g.initializers.begin(), g.initializers.end());
    std::unordered_set<const Value*> init_set(inits.begin(), inits.end());
    for (const Value* v : g.values())
      if (v->data && !v->producer() && !init_set.count(v) && (!v->uses().empty() || outputs.count(v))) {
        inits.push_back(v);
        init_set.insert(v);
      }
    for (const Value* v : inits) KILN_RETURN_IF_ERROR(ExportInitializer(*v, gp->add_initializer()));

    for (const Value* v : g.inputs) ExportValueInfo(*v, gp->add_input());
    for (const Node* n : g.nodes()) KILN_RETURN_IF_ERROR(ExportNode(*n, gp->add_node()));
    for (const Value* v : g.outputs) ExportValueInfo(*v, gp->add_output());
    for (const Node* n : g.nodes())
      for (const Value* v : n->outputs())
        if (v && !outputs.count(v) && (v->type.known() || v->type.kind != ValueKind::kTensor))
          ExportValueInfo(*v, gp->add_value_info());
    return Status::Ok();
  }

  Status Finish() {
    if (data_file_.is_open()) {
      data_file_.close();
      if (!data_file_) return IoError("cannot write external data file '" + data_path_ + "'");
    }
    return Status::Ok();
  }

 private:
  const std::string& NameOf(const Value* v) {
    auto it = names_.find(v);
    if (it != names_.end()) return it->second;
    std::string name = v->name();
    if (name.empty()) name = "_kiln_unnamed_" + std::to_string(anon_++);
    return names_[v] = name;
  }

  void ExportValueInfo(const Value& v, onnx::ValueInfoProto* vi) {
    vi->set_name(NameOf(&v));
    TypeToProto(v.type, vi->mutable_type());
  }

  Status ExportInitializer(const Value& v, onnx::TensorProto* tp) {
    const Tensor& t = *v.data;
    if (options_.external_data && t.dtype() != DataType::kString && t.nbytes() >= options_.external_threshold_bytes &&
        t.nbytes() > 0)
      return WriteExternal(t, NameOf(&v), tp);
    return TensorToProto(t, NameOf(&v), tp);
  }

  Status WriteExternal(const Tensor& t, const std::string& name, onnx::TensorProto* tp) {
    if (!data_file_.is_open()) {
      data_file_.open(data_path_, std::ios::binary | std::ios::trunc);
      if (!data_file_) return IoError("cannot create external data file '" + data_path_ + "'");
    }
    uint64_t align = t.nbytes() >= kPageAlignFrom ? kPageAlign : kSmallAlign;
    uint64_t offset = (data_size_ + align - 1) / align * align;
    static const char kZeros[kPageAlign] = {};
    data_file_.write(kZeros, static_cast<std::streamsize>(offset - data_size_));
    std::string packed;
    const char* bytes;
    size_t size;
    if (ElementBits(t.dtype()) < 8) {
      packed = TensorRawBytes(t);
      bytes = packed.data();
      size = packed.size();
    } else {
      bytes = static_cast<const char*>(t.raw());
      size = t.nbytes();
    }
    data_file_.write(bytes, static_cast<std::streamsize>(size));
    if (!data_file_) return IoError("cannot write external data file '" + data_path_ + "' (tensor '" + name + "')");
    data_size_ = offset + size;
    tp->Clear();
    tp->set_name(name);
    for (int64_t d : t.dims()) tp->add_dims(d);
    tp->set_data_type(static_cast<int32_t>(t.dtype()));
    tp->set_data_location(onnx::TensorProto::EXTERNAL);
    auto add = [&](const char* k, const std::string& val) {
      auto* kv = tp->add_external_data();
      kv->set_key(k);
      kv->set_value(val);
    };
    add("location", data_location_);
    add("offset", std::to_string(offset));
    add("length", std::to_string(size));
    return Status::Ok();
  }

  Status ExportNode(const Node& n, onnx::NodeProto* np) {
    np->set_op_type(n.op_type);
    if (!n.name.empty()) np->set_name(n.name);
    if (!n.domain.empty()) np->set_domain(n.domain);
    if (!n.doc_string.empty()) np->set_doc_string(n.doc_string);
    for (const Value* v : n.inputs()) np->add_input(v ? NameOf(v) : std::string());
    for (const Value* v : n.outputs()) np->add_output(v ? NameOf(v) : std::string());
    for (const auto& [name, a] : n.attrs) {
      auto* ap = np->add_attribute();
      ap->set_name(name);
      Status st = ExportAttribute(a, ap);
      if (!st.ok()) return st.WithPrefix(n.Label() + " attribute '" + name + "'");
    }
    return Status::Ok();
  }

  Status ExportAttribute(const Attribute& a, onnx::AttributeProto* ap) {
    using AP = onnx::AttributeProto;
    if (!a.ref_attr_name.empty()) ap->set_ref_attr_name(a.ref_attr_name);
    switch (a.type) {
      case Attribute::Type::kFloat: ap->set_type(AP::FLOAT); ap->set_f(a.f); break;
      case Attribute::Type::kInt: ap->set_type(AP::INT); ap->set_i(a.i); break;
      case Attribute::Type::kString: ap->set_type(AP::STRING); ap->set_s(a.s); break;
      case Attribute::Type::kTensor:
        ap->set_type(AP::TENSOR);
        KILN_RETURN_IF_ERROR(TensorToProto(a.t, "", ap->mutable_t()));
        break;
      case Attribute::Type::kGraph:
        ap->set_type(AP::GRAPH);
        if (!a.g) return InvalidArgument("graph attribute has no graph");
        KILN_RETURN_IF_ERROR(ExportGraph(*a.g, ap->mutable_g()));
        break;
      case Attribute::Type::kFloats:
        ap->set_type(AP::FLOATS);
        for (float f : a.floats) ap->add_floats(f);
        break;
      case Attribute::Type::kInts:
        ap->set_type(AP::INTS);
        for (int64_t i : a.ints) ap->add_ints(i);
        break;
      case Attribute::Type::kStrings:
        ap->set_type(AP::STRINGS);
        for (const auto& s : a.strings) ap->add_strings(s);
        break;
      case Attribute::Type::kTensors:
        ap->set_type(AP::TENSORS);
        for (const Tensor& t : a.tensors) KILN_RETURN_IF_ERROR(TensorToProto(t, "", ap->add_tensors()));
        break;
      case Attribute::Type::kGraphs:
        ap->set_type(AP::GRAPHS);
        for (const auto& g : a.graphs) {
          if (!g) return InvalidArgument("graphs attribute holds a null graph");
          KILN_RETURN_IF_ERROR(ExportGraph(*g, ap->add_graphs()));
        }
        break;
      case Attribute::Type::kTypeProto:
        ap->set_type(AP::TYPE_PROTO);
        TypeToProto(a.type_proto, ap->mutable_tp());
        break;
      case Attribute::Type::kSparseTensor: return Unsupported("sparse tensor attributes cannot be saved");
      case Attribute::Type::kUndefined:
        if (a.ref_attr_name.empty()) return InvalidArgument("attribute has no type");
        break;
    }
    return Status::Ok();
  }

  const SaveOptions& options_;
  std::string data_path_;
  std::string data_location_;
  std::ofstream data_file_;
  uint64_t data_size_ = 0;
  std::unordered_map<const Value*, std::string> names_;
  int anon_ = 0;
};

}  // namespace

namespace {

// The model as a ModelProto; `path` names the file in messages and places the
// external data file (only written when options.external_data is set).
Status BuildModelProto(const Model& model, const std::string& path, const SaveOptions& options,
                       onnx::ModelProto* mp, std::string* bytes) {
  if (!model.graph) return InvalidArgument(path + ": the model has no graph");
  mp->set_ir_version(model.ir_version);
  for (const auto& [domain, version] : model.opsets) {
    auto* op = mp->add_opset_import();
    op->set_domain(domain);
    op->set_version(version);
  }
  if (!model.producer_name.empty()) mp->set_producer_name(model.producer_name);
  if (!model.producer_version.empty()) mp->set_producer_version(model.producer_version);
  if (!model.domain.empty()) mp->set_domain(model.domain);
  if (model.model_version) mp->set_model_version(model.model_version);
  if (!model.doc_string.empty()) mp->set_doc_string(model.doc_string);
  for (const auto& [k, v] : model.metadata) {
    auto* kv = mp->add_metadata_props();
    kv->set_key(k);
    kv->set_value(v);
  }
  if (!model.functions.empty())
    return Unsupported(path + ": saving model-local functions is not supported (the importer inlines them)");

  std::string location = std::filesystem::path(path).filename().string() + ".data";
  std::string data_path = path + ".data";
  Exporter exporter(options, data_path, location);
  Status st = exporter.ExportGraph(*model.graph, mp->mutable_graph());
  if (st.ok()) st = exporter.Finish();
  if (!st.ok()) return st.WithPrefix(path);

  size_t size = mp->ByteSizeLong();
  if (size > static_cast<size_t>(INT_MAX))
    return Unsupported(path + ": the model is " + std::to_string(size) +
                       " bytes, over protobuf's 2 GB limit; save with external data");
  if (!mp->SerializeToString(bytes)) return Internal(path + ": protobuf serialization failed");
  return Status::Ok();
}

}  // namespace

Status SaveModel(const Model& model, const std::string& path, const SaveOptions& options) {
  onnx::ModelProto mp;
  std::string bytes;
  KILN_RETURN_IF_ERROR(BuildModelProto(model, path, options, &mp, &bytes));
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) return IoError(path + ": cannot create file");
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  out.close();
  if (!out) return IoError(path + ": write failed");
  return Status::Ok();
}

Expected<std::string> SerializeModel(const Model& model) {
  onnx::ModelProto mp;
  std::string bytes;
  KILN_RETURN_IF_ERROR(BuildModelProto(model, "<in-memory model>", SaveOptions{}, &mp, &bytes));
  return bytes;
}

}  // namespace kiln
