// Builds components from a TOML snippet through the process-wide registries,
// section by section, as the platform does: the shared base of the modality
// tests' Env helpers.
#pragma once

#include <memory>
#include <set>
#include <string>

#include <sslab/components.h>
#include <sslab/host/experiment.h>
#include <sslab/host/plugin_host.h>
#include <sslab/host/recipe_schema.h>

namespace sslab_test {

// Loads a plugin file once per process; returns the global registries.
inline sslab::Registries& registries_with(const std::string& plugin_file) {
  static sslab::PluginHost host(sslab::Registries::global());
  static std::set<std::string> loaded;
  if (loaded.insert(plugin_file).second) host.load_file(plugin_file);
  return sslab::Registries::global();
}

class ComponentEnv {
 public:
  ComponentEnv(const std::string& toml, const std::string& name, const std::string& plugin_file)
      : recipe_(sslab::Recipe::parse_string(toml, name)), reg_(registries_with(plugin_file)), ctx_(recipe_, reg_) {}
  ComponentEnv(const ComponentEnv&) = delete;
  ComponentEnv& operator=(const ComponentEnv&) = delete;

  sslab::BuildContext& ctx() { return ctx_; }

  // [tokenizers.<name>]
  std::shared_ptr<sslab::Tokenizer> tokenizer(const std::string& name) {
    auto node = recipe_.at("tokenizers." + name);
    return sslab::HostAccess::tokenizers(ctx_)[name] = reg_.tokenizers.at(node.required_string("type")).factory(config(node, K::Tokenizer), ctx_);
  }
  // [data.<split>], after every [tokenizers.*] (as the platform builds them).
  std::shared_ptr<sslab::Dataset> dataset(const std::string& split) {
    auto toks = recipe_.at("tokenizers");
    if (toks.exists())
      for (const auto& name : toks.keys())
        if (!ctx_.has_tokenizer(name)) tokenizer(name);
    auto node = recipe_.at("data." + split);
    return sslab::HostAccess::datasets(ctx_)[split] = reg_.datasets.at(node.required_string("type")).factory(config(node, K::Dataset), ctx_);
  }
  // [encoders.<name>], kept in the context for objectives; `input` applied.
  std::shared_ptr<sslab::Encoder> encoder(const std::string& name) {
    auto node = recipe_.at("encoders." + name);
    auto cfg = config(node, K::Encoder);
    auto enc = reg_.encoders.at(node.required_string("type")).factory(cfg, ctx_);
    if (!cfg.get_string("input").empty()) enc->set_input(cfg.get_string("input"));
    return sslab::HostAccess::encoders(ctx_)[name] = enc;
  }
  // The i-th [[transforms.<input>]]
  std::shared_ptr<sslab::Transform> transform(const std::string& input, size_t i = 0) {
    auto node = recipe_.at("transforms").table_array(input).at(i);
    return reg_.transforms.at(node.required_string("type")).factory(config(node, K::Transform), ctx_);
  }
  // The i-th [[objectives]]
  std::shared_ptr<sslab::Objective> objective(size_t i = 0) {
    auto node = recipe_.root().table_array("objectives").at(i);
    return reg_.objectives.at(node.required_string("type")).factory(config(node, K::Objective), ctx_);
  }
  // The i-th [[evaluators]]
  std::shared_ptr<sslab::Evaluator> evaluator(size_t i = 0) {
    auto node = recipe_.root().table_array("evaluators").at(i);
    return reg_.evaluators.at(node.required_string("type")).factory(config(node, K::Evaluator), ctx_);
  }

 protected:
  using K = sslab::ComponentKind;
  sslab::Config config(const sslab::RecipeNode& node, K kind) { return sslab::component_config(node, kind, reg_); }
  sslab::Recipe recipe_;
  sslab::Registries& reg_;
  sslab::BuildContext ctx_;
};

}  // namespace sslab_test
