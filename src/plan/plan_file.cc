#include "plan/plan_file.h"

#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

#include "plan/byte_io.h"

namespace kiln {
namespace {

constexpr size_t kHeaderSize = kPlanHeaderSize;

// Zero bytes from payload offset `pos` to the next aligned file offset.
size_t PadAt(size_t pos) {
  return (kPlanSectionAlignment - (kHeaderSize + pos) % kPlanSectionAlignment) % kPlanSectionAlignment;
}

using byte_io::Get;
using byte_io::GetFixed;
using byte_io::Put;
using byte_io::PutFixed;

}  // namespace

uint64_t PlanChecksum(const void* data, size_t size) {
  constexpr uint64_t kP1 = 0x9E3779B185EBCA87ull, kP2 = 0xC2B2AE3D27D4EB4Full;
  auto rotl = [](uint64_t x, int r) { return (x << r) | (x >> (64 - r)); };
  auto round = [&](uint64_t acc, uint64_t w) { return rotl(acc + w * kP2, 31) * kP1; };
  const uint8_t* p = static_cast<const uint8_t*>(data);
  uint64_t lane[4] = {kP1 + kP2, kP2, 0, 0 - kP1};
  size_t i = 0;
  for (; i + 32 <= size; i += 32) {
    for (int k = 0; k < 4; ++k) {
      uint64_t w;
      std::memcpy(&w, p + i + 8 * k, 8);
      lane[k] = round(lane[k], w);
    }
  }
  uint64_t h = rotl(lane[0], 1) + rotl(lane[1], 7) + rotl(lane[2], 12) + rotl(lane[3], 18) + size;
  for (; i < size; ++i) h = rotl(h ^ (p[i] * kP1), 11) * kP2;
  h ^= h >> 33;
  h *= kP2;
  h ^= h >> 29;
  return h;
}

std::string SerializePlan(const PlanFile& plan) {
  // Sections in name order; a mapped 'weights' section (PlanFile::weights) too.
  std::map<std::string, std::string_view> all(plan.sections.begin(), plan.sections.end());
  if (plan.storage && !all.count("weights")) all.emplace("weights", plan.weights);
  std::string payload;
  for (const auto& [name, bytes] : all) {
    Put<uint32_t>(payload, static_cast<uint32_t>(name.size()));
    payload += name;
    Put<uint64_t>(payload, bytes.size());
    payload.append(PadAt(payload.size()), '\0');
    payload += bytes;
  }
  std::string out(kPlanMagic, sizeof(kPlanMagic));
  Put<uint32_t>(out, plan.header.format_version);
  Put<uint32_t>(out, static_cast<uint32_t>(all.size()));
  Put<uint64_t>(out, payload.size());
  Put<uint64_t>(out, PlanChecksum(payload.data(), payload.size()));
  PutFixed(out, plan.header.kiln_version, 32);
  PutFixed(out, plan.header.gpu_name, 64);
  Put<uint32_t>(out, plan.header.compute_capability);
  Put<uint32_t>(out, 0);
  return out + payload;
}

Expected<PlanFile> ParsePlan(const void* data, size_t size, std::shared_ptr<const void> storage) {
  const uint8_t* p = static_cast<const uint8_t*>(data);
  if (size < sizeof(kPlanMagic) || std::memcmp(p, kPlanMagic, sizeof(kPlanMagic)) != 0)
    return InvalidArgument("not a kiln plan (bad magic)");
  if (size < kHeaderSize)
    return InvalidArgument("truncated plan: " + std::to_string(size) + " bytes, the header alone is " +
                           std::to_string(kHeaderSize));
  PlanFile plan;
  plan.header.format_version = Get<uint32_t>(p + 8);
  if (plan.header.format_version != kPlanFormatVersion)
    return InvalidArgument("plan format version " + std::to_string(plan.header.format_version) +
                           " is not supported (this kiln reads version " +
                           std::to_string(kPlanFormatVersion) + "); rebuild the plan");
  uint32_t count = Get<uint32_t>(p + 12);
  uint64_t payload_size = Get<uint64_t>(p + 16);
  uint64_t checksum = Get<uint64_t>(p + 24);
  plan.header.kiln_version = GetFixed(p + 32, 32);
  plan.header.gpu_name = GetFixed(p + 64, 64);
  plan.header.compute_capability = Get<uint32_t>(p + 128);
  if (payload_size != size - kHeaderSize)
    return InvalidArgument("truncated or padded plan: header says " + std::to_string(payload_size) +
                           " payload bytes, file has " + std::to_string(size - kHeaderSize));
  const uint8_t* q = p + kHeaderSize;
  if (PlanChecksum(q, payload_size) != checksum) return InvalidArgument("corrupted plan: checksum mismatch");
  size_t pos = 0;
  for (uint32_t i = 0; i < count; ++i) {
    if (payload_size - pos < 4) return InvalidArgument("corrupted plan: section table runs past the end");
    uint32_t name_len = Get<uint32_t>(q + pos);
    pos += 4;
    if (payload_size - pos < static_cast<uint64_t>(name_len) + 8)
      return InvalidArgument("corrupted plan: section name runs past the end");
    std::string name(reinterpret_cast<const char*>(q + pos), name_len);
    pos += name_len;
    uint64_t len = Get<uint64_t>(q + pos);
    pos += 8;
    if (payload_size - pos < PadAt(pos))
      return InvalidArgument("corrupted plan: section '" + name + "' runs past the end");
    pos += PadAt(pos);
    if (payload_size - pos < len)
      return InvalidArgument("corrupted plan: section '" + name + "' runs past the end");
    if (plan.sections.count(name) || (name == "weights" && plan.storage))
      return InvalidArgument("corrupted plan: section '" + name + "' appears twice");
    if (name == "weights" && storage) {  // in place, 64-byte aligned in the file
      plan.weights = std::string_view(reinterpret_cast<const char*>(q + pos), len);
      plan.storage = storage;
    } else {
      plan.sections.emplace(name, std::string(reinterpret_cast<const char*>(q + pos), len));
    }
    pos += len;
  }
  if (pos != payload_size) return InvalidArgument("corrupted plan: trailing bytes after the last section");
  return plan;
}

Status WritePlanFile(const PlanFile& plan, const std::string& path) {
  std::string bytes = SerializePlan(plan);
  std::string tmp = path + ".tmp";
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    if (!f) return IoError("cannot write '" + tmp + "'");
    f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    if (!f) return IoError("write to '" + tmp + "' failed");
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0)
    return IoError("cannot rename '" + tmp + "' to '" + path + "'");
  return Status::Ok();
}

Expected<PlanFile> ReadPlanFile(const std::string& path) {
  // Memory-mapped: the weights are read where they lie (no copy); the mapping
  // lives as long as anything borrows from it.
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return IoError("cannot open plan '" + path + "': " + std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const int err = errno;
    ::close(fd);
    return IoError("cannot stat plan '" + path + "': " + std::strerror(err));
  }
  const size_t size = static_cast<size_t>(st.st_size);
  void* map = size ? ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0) : nullptr;
  const int err = errno;
  ::close(fd);
  if (size && map == MAP_FAILED) return IoError("cannot map plan '" + path + "': " + std::strerror(err));
  std::shared_ptr<const void> storage(map, [size](const void* m) {
    if (m) ::munmap(const_cast<void*>(m), size);
  });
  auto plan = ParsePlan(map ? map : "", size, storage);
  if (!plan.ok()) return plan.status().WithPrefix(path);
  return plan;
}

Status CheckPlanCompatible(const PlanHeader& header, const std::string& kiln_version,
                           const std::string& gpu_name, uint32_t compute_capability) {
  if (header.kiln_version != kiln_version)
    return InvalidArgument("plan was built by kiln " +
                           (header.kiln_version.empty() ? "(unknown)" : header.kiln_version) +
                           ", this is kiln " + kiln_version + "; rebuild the plan with this kiln");
  if (header.compute_capability != compute_capability)
    return InvalidArgument("plan was built for " + header.gpu_name + " (sm_" +
                           std::to_string(header.compute_capability) + "), this GPU is " + gpu_name +
                           " (sm_" + std::to_string(compute_capability) + "); rebuild the plan on this GPU");
  return Status::Ok();
}

}  // namespace kiln
