// The text loader's throughput: tokenised samples per second through
// sslab's Loader (text.files get() = SentencePiece encode + [CLS]/[SEP] +
// tensor, then collation and padding) for a recipe's training split, and the
// bare tokenizer on the same entries. Writes the entries as one line each
// (for spm_encode) and, optionally, the samples' ids (for the Python twin of
// the training step). Used by tools/bench/text_bench.py.
//
//   text_loader_bench RECIPE [--workers N] [--epochs E] [--text FILE] [--ids FILE]
#include <algorithm>
#include <chrono>
#include <cstring>
#include <fstream>
#include <iostream>
#include <string>

#include <nlohmann/json.hpp>

#include <sslab/host/experiment.h>
#include <sslab/host/loader.h>
#include <sslab/host/recipe_schema.h>

#include "../../modalities/text/text_dataset.h"

namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

int main(int argc, char** argv) {
  try {
    if (argc < 2) {
      std::cerr << "usage: text_loader_bench RECIPE [--workers N] [--epochs E] [--text FILE] [--ids FILE]\n";
      return 2;
    }
    std::string recipe_file = argv[1], text_out, ids_out;
    int workers = 1, epochs = 1;
    for (int i = 2; i + 1 < argc; i += 2) {
      if (!std::strcmp(argv[i], "--workers"))
        workers = std::atoi(argv[i + 1]);
      else if (!std::strcmp(argv[i], "--epochs"))
        epochs = std::atoi(argv[i + 1]);
      else if (!std::strcmp(argv[i], "--text"))
        text_out = argv[i + 1];
      else if (!std::strcmp(argv[i], "--ids"))
        ids_out = argv[i + 1];
      else
        throw sslab::UserError(std::string("unknown option ") + argv[i]);
    }
    at::set_num_threads(1);
    sslab::PluginHost host;
    sslab::Experiment exp(sslab::Recipe::load(recipe_file), host);
    auto data = exp.context().dataset("train");
    auto* text = dynamic_cast<sslab::text::TextDataset*>(data.get());
    SSLAB_CHECK(text, "the recipe's train split is not a text.files dataset");
    SSLAB_CHECK(exp.context().has_tokenizer("text"), "the recipe has no [tokenizers.text]");
    auto tok = exp.context().tokenizer("text");
    if (!text_out.empty()) {
      std::ofstream out(text_out);
      for (int64_t i = 0; i < text->size(); ++i) {
        std::string t = text->text(i);
        std::replace(t.begin(), t.end(), '\n', ' ');
        out << t << "\n";
      }
    }
    if (!ids_out.empty()) {
      std::ofstream out(ids_out);
      for (int64_t i = 0; i < text->size(); ++i) {
        torch::Tensor ids = text->get(i).at("text.ids");
        for (int64_t k = 0; k < ids.numel(); ++k) out << (k ? " " : "") << ids[k].item<int64_t>();
        out << "\n";
      }
    }
    // The bare tokenizer, one thread, the same text the dataset encodes.
    auto t0 = std::chrono::steady_clock::now();
    int64_t pieces = 0;
    for (int64_t i = 0; i < text->size(); ++i) pieces += static_cast<int64_t>(tok->encode(text->text(i)).size());
    double encode_s = seconds_since(t0);
    // The loader: batches of the recipe's size, shuffled, `workers` threads.
    sslab::Config train = exp.recipe().at("train").validate(sslab::train_schema(), {});
    sslab::LoaderOptions lo;
    lo.batch_size = train.get_int("batch_size");
    lo.workers = workers;
    lo.drop_last = true;
    sslab::Loader loader(data, lo);
    int64_t batches = loader.batches_per_epoch() * epochs, samples = 0, tokens = 0;
    t0 = std::chrono::steady_clock::now();
    for (int64_t b = 0; b < batches; ++b) {
      sslab::Batch batch = loader.next();
      samples += batch.size;
      tokens += batch.at("text.ids.length").sum().item<int64_t>();
    }
    double loader_s = seconds_since(t0);
    nlohmann::ordered_json out = {{"vocab_size", tok->vocab_size()},
                                  {"entries", text->size()},
                                  {"pieces", pieces},
                                  {"encode_s", encode_s},
                                  {"encode_samples_per_s", text->size() / encode_s},
                                  {"loader_workers", workers},
                                  {"loader_samples", samples},
                                  {"loader_tokens", tokens},
                                  {"loader_s", loader_s},
                                  {"loader_samples_per_s", samples / loader_s}};
    std::cout << out.dump() << "\n";
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "text_loader_bench: " << e.what() << "\n";
    return 2;
  }
}
