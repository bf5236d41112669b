// Model inputs for the subcommands that run a model (run, compare): values
// from --input NAME=FILE.npy, random values for the rest (--random, --seed),
// shapes from --shapes; and writing tensors as .npy.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "ir/graph.h"
#include "ops/op_context.h"

namespace CLI {
class App;
}

namespace kiln::cli {

struct FeedOptions {
  std::vector<std::string> inputs;  // NAME=FILE.npy
  bool random = false;              // random values for inputs not in `inputs`
  uint64_t seed = 0;
  std::vector<std::string> shapes;  // --shapes NAME:1x3x224x224,...
  // --val-range [NAME:]LO,HI (Polygraphy's flag): --random values of NAME (of
  // every input without its own range when NAME is omitted) uniform in
  // [LO, HI), integers in [LO, HI]: an attention mask of ones is `mask:1,1`.
  std::vector<std::string> val_ranges;
};

// Adds --input, --random, --seed, --val-range and --shapes to `app`, bound to `o`.
void AddFeedFlags(CLI::App* app, FeedOptions* o);

// The graph's inputs, fed as `o` says. Errors name the input and the flag.
Expected<std::map<std::string, RtValue>> MakeFeeds(const Graph& g, const FeedOptions& o);

// `t` as .npy can hold it: bfloat16/float8 → float32, int4/int2 → int8,
// uint4/uint2 → uint8 (then `note` says so; else it is left empty).
Tensor NpyWritable(const Tensor& t, std::string* note);

// Writes `t` (as NpyWritable makes it) to DIR/NAME.npy, the name sanitized for a file.
Status WriteOutputNpy(const std::string& dir, const std::string& name, const Tensor& t, std::string* note);

}  // namespace kiln::cli
