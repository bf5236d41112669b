#include "runtime/shape_program.h"

#include <cstring>
#include <set>
#include <unordered_set>

#include "backend/gpu_caps.h"
#include "plan/section_io.h"

namespace kiln {
namespace {

// An input dim the program can bind: a plain name, not an expression.
bool IsPlainName(const Dim& d) {
  if (!d.symbolic()) return false;
  std::set<std::string> names = d.Symbols();
  return names.size() == 1 && *names.begin() == d.symbol();
}

// Every symbol `d` uses is one the inputs bind. A negative constant is no dim,
// but it can be a host value's content (the -1 of a Reshape target).
bool Expressible(const Dim& d, const std::set<std::string>& bound) {
  if (d.constant()) return true;
  if (!d.symbolic()) return false;
  for (const std::string& s : d.Symbols())
    if (!bound.count(s)) return false;
  return true;
}

// If/Loop/Scan and the like. A kiln.Pointwise body is no control flow: it is
// the generated kernel's expression, and the node's output shapes follow from
// its inputs' (the CUDA op reads the engine's body, not the shapes here).
bool IsControlFlow(const Node& n) {
  if (n.domain == "kiln" && n.op_type == "Pointwise") return false;
  for (const auto& [name, a] : n.attrs)
    if (a.g || !a.graphs.empty()) return true;
  return false;
}

std::string DimsText(const std::vector<Dim>& dims) {
  std::string s = "[";
  for (size_t i = 0; i < dims.size(); ++i) s += (i ? "," : "") + dims[i].ToString();
  return s + "]";
}

}  // namespace

ShapeProgram ShapeProgram::Compile(const Model& m) {
  const Graph& g = *m.graph;
  ShapeProgram p;
  auto fail = [&p](const std::string& why) {
    if (p.incomplete_.empty()) p.incomplete_ = why;
  };
  std::set<std::string> bound;
  for (const Value* v : g.inputs) {
    if (v->data) continue;
    const Shape& s = v->type.shape;
    if (v->type.kind != ValueKind::kTensor || !s.rank_known()) {
      fail("input '" + v->name() + "' (" + v->type.ToString() + ") has no known rank");
      p.inputs_.emplace_back(v->name(), -1);
      continue;
    }
    p.inputs_.emplace_back(v->name(), static_cast<int64_t>(s.dims().size()));
    for (size_t axis = 0; axis < s.dims().size(); ++axis) {
      const Dim& d = s[axis];
      if (!d.symbolic()) continue;
      // Every named dim takes part in the inputs' agreement (BindInputs); only a
      // plain name can be bound for evaluating expressions over it.
      p.bindings_.push_back({v->name(), axis, d.symbol()});
      if (IsPlainName(d))
        bound.insert(d.symbol());
      else
        fail("input '" + v->name() + "' dim " + std::to_string(axis) + " (" + d.ToString() +
             ") is not a name");
    }
  }
  // Values the runtime computes on the host (the builder's definition).
  const std::unordered_set<const Value*> host = HostShapeValues(g);
  // Which host values the runtime needs on the host: the inputs a CUDA row
  // reads there (Reshape's shape, Range's limits, ...). The others can be
  // computed on the device instead when their contents are no shape
  // arithmetic (BERT's position ids Range(0, seq), ViT's class token expanded
  // to the batch): their producers then run as ordinary steps.
  // An alias (Reshape, Unsqueeze, ...) reads all but its data input there.
  std::unordered_set<const Value*> read_on_host;
  for (const Node* n : g.nodes()) {
    const GpuOpCaps* caps = FindGpuCaps(n->domain, n->op_type);
    const bool alias = IsGpuAliasOp(*n);
    for (size_t i = 0; i < n->num_inputs(); ++i)
      if (n->input(i) && ((alias && i > 0) || (caps && i < 32 && caps->host_inputs >> i & 1u)))
        read_on_host.insert(n->input(i));
  }
  // The host values the program computes; device values leave it as they are found.
  std::unordered_set<const Value*> on_host;
  for (const Value* v : host)
    if (v->data) on_host.insert(v);
  std::unordered_map<const Value*, size_t> entry_of;  // the program's host values: their entry
  for (const Node* n : g.nodes()) {
    if (IsControlFlow(*n)) fail(n->Label() + " has a subgraph (control flow)");
    for (const Value* v : n->outputs()) {
      if (!v || v->data) continue;  // constants stay as they are
      if (v->type.kind != ValueKind::kTensor || !v->type.shape.rank_known()) {
        fail("'" + v->name() + "' (" + v->type.ToString() + ", from " + n->Label() + ") has no known rank");
        continue;
      }
      Entry e{v->name(), v->dtype(), v->type.shape.dims(), std::nullopt};
      for (const Dim& d : e.dims)
        if (!Expressible(d, bound))
          fail("'" + v->name() + "' " + v->type.ToString() + " (from " + n->Label() +
               ") has a dim the input dims do not determine");
      if (host.count(v)) {
        const DataType dt = v->dtype();
        bool contents = v->sym_data &&
                        (dt == DataType::kInt64 || dt == DataType::kInt32 || dt == DataType::kBool) &&
                        e.dims.size() <= 1;
        for (size_t i = 0; contents && i < v->sym_data->size(); ++i)
          contents = Expressible((*v->sym_data)[i], bound);
        // A Cast of shape arithmetic to float or double (Llama's Range(0.0, float(seq))), the float types
        // Evaluate writes.
        const std::vector<Dim>* cast_of = nullptr;
        if (n->op_type == "Cast" && n->domain.empty() && (dt == DataType::kFloat || dt == DataType::kDouble))
          if (auto it = entry_of.find(n->input(0)); it != entry_of.end())
            cast_of = &*p.entries_[it->second].contents;
        if (contents || cast_of) {
          e.contents = contents ? *v->sym_data : *cast_of;
          entry_of[v] = p.entries_.size();  // e is pushed below
          on_host.insert(v);
        } else if (read_on_host.count(v) ||
                   !(IsGpuAliasOp(*n) || CheckGpuCaps(*n, m.OpsetOf(n->domain), on_host).ok())) {
          fail("'" + v->name() + "' " + v->type.ToString() + " (from " + n->Label() +
               ") is computed on the host but is not shape arithmetic");
          continue;
        } else {
          p.device_values_.push_back(v->name());
        }
      }
      p.entries_.push_back(std::move(e));
    }
  }
  return p;
}

Expected<std::map<std::string, int64_t>> ShapeProgram::BindInputs(
    const std::map<std::string, std::vector<int64_t>>& input_shapes) const {
  for (const auto& [name, rank] : inputs_) {
    auto it = input_shapes.find(name);
    if (it == input_shapes.end()) return InvalidArgument("input '" + name + "' has no shape (SetInputShape)");
    if (rank >= 0 && static_cast<int64_t>(it->second.size()) != rank)
      return InvalidArgument("input '" + name + "': shape " + DimsToString(it->second) + " has rank " +
                             std::to_string(it->second.size()) + ", the model expects " +
                             std::to_string(rank));
  }
  std::map<std::string, int64_t> symbols;
  std::map<std::string, std::string> bound_by;
  for (const Binding& b : bindings_) {
    const int64_t v = input_shapes.at(b.input)[b.axis];
    auto [slot, fresh] = symbols.emplace(b.symbol, v);
    const std::string where = "'" + b.input + "' dim " + std::to_string(b.axis);
    if (fresh) {
      bound_by[b.symbol] = where;
    } else if (slot->second != v) {
      return InvalidArgument("input shapes disagree on dim '" + b.symbol + "': " + bound_by[b.symbol] +
                             " is " + std::to_string(slot->second) + ", " + where + " is " +
                             std::to_string(v));
    }
  }
  return symbols;
}

Expected<ShapeProgram::Result> ShapeProgram::Evaluate(
    const std::map<std::string, std::vector<int64_t>>& input_shapes) const {
  if (!complete()) return Unsupported("the shape program is incomplete: " + incomplete_);
  using Symbols = std::map<std::string, int64_t>;
  KILN_ASSIGN_OR_RETURN(const Symbols symbols, BindInputs(input_shapes));
  Result r;
  for (const auto& [name, rank] : inputs_) r.dims[name] = input_shapes.at(name);
  auto eval = [&](const Entry& e, const Dim& d, const char* what) -> Expected<int64_t> {
    std::optional<int64_t> x = d.Evaluate(symbols);
    if (!x)
      return InvalidArgument("'" + e.value + "': " + what + " " + d.ToString() + " cannot be evaluated at " +
                             "these input shapes (overflow or division by zero)");
    return *x;
  };
  for (const Entry& e : entries_) {
    std::vector<int64_t> dims;
    dims.reserve(e.dims.size());
    for (const Dim& d : e.dims) {
      KILN_ASSIGN_OR_RETURN(int64_t x, eval(e, d, "dim"));
      if (x < 0)
        return InvalidArgument("'" + e.value + "' " + DimsText(e.dims) + " has a negative dim (" +
                               d.ToString() + " = " + std::to_string(x) + ") at these input shapes");
      dims.push_back(x);
    }
    if (e.contents) {
      // Checked before allocating: a damaged plan's dims could be anything.
      if ((dims.empty() ? 1 : dims[0]) != static_cast<int64_t>(e.contents->size()) || dims.size() > 1)
        return Internal("'" + e.value + "': " + std::to_string(e.contents->size()) +
                        " symbolic values for shape " + DimsToString(dims));
      Tensor t(e.dtype, dims);
      for (size_t i = 0; i < e.contents->size(); ++i) {
        KILN_ASSIGN_OR_RETURN(int64_t x, eval(e, (*e.contents)[i], "value"));
        if (e.dtype == DataType::kInt64)
          t.mutable_data<int64_t>()[i] = x;
        else if (e.dtype == DataType::kInt32)
          t.mutable_data<int32_t>()[i] = static_cast<int32_t>(x);
        else if (e.dtype == DataType::kFloat)
          t.mutable_data<float>()[i] = static_cast<float>(x);
        else if (e.dtype == DataType::kDouble)
          t.mutable_data<double>()[i] = static_cast<double>(x);
        else  // bool: a comparison's 0 or 1
          static_cast<uint8_t*>(t.mutable_raw())[i] = x != 0;
      }
      r.data.emplace(e.value, std::move(t));
    }
    r.dims.emplace(e.value, std::move(dims));
  }
  return r;
}

std::vector<std::string> ShapeProgram::DeviceValues() const { return device_values_; }

std::vector<std::string> ShapeProgram::HostValues() const {
  std::vector<std::string> out;
  for (const Entry& e : entries_)
    if (e.contents) out.push_back(e.value);
  return out;
}

namespace {

constexpr char kProgramMagic[4] = {'K', 'S', 'P', '1'};

void PutDims(ByteWriter& w, const std::vector<Dim>& dims) {
  w.List(dims, [&](const Dim& d) {
    const std::optional<int64_t> c = d.constant();
    w.Pod<uint8_t>(d.known() ? 0 : d.symbolic() ? 1 : c ? 3 : 2);
    if (d.symbolic()) w.Str(d.symbol());
    if (c) w.Pod<int64_t>(*c);
  });
}

Status GetDims(ByteReader& r, std::vector<Dim>* dims) {
  return r.List([&]() -> Status {
    uint8_t tag = 0;
    KILN_RETURN_IF_ERROR(r.Pod(&tag));
    if (tag == 1) {
      std::string expr;
      KILN_RETURN_IF_ERROR(r.Str(&expr));
      Dim d = Dim::Symbol(expr);
      if (!d.symbolic()) return r.Corrupt("dim expression '" + expr + "' is not symbolic");
      dims->push_back(std::move(d));
    } else if (tag == 0 || tag == 3) {
      int64_t v = 0;
      KILN_RETURN_IF_ERROR(r.Pod(&v));
      // The IR's bound on dims (ir_codec.cc) keeps evaluation from overflowing.
      if (tag == 0 ? (v < 0 || v > (int64_t{1} << 40)) : (v >= 0 || v < -(int64_t{1} << 40)))
        return r.Corrupt("dim " + std::to_string(v) + " out of range");
      dims->push_back(Dim::Constant(v));
    } else if (tag == 2) {
      dims->push_back(Dim::Unknown());
    } else {
      return r.Corrupt("dim tag " + std::to_string(tag) + " out of range");
    }
    return Status::Ok();
  });
}

}  // namespace

std::string ShapeProgram::Encode() const {
  std::string out(kProgramMagic, sizeof(kProgramMagic));
  ByteWriter w(&out);
  w.Str(incomplete_);
  w.List(inputs_, [&](const std::pair<std::string, int64_t>& in) {
    w.Str(in.first);
    w.Pod<int64_t>(in.second);
  });
  w.List(bindings_, [&](const Binding& b) {
    w.Str(b.input);
    w.Pod<uint32_t>(static_cast<uint32_t>(b.axis));
    w.Str(b.symbol);
  });
  w.List(entries_, [&](const Entry& e) {
    w.Str(e.value);
    w.Pod<int32_t>(static_cast<int32_t>(e.dtype));
    PutDims(w, e.dims);
    w.Pod<uint8_t>(e.contents.has_value());
    if (e.contents) PutDims(w, *e.contents);
  });
  w.List(device_values_, [&](const std::string& v) { w.Str(v); });
  return out;
}

Expected<ShapeProgram> ShapeProgram::Decode(std::string_view bytes) {
  if (bytes.size() < sizeof(kProgramMagic) ||
      std::memcmp(bytes.data(), kProgramMagic, sizeof(kProgramMagic)) != 0)
    return InvalidArgument("corrupted plan: the shapes section is not a shape program (bad magic)");
  ByteReader r(bytes.substr(sizeof(kProgramMagic)), "shapes");
  ShapeProgram p;
  KILN_RETURN_IF_ERROR(r.Str(&p.incomplete_));
  std::map<std::string, int64_t> ranks;
  KILN_RETURN_IF_ERROR(r.List([&]() -> Status {
    auto& [name, rank] = p.inputs_.emplace_back();
    KILN_RETURN_IF_ERROR(r.Str(&name));
    KILN_RETURN_IF_ERROR(r.Pod(&rank));
    if (rank < -1 || rank > 64) return r.Corrupt("input '" + name + "' has rank " + std::to_string(rank));
    if (!ranks.emplace(name, rank).second) return r.Corrupt("input '" + name + "' listed twice");
    return Status::Ok();
  }));
  KILN_RETURN_IF_ERROR(r.List([&]() -> Status {
    Binding& b = p.bindings_.emplace_back();
    uint32_t axis = 0;
    KILN_RETURN_IF_ERROR(r.Str(&b.input));
    KILN_RETURN_IF_ERROR(r.Pod(&axis));
    KILN_RETURN_IF_ERROR(r.Str(&b.symbol));
    b.axis = axis;
    auto rank = ranks.find(b.input);
    if (rank == ranks.end() || rank->second <= static_cast<int64_t>(axis))
      return r.Corrupt("binding of '" + b.symbol + "' to '" + b.input + "' dim " + std::to_string(axis) +
                       ": no such input dim");
    return Status::Ok();
  }));
  KILN_RETURN_IF_ERROR(r.List([&]() -> Status {
    Entry& e = p.entries_.emplace_back();
    int32_t dtype = 0;
    KILN_RETURN_IF_ERROR(r.Str(&e.value));
    KILN_RETURN_IF_ERROR(r.Pod(&dtype));
    if (dtype != 0 && !IsValidDataType(dtype))
      return r.Corrupt("data type " + std::to_string(dtype) + " out of range");
    e.dtype = static_cast<DataType>(dtype);
    KILN_RETURN_IF_ERROR(GetDims(r, &e.dims));
    uint8_t has_contents = 0;
    KILN_RETURN_IF_ERROR(r.Pod(&has_contents));
    if (!has_contents) return Status::Ok();
    const DataType dt = e.dtype;
    if (e.dims.size() > 1 || !(dt == DataType::kInt64 || dt == DataType::kInt32 || dt == DataType::kBool ||
                               dt == DataType::kFloat || dt == DataType::kDouble))
      return r.Corrupt("'" + e.value + "' has contents but is no " + "int64/int32/bool/float/double vector");
    return GetDims(r, &e.contents.emplace());
  }));
  KILN_RETURN_IF_ERROR(r.List([&]() -> Status { return r.Str(&p.device_values_.emplace_back()); }));
  if (!r.AtEnd()) return r.Corrupt("trailing bytes");
  return p;
}

}  // namespace kiln
