// `kiln check`'s content as data (see check.h).
#include "report/check.h"

#include "backend/gpu_caps.h"
#include "build/build_passes.h"
#include "onnx/import.h"
#include "passes/shape_inference.h"
#ifdef KILN_HAS_CUDA
#include "backend/cuda/cuda_op_table.h"
#endif

namespace kiln {
namespace {

// The nodes `kiln build` would reject, found without a GPU: the model goes
// through the builder's passes, then every node is checked against the CUDA
// op table's declared capabilities and (when kiln was built with CUDA) its
// kernel factory.
void CheckGpuNodes(const std::string& path, const CheckOptions& options, CheckReport::Gpu* gpu) {
  gpu->checked = true;
  auto loaded = LoadModel(path);
  if (!loaded.ok()) {
    gpu->error = loaded.status().message();
    return;
  }
  Model& model = *loaded.value();
  Status s = InferShapes(model);
  const BuildOptions& build = options.build;
  std::vector<std::string> notes;
  if (s.ok()) s = RunBuildPasses(model, build, &notes, &gpu->precision);
  if (!s.ok()) {
    gpu->error = "the builder's passes failed: " + s.message();
    gpu->precision.clear();
    return;
  }
  GpuProbe probe;
#ifdef KILN_HAS_CUDA
  probe = cuda::FactoryProbe(options.build.fp16);
#endif
  gpu->probed = static_cast<bool>(probe);
  for (const GpuGap& g : FindGpuGaps(model, probe)) gpu->gaps.push_back({g.node ? g.node->name : "", g.reason});
  for (const Node* n : FindSyncPoints(*model.graph)) gpu->sync_points.push_back(n->Label());
  gpu->num_nodes = model.graph->num_nodes();
  for (const Node* n : model.graph->nodes())
    ++gpu->op_counts[n->QualifiedOp()];
  if (!options.save_built.empty()) {
    size_t weight_bytes = 0;
    for (const Value* v : model.graph->values())
      if (v->data) weight_bytes += v->data->nbytes();
    SaveOptions save;
    save.external_data = weight_bytes > (size_t{1} << 31) - (size_t{64} << 20);  // protobuf's 2 GB, with room
    Status w = SaveModel(model, options.save_built, save);
    if (!w.ok()) gpu->error = "--save-built " + options.save_built + ": " + w.message();
  }
}

}  // namespace

size_t CheckReport::Count(Issue::Severity s) const {
  size_t n = 0;
  for (const Issue& i : issues) n += i.severity == s;
  return n;
}

bool CheckReport::Valid() const {
  return Count(Issue::Severity::kError) == 0 && Count(Issue::Severity::kUnsupported) == 0 &&
         (!gpu.checked || (gpu.error.empty() && gpu.gaps.empty()));
}

Expected<CheckReport> CheckModelFile(const std::string& path, const CheckOptions& options) {
  if (options.backend != "cpu" && options.backend != "cuda")
    return InvalidArgument("check: backend must be 'cpu' or 'cuda', got '" + options.backend + "'");
  LoadOptions load;
  load.strict = false;  // load what can be loaded so every problem gets listed
  auto loaded = LoadModel(path, load);
  if (!loaded.ok()) return loaded.status();
  Model& model = *loaded.value();
  CheckReport r;
  r.issues = CheckModel(model);
  // Shape inference only on a structurally sound graph.
  if (options.shapes && r.Count(Issue::Severity::kError) == 0) {
    std::vector<Issue> more = CheckShapes(model);
    r.issues.insert(r.issues.end(), more.begin(), more.end());
  }
  r.ir_version = model.ir_version;
  r.opset = model.OpsetOf("");
  r.num_nodes = model.graph ? model.graph->num_nodes() : 0;
  if (options.backend == "cuda" && r.Count(Issue::Severity::kError) == 0) CheckGpuNodes(path, options, &r.gpu);
  return r;
}

}  // namespace kiln
