// onnxruntime as `kiln compare`'s reference. onnxruntime lives in Python, so
// this runs tools/compare_intermediates.py --reference-dir with the project's
// Python: the model file, the values wanted (graph outputs or intermediates)
// and the inputs go there as files, the values come back as .npy.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "ops/op_context.h"

namespace kiln::cli {

struct ReferenceValues {
  std::map<std::string, Tensor> values;
  std::map<std::string, std::string> skipped;  // value → why the reference cannot expose it
};

// `python`: the interpreter (with onnx, onnxruntime, numpy). Errors say when it
// cannot be run or lacks onnxruntime, and how to fix that.
Expected<ReferenceValues> RunOnnxruntime(const std::string& python, const std::string& model_path,
                                         const std::vector<std::string>& names,
                                         const std::map<std::string, RtValue>& feeds);

// The helper script: $KILN_COMPARE_SCRIPT, else tools/compare_intermediates.py of this source tree.
std::string CompareScript();

}  // namespace kiln::cli
