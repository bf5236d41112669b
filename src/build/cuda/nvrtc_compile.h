// Build-time compilation of generated kernels with NVRTC (no GPU needed: NVRTC
// is a compiler library). The builder compiles each kiln.Pointwise node's
// source into a cubin for the target GPU and stores it in the node (attribute
// "cubin"), so the plan carries it and the runtime never compiles.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "ir/graph.h"
#include "kiln/status.h"

namespace kiln::cuda {

// `source` compiled for sm_<arch> (e.g. 90): the cubin's bytes. The error
// carries NVRTC's log.
Expected<std::string> CompileCubin(const std::string& source, const std::string& label, int arch);

// Generated kernels by a hash of their source and target: groups that repeat
// (the layers of a transformer) compile once per build.
class KernelCache {
 public:
  Expected<std::string> Cubin(const std::string& source, const std::string& label, int arch);
  size_t compiled() const { return compiled_; }
  size_t hits() const { return hits_; }

 private:
  std::map<std::string, std::string> cubins_;
  size_t compiled_ = 0, hits_ = 0;
};

// Generates and compiles every kiln.Pointwise node of the model's main graph
// for sm_<arch>: sets its attributes "kernel" (entry-point prefix), "cubin" and
// "input_modes", "row_kernel" (1: one block per row), "input_views" (per
// input: the view its loads read through, ops/pointwise_abi.h EncodePwViews).
// The cache counts what was compiled and what was reused.
// A group whose kernel cannot be generated or compiled (a kiln bug) runs
// unfused (UnfusePointwise) with a note in *notes, instead of failing the build.
Status CompilePointwiseKernels(Model& model, int arch, KernelCache& cache, std::vector<std::string>* notes = nullptr);

}  // namespace kiln::cuda
