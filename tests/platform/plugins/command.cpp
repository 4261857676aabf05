// Registers the command `sslab test-greet`: prints its arguments; `fail`
// throws a UserError, `exit N` returns N.
#include <iostream>
#include <string>

#include <sslab/error.h>
#include <sslab/plugin.h>

static int greet(const std::vector<std::string>& args) {
  if (!args.empty() && args[0] == "fail") throw sslab::UserError("greeting failed on purpose");
  if (args.size() == 2 && args[0] == "exit") return std::stoi(args[1]);
  std::cout << "hello";
  for (const auto& a : args) std::cout << " " << a;
  std::cout << "\n";
  return 0;
}

static void register_components(sslab::Registrar& r) { r.command("test-greet", "print a greeting", greet); }

SSLAB_PLUGIN("command", "0.0.1", "registers the command test-greet", register_components)
