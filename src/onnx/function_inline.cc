// Inlining of model-local functions at the protobuf level (see function_inline.h).
#include "onnx/function_inline.h"

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/wire_format_lite.h>

#include <map>
#include <unordered_set>
#include <vector>

namespace kiln {
namespace onnx_internal {
namespace {

using google::protobuf::internal::WireFormatLite;
using AttrMap = std::map<std::string, const onnx::AttributeProto*>;
using NameMap = std::map<std::string, std::string>;

constexpr int kMaxInlineDepth = 64;
// FunctionProto.attribute_proto (defaults), newer than the onnx.proto we compile.
constexpr int kFunctionAttributeProtoField = 11;

std::string NormDomain(const std::string& d) { return d == "ai.onnx" ? "" : d; }

// Length-delimited values of field `number` in a lite message's unknown fields.
std::vector<std::string> UnknownBytesFields(const std::string& unknown, int number) {
  std::vector<std::string> out;
  google::protobuf::io::CodedInputStream in(reinterpret_cast<const uint8_t*>(unknown.data()),
                                            static_cast<int>(unknown.size()));
  while (true) {
    uint32_t tag = in.ReadTag();
    if (tag == 0) break;
    if (WireFormatLite::GetTagFieldNumber(tag) == number &&
        WireFormatLite::GetTagWireType(tag) == WireFormatLite::WIRETYPE_LENGTH_DELIMITED) {
      uint32_t len = 0;
      std::string s;
      if (!in.ReadVarint32(&len) || !in.ReadString(&s, static_cast<int>(len))) break;
      out.push_back(std::move(s));
    } else if (!WireFormatLite::SkipField(&in, tag)) {
      break;
    }
  }
  return out;
}

struct FnInfo {
  const onnx::FunctionProto* fn = nullptr;
  std::map<std::string, onnx::AttributeProto> defaults;
};

class Inliner {
 public:
  explicit Inliner(onnx::ModelProto* m) : model_(m) {}

  Status Run() {
    for (const auto& fn : model_->functions()) {
      FnInfo info;
      info.fn = &fn;
      for (const std::string& bytes : UnknownBytesFields(fn.unknown_fields(), kFunctionAttributeProtoField)) {
        onnx::AttributeProto a;
        if (a.ParseFromString(bytes) && !a.name().empty()) info.defaults[a.name()] = a;
      }
      auto key = std::make_pair(NormDomain(fn.domain()), fn.name());
      if (fns_.count(key))
        return InvalidArgument("model-local function '" + fn.domain() + "." + fn.name() + "' is defined twice");
      fns_[key] = std::move(info);
    }
    if (fns_.empty()) return Status::Ok();
    CollectNames(model_->graph());
    KILN_RETURN_IF_ERROR(InlineGraph(model_->mutable_graph()));
    // Domains the function bodies use but the model does not import.
    std::map<std::string, int64_t> have;
    for (const auto& op : model_->opset_import()) have[NormDomain(op.domain())] = op.version();
    for (const auto& fn : model_->functions())
      for (const auto& op : fn.opset_import())
        if (!have.count(NormDomain(op.domain()))) {
          have[NormDomain(op.domain())] = op.version();
          *model_->add_opset_import() = op;
        }
    model_->clear_functions();
    return Status::Ok();
  }

 private:
  void CollectNames(const onnx::GraphProto& g) {
    for (const auto& v : g.input()) names_.insert(v.name());
    for (const auto& v : g.output()) names_.insert(v.name());
    for (const auto& v : g.value_info()) names_.insert(v.name());
    for (const auto& t : g.initializer()) names_.insert(t.name());
    for (const auto& n : g.node()) {
      names_.insert(n.name());
      for (const auto& s : n.input()) names_.insert(s);
      for (const auto& s : n.output()) names_.insert(s);
      for (const auto& a : n.attribute()) {
        if (a.has_g()) CollectNames(a.g());
        for (const auto& sg : a.graphs()) CollectNames(sg);
      }
    }
  }

  std::string Fresh(const std::string& base) {
    std::string name = base;
    for (int i = 1; names_.count(name); ++i) name = base + "_" + std::to_string(i);
    names_.insert(name);
    return name;
  }

  Status InlineGraph(onnx::GraphProto* g) {
    std::vector<onnx::NodeProto> out;
    std::vector<onnx::NodeProto> nodes(g->node().begin(), g->node().end());
    for (auto& n : nodes) KILN_RETURN_IF_ERROR(Process(std::move(n), 0, &out));
    g->clear_node();
    for (auto& n : out) *g->add_node() = std::move(n);
    return Status::Ok();
  }

  Status Process(onnx::NodeProto node, int depth, std::vector<onnx::NodeProto>* out) {
    for (auto& a : *node.mutable_attribute()) {
      if (a.has_g()) KILN_RETURN_IF_ERROR(InlineGraph(a.mutable_g()));
      for (auto& sg : *a.mutable_graphs()) KILN_RETURN_IF_ERROR(InlineGraph(&sg));
    }
    auto it = fns_.find(std::make_pair(NormDomain(node.domain()), node.op_type()));
    if (it == fns_.end()) {
      out->push_back(std::move(node));
      return Status::Ok();
    }
    if (depth >= kMaxInlineDepth)
      return InvalidArgument("model-local function '" + node.op_type() + "' calls itself recursively (node '" +
                             node.name() + "')");
    std::vector<onnx::NodeProto> body;
    KILN_RETURN_IF_ERROR(Expand(node, it->second, &body));
    for (auto& b : body) KILN_RETURN_IF_ERROR(Process(std::move(b), depth + 1, out));
    return Status::Ok();
  }

  // Applies attribute references and renames inside one body node (recursing
  // into its subgraphs). Returns an error for a reference that cannot resolve
  // only when the attribute has no default (it is then dropped, as ONNX says).
  void Substitute(onnx::NodeProto* n, const NameMap& rename, const AttrMap& call_attrs, const FnInfo& fn) {
    for (auto& s : *n->mutable_input()) {
      auto r = rename.find(s);
      if (!s.empty() && r != rename.end()) s = r->second;
    }
    for (auto& s : *n->mutable_output()) {
      auto r = rename.find(s);
      if (!s.empty() && r != rename.end()) s = r->second;
    }
    auto* attrs = n->mutable_attribute();
    for (int i = 0; i < attrs->size();) {
      onnx::AttributeProto* a = attrs->Mutable(i);
      if (!a->ref_attr_name().empty()) {
        const onnx::AttributeProto* src = nullptr;
        auto c = call_attrs.find(a->ref_attr_name());
        if (c != call_attrs.end()) {
          src = c->second;
        } else {
          auto d = fn.defaults.find(a->ref_attr_name());
          if (d != fn.defaults.end()) src = &d->second;
        }
        if (!src) {
          attrs->DeleteSubrange(i, 1);
          continue;
        }
        std::string name = a->name();
        *a = *src;
        a->set_name(name);
        a->clear_ref_attr_name();
      }
      if (a->has_g()) RenameGraph(a->mutable_g(), rename, call_attrs, fn);
      for (auto& sg : *a->mutable_graphs()) RenameGraph(&sg, rename, call_attrs, fn);
      ++i;
    }
  }

  void RenameGraph(onnx::GraphProto* g, const NameMap& rename, const AttrMap& call_attrs, const FnInfo& fn) {
    for (auto& n : *g->mutable_node()) Substitute(&n, rename, call_attrs, fn);
    for (auto& v : *g->mutable_output()) {
      auto r = rename.find(v.name());
      if (r != rename.end()) v.set_name(r->second);
    }
  }

  Status Expand(const onnx::NodeProto& call, const FnInfo& info, std::vector<onnx::NodeProto>* out) {
    const onnx::FunctionProto& fn = *info.fn;
    std::string prefix = call.name().empty() ? fn.name() : call.name();
    if (call.input_size() > fn.input_size() || call.output_size() > fn.output_size())
      return InvalidArgument("node '" + call.name() + "' calls function '" + fn.name() + "' with " +
                             std::to_string(call.input_size()) + " inputs and " + std::to_string(call.output_size()) +
                             " outputs, but it takes " + std::to_string(fn.input_size()) + " and " +
                             std::to_string(fn.output_size()));
    NameMap rename;
    for (int i = 0; i < fn.input_size(); ++i) rename[fn.input(i)] = i < call.input_size() ? call.input(i) : "";
    for (int i = 0; i < fn.output_size(); ++i)
      rename[fn.output(i)] = (i < call.output_size() && !call.output(i).empty()) ? call.output(i)
                                                                                 : Fresh(prefix + "/" + fn.output(i));
    for (const auto& bn : fn.node())
      for (const auto& o : bn.output())
        if (!o.empty() && !rename.count(o)) rename[o] = Fresh(prefix + "/" + o);
    AttrMap call_attrs;
    for (const auto& a : call.attribute()) call_attrs[a.name()] = &a;
    for (int i = 0; i < fn.node_size(); ++i) {
      onnx::NodeProto bn = fn.node(i);
      std::string local = bn.name().empty() ? bn.op_type() + "_" + std::to_string(i) : bn.name();
      bn.set_name(Fresh(prefix + "/" + local));
      Substitute(&bn, rename, call_attrs, info);
      out->push_back(std::move(bn));
    }
    return Status::Ok();
  }

  onnx::ModelProto* model_;
  std::map<std::pair<std::string, std::string>, FnInfo> fns_;
  std::unordered_set<std::string> names_;
};

}  // namespace

Status InlineLocalFunctions(onnx::ModelProto* model) { return Inliner(model).Run(); }

}  // namespace onnx_internal
}  // namespace kiln
