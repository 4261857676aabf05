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

// ---------------------------------------------------------------- clustering and self-distillation

namespace {
int64_t world_of(Communicator* comm) { return comm && comm->world_size() > 1 ? comm->world_size() : 1; }

// SwAV's and DINO's cross-view term: for every target view v (distributions
// [B, K], no gradient) and every other view w,
// -sum_k p_v log softmax(logits_w / temperature), averaged over rows, then
// over the pairs. Each view's log-softmax is computed once.
torch::Tensor cross_view_entropy(const std::vector<torch::Tensor>& targets, const std::vector<torch::Tensor>& logits,
                                 double temperature) {
  std::vector<torch::Tensor> log_p;
  log_p.reserve(logits.size());
  for (const auto& l : logits) log_p.push_back(torch::log_softmax(l / temperature, 1));
  torch::Tensor total;
  int64_t pairs = 0;
  for (size_t v = 0; v < targets.size(); ++v) {
    for (size_t w = 0; w < logits.size(); ++w) {
      if (w == v) continue;
      torch::Tensor ce = -(targets[v] * log_p[w]).sum(1).mean();
      total = total.defined() ? total + ce : ce;
      ++pairs;
    }
  }
  return total / static_cast<double>(pairs);
}
}  // namespace

torch::Tensor sinkhorn_knopp(const torch::Tensor& scores, double epsilon, int64_t iterations, Communicator* comm) {
  SSLAB_CHECK(scores.dim() == 2 && scores.size(0) > 0 && scores.size(1) > 0,
              "sinkhorn_knopp: expected scores [B, K], got ", scores.sizes());
  SSLAB_CHECK(epsilon > 0 && iterations >= 0, "sinkhorn_knopp: epsilon must be > 0 and iterations >= 0, got ", epsilon,
              " and ", iterations);
  torch::NoGradGuard no_grad;
  // float64: exp(1 / epsilon) overflows float32 for epsilon < 0.012.
  torch::Tensor q = torch::exp(scores.detach().to(torch::kFloat64) / epsilon).t().contiguous();  // [K, B]
  const int64_t k = q.size(0), b = q.size(1) * world_of(comm);
  q /= all_reduce_sum_with_grad(comm, q.sum());
  for (int64_t it = 0; it < iterations; ++it) {
    q /= all_reduce_sum_with_grad(comm, q.sum(1, /*keepdim=*/true));
    q /= static_cast<double>(k);
    q /= q.sum(0, /*keepdim=*/true);
    q /= static_cast<double>(b);
  }
  q *= static_cast<double>(b);
  return q.t().to(scores.scalar_type());
}

torch::Tensor swav_loss(const std::vector<torch::Tensor>& scores, const std::vector<torch::Tensor>& codes,
                        double temperature) {
  SSLAB_CHECK(scores.size() >= 2 && !codes.empty() && codes.size() <= scores.size(),
              "swav: expected at least 2 views of scores and codes for 1..", scores.size(), " of them, got ",
              scores.size(), " and ", codes.size());
  for (size_t v = 0; v < scores.size(); ++v)
    SSLAB_CHECK(scores[v].dim() == 2 && scores[v].sizes() == scores[0].sizes(), "swav: view ", v, "'s scores are ",
                scores[v].sizes(), ", view 0's ", scores[0].sizes());
  for (size_t v = 0; v < codes.size(); ++v)
    SSLAB_CHECK(codes[v].sizes() == scores[0].sizes(), "swav: view ", v, "'s codes are ", codes[v].sizes(),
                ", the scores ", scores[0].sizes());
  std::vector<torch::Tensor> q;
  for (const auto& c : codes) q.push_back(c.detach());
  return cross_view_entropy(q, scores, temperature);
}

torch::Tensor dino_loss(const std::vector<torch::Tensor>& student, const std::vector<torch::Tensor>& teacher,
                        const torch::Tensor& center, double student_temp, double teacher_temp) {
  SSLAB_CHECK(student.size() >= 2 && !teacher.empty() && teacher.size() <= student.size(),
              "dino: expected at least 2 student views and 1..", student.size(), " teacher views, got ",
              student.size(), " and ", teacher.size());
  for (size_t v = 0; v < student.size(); ++v)
    SSLAB_CHECK(student[v].dim() == 2 && student[v].size(1) == student[0].size(1), "dino: student view ", v, " is ",
                student[v].sizes(), ", view 0 ", student[0].sizes());
  for (size_t v = 0; v < teacher.size(); ++v)
    SSLAB_CHECK(teacher[v].sizes() == student[v].sizes(), "dino: teacher view ", v, " is ", teacher[v].sizes(),
                ", the student's ", student[v].sizes());
  SSLAB_CHECK(center.numel() == student[0].size(1), "dino: the center has ", center.numel(), " values for ",
              student[0].size(1), " outputs");
  torch::Tensor c = center.detach().reshape({1, -1}).to(teacher[0].scalar_type());
  std::vector<torch::Tensor> t;
  for (const auto& x : teacher) t.push_back(torch::softmax((x.detach() - c) / teacher_temp, 1));
  return cross_view_entropy(t, student, student_temp);
}

torch::Tensor dino_center(const torch::Tensor& center, const std::vector<torch::Tensor>& teacher, double momentum,
                          Communicator* comm) {
  SSLAB_CHECK(!teacher.empty(), "dino_center: no teacher outputs");
  torch::NoGradGuard no_grad;
  torch::Tensor sum = torch::zeros({center.numel()}, teacher[0].options().dtype(torch::kFloat64));
  int64_t rows = 0;
  for (const auto& t : teacher) {
    SSLAB_CHECK(t.dim() == 2 && t.size(1) == center.numel(), "dino_center: teacher outputs ", t.sizes(), " for a center of ",
                center.numel(), " values");
    sum += t.detach().to(torch::kFloat64).sum(0);
    rows += t.size(0);
  }
  torch::Tensor mean = all_reduce_sum_with_grad(comm, sum) / static_cast<double>(rows * world_of(comm));
  return (center.detach().to(torch::kFloat64) * momentum + mean.reshape(center.sizes()) * (1 - momentum))
      .to(center.scalar_type());
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
