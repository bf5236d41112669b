// The plan file container: a fixed header, then named sections.
//
//   offset 0   "KILNPLAN" magic (8 bytes)
//          8   u32 format version (kPlanFormatVersion)
//         12   u32 section count
//         16   u64 payload bytes (everything after the header)
//         24   u64 checksum of the payload (PlanChecksum)
//         32   char[32] kiln version, NUL padded
//         64   char[64] GPU name, NUL padded
//        128   u32 compute capability (major*10 + minor)
//        132   u32 reserved
//        136   payload: per section: u32 name length, name bytes, u64 size,
//              zero padding to the next 64-byte aligned file offset, bytes
//
// Section bodies start 64-byte aligned in the file, so the 'weights' blob
// (plan/ir_codec.h) can be memory-mapped. docs/PLAN.md has the sections.
// Everything little-endian. Readers reject a wrong magic, another format
// version, a payload shorter than declared, a checksum mismatch, a section
// running past the end or named twice, with a message that says which.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "kiln/status.h"

namespace kiln {

inline constexpr uint32_t kPlanFormatVersion = 4;  // 4: shape program, folded values; 3: word-wise checksum
// PlanHeader::gpu_name of a CPU plan.
inline constexpr const char* kCpuPlanDevice = "cpu";
inline constexpr size_t kPlanSectionAlignment = 64;
inline constexpr size_t kPlanHeaderSize = 136;
inline constexpr char kPlanMagic[8] = {'K', 'I', 'L', 'N', 'P', 'L', 'A', 'N'};

struct PlanHeader {
  uint32_t format_version = kPlanFormatVersion;
  std::string kiln_version;
  std::string gpu_name;
  uint32_t compute_capability = 0;  // 90 for sm_90
};

struct PlanFile {
  PlanHeader header;
  std::map<std::string, std::string> sections;  // name → bytes
  // A plan read from a file keeps its 'weights' section where it lies (the
  // file is memory-mapped; `storage` keeps the mapping alive) instead of in
  // `sections`: the constants borrow their bytes from it (no copy).
  std::string_view weights;
  std::shared_ptr<const void> storage;
};

// The payload checksum: four 64-bit multiply-rotate lanes over 32-byte
// blocks (memory speed, so a large plan's load is not spent hashing), the tail
// byte-wise, the length mixed in. Not cryptographic: it catches truncation and
// damaged bytes.
uint64_t PlanChecksum(const void* data, size_t size);

std::string SerializePlan(const PlanFile& plan);
// Parses and validates a plan (magic, version, length, checksum, sections).
// With `storage` (what `data` lies in, kept alive by the plan), the 'weights'
// section is referenced in place (PlanFile::weights) instead of copied.
Expected<PlanFile> ParsePlan(const void* data, size_t size, std::shared_ptr<const void> storage = nullptr);
Status WritePlanFile(const PlanFile& plan, const std::string& path);
// A plan runs only on the kiln version that built it (its kernels, tactics and
// sections are that version's) and on the compute capability it was built
// for; otherwise an error that says which and what to do (rebuild).
Status CheckPlanCompatible(const PlanHeader& header, const std::string& kiln_version, const std::string& gpu_name,
                           uint32_t compute_capability);
Expected<PlanFile> ReadPlanFile(const std::string& path);

}  // namespace kiln
