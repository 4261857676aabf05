#include "sslab/distributed.h"
#include "sslab/error.h"
#include "sslab/ssl.h"

namespace sslab::ssl {

namespace F = torch::nn::functional;

namespace {

torch::Tensor unit(const torch::Tensor& x) { return F::normalize(x, F::NormalizeFuncOptions().dim(1)); }

int64_t offset_of(Communicator* comm, int64_t rows) {
  return comm && comm->world_size() > 1 ? static_cast<int64_t>(comm->rank()) * rows : 0;
}

void check_pair(const torch::Tensor& a, const torch::Tensor& b, const char* what) {
  SSLAB_CHECK(a.dim() == 2 && b.dim() == 2 && a.sizes() == b.sizes(), what, ": expected two [N, D] embeddings of the same shape, got ",
              a.sizes(), " and ", b.sizes());
  SSLAB_CHECK(a.size(0) >= 2, what, ": needs at least 2 samples per batch, got ", a.size(0));
}

torch::Tensor off_diagonal(const torch::Tensor& m) {
  return m - torch::diag_embed(torch::diagonal(m));
}

}  // namespace

torch::Tensor nt_xent(const torch::Tensor& z1, const torch::Tensor& z2, double temperature, Communicator* comm) {
  check_pair(z1, z2, "nt_xent");
  int64_t n = z1.size(0);
  torch::Tensor a = torch::cat({unit(z1), unit(z2)});                                    // [2n, D] anchors
  torch::Tensor k1 = all_gather_with_grad(comm, unit(z1)), k2 = all_gather_with_grad(comm, unit(z2));
  int64_t big_n = k1.size(0);
  torch::Tensor keys = torch::cat({k1, k2});                                             // [2N, D]
  torch::Tensor logits = torch::mm(a, keys.t()) / temperature;                           // [2n, 2N]
  torch::Tensor g = torch::arange(n, torch::TensorOptions().dtype(torch::kLong).device(z1.device())) + offset_of(comm, n);
  torch::Tensor self = torch::cat({g, g + big_n});
  torch::Tensor positive = torch::cat({g + big_n, g});
  torch::Tensor rows = torch::arange(2 * n, self.options());
  logits = logits.index_put({rows, self}, torch::full({2 * n}, -1e9, logits.options()));  // an anchor is not its own negative
  return F::cross_entropy(logits, positive);
}

torch::Tensor moco_infonce(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& queue,
                           double temperature, Communicator* comm) {
  check_pair(q, k, "moco");
  torch::Tensor qn = unit(q), kn = unit(k).detach();
  if (queue.defined()) {
    torch::Tensor pos = (qn * kn).sum(1, true);
    torch::Tensor neg = torch::mm(qn, queue.detach().clone().t());  // the caller may enqueue before backward
    torch::Tensor logits = torch::cat({pos, neg}, 1) / temperature;
    return F::cross_entropy(logits, torch::zeros({q.size(0)}, torch::TensorOptions().dtype(torch::kLong).device(q.device())));
  }
  torch::Tensor keys = comm && comm->world_size() > 1 ? torch::cat(comm->all_gather(kn)) : kn;
  torch::Tensor logits = torch::mm(qn, keys.t()) / temperature;
  torch::Tensor labels =
      torch::arange(q.size(0), torch::TensorOptions().dtype(torch::kLong).device(q.device())) + offset_of(comm, q.size(0));
  return F::cross_entropy(logits, labels);
}

torch::Tensor byol_loss(const torch::Tensor& p, const torch::Tensor& z) {
  check_pair(p, z, "byol");
  return (2 - 2 * (unit(p) * unit(z.detach())).sum(1)).mean();
}

torch::Tensor negative_cosine(const torch::Tensor& p, const torch::Tensor& z) {
  check_pair(p, z, "simsiam");
  return -(unit(p) * unit(z.detach())).sum(1).mean();
}

VicRegTerms vicreg(const torch::Tensor& z1, const torch::Tensor& z2, double sim_coeff, double std_coeff,
                   double cov_coeff, Communicator* comm, double eps) {
  check_pair(z1, z2, "vicreg");
  VicRegTerms t;
  t.invariance = F::mse_loss(z1, z2);
  torch::Tensor x = all_gather_with_grad(comm, z1), y = all_gather_with_grad(comm, z2);
  int64_t n = x.size(0), d = x.size(1);
  x = x - x.mean(0);
  y = y - y.mean(0);
  torch::Tensor std_x = torch::sqrt(x.var(0) + eps), std_y = torch::sqrt(y.var(0) + eps);
  t.variance = torch::relu(1 - std_x).mean() / 2 + torch::relu(1 - std_y).mean() / 2;
  torch::Tensor cov_x = torch::mm(x.t(), x) / (n - 1), cov_y = torch::mm(y.t(), y) / (n - 1);
  t.covariance = off_diagonal(cov_x).pow(2).sum() / d + off_diagonal(cov_y).pow(2).sum() / d;
  t.loss = sim_coeff * t.invariance + std_coeff * t.variance + cov_coeff * t.covariance;
  return t;
}

torch::Tensor barlow_twins(const torch::Tensor& z1, const torch::Tensor& z2, double lambda, Communicator* comm,
                           double eps) {
  check_pair(z1, z2, "barlow_twins");
  torch::Tensor x = all_gather_with_grad(comm, z1), y = all_gather_with_grad(comm, z2);
  int64_t n = x.size(0);
  auto standardise = [&](const torch::Tensor& v) {
    torch::Tensor c = v - v.mean(0);
    return c / torch::sqrt(c.pow(2).mean(0) + eps);  // BatchNorm1d(affine=False) in training mode
  };
  torch::Tensor c = torch::mm(standardise(x).t(), standardise(y)) / n;
  torch::Tensor on = (1 - torch::diagonal(c)).pow(2).sum();
  torch::Tensor off = off_diagonal(c).pow(2).sum();
  return on + lambda * off;
}

torch::Tensor clip_loss(const torch::Tensor& a, const torch::Tensor& b, const torch::Tensor& logit_scale,
                        Communicator* comm) {
  SSLAB_CHECK(a.dim() == 2 && b.dim() == 2 && a.size(0) == b.size(0) && a.size(1) == b.size(1),
              "clip: expected two [N, D] embeddings of the same shape, got ", a.sizes(), " and ", b.sizes());
  torch::Tensor an = unit(a), bn = unit(b);
  torch::Tensor all_a = all_gather_with_grad(comm, an), all_b = all_gather_with_grad(comm, bn);
  torch::Tensor labels =
      torch::arange(a.size(0), torch::TensorOptions().dtype(torch::kLong).device(a.device())) + offset_of(comm, a.size(0));
  torch::Tensor ab = logit_scale * torch::mm(an, all_b.t());
  torch::Tensor ba = logit_scale * torch::mm(bn, all_a.t());
  return (F::cross_entropy(ab, labels) + F::cross_entropy(ba, labels)) / 2;
}

double pair_accuracy(const torch::Tensor& a, const torch::Tensor& b) {
  torch::NoGradGuard no_grad;
  torch::Tensor sim = torch::mm(unit(a.to(torch::kFloat32)), unit(b.to(torch::kFloat32)).t());
  torch::Tensor hit = sim.argmax(1) == torch::arange(a.size(0), torch::TensorOptions().dtype(torch::kLong).device(a.device()));
  return hit.to(torch::kFloat64).mean().item<double>();
}

namespace {
// [N, N] cosine similarities of queries to keys, for the Recall@K functions.
torch::Tensor retrieval_similarity(const torch::Tensor& queries, const torch::Tensor& keys, const char* what) {
  SSLAB_CHECK(queries.dim() == 2 && queries.sizes() == keys.sizes(), what, ": expected two [N, D] embeddings, got ",
              queries.sizes(), " and ", keys.sizes());
  return torch::mm(unit(queries.to(torch::kFloat32)), unit(keys.to(torch::kFloat32)).t());
}
}  // namespace

std::map<int64_t, double> recall_at(const torch::Tensor& queries, const torch::Tensor& keys,
                                    const std::vector<int64_t>& ks) {
  torch::NoGradGuard no_grad;
  torch::Tensor sim = retrieval_similarity(queries, keys, "recall");
  // Rank of the true key: how many keys score strictly higher than it.
  torch::Tensor own = sim.diagonal().unsqueeze(1);
  torch::Tensor rank = (sim > own).sum(1);
  std::map<int64_t, double> out;
  for (int64_t k : ks) out[k] = (rank < k).to(torch::kFloat64).mean().item<double>();
  return out;
}

namespace {
// [N, N] bool: labels of rows i and j are equal.
torch::Tensor same_label(const torch::Tensor& labels, int64_t n) {
  SSLAB_CHECK((labels.dim() == 1 || labels.dim() == 2) && labels.size(0) == n, "label recall: expected labels [", n,
              "] or [", n, ", L], got ", labels.sizes());
  torch::Tensor l = labels.dim() == 1 ? labels.unsqueeze(1) : labels;
  return (l.unsqueeze(1) == l.unsqueeze(0)).all(2);
}
}  // namespace

std::map<int64_t, double> label_recall_at(const torch::Tensor& queries, const torch::Tensor& keys,
                                          const torch::Tensor& labels, const std::vector<int64_t>& ks) {
  torch::NoGradGuard no_grad;
  torch::Tensor sim = retrieval_similarity(queries, keys, "label recall");
  const int64_t n = queries.size(0);
  torch::Tensor same = same_label(labels.cpu(), n).to(sim.device());
  std::map<int64_t, double> out;
  for (int64_t k : ks) {
    torch::Tensor top = std::get<1>(sim.topk(std::min(k, n), 1));  // [N, K]
    out[k] = same.gather(1, top).any(1).to(torch::kFloat64).mean().item<double>();
  }
  return out;
}

std::map<int64_t, double> label_chance_at(const torch::Tensor& labels, const std::vector<int64_t>& ks) {
  const int64_t n = labels.size(0);
  torch::Tensor m = same_label(labels.cpu(), n).sum(1).to(torch::kFloat64);  // [N], >= 1
  std::map<int64_t, double> out;
  for (int64_t k : ks) {
    // C(n - m, k) / C(n, k) = prod_{t < k} (n - m - t) / (n - t), zero once n - m - t < 1.
    torch::Tensor miss = torch::ones_like(m);
    for (int64_t t = 0; t < std::min(k, n); ++t)
      miss = miss * ((n - t) - m).clamp_min(0) / static_cast<double>(n - t);
    out[k] = (1 - miss).mean().item<double>();
  }
  return out;
}

}  // namespace sslab::ssl
