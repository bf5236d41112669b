// `kiln refit PLAN NEW.onnx --saveEngine OUT.plan`: the plan with the weights
// of a same-architecture model, without a rebuild (include/kiln/refit.h).
// Works without a GPU: it rewrites the plan file.
#include "kiln/refit.h"

#include <CLI/CLI.hpp>
#include <cstdio>
#include <memory>

#include "cli_util.h"
#include "commands.h"

namespace kiln::cli {
namespace {

struct RefitFlags {
  std::string plan, model, save;
};

int RunRefit(const RefitFlags& f) {
  Status s = RefitPlan(f.plan, f.model, f.save);
  if (!s.ok()) return Fail("refit", s.message());
  std::printf("refitted %s with the weights of %s: saved %s\n", f.plan.c_str(), f.model.c_str(),
              f.save.c_str());
  return 0;
}

}  // namespace

Command AddRefitCommand(CLI::App& app) {
  auto f = std::make_shared<RefitFlags>();
  Command c;
  c.app =
      app.add_subcommand("refit", "Swap the weights of a plan for those of a same-architecture ONNX model");
  c.app->add_option("plan", f->plan, "Plan built by kiln build")->required();
  c.app->add_option("model", f->model, "ONNX model with the new weights")->required();
  c.app->add_option("--saveEngine", f->save, "Write the refitted plan to this file")->required();
  c.run = [f] { return RunRefit(*f); };
  return c;
}

}  // namespace kiln::cli
