// Build profiles: the given ones validated against the model's inputs.
#include "build/profiles.h"

namespace kiln {

Status ResolveProfiles(const Graph& g, bool fix_dynamic, std::map<std::string, ShapeRange>* profiles,
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
  if (!fix_dynamic) return Status::Ok();
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

}  // namespace kiln
