// The persistent timing cache (`kiln build --timingCacheFile F`, trtexec's
// name; BuildOptions::timing_cache_file): the tactic entries a build timed
// (backend/cuda/gpu_op.h TacticCache: cuDNN convolution algorithms per
// geometry), kept between builds so that a later build of the same or another
// model times nothing already in the file. The builder loads F before timing
// and writes the merged entries back after a successful build.
//
//   offset 0   "KILNTIME" magic (8 bytes)
//          8   u32 format version (kTimingCacheFormatVersion)
//         12   u32 compute capability (major*10 + minor)
//         16   char[64] GPU name, NUL padded
//         80   char[32] kiln version that wrote it, NUL padded (informational)
//        112   u64 body bytes
//        120   u64 PlanChecksum of the body (plan/plan_file.h)
//        128   body: JSON object {tactic key: choice}, keys sorted
//
// Little-endian. Timings belong to one GPU: a file written on another GPU
// name or compute capability is refused with a message saying both (use
// another file, or delete it to time again), as is a damaged file (wrong
// magic, other format version, size or checksum mismatch, unreadable body).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>

#include "kiln/status.h"

namespace kiln {

inline constexpr uint32_t kTimingCacheFormatVersion = 1;
inline constexpr size_t kTimingCacheHeaderSize = 128;
inline constexpr char kTimingCacheMagic[8] = {'K', 'I', 'L', 'N', 'T', 'I', 'M', 'E'};

struct TimingCache {
  std::string gpu_name;
  uint32_t compute_capability = 0;
  std::string kiln_version;
  std::map<std::string, std::string> entries;  // tactic key → choice (TacticCache's text form)
};

std::string SerializeTimingCache(const TimingCache& cache);
// Validates magic, version, sizes, checksum and the body; errors say which.
Expected<TimingCache> ParseTimingCache(std::string_view bytes);
// A cache from another GPU (name or compute capability) cannot be reused.
Status CheckTimingCacheCompatible(const TimingCache& cache, const std::string& gpu_name,
                                  uint32_t compute_capability);

// The entries of the file at `path` for this GPU; a file that does not exist
// yet is an empty cache (the first build creates it). Errors name the path.
Expected<std::map<std::string, std::string>> LoadTimingCacheFile(const std::string& path,
                                                                 const std::string& gpu_name,
                                                                 uint32_t compute_capability);
// Writes the entries for this GPU to `path` (through a temporary file and a
// rename, so a failed write never leaves a truncated cache).
Status SaveTimingCacheFile(const std::string& path, const std::map<std::string, std::string>& entries,
                           const std::string& gpu_name, uint32_t compute_capability);

}  // namespace kiln
