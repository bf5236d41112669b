#include "build/timing_cache.h"

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "plan/byte_io.h"
#include "plan/plan_file.h"

namespace kiln {
namespace {

using byte_io::Get;
using byte_io::GetFixed;
using byte_io::Put;
using byte_io::PutFixed;

std::string Gpu(const std::string& name, uint32_t cc) {
  return "'" + name + "' (sm_" + std::to_string(cc) + ")";
}

}  // namespace

std::string SerializeTimingCache(const TimingCache& cache) {
  const std::string body = nlohmann::json(cache.entries).dump();
  std::string out(kTimingCacheMagic, sizeof(kTimingCacheMagic));
  Put<uint32_t>(out, kTimingCacheFormatVersion);
  Put<uint32_t>(out, cache.compute_capability);
  PutFixed(out, cache.gpu_name, 64);
  PutFixed(out, cache.kiln_version, 32);
  Put<uint64_t>(out, body.size());
  Put<uint64_t>(out, PlanChecksum(body.data(), body.size()));
  return out + body;
}

Expected<TimingCache> ParseTimingCache(std::string_view bytes) {
  if (bytes.size() < kTimingCacheHeaderSize ||
      std::memcmp(bytes.data(), kTimingCacheMagic, sizeof(kTimingCacheMagic)) != 0)
    return InvalidArgument("not a kiln timing cache (no KILNTIME header)");
  const char* p = bytes.data();
  const uint32_t version = Get<uint32_t>(p + 8);
  if (version != kTimingCacheFormatVersion)
    return InvalidArgument("timing cache format version " + std::to_string(version) +
                           ", this kiln reads version " + std::to_string(kTimingCacheFormatVersion) +
                           "; delete the file to time again");
  TimingCache c;
  c.compute_capability = Get<uint32_t>(p + 12);
  c.gpu_name = GetFixed(p + 16, 64);
  c.kiln_version = GetFixed(p + 80, 32);
  const uint64_t size = Get<uint64_t>(p + 112);
  const uint64_t sum = Get<uint64_t>(p + 120);
  const std::string_view body = bytes.substr(kTimingCacheHeaderSize);
  if (size != body.size())
    return InvalidArgument("corrupted timing cache: the header says " + std::to_string(size) +
                           " body bytes, the file has " + std::to_string(body.size()));
  if (PlanChecksum(body.data(), body.size()) != sum)
    return InvalidArgument("corrupted timing cache: checksum mismatch");
  nlohmann::json j = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object())
    return InvalidArgument("corrupted timing cache: the body is not a JSON object");
  for (auto it = j.begin(); it != j.end(); ++it) {
    if (!it.value().is_string())
      return InvalidArgument("corrupted timing cache: the entry '" + it.key() + "' is not a string");
    c.entries[it.key()] = it.value().get<std::string>();
  }
  return c;
}

Status CheckTimingCacheCompatible(const TimingCache& cache, const std::string& gpu_name,
                                  uint32_t compute_capability) {
  if (cache.gpu_name != gpu_name || cache.compute_capability != compute_capability)
    return InvalidArgument("the timing cache was written on " +
                           Gpu(cache.gpu_name, cache.compute_capability) + ", this GPU is " +
                           Gpu(gpu_name, compute_capability) +
                           "; its timings do not apply here: use another file, or delete it to time again");
  return Status::Ok();
}

Expected<std::map<std::string, std::string>> LoadTimingCacheFile(const std::string& path,
                                                                 const std::string& gpu_name,
                                                                 uint32_t compute_capability) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) return std::map<std::string, std::string>{};
  std::ifstream f(path, std::ios::binary);
  if (!f) return IoError("cannot open the timing cache '" + path + "'");
  std::stringstream ss;
  ss << f.rdbuf();
  const std::string bytes = ss.str();
  Expected<TimingCache> cache = ParseTimingCache(bytes);
  if (!cache.ok()) return cache.status().WithPrefix("timing cache '" + path + "'");
  KILN_RETURN_IF_ERROR(CheckTimingCacheCompatible(*cache, gpu_name, compute_capability)
                           .WithPrefix("timing cache '" + path + "'"));
  return std::move(cache->entries);
}

Status SaveTimingCacheFile(const std::string& path, const std::map<std::string, std::string>& entries,
                           const std::string& gpu_name, uint32_t compute_capability) {
  TimingCache c;
  c.gpu_name = gpu_name;
  c.compute_capability = compute_capability;
  c.kiln_version = KILN_VERSION;
  c.entries = entries;
  const std::string bytes = SerializeTimingCache(c);
  const std::string tmp = path + ".tmp";
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    if (!f) return IoError("cannot write the timing cache '" + tmp + "'");
    f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    if (!f) return IoError("cannot write the timing cache '" + tmp + "'");
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) return IoError("cannot write the timing cache '" + path + "': " + ec.message());
  return Status::Ok();
}

}  // namespace kiln
