#include "sslab/host/online_probe.h"

#include "sslab/distributed.h"
#include "sslab/host/checkpoint.h"

namespace sslab {

OnlineProbes::OnlineProbes(BuildContext& ctx, int64_t num_classes, double lr, int64_t every,
                           std::shared_ptr<Communicator> comm)
    : ctx_(ctx), comm_(std::move(comm)), every_(every) {
  if (num_classes <= 0) return;
  for (const auto& name : ctx.encoder_names()) {
    auto enc = ctx.encoder(name);
    Probe p;
    p.encoder = name;
    p.head = torch::nn::Linear(enc->embed_dim(), num_classes);
    p.head->to(ctx.device());
    p.optimizer =
        std::make_unique<torch::optim::AdamW>(p.head->parameters(), torch::optim::AdamWOptions(lr).weight_decay(0.0));
    probes_.push_back(std::move(p));
  }
}

void OnlineProbes::train_step(const Batch& batch, int64_t step, int64_t accumulate,
                              std::map<std::string, double>& metrics) {
  if (probes_.empty() || !batch.has("label") || (step - 1) % every_ != 0) return;
  for (auto& p : probes_) {
    torch::Tensor emb;
    {
      torch::NoGradGuard no_grad;
      emb = ctx_.encoder(p.encoder)->embed(batch);
    }
    torch::Tensor logits = p.head(emb.detach());
    torch::Tensor labels = batch.at("label");
    torch::Tensor loss = torch::nn::functional::cross_entropy(logits, labels);
    p.optimizer->zero_grad();
    loss.backward();
    if (comm_) {  // the probes stay identical on every rank
      std::vector<torch::Tensor> grads;
      for (auto& q : p.head->parameters()) grads.push_back(q.mutable_grad());
      comm_->all_reduce_sum(grads);
      for (auto& g : grads) g.div_(comm_->world_size());
    }
    p.optimizer->step();
    std::string key = probes_.size() == 1 ? "probe_acc" : "probe_acc/" + p.encoder;
    metrics[key] += (logits.argmax(1) == labels).to(torch::kFloat64).mean().item<double>() / accumulate;
  }
}

std::vector<torch::Tensor> OnlineProbes::state_tensors() {
  std::vector<torch::Tensor> tensors;
  for (auto& p : probes_) {
    for (auto& t : p.head->parameters(true)) tensors.push_back(t);
    for (auto& t : p.head->buffers(true)) tensors.push_back(t);
  }
  return tensors;
}

void OnlineProbes::save(CheckpointWriter& out) {
  for (auto& p : probes_) {
    out.module("probe/" + p.encoder, *p.head);
    out.optimizer("probe_optimizer/" + p.encoder, *p.optimizer);
  }
}

void OnlineProbes::load(CheckpointReader& in) {
  for (auto& p : probes_) {
    in.module("probe/" + p.encoder, *p.head);
    in.optimizer("probe_optimizer/" + p.encoder, *p.optimizer);  // absent in older checkpoints
  }
}

}  // namespace sslab
