#include "plan/plan_graph.h"

#include "plan/ir_codec.h"

namespace kiln {

void WritePlanGraph(const Model& model, PlanFile* plan) {
  EncodedModel e = EncodeModel(model);
  plan->sections["graph"] = std::move(e.graph);
  plan->sections["weights"] = std::move(e.weights);
  plan->sections["folded"] = std::move(e.folded);
}

Expected<std::unique_ptr<Model>> ParsePlanGraph(const PlanFile& plan) {
  auto graph = plan.sections.find("graph");
  if (graph == plan.sections.end()) return InvalidArgument("corrupted plan: no 'graph' section");
  auto weights = plan.sections.find("weights");
  std::string_view blob = plan.storage                       ? plan.weights
                          : weights == plan.sections.end() ? std::string_view()
                                                           : std::string_view(weights->second);
  KILN_ASSIGN_OR_RETURN(std::unique_ptr<Model> model, DecodeModel(graph->second, blob, plan.storage));
  auto folded = plan.sections.find("folded");
  if (folded != plan.sections.end())
    KILN_RETURN_IF_ERROR(DecodeFolded(folded->second, blob, plan.storage, model.get()));
  return model;
}

}  // namespace kiln
