#include "plan/plan_graph.h"

#include "onnx/import.h"
#include "passes/shape_inference.h"

namespace kiln {

Expected<std::string> SerializePlanGraph(const Model& model) { return SerializeModel(model); }

Expected<std::unique_ptr<Model>> ParsePlanGraph(const PlanFile& plan) {
  auto graph = plan.sections.find("graph");
  if (graph == plan.sections.end()) return InvalidArgument("corrupted plan: no 'graph' section");
  KILN_ASSIGN_OR_RETURN(std::unique_ptr<Model> model, ParseModel(graph->second.data(), graph->second.size(), "."));
  KILN_RETURN_IF_ERROR(InferShapes(*model).WithPrefix("plan graph"));
  return model;
}

}  // namespace kiln
