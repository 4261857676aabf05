// ssl.paired: one sample from several datasets at the same index, for
// cross-modal objectives (ssl.clip) and retrieval. Plugins never depend on
// each other, so an audio clip and its transcript come from two plugins'
// datasets that list the same items in the same order (e.g. an audio
// manifest and a text file written together by datasets/spoken_fortunes.py).
#include <algorithm>
#include <map>

#include "paired.h"

#include "sslab/registry.h"

namespace sslab::ssl_plugin {

namespace {

bool is_label_key(const std::string& k) { return k == "label" || k.rfind("label.", 0) == 0; }

class PairedDataset : public Dataset {
 public:
  PairedDataset(std::vector<std::string> names, std::vector<std::shared_ptr<Dataset>> parts, size_t label_part,
                std::string where)
      : names_(std::move(names)), parts_(std::move(parts)), label_part_(label_part), where_(std::move(where)) {}

  int64_t size() const override { return parts_.front()->size(); }
  int64_t num_classes() const override { return parts_[label_part_]->num_classes(); }

  Sample get(int64_t index) const override {
    Sample out;
    std::map<std::string, size_t> owner;
    for (size_t p = 0; p < parts_.size(); ++p) {
      for (auto& [k, v] : parts_[p]->get(index)) {
        if (is_label_key(k) && p != label_part_) continue;  // labels come from one part
        auto [it, fresh] = owner.emplace(k, p);
        SSLAB_CHECK(fresh, where_, ": parts '", names_[it->second], "' and '", names_[p], "' both produce the key '", k,
                    "'; give one of them another key (e.g. its `key` option)");
        out.emplace(k, std::move(v));
      }
    }
    return out;
  }

 private:
  std::vector<std::string> names_;
  std::vector<std::shared_ptr<Dataset>> parts_;
  size_t label_part_;
  std::string where_;
};

}  // namespace

Schema paired_schema() {
  Schema s;
  s.table("parts", "one table per part: [data.<split>.parts.<name>] with its own dataset type and keys");
  s.string("labels_from", "", "the part whose label keys (label, label.*) are kept (default: the first)");
  return s;
}

std::shared_ptr<Dataset> make_paired_dataset(const Config& c, BuildContext& ctx) {
  RecipeNode parts = c.node().child("parts");
  SSLAB_CHECK(parts.exists() && parts.keys().size() >= 2, c.node().locate("parts"),
              ": give at least two parts, e.g. [", c.node().path(), ".parts.audio] and [",
              c.node().path(), ".parts.text]");
  std::vector<std::string> names;
  std::vector<std::shared_ptr<Dataset>> datasets;
  for (const auto& name : parts.keys()) {
    RecipeNode node = parts.child(name);
    Config pc = component_config(node, ComponentKind::Dataset, ctx.registries());
    for (const char* key : {"limit", "on_error"})
      SSLAB_CHECK(!pc.has(key), pc.locate(key), " applies to the whole paired dataset: set it on [",
                  c.node().path(), "]");
    auto ds = ctx.registries().datasets.at(node.required_string("type")).factory(pc, ctx);
    if (!datasets.empty())
      SSLAB_CHECK(ds->size() == datasets.front()->size(), node.where(), ": part '", name, "' has ",
                  ds->size(), " samples but part '", names.front(), "' has ", datasets.front()->size(),
                  "; paired parts must list the same items in the same order");
    names.push_back(name);
    datasets.push_back(std::move(ds));
  }
  size_t label_part = 0;
  std::string from = c.get_string("labels_from");
  if (!from.empty()) {
    auto it = std::find(names.begin(), names.end(), from);
    SSLAB_CHECK(it != names.end(), c.locate("labels_from"), ": no part named '", from, "'");
    label_part = static_cast<size_t>(it - names.begin());
  }
  return std::make_shared<PairedDataset>(std::move(names), std::move(datasets), label_part,
                                         c.node().path());
}

}  // namespace sslab::ssl_plugin
