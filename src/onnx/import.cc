// ONNX ModelProto → kiln IR: version checks, graphs (with subgraphs and outer-
// scope references), attributes, initializers and external data.
#include "onnx/import.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>

#include <cctype>
#include <cerrno>
#include <climits>
#include <cstring>
#include <filesystem>
#include <set>
#include <unordered_set>

#include "onnx/external_data.h"
#include "onnx/function_inline.h"
#include "onnx/proto_convert.h"
#include "onnx/versions.h"

namespace kiln {
namespace {

using onnx_internal::ExternalDataReader;
using onnx_internal::TensorFromProto;
using onnx_internal::TypeFromProto;

std::string NormDomain(const std::string& d) { return d == "ai.onnx" ? "" : d; }

std::string GraphLabel(const Graph& g) { return "graph '" + g.name + "'"; }

// Declared dims (graph inputs and outputs, value_info) no tensor can have:
// their element count overflows int64. `what` names the value.
Status CheckDeclaredDims(const TypeInfo& t, const std::string& what) {
  if (t.shape.KnownDimsOverflow())
    return InvalidArgument(what + ": declared dims " + t.shape.ToString() + " overflow the int64 element count");
  return Status::Ok();
}

// Protobuf's nesting bound (its default) keeps every recursion over the model
// (parsing, import, verifier, shape inference) shallow. A subgraph level is
// three messages deep (GraphProto > NodeProto > AttributeProto > GraphProto).
constexpr int kMaxMessageDepth = 100;
constexpr int kMaxSubgraphDepth = (kMaxMessageDepth - 2) / 3;

// Reads a whole file into memory through mmap (kept alive by the returned owner).
struct MappedFile {
  void* data = nullptr;
  size_t size = 0;
  ~MappedFile() {
    if (data) munmap(data, size);
  }
};

class GraphImporter {
 public:
  GraphImporter(const ExternalDataReader& ext, bool strict) : ext_(ext), strict_(strict) {}

  Status Import(const onnx::GraphProto& gp, Graph* g) {
    g->name = gp.name();
    g->doc_string = gp.doc_string();
    if (gp.sparse_initializer_size() > 0)
      return Unsupported(GraphLabel(*g) + ": sparse initializer '" + gp.sparse_initializer(0).values().name() +
                         "' is not supported");
    KILN_RETURN_IF_ERROR(ImportInitializers(gp, g));
    KILN_RETURN_IF_ERROR(ImportInputs(gp, g));
    std::vector<Node*> nodes;
    KILN_RETURN_IF_ERROR(CreateNodes(gp, g, &nodes));
    for (const auto& vi : gp.value_info()) {
      Value* v = g->FindValue(vi.name());
      if (v && !v->data && vi.has_type()) {
        v->type = TypeFromProto(vi.type());
        KILN_RETURN_IF_ERROR(CheckDeclaredDims(v->type, GraphLabel(*g) + ": value_info '" + vi.name() + "'"));
      }
    }
    for (int i = 0; i < gp.node_size(); ++i) KILN_RETURN_IF_ERROR(ConnectNode(gp.node(i), nodes[static_cast<size_t>(i)], g));
    KILN_RETURN_IF_ERROR(ImportOutputs(gp, g));
    if (strict_) KILN_RETURN_IF_ERROR(g->TopologicalSort());
    return Status::Ok();
  }

 private:
  Status ImportInitializers(const onnx::GraphProto& gp, Graph* g) {
    for (int i = 0; i < gp.initializer_size(); ++i) {
      const auto& tp = gp.initializer(i);
      if (tp.name().empty())
        return InvalidArgument(GraphLabel(*g) + ": initializer #" + std::to_string(i) + " has no name");
      if (g->FindValue(tp.name())) return InvalidArgument(GraphLabel(*g) + ": initializer '" + tp.name() + "' is defined twice");
      KILN_ASSIGN_OR_RETURN(Tensor t, TensorFromProto(tp, &ext_, "initializer '" + tp.name() + "'"));
      Value* v = g->AddValue(tp.name());
      v->type = TypeInfo::Tensor(t.dtype(), t.shape());
      v->data = std::move(t);
      g->initializers.push_back(v);
    }
    return Status::Ok();
  }

  Status ImportInputs(const onnx::GraphProto& gp, Graph* g) {
    std::unordered_set<std::string> seen;
    for (const auto& vi : gp.input()) {
      if (vi.name().empty()) return InvalidArgument(GraphLabel(*g) + ": a graph input has no name");
      if (!seen.insert(vi.name()).second)
        return InvalidArgument(GraphLabel(*g) + ": graph input '" + vi.name() + "' is listed twice");
      Value* v = g->FindValue(vi.name());
      if (!v) {
        v = g->AddValue(vi.name());
        v->type = TypeFromProto(vi.type());
        KILN_RETURN_IF_ERROR(CheckDeclaredDims(v->type, GraphLabel(*g) + ": input '" + vi.name() + "'"));
      }
      // An initializer that is also an input stays an input; its data is the default.
      g->inputs.push_back(v);
    }
    return Status::Ok();
  }

  Status CreateNodes(const onnx::GraphProto& gp, Graph* g, std::vector<Node*>* nodes) {
    std::unordered_set<std::string> node_names;
    for (const auto& np : gp.node())
      if (!np.name().empty()) node_names.insert(np.name());
    for (int i = 0; i < gp.node_size(); ++i) {
      const auto& np = gp.node(i);
      std::string name = np.name();
      if (name.empty()) {
        std::string base = np.op_type() + "_" + std::to_string(i);
        name = base;
        for (int k = 1; node_names.count(name); ++k) name = base + "_" + std::to_string(k);
        node_names.insert(name);
      }
      if (np.op_type().empty()) return InvalidArgument(GraphLabel(*g) + ": node '" + name + "' has no op_type");
      Node* n = g->AddNode(np.op_type(), name, NormDomain(np.domain()));
      n->doc_string = np.doc_string();
      for (const auto& out : np.output()) {
        if (out.empty()) {
          n->AddOutput(nullptr);
          continue;
        }
        Value* v = g->FindValue(out);
        if (v && strict_) {
          std::string other = v->producer()                         ? v->producer()->Label()
                              : v->data                             ? "an initializer"
                                                                    : "a graph input";
          for (const Value* o : n->outputs())
            if (o == v) other = "this node already";
          return InvalidArgument(n->Label() + ": output '" + out + "' is also produced by " + other +
                                 " (a name may be defined once)");
        }
        n->AddOutput(g->AddValue(out));
      }
      nodes->push_back(n);
    }
    return Status::Ok();
  }

  Expected<Value*> Resolve(const std::string& name, Graph* g, const std::string& user) {
    if (Value* v = g->Lookup(name)) return v;
    if (strict_)
      return InvalidArgument(user + ": '" + name +
                             "' is not produced by any node and is not a graph input or initializer");
    return g->AddValue(name);  // left dangling for the verifier to report
  }

  Status ConnectNode(const onnx::NodeProto& np, Node* n, Graph* g) {
    for (const auto& ap : np.attribute()) {
      if (ap.name().empty()) return InvalidArgument(n->Label() + ": an attribute has no name");
      if (n->attrs.count(ap.name())) return InvalidArgument(n->Label() + ": attribute '" + ap.name() + "' is given twice");
      KILN_ASSIGN_OR_RETURN(Attribute a, ImportAttribute(ap, n, g));
      n->attrs[ap.name()] = std::move(a);
    }
    for (const auto& in : np.input()) {
      if (in.empty()) {
        n->AddInput(nullptr);
        continue;
      }
      KILN_ASSIGN_OR_RETURN(Value * v, Resolve(in, g, n->Label() + " input"));
      n->AddInput(v);
    }
    return Status::Ok();
  }

  Status ImportOutputs(const onnx::GraphProto& gp, Graph* g) {
    std::unordered_set<std::string> seen;
    for (const auto& vi : gp.output()) {
      if (vi.name().empty()) return InvalidArgument(GraphLabel(*g) + ": a graph output has no name");
      if (!seen.insert(vi.name()).second && strict_)
        return InvalidArgument(GraphLabel(*g) + ": graph output '" + vi.name() + "' is listed twice");
      KILN_ASSIGN_OR_RETURN(Value * v, Resolve(vi.name(), g, GraphLabel(*g) + " output"));
      if (!v->data && vi.has_type() && v->graph() == g) {
        TypeInfo t = TypeFromProto(vi.type());
        KILN_RETURN_IF_ERROR(CheckDeclaredDims(t, GraphLabel(*g) + ": output '" + vi.name() + "'"));
        if (t.known() || !v->type.known()) v->type = t;
      }
      g->outputs.push_back(v);
    }
    return Status::Ok();
  }

  Expected<std::shared_ptr<Graph>> ImportSubgraph(const onnx::GraphProto& gp, Graph* parent) {
    auto sub = std::make_shared<Graph>();
    sub->parent = parent;
    KILN_RETURN_IF_ERROR(Import(gp, sub.get()));
    return sub;
  }

  Expected<Attribute> ImportAttribute(const onnx::AttributeProto& ap, Node* n, Graph* g) {
    const std::string what = n->Label() + " attribute '" + ap.name() + "'";
    using AP = onnx::AttributeProto;
    Attribute a;
    a.ref_attr_name = ap.ref_attr_name();
    int type = ap.type();
    if (type == AP::UNDEFINED) {  // pre-IR-3 files, or a type newer than our schema: infer from the fields
      if (ap.has_f()) type = AP::FLOAT;
      else if (ap.has_i()) type = AP::INT;
      else if (ap.has_s()) type = AP::STRING;
      else if (ap.has_t()) type = AP::TENSOR;
      else if (ap.has_g()) type = AP::GRAPH;
      else if (ap.has_tp()) type = AP::TYPE_PROTO;
      else if (ap.has_sparse_tensor()) type = AP::SPARSE_TENSOR;
      else if (ap.floats_size()) type = AP::FLOATS;
      else if (ap.ints_size()) type = AP::INTS;
      else if (ap.strings_size()) type = AP::STRINGS;
      else if (ap.tensors_size()) type = AP::TENSORS;
      else if (ap.graphs_size()) type = AP::GRAPHS;
      else if (!a.ref_attr_name.empty()) return a;
      else return InvalidArgument(what + " has no type and no value");
    }
    switch (type) {
      case AP::FLOAT: a.type = Attribute::Type::kFloat; a.f = ap.f(); break;
      case AP::INT: a.type = Attribute::Type::kInt; a.i = ap.i(); break;
      case AP::STRING: a.type = Attribute::Type::kString; a.s = ap.s(); break;
      case AP::TENSOR: {
        a.type = Attribute::Type::kTensor;
        KILN_ASSIGN_OR_RETURN(a.t, TensorFromProto(ap.t(), &ext_, what));
        break;
      }
      case AP::GRAPH: {
        a.type = Attribute::Type::kGraph;
        auto sub = ImportSubgraph(ap.g(), g);
        if (!sub.ok()) return sub.status().WithPrefix(what);
        a.g = std::move(sub).value();
        break;
      }
      case AP::FLOATS: a.type = Attribute::Type::kFloats; a.floats.assign(ap.floats().begin(), ap.floats().end()); break;
      case AP::INTS: a.type = Attribute::Type::kInts; a.ints.assign(ap.ints().begin(), ap.ints().end()); break;
      case AP::STRINGS: a.type = Attribute::Type::kStrings; a.strings.assign(ap.strings().begin(), ap.strings().end()); break;
      case AP::TENSORS:
        a.type = Attribute::Type::kTensors;
        for (int i = 0; i < ap.tensors_size(); ++i) {
          KILN_ASSIGN_OR_RETURN(Tensor t, TensorFromProto(ap.tensors(i), &ext_, what + "[" + std::to_string(i) + "]"));
          a.tensors.push_back(std::move(t));
        }
        break;
      case AP::GRAPHS:
        a.type = Attribute::Type::kGraphs;
        for (const auto& gp : ap.graphs()) {
          auto sub = ImportSubgraph(gp, g);
          if (!sub.ok()) return sub.status().WithPrefix(what);
          a.graphs.push_back(std::move(sub).value());
        }
        break;
      case AP::TYPE_PROTO: a.type = Attribute::Type::kTypeProto; a.type_proto = TypeFromProto(ap.tp()); break;
      case AP::SPARSE_TENSOR:
      case AP::SPARSE_TENSORS: return Unsupported(what + ": sparse tensor attributes are not supported");
      case AP::TYPE_PROTOS: return Unsupported(what + ": TYPE_PROTOS attributes are not supported");
      default: return Unsupported(what + ": unknown attribute type " + std::to_string(type));
    }
    return a;
  }

  const ExternalDataReader& ext_;
  bool strict_;
};

void CollectSymbols(const Graph& g, std::set<std::string>* names) {
  for (const Value* v : g.values())
    for (const Dim& d : v->type.shape.dims())
      if (d.symbolic()) names->insert(d.symbol());
  for (const Node* n : g.nodes())
    for (const auto& [key, a] : n->attrs) {
      if (a.g) CollectSymbols(*a.g, names);
      for (const auto& sg : a.graphs) CollectSymbols(*sg, names);
    }
}

// Every dynamic dim of a main-graph input that has no name of its own (no
// dim_param, an empty one, or "?") gets a fresh symbol "<input>_dim<axis>",
// used nowhere else in the model: like onnxruntime, such dims are bound
// independently at run time, while shape inference can still follow them.
void NameDynamicInputDims(Graph* g) {
  std::set<std::string> used;
  CollectSymbols(*g, &used);
  for (Value* v : g->inputs) {
    if (v->data || v->type.kind != ValueKind::kTensor || !v->type.shape.rank_known()) continue;
    std::string base;
    for (char c : v->name()) base += std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
    if (base.empty() || std::isdigit(static_cast<unsigned char>(base[0]))) base = "_" + base;
    for (int i = 0; i < v->type.shape.rank(); ++i) {
      Dim& d = v->type.shape[static_cast<size_t>(i)];
      if (!d.unknown()) continue;
      std::string name = base + "_dim" + std::to_string(i);
      for (int k = 1; used.count(name); ++k)
        name = base + "_dim" + std::to_string(i) + "_" + std::to_string(k);
      used.insert(name);
      d = Dim::Symbol(name);
    }
  }
}

Status CheckVersions(const onnx::ModelProto& mp, Model* m) {
  if (mp.ir_version() < kMinIrVersion || mp.ir_version() > kMaxIrVersion)
    return Unsupported("IR version " + std::to_string(mp.ir_version()) + " is not supported (kiln reads " +
                       std::to_string(kMinIrVersion) + ".." + std::to_string(kMaxIrVersion) + ")");
  m->ir_version = mp.ir_version();
  if (mp.opset_import_size() == 0) return InvalidArgument("the model has no opset_import");
  for (const auto& op : mp.opset_import()) {
    std::string d = NormDomain(op.domain());
    if (m->opsets.count(d))
      return InvalidArgument("opset_import lists domain '" + (d.empty() ? std::string("ai.onnx") : d) + "' twice");
    if (d.empty() && (op.version() < kMinOpset || op.version() > kMaxOpset))
      return Unsupported("default-domain opset " + std::to_string(op.version()) + " is not supported (kiln reads " +
                         std::to_string(kMinOpset) + ".." + std::to_string(kMaxOpset) + ")");
    if (op.version() < 1)
      return InvalidArgument("opset_import of domain '" + d + "' has invalid version " + std::to_string(op.version()));
    m->opsets[d] = op.version();
  }
  return Status::Ok();
}

Expected<std::unique_ptr<Model>> ImportModelProto(onnx::ModelProto& mp, const std::string& base_dir,
                                                  const LoadOptions& options) {
  const bool has_unknown = !mp.unknown_fields().empty();
  const std::string hint = has_unknown ? " (the file holds fields ModelProto does not have: a different protobuf?)" : "";
  if (!mp.has_ir_version()) return ParseError("not an ONNX model: ir_version is missing" + hint);
  if (!mp.has_graph()) return ParseError("not an ONNX model: it has no graph" + hint);
  auto model = std::make_unique<Model>();
  KILN_RETURN_IF_ERROR(CheckVersions(mp, model.get()));
  model->producer_name = mp.producer_name();
  model->producer_version = mp.producer_version();
  model->domain = mp.domain();
  model->model_version = mp.model_version();
  model->doc_string = mp.doc_string();
  for (const auto& kv : mp.metadata_props()) model->metadata[kv.key()] = kv.value();
  KILN_RETURN_IF_ERROR(onnx_internal::InlineLocalFunctions(&mp));
  for (const auto& op : mp.opset_import()) model->opsets.emplace(NormDomain(op.domain()), op.version());

  ExternalDataReader ext(base_dir, options.mmap_external_data);
  model->graph = std::make_shared<Graph>();
  GraphImporter importer(ext, options.strict);
  KILN_RETURN_IF_ERROR(importer.Import(mp.graph(), model->graph.get()));
  NameDynamicInputDims(model->graph.get());
  return model;
}

Expected<std::unique_ptr<Model>> ParseBytes(const void* data, size_t size, const std::string& base_dir,
                                            const LoadOptions& options) {
  if (size == 0) return ParseError("empty file (0 bytes): not an ONNX model");
  if (size > static_cast<size_t>(INT_MAX))
    return Unsupported("model protobuf is " + std::to_string(size) +
                       " bytes; protobuf cannot parse messages over 2 GB (store the weights as external data)");
  auto mp = std::make_unique<onnx::ModelProto>();
  {
    google::protobuf::io::ArrayInputStream stream(data, static_cast<int>(size));
    google::protobuf::io::CodedInputStream coded(&stream);
    coded.SetTotalBytesLimit(INT_MAX);
    coded.SetRecursionLimit(kMaxMessageDepth);
    if (!mp->ParseFromCodedStream(&coded) || !coded.ConsumedEntireMessage())
      return ParseError("not a valid ONNX model: protobuf parsing failed (truncated or corrupt file, not ONNX, or "
                        "messages nested more than " + std::to_string(kMaxMessageDepth) +
                        " deep: subgraphs nested over about " + std::to_string(kMaxSubgraphDepth) + " levels)");
  }
  return ImportModelProto(*mp, base_dir, options);
}

Expected<std::shared_ptr<MappedFile>> MapFile(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return IoError(path + ": cannot open: " + std::strerror(errno));
  struct stat st;
  if (fstat(fd, &st) != 0) {
    ::close(fd);
    return IoError(path + ": cannot stat: " + std::strerror(errno));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    return IoError(path + ": not a regular file");
  }
  auto file = std::make_shared<MappedFile>();
  file->size = static_cast<size_t>(st.st_size);
  if (file->size > 0) {
    void* p = mmap(nullptr, file->size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
      ::close(fd);
      return IoError(path + ": cannot map: " + std::strerror(errno));
    }
    file->data = p;
  }
  ::close(fd);
  return file;
}

std::string FolderOf(const std::string& path) {
  std::string dir = std::filesystem::path(path).parent_path().string();
  return dir.empty() ? "." : dir;
}

}  // namespace

Expected<std::unique_ptr<Model>> ParseModel(const void* data, size_t size, const std::string& base_dir,
                                            const LoadOptions& options) {
  return ParseBytes(data, size, base_dir, options);
}

Expected<std::unique_ptr<Model>> LoadModel(const std::string& path, const LoadOptions& options) {
  KILN_ASSIGN_OR_RETURN(auto file, MapFile(path));
  auto model = ParseBytes(file->data, file->size, FolderOf(path), options);
  if (!model.ok()) return model.status().WithPrefix(path);
  model.value()->path = path;
  return model;
}

Expected<Tensor> LoadTensorFile(const std::string& path) {
  KILN_ASSIGN_OR_RETURN(auto file, MapFile(path));
  if (file->size == 0) return ParseError(path + ": empty file (0 bytes): not a TensorProto");
  if (file->size > static_cast<size_t>(INT_MAX)) return Unsupported(path + ": tensor file over 2 GB");
  onnx::TensorProto tp;
  google::protobuf::io::ArrayInputStream stream(file->data, static_cast<int>(file->size));
  google::protobuf::io::CodedInputStream coded(&stream);
  coded.SetTotalBytesLimit(INT_MAX);
  if (!tp.ParseFromCodedStream(&coded) || !coded.ConsumedEntireMessage())
    return ParseError(path + ": not a valid TensorProto: protobuf parsing failed");
  ExternalDataReader ext(FolderOf(path), /*use_mmap=*/false);
  std::string what = tp.name().empty() ? std::string("tensor") : "tensor '" + tp.name() + "'";
  auto t = TensorFromProto(tp, &ext, what);
  if (!t.ok()) return t.status().WithPrefix(path);
  return t;
}

}  // namespace kiln
