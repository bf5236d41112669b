// kiln CLI entry point: parses the command line with CLI11 and dispatches to
// the subcommands (one file each, declared in commands.h). Errors are one line
// "kiln <cmd>: error: <message>" on stderr with exit code 1; `kiln help`,
// `--help` and `--version` print to stdout with exit code 0.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <exception>
#include <iostream>
#include <string>
#include <vector>

#include "cli_util.h"
#include "commands.h"

namespace {

// From project(kiln VERSION ...) in the top-level CMakeLists.txt.
constexpr const char* kVersion = KILN_VERSION;

// The subcommand named on the command line (first non-flag argument), or "".
std::string CommandName(int argc, char** argv, const CLI::App& app) {
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a.empty() || a[0] == '-') continue;
    for (const CLI::App* sub : app.get_subcommands([](const CLI::App*) { return true; }))
      if (sub->get_name() == a) return a;
    return "";
  }
  return "";
}

// Help of the top-level app (app.help() would describe a parsed subcommand).
int Usage(const CLI::App& app, bool to_stderr) {
  (to_stderr ? std::cerr : std::cout)
      << app.get_formatter()->make_help(&app, "kiln", CLI::AppFormatMode::Normal);
  return to_stderr ? 1 : 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"kiln: ONNX to GPU inference engine", "kiln"};
  app.set_version_flag("--version", std::string("kiln ") + kVersion);
  app.require_subcommand(0, 1);

  std::vector<kiln::cli::Command> commands;
  commands.push_back(kiln::cli::AddInspectCommand(app));
  commands.push_back(kiln::cli::AddRunCommand(app));
  commands.push_back(kiln::cli::AddConformanceCommand(app));
  commands.push_back(kiln::cli::AddCheckCommand(app));
  commands.push_back(kiln::cli::AddBuildCommand(app));
  commands.push_back(kiln::cli::AddBenchCommand(app));
  commands.push_back(kiln::cli::AddRefitCommand(app));
  commands.push_back(kiln::cli::AddSoakCommand(app));
  commands.push_back(kiln::cli::AddSimplifyCommand(app));
  commands.push_back(kiln::cli::AddCompareCommand(app));
  CLI::App* help = app.add_subcommand("help", "Show this usage, or a command's flags: kiln help COMMAND");
  std::string help_topic;
  help->add_option("command", help_topic, "Command to describe");

  app.footer("Run 'kiln <command> --help' for a command's flags.");  // after the subcommands: not inherited

  std::string cmd = CommandName(argc, argv, app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ExtrasError& e) {
    if (cmd.empty()) {
      std::string first;
      for (int i = 1; i < argc && first.empty(); ++i)
        if (argv[i][0] != '-') first = argv[i];
      if (first.empty())
        std::fprintf(stderr, "kiln: error: %s\n", e.what());
      else
        std::fprintf(stderr, "kiln: error: unknown command '%s'\n", first.c_str());
      return Usage(app, true);
    }
    return kiln::cli::Fail(cmd, e.what());
  } catch (const CLI::ParseError& e) {
    if (cmd.empty()) {
      std::fprintf(stderr, "kiln: error: %s\n", e.what());
      return Usage(app, true);
    }
    return kiln::cli::Fail(cmd, std::string(e.what()) + " (see 'kiln " + cmd + " --help')");
  }

  if (help->parsed()) {
    if (help_topic.empty()) return Usage(app, false);
    for (const auto& c : commands) {
      if (c.app->get_name() != help_topic) continue;
      std::cout << c.app->get_formatter()->make_help(c.app, "kiln " + c.app->get_name(),
                                                     CLI::AppFormatMode::Normal);
      return 0;
    }
    std::fprintf(stderr, "kiln help: error: unknown command '%s'\n", help_topic.c_str());
    return Usage(app, true);
  }
  for (const auto& c : commands) {
    if (!c.app->parsed()) continue;
    try {
      return c.run();
    } catch (const std::exception& e) {
      return kiln::cli::Fail(c.app->get_name(), std::string("internal error: ") + e.what());
    } catch (...) {
      return kiln::cli::Fail(c.app->get_name(), "internal error: unknown exception");
    }
  }
  std::fprintf(stderr, "kiln: error: no command given\n");
  return Usage(app, true);
}
