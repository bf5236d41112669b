// Flags shared by the GPU subcommands (build, bench, run --backend cuda):
// trtexec-style profile shapes and --memPoolSize.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "kiln/engine.h"

namespace kiln::cli {

// --minShapes/--optShapes/--maxShapes "in:1x3x224x224,mask:1x128" → profiles.
// A name given only in --optShapes gets min = max = opt.
Expected<std::map<std::string, ShapeRange>> ParseProfiles(const std::vector<std::string>& min,
                                                          const std::vector<std::string>& opt,
                                                          const std::vector<std::string>& max);
// "workspace:1024M" (K, M, G suffixes; plain number = MiB as in trtexec) → bytes.
Expected<size_t> ParseMemPoolSize(const std::string& spec);

}  // namespace kiln::cli
