// Engine::Build: ONNX → optimized IR → every node checked against the CUDA op
// table (no silent CPU fallback) → engine with device constants → contexts at
// the profile's max shapes (arena size) and opt shapes (kernel choice).
#include <chrono>
#include <unordered_set>

#include "backend/cuda/cuda_op_table.h"
#include "onnx/import.h"
#include "passes/shape_inference.h"
#include "runtime/gpu/build_passes.h"
#include "runtime/gpu/gpu_engine.h"

namespace kiln {
namespace {

// Values computable on the host from shapes alone (Shape/Size and constant
// arithmetic on them): evaluated per input shape, like TensorRT's shape tensors.
std::unordered_set<const Value*> ShapeValues(const Graph& g) {
  std::unordered_set<const Value*> shape_values;
  for (const Value* v : g.values())
    if (v->data) shape_values.insert(v);
  for (const Node* n : g.nodes()) {
    bool from_shapes = n->op_type == "Shape" || n->op_type == "Size";
    if (!from_shapes) {
      from_shapes = n->num_inputs() > 0;
      for (const Value* v : n->inputs())
        if (v && !shape_values.count(v)) from_shapes = false;
    }
    if (from_shapes)
      for (const Value* o : n->outputs())
        if (o) shape_values.insert(o);
  }
  return shape_values;
}

std::string DescribeNode(const Node& n) {
  std::string s = n.Label() + " (inputs:";
  for (size_t i = 0; i < n.num_inputs(); ++i) {
    const Value* v = n.input(i);
    s += std::string(i ? ", " : " ") + (v ? v->name() + " " + v->type.ToString() : "<omitted>");
  }
  return s + ")";
}

// Every node must run on the GPU or be host shape arithmetic.
Status CheckGpuSupport(const Model& m, bool fp16, std::map<std::string, std::string>* kernels) {
  const Graph& g = *m.graph;
  auto shape_values = ShapeValues(g);
  std::vector<std::string> problems;
  for (const Node* n : g.nodes()) {
    bool host = n->num_outputs() > 0;
    for (const Value* o : n->outputs())
      if (o && !shape_values.count(o)) host = false;
    if (host) {
      (*kernels)[n->name] = "host shape arithmetic";
      continue;
    }
    if (cuda::IsAliasOp(*n)) {
      (*kernels)[n->name] = "alias (no kernel)";
      continue;
    }
    cuda::GpuOpFactory f = cuda::FindGpuOp(n->domain, n->op_type);
    if (!f) {
      problems.push_back(DescribeNode(*n) + ": no CUDA kernel for this op");
      continue;
    }
    cuda::GpuOpInfo info{n, m.OpsetOf(n->domain), fp16};
    auto op = f(info);
    if (!op.ok()) {
      problems.push_back(op.status().message());
      continue;
    }
    (*kernels)[n->name] = n->op_type;
  }
  if (problems.empty()) return Status::Ok();
  std::string msg = std::to_string(problems.size()) + " node(s) cannot run on the GPU:";
  for (size_t i = 0; i < problems.size() && i < 10; ++i) msg += "\n  " + problems[i];
  if (problems.size() > 10) msg += "\n  ... and " + std::to_string(problems.size() - 10) + " more";
  return Unsupported(msg);
}

// Profiles for every input with dynamic dims; given ones are validated.
Status ResolveProfiles(const Graph& g, std::map<std::string, ShapeRange>* profiles,
                       std::vector<std::string>* notes) {
  for (const auto& [name, r] : *profiles) {
    const Value* in = nullptr;
    for (const Value* v : g.inputs)
      if (v->name() == name) in = v;
    if (!in) return InvalidArgument("profile given for '" + name + "', which is not a model input");
    size_t rank = r.opt.size();
    if (r.min.size() != rank || r.max.size() != rank)
      return InvalidArgument("profile for '" + name + "': min/opt/max must have the same rank");
    if (in->type.shape.rank_known() && static_cast<size_t>(in->type.shape.rank()) != rank)
      return InvalidArgument("profile for '" + name + "' has rank " + std::to_string(rank) + ", the input is " +
                             in->type.ToString());
    for (size_t i = 0; i < rank; ++i) {
      if (!(r.min[i] <= r.opt[i] && r.opt[i] <= r.max[i]) || r.min[i] < 0)
        return InvalidArgument("profile for '" + name + "': need 0 <= min <= opt <= max in every dim, got " +
                               DimsToString(r.min) + " / " + DimsToString(r.opt) + " / " + DimsToString(r.max));
      const Dim& d = in->type.shape[i];
      if (d.known() && (r.min[i] != d.value() || r.max[i] != d.value()))
        return InvalidArgument("profile for '" + name + "': dim " + std::to_string(i) + " is fixed at " +
                               d.ToString() + " in the model");
    }
  }
  for (const Value* v : g.inputs) {
    if (v->data || profiles->count(v->name()) || v->type.shape.fully_known()) continue;
    if (!v->type.shape.rank_known()) return InvalidArgument("input '" + v->name() + "' has unknown rank");
    std::vector<int64_t> dims;
    for (const Dim& d : v->type.shape.dims()) dims.push_back(d.known() ? d.value() : 1);
    (*profiles)[v->name()] = ShapeRange{dims, dims, dims};
    notes->push_back("no profile for dynamic input '" + v->name() + "' " + v->type.shape.ToString() +
                     ": fixed at " + DimsToString(dims) + " (use --minShapes/--optShapes/--maxShapes)");
  }
  return Status::Ok();
}

}  // namespace

Expected<std::shared_ptr<Engine>> Engine::Build(const std::string& onnx_path, const BuildOptions& options,
                                                BuildReport* report) {
  auto t0 = std::chrono::steady_clock::now();
  KILN_ASSIGN_OR_RETURN(std::unique_ptr<Model> model, LoadModel(onnx_path));
  BuildReport local;
  BuildReport& rep = report ? *report : local;
  KILN_ASSIGN_OR_RETURN(auto engine, cuda::BuildEngine(std::move(model), options, &rep));
  rep.build_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return engine;
}

}  // namespace kiln

namespace kiln::cuda {

Expected<std::shared_ptr<Engine>> BuildEngine(std::unique_ptr<Model> model, const BuildOptions& options,
                                              BuildReport* report) {
  auto t0 = std::chrono::steady_clock::now();
  BuildReport local;
  BuildReport& rep = report ? *report : local;
  KILN_RETURN_IF_ERROR(InferShapes(*model));
  KILN_RETURN_IF_ERROR(cuda::RunBuildPasses(*model, options, &rep.notes));
  cuda::EngineConfig cfg;
  cfg.fp16 = options.fp16;
  cfg.tf32 = options.tf32;
  cfg.workspace_bytes = options.workspace_bytes;
  cfg.profiles = options.profiles;
  KILN_RETURN_IF_ERROR(ResolveProfiles(*model->graph, &cfg.profiles, &rep.notes));
  KILN_RETURN_IF_ERROR(CheckGpuSupport(*model, cfg.fp16, &cfg.kernels));
  rep.num_nodes = model->graph->num_nodes();
  for (const auto& [node, kernel] : cfg.kernels)
    if (kernel != "host shape arithmetic" && kernel != "alias (no kernel)") ++rep.num_kernels;

  KILN_ASSIGN_OR_RETURN(auto engine, cuda::GpuEngine::Create(std::move(model), std::move(cfg)));
  // Arena at the largest shapes; kernels prepared at the opt shapes.
  for (const char* which : {"max", "opt"}) {
    KILN_ASSIGN_OR_RETURN(std::unique_ptr<Context> ctx, engine->CreateContext());
    for (const auto& [name, r] : engine->config().profiles)
      KILN_RETURN_IF_ERROR(ctx->SetInputShape(name, std::string(which) == "max" ? r.max : r.opt));
    for (const TensorInfo& out : engine->Outputs())
      KILN_RETURN_IF_ERROR(ctx->GetOutputShape(out.name).status().WithPrefix(std::string("at the ") + which + " shapes"));
    if (std::string(which) == "max") rep.activation_bytes = ctx->ActivationBytes();
  }
  rep.weight_bytes = engine->weight_bytes();
  rep.peak_bytes = rep.weight_bytes + rep.activation_bytes;
  rep.build_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return std::shared_ptr<Engine>(std::move(engine));
}

}  // namespace kiln::cuda
