#include "plan/ir_codec.h"

#include <cstring>

#include "plan/section_io.h"

namespace kiln {
namespace {

constexpr char kIrMagic[4] = {'K', 'I', 'R', '1'};
constexpr int kMaxDepth = 64;  // nested subgraphs

class Writer : public ByteWriter {
 public:
  // Writes into `section` (the graph's or the folded values'); constants' bytes go to out->weights.
  Writer(EncodedModel* out, std::string* section) : ByteWriter(section), out_(out) {}

  void Type(const TypeInfo& t) {
    Pod<uint8_t>(static_cast<uint8_t>(t.kind));
    Pod<uint8_t>(static_cast<uint8_t>(t.elem_kind));
    Pod<int32_t>(static_cast<int32_t>(t.dtype));
    Pod<uint8_t>(t.shape.rank_known());
    List(t.shape.dims(), [&](const Dim& d) {
      Pod<uint8_t>(d.known() ? 0 : d.symbolic() ? 1 : 2);
      if (d.known()) Pod<int64_t>(d.value());
      if (d.symbolic()) Str(d.symbol());
    });
  }
  void TensorRef(const Tensor& t) {
    Pod<int32_t>(static_cast<int32_t>(t.dtype()));
    if (!t.defined()) return;
    List(t.dims(), [&](int64_t d) { Pod<int64_t>(d); });
    if (t.dtype() == DataType::kString) return List(t.strings(), [&](const std::string& s) { Str(s); });
    std::string& blob = out_->weights;
    blob.resize((blob.size() + kWeightAlignment - 1) / kWeightAlignment * kWeightAlignment, '\0');
    Pod<uint64_t>(blob.size());
    Pod<uint64_t>(t.nbytes());
    blob.append(static_cast<const char*>(t.raw()), t.nbytes());
  }
  void Attr(const Attribute& a) {
    Pod<uint8_t>(static_cast<uint8_t>(a.type));
    Pod<float>(a.f);
    Pod<int64_t>(a.i);
    Str(a.s);
    TensorRef(a.t);
    Pod<uint8_t>(a.g != nullptr);
    if (a.g) Graph(*a.g);
    List(a.floats, [&](float f) { Pod<float>(f); });
    List(a.ints, [&](int64_t i) { Pod<int64_t>(i); });
    List(a.strings, [&](const std::string& s) { Str(s); });
    List(a.tensors, [&](const Tensor& t) { TensorRef(t); });
    List(a.graphs, [&](const std::shared_ptr<kiln::Graph>& g) { Graph(*g); });
    Type(a.type_proto);
    Str(a.ref_attr_name);
  }
  void Names(const std::vector<Value*>& values) {
    List(values, [&](const Value* v) {
      Pod<uint8_t>(v != nullptr);
      if (v) Str(v->name());
    });
  }
  void Graph(const kiln::Graph& g) {
    Str(g.name);
    Str(g.doc_string);
    List(g.values(), [&](const Value* v) {
      Str(v->name());
      Type(v->type);
      Pod<uint8_t>(v->data.has_value() && !v->producer());  // folded node outputs: EncodedModel::folded
      if (v->data && !v->producer()) TensorRef(*v->data);
    });
    List(g.nodes(), [&](const Node* n) {
      Str(n->name);
      Str(n->op_type);
      Str(n->domain);
      Str(n->doc_string);
      Names(n->inputs());
      Names(n->outputs());
      Pod<uint32_t>(static_cast<uint32_t>(n->attrs.size()));
      for (const auto& [name, a] : n->attrs) {
        Str(name);
        Attr(a);
      }
    });
    Names(g.inputs);
    Names(g.outputs);
    Names(g.initializers);
  }

 private:
  EncodedModel* out_;
};

class Reader : public ByteReader {
 public:
  Reader(std::string_view in, std::string section, std::string_view weights,
         std::shared_ptr<const void> owner)
      : ByteReader(in, std::move(section)), weights_(weights), owner_(std::move(owner)) {}

  Status DType(DataType* dt) {
    int32_t v = 0;
    KILN_RETURN_IF_ERROR(Pod(&v));
    if (v != 0 && !IsValidDataType(v)) return Corrupt("data type " + std::to_string(v) + " out of range");
    *dt = static_cast<DataType>(v);
    return Status::Ok();
  }
  Status Type(TypeInfo* t) {
    KILN_RETURN_IF_ERROR(Enum(&t->kind, static_cast<int>(ValueKind::kSparseTensor)));
    KILN_RETURN_IF_ERROR(Enum(&t->elem_kind, static_cast<int>(ValueKind::kSparseTensor)));
    KILN_RETURN_IF_ERROR(DType(&t->dtype));
    uint8_t ranked = 0;
    KILN_RETURN_IF_ERROR(Pod(&ranked));
    std::vector<Dim> dims;
    KILN_RETURN_IF_ERROR(List([&]() -> Status {
      uint8_t tag = 0;
      KILN_RETURN_IF_ERROR(Pod(&tag));
      if (tag == 0) {
        int64_t v = 0;
        KILN_RETURN_IF_ERROR(Pod(&v));
        // No real dim comes near 2^40; bounding them keeps dim x attribute
        // arithmetic in shape inference from overflowing on a hostile plan.
        if (v < 0 || v > (int64_t{1} << 40)) return Corrupt("dim " + std::to_string(v) + " out of range");
        dims.push_back(Dim::Known(v));
      } else if (tag == 1) {
        std::string sym;
        KILN_RETURN_IF_ERROR(Str(&sym));
        dims.push_back(Dim::Symbol(sym));
      } else if (tag == 2) {
        dims.push_back(Dim::Unknown());
      } else {
        return Corrupt("dim tag " + std::to_string(tag) + " out of range");
      }
      return Status::Ok();
    }));
    t->shape = ranked ? Shape(std::move(dims)) : Shape::Unranked();
    if (t->shape.KnownDimsOverflow()) return Corrupt("shape " + t->shape.ToString() + " has more than 2^63 elements");
    return Status::Ok();
  }
  Status TensorRef(Tensor* t) {
    DataType dt = DataType::kUndefined;
    KILN_RETURN_IF_ERROR(DType(&dt));
    if (dt == DataType::kUndefined) return Status::Ok();
    std::vector<int64_t> dims;
    uint64_t numel = 1;
    KILN_RETURN_IF_ERROR(List([&]() -> Status {
      int64_t d = 0;
      KILN_RETURN_IF_ERROR(Pod(&d));
      if (d < 0 || (d > 0 && numel > (uint64_t{1} << 62) / static_cast<uint64_t>(d)))
        return Corrupt("tensor dim " + std::to_string(d) + " negative or too large");
      numel *= static_cast<uint64_t>(d);
      dims.push_back(d);
      return Status::Ok();
    }));
    if (dt == DataType::kString) {
      std::vector<std::string> strings;
      KILN_RETURN_IF_ERROR(List([&]() -> Status { return Str(&strings.emplace_back()); }));
      if (strings.size() != numel)
        return Corrupt("string tensor with " + std::to_string(strings.size()) + " strings for " +
                       std::to_string(numel) + " elements");
      *t = Tensor(dt, dims);
      t->mutable_strings() = std::move(strings);
      return Status::Ok();
    }
    uint64_t offset = 0, size = 0;
    KILN_RETURN_IF_ERROR(Pod(&offset));
    KILN_RETURN_IF_ERROR(Pod(&size));
    if (size != numel * ElementSize(dt))
      return Corrupt("tensor of " + std::to_string(size) + " bytes for " + std::to_string(numel) +
                     " elements");
    if (offset > weights_.size() || weights_.size() - offset < size)
      return Corrupt("weights at [" + std::to_string(offset) + ", +" + std::to_string(size) +
                     ") past the end of the weights section (" + std::to_string(weights_.size()) + " bytes)");
    if (owner_ && size) {  // in place: the blob's offsets are 64-byte aligned
      *t = Tensor::Borrow(dt, dims, owner_, weights_.data() + offset);
      return Status::Ok();
    }
    *t = Tensor(dt, dims);
    if (size) std::memcpy(t->mutable_raw(), weights_.data() + offset, size);
    return Status::Ok();
  }
  Status Attr(Attribute* a, kiln::Graph* owner, int depth) {
    KILN_RETURN_IF_ERROR(Enum(&a->type, static_cast<int>(Attribute::Type::kTypeProto)));
    KILN_RETURN_IF_ERROR(Pod(&a->f));
    KILN_RETURN_IF_ERROR(Pod(&a->i));
    KILN_RETURN_IF_ERROR(Str(&a->s));
    KILN_RETURN_IF_ERROR(TensorRef(&a->t));
    uint8_t has_graph = 0;
    KILN_RETURN_IF_ERROR(Pod(&has_graph));
    if (has_graph) KILN_RETURN_IF_ERROR(Subgraph(&a->g, owner, depth));
    KILN_RETURN_IF_ERROR(List([&]() -> Status { return Pod(&a->floats.emplace_back()); }));
    KILN_RETURN_IF_ERROR(List([&]() -> Status { return Pod(&a->ints.emplace_back()); }));
    KILN_RETURN_IF_ERROR(List([&]() -> Status { return Str(&a->strings.emplace_back()); }));
    KILN_RETURN_IF_ERROR(List([&]() -> Status { return TensorRef(&a->tensors.emplace_back()); }));
    KILN_RETURN_IF_ERROR(List([&]() -> Status { return Subgraph(&a->graphs.emplace_back(), owner, depth); }));
    KILN_RETURN_IF_ERROR(Type(&a->type_proto));
    return Str(&a->ref_attr_name);
  }
  Status Subgraph(std::shared_ptr<kiln::Graph>* g, kiln::Graph* owner, int depth) {
    if (depth >= kMaxDepth) return Corrupt("subgraphs nested deeper than " + std::to_string(kMaxDepth));
    *g = std::make_shared<kiln::Graph>();
    (*g)->parent = owner;
    return Graph(**g, depth + 1);
  }
  // Values by name: this graph's own (outputs, graph IO) or, for node
  // inputs, any enclosing graph's.
  Status Names(std::vector<Value*>* out, const kiln::Graph& g, bool outer) {
    return List([&]() -> Status {
      uint8_t present = 0;
      KILN_RETURN_IF_ERROR(Pod(&present));
      if (!present) return out->push_back(nullptr), Status::Ok();
      std::string name;
      KILN_RETURN_IF_ERROR(Str(&name));
      Value* v = outer ? g.Lookup(name) : g.FindValue(name);
      if (!v) return Corrupt("value '" + name + "' is not defined in graph '" + g.name + "'");
      out->push_back(v);
      return Status::Ok();
    });
  }
  Status Graph(kiln::Graph& g, int depth) {
    KILN_RETURN_IF_ERROR(Str(&g.name));
    KILN_RETURN_IF_ERROR(Str(&g.doc_string));
    KILN_RETURN_IF_ERROR(List([&]() -> Status {
      std::string name;
      KILN_RETURN_IF_ERROR(Str(&name));
      if (!name.empty() && g.FindValue(name)) return Corrupt("value '" + name + "' defined twice");
      Value* v = g.AddValue(name);
      KILN_RETURN_IF_ERROR(Type(&v->type));
      uint8_t has_data = 0;
      KILN_RETURN_IF_ERROR(Pod(&has_data));
      if (has_data) KILN_RETURN_IF_ERROR(TensorRef(&v->data.emplace()));
      return Status::Ok();
    }));
    KILN_RETURN_IF_ERROR(List([&]() -> Status {
      std::string name, op, domain;
      KILN_RETURN_IF_ERROR(Str(&name));
      KILN_RETURN_IF_ERROR(Str(&op));
      KILN_RETURN_IF_ERROR(Str(&domain));
      Node* n = g.AddNode(op, name, domain);
      KILN_RETURN_IF_ERROR(Str(&n->doc_string));
      std::vector<Value*> ins, outs;
      KILN_RETURN_IF_ERROR(Names(&ins, g, /*outer=*/true));
      KILN_RETURN_IF_ERROR(Names(&outs, g, /*outer=*/false));
      for (Value* v : ins) n->AddInput(v);
      for (Value* v : outs) {
        if (v && v->producer()) return Corrupt("value '" + v->name() + "' has two producers");
        if (v && v->data) return Corrupt("constant '" + v->name() + "' is also a node output");
        n->AddOutput(v);
      }
      return List([&]() -> Status {
        std::string attr;
        KILN_RETURN_IF_ERROR(Str(&attr));
        return Attr(&n->attrs[attr], &g, depth);
      });
    }));
    KILN_RETURN_IF_ERROR(Names(&g.inputs, g, false));
    KILN_RETURN_IF_ERROR(Names(&g.outputs, g, false));
    KILN_RETURN_IF_ERROR(Names(&g.initializers, g, false));
    for (const Value* v : g.inputs)
      if (!v) return Corrupt("graph '" + g.name + "' has an omitted input");
    return Status::Ok();
  }
  // The main graph's node outputs folded at build time: list<str name, tensor>.
  Status Folded(kiln::Graph& g) {
    return List([&]() -> Status {
      std::string name;
      KILN_RETURN_IF_ERROR(Str(&name));
      Value* v = g.FindValue(name);
      if (!v || !v->producer() || v->data)
        return Corrupt("folded value '" + name + "' is no node output of the graph");
      KILN_RETURN_IF_ERROR(TensorRef(&v->data.emplace()));
      if (v->type.kind != ValueKind::kTensor || v->data->dtype() != v->type.dtype ||
          v->type.shape.concrete() != v->data->dims())
        return Corrupt("folded value '" + name + "' disagrees with its type " + v->type.ToString());
      return Status::Ok();
    });
  }

 private:
  std::string_view weights_;
  std::shared_ptr<const void> owner_;
};

}  // namespace

EncodedModel EncodeModel(const Model& model) {
  EncodedModel out;
  Writer w(&out, &out.graph);
  out.graph.append(kIrMagic, sizeof(kIrMagic));
  w.Pod<int64_t>(model.ir_version);
  w.Pod<uint32_t>(static_cast<uint32_t>(model.opsets.size()));
  for (const auto& [domain, version] : model.opsets) {
    w.Str(domain);
    w.Pod<int64_t>(version);
  }
  w.Str(model.producer_name);
  w.Str(model.producer_version);
  w.Graph(*model.graph);
  // Node outputs shape inference folded at build time (shape arithmetic at
  // static dims, chains on constants): the runtime reads them, no inference.
  std::vector<const Value*> folded;
  for (const Value* v : model.graph->values())
    if (v->data && v->producer()) folded.push_back(v);
  Writer f(&out, &out.folded);
  f.List(folded, [&](const Value* v) {
    f.Str(v->name());
    f.TensorRef(*v->data);
  });
  return out;
}

Expected<std::unique_ptr<Model>> DecodeModel(std::string_view graph, std::string_view weights,
                                             std::shared_ptr<const void> owner) {
  if (graph.size() < sizeof(kIrMagic) || std::memcmp(graph.data(), kIrMagic, sizeof(kIrMagic)) != 0)
    return InvalidArgument("corrupted plan: the graph section is not kiln IR (bad magic)");
  Reader r(graph.substr(sizeof(kIrMagic)), "graph", weights, std::move(owner));
  auto m = std::make_unique<Model>();
  KILN_RETURN_IF_ERROR(r.Pod(&m->ir_version));
  KILN_RETURN_IF_ERROR(r.List([&]() -> Status {
    std::string domain;
    KILN_RETURN_IF_ERROR(r.Str(&domain));
    return r.Pod(&m->opsets[domain]);
  }));
  KILN_RETURN_IF_ERROR(r.Str(&m->producer_name));
  KILN_RETURN_IF_ERROR(r.Str(&m->producer_version));
  m->graph = std::make_shared<Graph>();
  KILN_RETURN_IF_ERROR(r.Graph(*m->graph, 0));
  if (!r.AtEnd()) return r.Corrupt("trailing bytes");
  return m;
}

Status DecodeFolded(std::string_view folded, std::string_view weights, std::shared_ptr<const void> owner,
                    Model* model) {
  Reader r(folded, "folded", weights, std::move(owner));
  KILN_RETURN_IF_ERROR(r.Folded(*model->graph));
  if (!r.AtEnd()) return r.Corrupt("trailing bytes");
  return Status::Ok();
}

}  // namespace kiln
