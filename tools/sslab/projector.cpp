#include "projector.h"

#include <cmath>
#include <fstream>
#include <sstream>

#include "sslab/evaluation.h"
#include "sslab/images.h"

namespace sslab::cli {

std::vector<SplitEmbeddings> embed_split(Experiment& exp, const std::string& split, const std::string& encoder,
                                         int64_t limit, int64_t batch_size) {
  BuildContext& ctx = exp.context();
  SSLAB_CHECK(ctx.has_dataset(split), "the recipe has no [data.", split, "]");
  std::vector<std::string> names = encoder.empty() ? ctx.encoder_names() : std::vector<std::string>{encoder};
  std::vector<SplitEmbeddings> out;
  const Dataset& data = *ctx.dataset(split, "embeddings");
  for (const auto& name : names) {
    ProbeTarget target(ctx, name, false, "embeddings");
    const FeatureSpec feature = target.features().at(0);
    const std::string key = target.input();
    std::vector<torch::Tensor> xs, ys, images;
    bool labelled = true, small_images = true;
    torch::NoGradGuard no_grad;
    for_each_batch(data, limit, batch_size, [&](const Batch& batch) {
      xs.push_back(feature.fn(batch.to(ctx.device())).to(torch::kCPU, torch::kFloat32).flatten(1));
      if (batch.has("label") && batch.at("label").dim() == 1) ys.push_back(batch.at("label").to(torch::kCPU, torch::kInt64));
      else labelled = false;
      const torch::Tensor& in = batch.at(key);
      if (in.dim() == 4 && (in.size(1) == 1 || in.size(1) == 3) && in.size(2) <= 64 && in.size(3) <= 64 &&
          in.is_floating_point())
        images.push_back(in.to(torch::kCPU, torch::kFloat32));
      else
        small_images = false;
    });
    SplitEmbeddings e;
    e.encoder = name;
    e.x = torch::cat(xs, 0);
    if (labelled && !ys.empty()) e.labels = torch::cat(ys, 0);
    if (small_images && !images.empty()) e.images = torch::cat(images, 0).clamp(0, 1);
    out.push_back(std::move(e));
  }
  return out;
}

std::string write_projector(const std::string& run_dir, const std::vector<SplitEmbeddings>& embeddings) {
  const fs::path tb = fs::path(run_dir) / "tensorboard";
  std::ostringstream config;
  for (const auto& e : embeddings) {
    const fs::path dir = tb / "projector" / e.encoder;
    fs::create_directories(dir);
    std::ostringstream tensors, metadata;
    auto acc = e.x.accessor<float, 2>();
    for (int64_t i = 0; i < e.x.size(0); ++i) {
      for (int64_t j = 0; j < e.x.size(1); ++j) tensors << (j ? "\t" : "") << acc[i][j];
      tensors << "\n";
    }
    write_file_atomic((dir / "tensors.tsv").string(), tensors.str());
    metadata << "index\tlabel\n";
    for (int64_t i = 0; i < e.x.size(0); ++i)
      metadata << i << "\t" << (e.labels.defined() ? std::to_string(e.labels[i].item<int64_t>()) : std::string("")) << "\n";
    write_file_atomic((dir / "metadata.tsv").string(), metadata.str());
    const std::string rel = "projector/" + e.encoder + "/";
    config << "embeddings {\n  tensor_name: \"" << e.encoder << "\"\n  tensor_path: \"" << rel
           << "tensors.tsv\"\n  metadata_path: \"" << rel << "metadata.tsv\"\n";
    if (e.images.defined()) {
      // The projector's sprite: a square grid of thumbnails, row by row, no padding.
      const int64_t n = e.images.size(0), side = static_cast<int64_t>(std::ceil(std::sqrt(static_cast<double>(n))));
      write_file_atomic((dir / "sprite.png").string(), encode_png(image_grid(e.images, side, 0, 0.0)));
      config << "  sprite {\n    image_path: \"" << rel << "sprite.png\"\n    single_image_dim: " << e.images.size(3)
             << "\n    single_image_dim: " << e.images.size(2) << "\n  }\n";
    }
    config << "}\n";
  }
  const std::string file = (tb / "projector_config.pbtxt").string();
  write_file_atomic(file, config.str());
  return file;
}

torch::Tensor pca_2d(const torch::Tensor& x_in) {
  torch::Tensor x = x_in.to(torch::kFloat64);
  x = x - x.mean(0, true);
  if (x.size(1) < 2) return torch::cat({x, torch::zeros_like(x)}, 1).narrow(1, 0, 2).to(torch::kFloat32);
  auto svd = torch::linalg_svd(x, /*full_matrices=*/false);
  torch::Tensor v = std::get<2>(svd).narrow(0, 0, 2);  // [2, D]
  return torch::matmul(x, v.t()).to(torch::kFloat32);
}

}  // namespace sslab::cli
