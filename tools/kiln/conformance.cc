// `kiln conformance DIR [--filter SUBSTR] [--json FILE] [--markdown FILE]
//  [--jobs N] [--timeout S] [--min-pass-rate X] [--baseline FILE]
//  [--write-baseline FILE] [--backend cpu|cuda]`: runs the ONNX backend node
// tests in DIR (test_*/model.onnx + test_data_set_*/{input,output}_N.pb)
// on the CPU reference, or built and run by the CUDA engine (--backend cuda;
// a node the GPU cannot run makes the case "unsupported"). Each case runs in a forked child with a timeout,
// so a crash or hang in one op is recorded ("failed: crashed (signal 11)",
// "failed: timeout") instead of stopping the run. Prints per-op results and
// ends with "conformance: P passed, F failed, U unsupported of T".
#include <fcntl.h>
#include <fmt/format.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "cli_util.h"
#include "commands.h"
#include "conformance_baseline.h"
#include "conformance_case.h"
#include "ops/op_table.h"
#include "run_cuda.h"

namespace kiln::cli {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

struct ConformanceOptions {
  std::string dir;
  std::string filter;
  std::string json_file;
  std::string markdown_file;
  std::string baseline_file;
  std::string write_baseline_file;
  int jobs = 0;  // 0: number of CPUs
  double timeout_s = 20;
  double min_pass_rate = -1;
  int64_t memory_limit_mb = 8192;
  bool verbose = false;
  bool check_inferred = false;
  std::string backend = "cpu";
};

struct CaseRecord {
  std::string name;
  std::string dir;
  std::string group;
  CaseResult result = CaseResult::kFailed;
  std::string reason;
  double seconds = 0;
};

// ---- the child side ----

void WriteAll(int fd, const std::string& s) {
  size_t off = 0;
  while (off < s.size()) {
    ssize_t n = ::write(fd, s.data() + off, s.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    off += static_cast<size_t>(n);
  }
}

std::string Clean(std::string s) {
  for (char& c : s)
    if (c == '\n' || c == '\r') c = ' ';
  return s;
}

[[noreturn]] void ChildMain(const CaseRecord& rec, const ConformanceOptions& o, int fd) {
  // The report goes through the pipe; stray prints from ops must not garble the parent's output.
  int devnull = ::open("/dev/null", O_WRONLY);
  if (devnull >= 0) {
    ::dup2(devnull, STDOUT_FILENO);
    ::close(devnull);
  }
#if !defined(__SANITIZE_ADDRESS__)
  if (o.memory_limit_mb > 0 && o.backend == "cpu") {  // CUDA maps more address space than any limit
    rlimit lim;
    lim.rlim_cur = lim.rlim_max = static_cast<rlim_t>(o.memory_limit_mb) << 20;
    ::setrlimit(RLIMIT_AS, &lim);
  }
#endif
  CaseOptions copts;
  copts.check_inferred = o.check_inferred;
  if (o.backend == "cuda")
    copts.run = [](const Model& m, const std::map<std::string, RtValue>& feeds) {
      return RunOnCuda(nullptr, &m, false, feeds);
    };
  CaseOutcome out;
  try {
    out =
        RunCase(rec.dir, copts, [fd](const std::string& group) { WriteAll(fd, "G " + Clean(group) + "\n"); });
  } catch (const std::exception& e) {
    out = {CaseResult::kFailed, std::string("exception: ") + e.what()};
  } catch (...) {
    out = {CaseResult::kFailed, "exception: unknown"};
  }
  WriteAll(fd, "R " + std::to_string(static_cast<int>(out.result)) + " " + Clean(out.reason) + "\n");
  ::close(fd);
  ::_exit(0);
}

// ---- the parent side ----

struct Running {
  pid_t pid = -1;
  int fd = -1;
  size_t index = 0;
  std::string buffer;
  Clock::time_point start, deadline;
  bool eof = false;
};

std::string SignalName(int sig) {
  const char* s = ::strsignal(sig);
  return s ? s : "unknown";
}

void Finish(Running& r, int wait_status, bool timed_out, std::vector<CaseRecord>& records) {
  CaseRecord& rec = records[r.index];
  rec.seconds = std::chrono::duration<double>(Clock::now() - r.start).count();
  bool reported = false;
  size_t pos = 0;
  while (pos < r.buffer.size()) {
    size_t nl = r.buffer.find('\n', pos);
    if (nl == std::string::npos) break;
    std::string line = r.buffer.substr(pos, nl - pos);
    pos = nl + 1;
    if (line.rfind("G ", 0) == 0) rec.group = line.substr(2);
    if (line.rfind("R ", 0) == 0 && line.size() >= 3) {
      int code = line[2] - '0';
      rec.result = code == 0   ? CaseResult::kPassed
                   : code == 2 ? CaseResult::kUnsupported
                               : CaseResult::kFailed;
      rec.reason = line.size() > 4 ? line.substr(4) : "";
      reported = true;
    }
  }
  if (timed_out) {
    rec.result = CaseResult::kFailed;
    rec.reason = fmt::format("timeout (killed after {:.0f} s)", rec.seconds);
  } else if (!reported) {
    rec.result = CaseResult::kFailed;
    if (WIFSIGNALED(wait_status))
      rec.reason =
          fmt::format("crashed (signal {}: {})", WTERMSIG(wait_status), SignalName(WTERMSIG(wait_status)));
    else if (WIFEXITED(wait_status))
      rec.reason = fmt::format("crashed (exit code {} without a report)", WEXITSTATUS(wait_status));
    else
      rec.reason = "crashed";
  }
  if (r.fd >= 0) ::close(r.fd);
  r.fd = -1;
}

Status Start(size_t index, const std::vector<CaseRecord>& records, const ConformanceOptions& o, Running* r) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return IoError(std::string("pipe: ") + std::strerror(errno));
  std::fflush(stdout);
  std::fflush(stderr);
  pid_t pid = ::fork();
  if (pid < 0) {
    ::close(fds[0]);
    ::close(fds[1]);
    return IoError(std::string("fork: ") + std::strerror(errno));
  }
  if (pid == 0) {
    ::close(fds[0]);
    ChildMain(records[index], o, fds[1]);
  }
  ::close(fds[1]);
  r->pid = pid;
  r->fd = fds[0];
  r->index = index;
  r->start = Clock::now();
  r->deadline = r->start + std::chrono::milliseconds(static_cast<int64_t>(o.timeout_s * 1000));
  return Status::Ok();
}

Status RunAll(std::vector<CaseRecord>& records, const ConformanceOptions& o) {
  size_t jobs = static_cast<size_t>(o.jobs > 0 ? o.jobs : std::max(1u, std::thread::hardware_concurrency()));
  std::vector<Running> running;
  size_t next = 0;
  while (next < records.size() || !running.empty()) {
    while (running.size() < jobs && next < records.size()) {
      Running r;
      KILN_RETURN_IF_ERROR(Start(next++, records, o, &r));
      running.push_back(std::move(r));
    }
    std::vector<pollfd> pfds;
    auto now = Clock::now();
    auto soonest = running.front().deadline;
    for (const Running& r : running) {
      pfds.push_back({r.fd, POLLIN, 0});
      soonest = std::min(soonest, r.deadline);
    }
    int wait_ms = static_cast<int>(std::max<int64_t>(
        0, std::chrono::duration_cast<std::chrono::milliseconds>(soonest - now).count() + 1));
    int pr = ::poll(pfds.data(), pfds.size(), wait_ms);
    if (pr < 0 && errno != EINTR) return IoError(std::string("poll: ") + std::strerror(errno));
    for (size_t i = 0; pr > 0 && i < running.size(); ++i) {
      if (!(pfds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      char buf[4096];
      ssize_t n = ::read(running[i].fd, buf, sizeof buf);
      if (n > 0)
        running[i].buffer.append(buf, static_cast<size_t>(n));
      else if (n == 0 || (errno != EINTR && errno != EAGAIN))
        running[i].eof = true;
    }
    now = Clock::now();
    std::vector<Running> still;
    for (Running& r : running) {
      int st = 0;
      if (r.eof) {
        while (::waitpid(r.pid, &st, 0) < 0 && errno == EINTR) {
        }
        Finish(r, st, false, records);
      } else if (now >= r.deadline) {
        ::kill(r.pid, SIGKILL);
        while (::waitpid(r.pid, &st, 0) < 0 && errno == EINTR) {
        }
        Finish(r, st, true, records);
      } else {
        still.push_back(std::move(r));
      }
    }
    running = std::move(still);
  }
  return Status::Ok();
}

// ---- reporting ----

struct GroupStats {
  int passed = 0, failed = 0, unsupported = 0;
  int total() const { return passed + failed + unsupported; }
};

std::map<std::string, GroupStats> ByGroup(const std::vector<CaseRecord>& records) {
  std::map<std::string, GroupStats> groups;
  for (const CaseRecord& r : records) {
    GroupStats& g = groups[r.group];
    if (r.result == CaseResult::kPassed) ++g.passed;
    if (r.result == CaseResult::kFailed) ++g.failed;
    if (r.result == CaseResult::kUnsupported) ++g.unsupported;
  }
  return groups;
}

// Expanded tests (test_x_expanded...) belong with their op: take the group of
// the test without "_expanded" when that one was run.
void FixExpandedGroups(std::vector<CaseRecord>& records) {
  std::map<std::string, std::string> group_of;
  for (const CaseRecord& r : records) group_of[r.name] = r.group;
  for (CaseRecord& r : records) {
    size_t p = r.name.find("_expanded");
    if (p == std::string::npos) continue;
    auto it =
        group_of.find(r.name.substr(0, p) + r.name.substr(p + 9));  // test_x_expanded_ver18 → test_x_ver18
    if (it == group_of.end() || it->second.empty()) it = group_of.find(r.name.substr(0, p));  // → test_x
    if (it != group_of.end() && !it->second.empty()) r.group = it->second;
  }
}

std::string MdEscape(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '|')
      out += "\\|";
    else if (c == '<')
      out += "&lt;";
    else if (c == '>')
      out += "&gt;";
    else
      out.push_back(c);
  }
  return out;
}

std::string Markdown(const std::vector<CaseRecord>& records, int p, int f, int u, const std::string& backend) {
  int t = p + f + u;
  const bool cuda = backend == "cuda";
  std::string md = cuda ? "# ONNX backend node tests: CUDA engine conformance\n\n"
                        : "# ONNX backend node tests: CPU reference conformance\n\n";
  md +=
      "Generated by `kiln conformance" + std::string(cuda ? " --backend cuda" : "") +
      "` over the ONNX backend node tests (written by "
      "`tools/write_node_tests.py`). A case passes when every output matches with rtol 1e-3, atol 1e-7 "
      "(NaN equals NaN; integers, bools and strings exact). *Unsupported*: an op not in kiln's op table or a "
      "type kiln cannot hold" +
      std::string(cuda ? "; on the GPU also a node the CUDA engine cannot build (the reason names it)" : "") +
      ".\n\n";
  md += fmt::format("**{} passed, {} failed, {} unsupported of {}** (pass rate {:.1f}%)\n\n", p, f, u, t,
                    t ? 100.0 * p / t : 0.0);
  md += "## Per op\n\n| op | passed | failed | unsupported | total |\n|---|---:|---:|---:|---:|\n";
  for (const auto& [group, s] : ByGroup(records))
    md += fmt::format("| {} | {} | {} | {} | {} |\n", MdEscape(group), s.passed, s.failed, s.unsupported,
                      s.total());
  for (CaseResult kind : {CaseResult::kFailed, CaseResult::kUnsupported}) {
    md += kind == CaseResult::kFailed ? "\n## Failing cases\n\n" : "\n## Unsupported cases\n\n";
    bool any = false;
    for (const CaseRecord& r : records) {
      if (r.result != kind) continue;
      if (!any) md += "| case | op | reason |\n|---|---|---|\n";
      any = true;
      md += fmt::format("| {} | {} | {} |\n", MdEscape(r.name), MdEscape(r.group), MdEscape(r.reason));
    }
    if (!any) md += "None.\n";
  }
  return md;
}

Status WriteText(const std::string& path, const std::string& text) {
  std::ofstream f(path, std::ios::trunc);
  if (!f) return IoError(path + ": cannot open file for writing");
  f << text;
  f.close();
  if (!f) return IoError(path + ": write error");
  return Status::Ok();
}

// Prints how the run differs from the baseline; 1 when a case got worse or is missing.
int CheckBaseline(const std::vector<BaselineCase>& run, const ConformanceOptions& o) {
  auto baseline = ReadBaseline(o.baseline_file);
  if (!baseline.ok()) return Fail("conformance", baseline.status().message());
  BaselineDiff d = CompareWithBaseline(run, *baseline, !o.filter.empty());
  for (const std::string& s : d.worse) std::cout << "WORSE than the baseline: " << s << "\n";
  for (const std::string& s : d.missing) std::cout << "MISSING from the run: " << s << "\n";
  for (const std::string& s : d.better) std::cout << "better than the baseline: " << s << "\n";
  std::cout << fmt::format("baseline {}: {} worse, {} missing, {} better\n", o.baseline_file, d.worse.size(),
                           d.missing.size(), d.better.size());
  if (!d.better.empty())
    std::cout << "update the baseline: kiln conformance " << o.dir << " --write-baseline " << o.baseline_file
              << "\n";
  if (!d.ok())
    return Fail("conformance", fmt::format("{} cases are worse than {} and {} are missing", d.worse.size(),
                                           o.baseline_file, d.missing.size()));
  return 0;
}

int RunConformance(const ConformanceOptions& o) {
  const std::string cmd = "conformance";
  if (o.jobs < 0) return Fail(cmd, "--jobs must be >= 0");
  if (!(o.timeout_s > 0)) return Fail(cmd, "--timeout must be > 0");
  std::error_code ec;
  if (!fs::is_directory(o.dir, ec)) return Fail(cmd, o.dir + ": not a directory");

  std::vector<CaseRecord> records;
  std::vector<std::string> op_names;
  for (const OpInfo& op : AllOps()) op_names.emplace_back(op.name);
  for (const auto& e : fs::directory_iterator(o.dir, ec)) {
    std::string name = e.path().filename().string();
    if (name.rfind("test_", 0) != 0 || !e.is_directory(ec)) continue;
    if (!o.filter.empty() && name.find(o.filter) == std::string::npos) continue;
    if (!fs::exists(e.path() / "model.onnx", ec)) continue;
    CaseRecord r;
    r.name = name;
    r.dir = e.path().string();
    r.group = GuessGroup(name, op_names);  // replaced by the child's answer
    records.push_back(std::move(r));
  }
  if (ec) return Fail(cmd, o.dir + ": " + ec.message());
  std::sort(records.begin(), records.end(),
            [](const CaseRecord& a, const CaseRecord& b) { return a.name < b.name; });

  Status st = RunAll(records, o);
  if (!st.ok()) return Fail(cmd, st.message());
  FixExpandedGroups(records);

  int p = 0, f = 0, u = 0;
  for (const CaseRecord& r : records) {
    if (r.result == CaseResult::kPassed) ++p;
    if (r.result == CaseResult::kFailed) ++f;
    if (r.result == CaseResult::kUnsupported) ++u;
  }
  int t = p + f + u;

  // Per-op table, then the failing (and with --verbose the unsupported) cases.
  auto groups = ByGroup(records);
  size_t width = 2;
  for (const auto& [g, s] : groups) width = std::max(width, g.size());
  std::string out =
      fmt::format("{:<{}}  {:>6}  {:>6}  {:>6}  {:>6}\n", "op", width, "passed", "failed", "unsup", "total");
  for (const auto& [g, s] : groups)
    out += fmt::format("{:<{}}  {:>6}  {:>6}  {:>6}  {:>6}\n", g, width, s.passed, s.failed, s.unsupported,
                       s.total());
  bool header = false;
  for (const CaseRecord& r : records) {
    bool show = r.result == CaseResult::kFailed || (o.verbose && r.result == CaseResult::kUnsupported);
    if (!show) continue;
    if (!header) out += "\n";
    header = true;
    out += fmt::format("{} {}: {}\n", r.result == CaseResult::kFailed ? "FAIL" : "UNSUPPORTED", r.name,
                       r.reason);
  }
  out += fmt::format("\nconformance: {} passed, {} failed, {} unsupported of {}\n", p, f, u, t);
  std::cout << out << std::flush;

  if (!o.json_file.empty()) {
    nlohmann::json j;
    j["passed"] = p;
    j["failed"] = f;
    j["unsupported"] = u;
    j["total"] = t;
    nlohmann::json cases = nlohmann::json::array();
    for (const CaseRecord& r : records)
      cases.push_back({{"name", r.name},
                       {"op", r.group},
                       {"result", CaseResultName(r.result)},
                       {"reason", r.reason},
                       {"seconds", r.seconds}});
    j["cases"] = cases;
    nlohmann::json ops = nlohmann::json::object();
    for (const auto& [g, s] : groups)
      ops[g] = {
          {"passed", s.passed}, {"failed", s.failed}, {"unsupported", s.unsupported}, {"total", s.total()}};
    j["ops"] = ops;
    Status w = WriteText(o.json_file, j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n");
    if (!w.ok()) return Fail(cmd, w.message());
  }
  if (!o.markdown_file.empty()) {
    Status w = WriteText(o.markdown_file, Markdown(records, p, f, u, o.backend));
    if (!w.ok()) return Fail(cmd, w.message());
  }
  std::vector<BaselineCase> run;
  for (const CaseRecord& r : records) run.push_back({r.name, r.result, r.reason});
  if (!o.write_baseline_file.empty()) {
    Status w = WriteText(o.write_baseline_file, FormatBaseline(run));
    if (!w.ok()) return Fail(cmd, w.message());
  }
  if (!o.baseline_file.empty()) {
    int rc = CheckBaseline(run, o);
    if (rc != 0) return rc;
  }
  if (o.min_pass_rate >= 0) {
    double rate = t ? static_cast<double>(p) / t : 0.0;
    if (t == 0 || rate < o.min_pass_rate)
      return Fail(cmd, fmt::format("pass rate {:.4f} ({} of {}) is below --min-pass-rate {}", rate, p, t,
                                   o.min_pass_rate));
  }
  return 0;
}

}  // namespace

Command AddConformanceCommand(CLI::App& app) {
  auto o = std::make_shared<ConformanceOptions>();
  Command c;
  c.app = app.add_subcommand("conformance", "Run the ONNX backend node tests in DIR on the CPU reference");
  c.app->add_option("dir", o->dir, "Folder of test_*/ cases (e.g. written by tools/write_node_tests.py)")
      ->required();
  c.app->add_option("--filter", o->filter, "Only cases whose name contains this");
  c.app->add_option("--json", o->json_file, "Write every case's result as JSON to FILE");
  c.app->add_option("--markdown", o->markdown_file, "Write a CONFORMANCE.md report to FILE");
  c.app->add_option("--jobs,-j", o->jobs, "Cases run in parallel (default: number of CPUs)");
  c.app->add_option("--timeout", o->timeout_s, "Seconds a case may run before it is killed")
      ->capture_default_str();
  c.app->add_option(
      "--min-pass-rate", o->min_pass_rate,
      "Exit 1 when passed/total is below this (0..1); otherwise the exit code ignores failures");
  c.app->add_option("--memory-limit-mb", o->memory_limit_mb, "Address-space limit per case (0: none)")
      ->capture_default_str();
  c.app->add_option("--baseline", o->baseline_file,
                    "Exit 1 when a case does worse than this baseline file (tests/conformance/expected.txt)");
  c.app->add_option("--write-baseline", o->write_baseline_file, "Write this run's results as a baseline file");
  c.app->add_flag("--verbose,-v", o->verbose, "Also list unsupported cases with their reasons");
  c.app->add_option("--backend", o->backend,
                    "cpu (the reference) or cuda (each case built and run by the CUDA engine; needs a GPU)")
      ->check(CLI::IsMember({"cpu", "cuda"}));
  c.app->add_flag("--check-inferred", o->check_inferred,
                  "Also fail a case when inferred output types disagree with the produced values");
  c.run = [o] { return RunConformance(*o); };
  return c;
}

}  // namespace kiln::cli
