// Each loss of sslab/ssl.h against a float64 reference of its published
// formula, written out element by element (no shared code with the library).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "sslab/error.h"
#include "sslab/ssl.h"

namespace {

using Mat = std::vector<std::vector<double>>;

Mat to_mat(const torch::Tensor& t) {
  Mat m(t.size(0), std::vector<double>(t.size(1)));
  auto a = t.accessor<double, 2>();
  for (int64_t i = 0; i < t.size(0); ++i)
    for (int64_t j = 0; j < t.size(1); ++j) m[i][j] = a[i][j];
  return m;
}
double dot(const std::vector<double>& a, const std::vector<double>& b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
  return s;
}
std::vector<double> unit(const std::vector<double>& a) {
  double n = std::sqrt(dot(a, a));
  std::vector<double> u(a);
  for (auto& x : u) x /= n;
  return u;
}
double cosine(const std::vector<double>& a, const std::vector<double>& b) { return dot(unit(a), unit(b)); }

torch::Tensor randn(int64_t n, int64_t d, int seed) {
  torch::manual_seed(seed);
  return torch::randn({n, d}, torch::kFloat64) * 1.5 + 0.3;
}

void expect_rel(double got, double want) {
  EXPECT_LE(std::abs(got - want), 1e-6 * std::abs(want) + 1e-12) << "got " << got << " want " << want;
}

TEST(Losses, NtXentMatchesSimclrFormula) {
  torch::Tensor z1 = randn(6, 5, 1), z2 = randn(6, 5, 2);
  double t = 0.3;
  Mat a = to_mat(z1), b = to_mat(z2);
  Mat all(a);
  all.insert(all.end(), b.begin(), b.end());
  int n = 6;
  double total = 0;
  for (int i = 0; i < 2 * n; ++i) {
    int pos = i < n ? i + n : i - n;
    double denom = 0;
    for (int j = 0; j < 2 * n; ++j)
      if (j != i) denom += std::exp(cosine(all[i], all[j]) / t);
    total += -std::log(std::exp(cosine(all[i], all[pos]) / t) / denom);
  }
  expect_rel(sslab::ssl::nt_xent(z1, z2, t).item<double>(), total / (2 * n));
}

TEST(Losses, MocoWithQueueMatchesFormula) {
  torch::Tensor q = randn(5, 4, 3), k = randn(5, 4, 4);
  torch::Tensor queue = torch::nn::functional::normalize(randn(7, 4, 5), torch::nn::functional::NormalizeFuncOptions().dim(1));
  double t = 0.2;
  Mat qm = to_mat(q), km = to_mat(k), qu = to_mat(queue);
  double total = 0;
  for (int i = 0; i < 5; ++i) {
    double pos = std::exp(cosine(qm[i], km[i]) / t), denom = pos;
    for (auto& neg : qu) denom += std::exp(dot(unit(qm[i]), neg) / t);
    total += -std::log(pos / denom);
  }
  expect_rel(sslab::ssl::moco_infonce(q, k, queue, t).item<double>(), total / 5);
}

TEST(Losses, MocoInBatchMatchesFormula) {
  torch::Tensor q = randn(5, 4, 6), k = randn(5, 4, 7);
  double t = 0.5;
  Mat qm = to_mat(q), km = to_mat(k);
  double total = 0;
  for (int i = 0; i < 5; ++i) {
    double denom = 0;
    for (int j = 0; j < 5; ++j) denom += std::exp(cosine(qm[i], km[j]) / t);
    total += -std::log(std::exp(cosine(qm[i], km[i]) / t) / denom);
  }
  expect_rel(sslab::ssl::moco_infonce(q, k, {}, t).item<double>(), total / 5);
}

TEST(Losses, ByolAndSimsiamMatchFormulas) {
  torch::Tensor p = randn(6, 3, 8), z = randn(6, 3, 9);
  Mat pm = to_mat(p), zm = to_mat(z);
  double byol = 0, simsiam = 0;
  for (int i = 0; i < 6; ++i) {
    // ||p/|p| - z/|z|||^2 = 2 - 2 cos
    std::vector<double> up = unit(pm[i]), uz = unit(zm[i]);
    double sq = 0;
    for (size_t j = 0; j < up.size(); ++j) sq += (up[j] - uz[j]) * (up[j] - uz[j]);
    byol += sq;
    simsiam += -cosine(pm[i], zm[i]);
  }
  expect_rel(sslab::ssl::byol_loss(p, z).item<double>(), byol / 6);
  expect_rel(sslab::ssl::negative_cosine(p, z).item<double>(), simsiam / 6);
}

TEST(Losses, VicRegMatchesFormula) {
  torch::Tensor z1 = randn(8, 4, 10) * 0.4, z2 = randn(8, 4, 11);
  Mat x = to_mat(z1), y = to_mat(z2);
  int n = 8, d = 4;
  double mse = 0;
  for (int i = 0; i < n; ++i)
    for (int j = 0; j < d; ++j) mse += (x[i][j] - y[i][j]) * (x[i][j] - y[i][j]);
  mse /= n * d;
  auto var_cov = [&](const Mat& m, double* std_term, double* cov_term) {
    std::vector<double> mean(d, 0);
    for (int i = 0; i < n; ++i)
      for (int j = 0; j < d; ++j) mean[j] += m[i][j] / n;
    *std_term = 0;
    *cov_term = 0;
    for (int a = 0; a < d; ++a)
      for (int b = 0; b < d; ++b) {
        double c = 0;
        for (int i = 0; i < n; ++i) c += (m[i][a] - mean[a]) * (m[i][b] - mean[b]);
        c /= n - 1;
        if (a == b) *std_term += std::max(0.0, 1 - std::sqrt(c + 1e-4)) / d;
        else *cov_term += c * c / d;
      }
  };
  double sx, cx, sy, cy;
  var_cov(x, &sx, &cx);
  var_cov(y, &sy, &cy);
  auto t = sslab::ssl::vicreg(z1, z2, 25, 25, 1);
  expect_rel(t.invariance.item<double>(), mse);
  expect_rel(t.variance.item<double>(), (sx + sy) / 2);
  expect_rel(t.covariance.item<double>(), cx + cy);
  expect_rel(t.loss.item<double>(), 25 * mse + 25 * (sx + sy) / 2 + (cx + cy));
}

TEST(Losses, BarlowTwinsMatchesFormula) {
  torch::Tensor z1 = randn(9, 3, 12), z2 = randn(9, 3, 13);
  Mat x = to_mat(z1), y = to_mat(z2);
  int n = 9, d = 3;
  auto standardise = [&](Mat m) {
    for (int j = 0; j < d; ++j) {
      double mean = 0, var = 0;
      for (int i = 0; i < n; ++i) mean += m[i][j] / n;
      for (int i = 0; i < n; ++i) var += (m[i][j] - mean) * (m[i][j] - mean) / n;
      for (int i = 0; i < n; ++i) m[i][j] = (m[i][j] - mean) / std::sqrt(var + 1e-5);
    }
    return m;
  };
  Mat a = standardise(x), b = standardise(y);
  double lambda = 0.0051, loss = 0;
  for (int i = 0; i < d; ++i)
    for (int j = 0; j < d; ++j) {
      double c = 0;
      for (int k = 0; k < n; ++k) c += a[k][i] * b[k][j] / n;
      loss += i == j ? (1 - c) * (1 - c) : lambda * c * c;
    }
  expect_rel(sslab::ssl::barlow_twins(z1, z2, lambda).item<double>(), loss);
}

TEST(Losses, ClipMatchesFormula) {
  torch::Tensor a = randn(6, 4, 14), b = randn(6, 4, 15);
  double scale = 1 / 0.07;
  Mat am = to_mat(a), bm = to_mat(b);
  double ab = 0, ba = 0;
  for (int i = 0; i < 6; ++i) {
    double da = 0, db = 0;
    for (int j = 0; j < 6; ++j) {
      da += std::exp(scale * cosine(am[i], bm[j]));
      db += std::exp(scale * cosine(bm[i], am[j]));
    }
    ab += -std::log(std::exp(scale * cosine(am[i], bm[i])) / da);
    ba += -std::log(std::exp(scale * cosine(bm[i], am[i])) / db);
  }
  expect_rel(sslab::ssl::clip_loss(a, b, torch::full({}, scale, torch::kFloat64)).item<double>(), (ab + ba) / 12);
}

// Stop-gradient: SimSiam's and BYOL's targets, MoCo's keys get no gradient.
// SwAV's Sinkhorn-Knopp, as its reference code writes it, on plain arrays.
Mat sinkhorn_reference(const Mat& scores, double eps, int iters) {
  const size_t b = scores.size(), k = scores[0].size();
  Mat q(k, std::vector<double>(b));  // [K, B]
  double total = 0;
  for (size_t i = 0; i < b; ++i)
    for (size_t j = 0; j < k; ++j) total += q[j][i] = std::exp(scores[i][j] / eps);
  for (auto& row : q)
    for (auto& x : row) x /= total;
  for (int it = 0; it < iters; ++it) {
    for (auto& row : q) {
      double s = 0;
      for (double x : row) s += x;
      for (auto& x : row) x /= s * static_cast<double>(k);
    }
    for (size_t i = 0; i < b; ++i) {
      double s = 0;
      for (size_t j = 0; j < k; ++j) s += q[j][i];
      for (size_t j = 0; j < k; ++j) q[j][i] /= s * static_cast<double>(b);
    }
  }
  Mat codes(b, std::vector<double>(k));
  for (size_t i = 0; i < b; ++i)
    for (size_t j = 0; j < k; ++j) codes[i][j] = q[j][i] * static_cast<double>(b);
  return codes;
}

// -sum_k q[k] log softmax(s / t)[k]
double soft_cross_entropy(const std::vector<double>& q, const std::vector<double>& s, double t) {
  double mx = -1e300, z = 0, ce = 0;
  for (double x : s) mx = std::max(mx, x / t);
  for (double x : s) z += std::exp(x / t - mx);
  for (size_t k = 0; k < s.size(); ++k) ce -= q[k] * (s[k] / t - mx - std::log(z));
  return ce;
}

TEST(Losses, SinkhornKnoppMatchesSwavReference) {
  torch::Tensor s = torch::tanh(randn(7, 5, 30));  // cosine-like scores in (-1, 1)
  for (auto [eps, iters] : std::vector<std::pair<double, int>>{{0.05, 3}, {0.5, 1}, {0.1, 0}}) {
    SCOPED_TRACE(eps);
    Mat want = sinkhorn_reference(to_mat(s), eps, iters);
    Mat got = to_mat(sslab::ssl::sinkhorn_knopp(s, eps, iters));
    for (size_t i = 0; i < want.size(); ++i)
      for (size_t j = 0; j < want[i].size(); ++j) expect_rel(got[i][j], want[i][j]);
  }
  // Each sample's codes are a distribution; with enough iterations every
  // prototype gets an equal share of the batch (the equipartition).
  torch::Tensor q = sslab::ssl::sinkhorn_knopp(s, 0.3, 200);
  EXPECT_TRUE(torch::allclose(q.sum(1), torch::ones({7}, torch::kFloat64), 1e-9, 1e-12));
  EXPECT_TRUE(torch::allclose(q.sum(0), torch::full({5}, 7.0 / 5, torch::kFloat64), 1e-6, 1e-9)) << q.sum(0);
  // float32 scores with a small epsilon: no overflow (exp(1 / 0.01) > float32's range).
  torch::Tensor f = sslab::ssl::sinkhorn_knopp(s.to(torch::kFloat32), 0.01, 3);
  EXPECT_EQ(f.scalar_type(), torch::kFloat32);
  EXPECT_TRUE(torch::isfinite(f).all().item<bool>());
}

TEST(Losses, SwavSwappedPredictionMatchesFormula) {
  torch::Tensor s0 = randn(6, 4, 31), s1 = randn(6, 4, 32);
  torch::Tensor q0 = sslab::ssl::sinkhorn_knopp(s0, 0.5, 3), q1 = sslab::ssl::sinkhorn_knopp(s1, 0.5, 3);
  double t = 0.1, want = 0;
  Mat a = to_mat(s0), b = to_mat(s1), qa = to_mat(q0), qb = to_mat(q1);
  // 1/2 [ mean_b CE(q0_b, s1_b) + mean_b CE(q1_b, s0_b) ]
  for (int i = 0; i < 6; ++i) want += (soft_cross_entropy(qa[i], b[i], t) + soft_cross_entropy(qb[i], a[i], t)) / 12;
  expect_rel(sslab::ssl::swav_loss({s0, s1}, {q0, q1}, t).item<double>(), want);
  // Codes carry no gradient; the scores of both views do.
  torch::Tensor x0 = s0.clone().requires_grad_(true), x1 = s1.clone().requires_grad_(true);
  torch::Tensor c0 = q0.clone().requires_grad_(true);
  sslab::ssl::swav_loss({x0, x1}, {c0, q1}, t).backward();
  EXPECT_GT(x0.grad().abs().sum().item<double>(), 0);
  EXPECT_GT(x1.grad().abs().sum().item<double>(), 0);
  EXPECT_FALSE(c0.grad().defined());
  // Three views, codes for the first two: pairs (0,1) (0,2) (1,0) (1,2).
  torch::Tensor s2 = randn(6, 4, 33);
  Mat c = to_mat(s2);
  double three = 0;
  for (int i = 0; i < 6; ++i)
    three += (soft_cross_entropy(qa[i], b[i], t) + soft_cross_entropy(qa[i], c[i], t) +
              soft_cross_entropy(qb[i], a[i], t) + soft_cross_entropy(qb[i], c[i], t)) / 24;
  expect_rel(sslab::ssl::swav_loss({s0, s1, s2}, {q0, q1}, t).item<double>(), three);
}

TEST(Losses, DinoMatchesFormulaAndTheCentreFollowsTheTeacher) {
  torch::Tensor st0 = randn(5, 6, 40), st1 = randn(5, 6, 41), st2 = randn(5, 6, 44);
  torch::Tensor te0 = randn(5, 6, 42), te1 = randn(5, 6, 43);
  torch::Tensor center = randn(1, 6, 45) * 0.1;
  const double ts = 0.1, tt = 0.04;
  // t_v = softmax((teacher_v - c) / tt); pairs (v, w != v); mean over rows, then pairs.
  Mat S[3] = {to_mat(st0), to_mat(st1), to_mat(st2)}, T[2] = {to_mat(te0), to_mat(te1)};
  std::vector<double> c = to_mat(center)[0];
  auto teacher_probs = [&](const std::vector<double>& t) {
    std::vector<double> p(t.size());
    double mx = -1e300, z = 0;
    for (size_t k = 0; k < t.size(); ++k) mx = std::max(mx, (t[k] - c[k]) / tt);
    for (size_t k = 0; k < t.size(); ++k) z += p[k] = std::exp((t[k] - c[k]) / tt - mx);
    for (auto& x : p) x /= z;
    return p;
  };
  for (int views : {2, 3}) {
    double want = 0;
    int pairs = 0;
    for (int v = 0; v < 2; ++v)
      for (int w = 0; w < views; ++w) {
        if (w == v) continue;
        double ce = 0;
        for (int i = 0; i < 5; ++i) ce += soft_cross_entropy(teacher_probs(T[v][i]), S[w][i], ts) / 5;
        want += ce;
        ++pairs;
      }
    std::vector<torch::Tensor> student{st0, st1, st2};
    student.resize(views);
    expect_rel(sslab::ssl::dino_loss(student, {te0, te1}, center, ts, tt).item<double>(), want / pairs);
  }
  // The teacher and the centre get no gradient; the student does.
  torch::Tensor a = st0.clone().requires_grad_(true), t0 = te0.clone().requires_grad_(true);
  torch::Tensor cg = center.clone().requires_grad_(true);
  sslab::ssl::dino_loss({a, st1}, {t0, te1}, cg, ts, tt).backward();
  EXPECT_GT(a.grad().abs().sum().item<double>(), 0);
  EXPECT_FALSE(t0.grad().defined());
  EXPECT_FALSE(cg.grad().defined());
  // centre' = m c + (1 - m) mean of the teacher rows over both views.
  torch::Tensor next = sslab::ssl::dino_center(center, {te0, te1}, 0.9);
  ASSERT_EQ(next.sizes(), center.sizes());
  for (int k = 0; k < 6; ++k) {
    double mean = 0;
    for (int v = 0; v < 2; ++v)
      for (int i = 0; i < 5; ++i) mean += T[v][i][k] / 10;
    expect_rel(next[0][k].item<double>(), 0.9 * c[k] + 0.1 * mean);
  }
}

TEST(Losses, TargetsReceiveNoGradient) {
  torch::Tensor p = randn(4, 3, 16).requires_grad_(true), z = randn(4, 3, 17).requires_grad_(true);
  sslab::ssl::negative_cosine(p, z).backward();
  EXPECT_TRUE(p.grad().defined());
  EXPECT_FALSE(z.grad().defined());
  torch::Tensor p2 = randn(4, 3, 18).requires_grad_(true), z2 = randn(4, 3, 19).requires_grad_(true);
  sslab::ssl::byol_loss(p2, z2).backward();
  EXPECT_TRUE(p2.grad().defined());
  EXPECT_FALSE(z2.grad().defined());
  torch::Tensor q = randn(4, 3, 20).requires_grad_(true), k = randn(4, 3, 21).requires_grad_(true);
  sslab::ssl::moco_infonce(q, k, {}, 0.2).backward();
  EXPECT_TRUE(q.grad().defined());
  EXPECT_FALSE(k.grad().defined());
  // Contrastive and non-contrastive losses of two views reach both.
  torch::Tensor a = randn(4, 3, 22).requires_grad_(true), b = randn(4, 3, 23).requires_grad_(true);
  (sslab::ssl::nt_xent(a, b, 0.5) + sslab::ssl::vicreg(a, b, 1, 1, 1).loss + sslab::ssl::barlow_twins(a, b, 0.1)).backward();
  EXPECT_GT(a.grad().abs().sum().item<double>(), 0);
  EXPECT_GT(b.grad().abs().sum().item<double>(), 0);
}

TEST(Losses, RecallAtKCountsTheTrueKeyAmongTheTopK) {
  torch::Tensor q = randn(20, 6, 24), k = q + 0.8 * randn(20, 6, 25);
  Mat qm = to_mat(q), km = to_mat(k);
  auto got = sslab::ssl::recall_at(q, k, {1, 5});
  for (int kk : {1, 5}) {
    int hits = 0;
    for (int i = 0; i < 20; ++i) {
      int higher = 0;
      for (int j = 0; j < 20; ++j) higher += cosine(qm[i], km[j]) > cosine(qm[i], km[i]);
      hits += higher < kk;
    }
    EXPECT_DOUBLE_EQ(got[kk], hits / 20.0);
  }
  EXPECT_GT(got[5], got[1] - 1e-12);
}

TEST(Losses, LabelRecallCountsAnyKeyWithTheQuerysLabel) {
  torch::Tensor q = randn(30, 5, 31), k = q + 0.8 * randn(30, 5, 32);
  torch::Tensor labels = torch::randint(0, 4, {30, 2}, torch::kInt64);  // multi-column labels, rows compared whole
  Mat qm = to_mat(q), km = to_mat(k);
  auto got = sslab::ssl::label_recall_at(q, k, labels, {1, 3});
  auto chance = sslab::ssl::label_chance_at(labels, {1, 3});
  auto same = [&](int i, int j) {
    return labels[i][0].item<int64_t>() == labels[j][0].item<int64_t>() &&
           labels[i][1].item<int64_t>() == labels[j][1].item<int64_t>();
  };
  for (int kk : {1, 3}) {
    int hits = 0;
    double expect_chance = 0;
    for (int i = 0; i < 30; ++i) {
      std::vector<std::pair<double, int>> order;
      for (int j = 0; j < 30; ++j) order.push_back({-cosine(qm[i], km[j]), j});
      std::sort(order.begin(), order.end());
      bool hit = false;
      for (int t = 0; t < kk; ++t) hit = hit || same(i, order[t].second);
      hits += hit;
      // Chance by counting: 1 - C(30 - m, K) / C(30, K).
      int m = 0;
      for (int j = 0; j < 30; ++j) m += same(i, j);
      double miss = 1;
      for (int t = 0; t < kk; ++t) miss *= std::max(0.0, 30.0 - m - t) / (30.0 - t);
      expect_chance += (1 - miss) / 30;
    }
    EXPECT_DOUBLE_EQ(got[kk], hits / 30.0);
    EXPECT_NEAR(chance[kk], expect_chance, 1e-12);
  }
  // With every label distinct, label recall is the pair recall, and chance is K / N.
  torch::Tensor ids = torch::arange(30);
  EXPECT_DOUBLE_EQ(sslab::ssl::label_recall_at(q, k, ids, {1})[1], sslab::ssl::recall_at(q, k, {1})[1]);
  EXPECT_NEAR(sslab::ssl::label_chance_at(ids, {3})[3], 3.0 / 30, 1e-12);
}

TEST(Losses, BadShapesAreClearErrors) {
  try {
    sslab::ssl::nt_xent(torch::randn({4, 3}), torch::randn({5, 3}), 0.5);
    FAIL() << "no error";
  } catch (const sslab::UserError& e) {
    EXPECT_NE(std::string(e.what()).find("nt_xent: expected two [N, D] embeddings of the same shape"), std::string::npos);
  }
  auto message = [](auto f) {
    try {
      f();
    } catch (const sslab::UserError& e) {
      return std::string(e.what());
    }
    return std::string("<no exception>");
  };
  using sslab::ssl::dino_loss;
  using sslab::ssl::sinkhorn_knopp;
  using sslab::ssl::swav_loss;
  torch::Tensor s = torch::randn({4, 3});
  auto says = [&](auto f, const std::string& needle) {
    const std::string msg = message(f);
    EXPECT_NE(msg.find(needle), std::string::npos) << msg;
  };
  says([&] { sinkhorn_knopp(torch::randn({4}), 0.05, 3); }, "expected scores [B, K]");
  says([&] { sinkhorn_knopp(s, 0, 3); }, "epsilon must be > 0");
  says([&] { swav_loss({s}, {s}, 0.1); }, "swav: expected at least 2 views");
  says([&] { swav_loss({s, s}, {s, s, s}, 0.1); }, "swav: expected at least 2 views");
  says([&] { swav_loss({s, torch::randn({4, 5})}, {s}, 0.1); }, "view 1's scores are [4, 5]");
  says([&] { swav_loss({s, s}, {torch::randn({2, 3})}, 0.1); }, "view 0's codes are [2, 3]");
  says([&] { dino_loss({s}, {s}, torch::zeros({3}), 0.1, 0.04); }, "dino: expected at least 2");
  says([&] { dino_loss({s, s}, {torch::randn({4, 5})}, torch::zeros({3}), 0.1, 0.04); }, "teacher view 0 is [4, 5]");
  says([&] { dino_loss({s, s}, {s}, torch::zeros({5}), 0.1, 0.04); }, "the center has 5 values");
  says([&] { sslab::ssl::dino_center(torch::zeros({5}), {s}, 0.9); }, "for a center of 5 values");
}

}  // namespace
