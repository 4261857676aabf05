// Linear probe and kNN on constructed embeddings with known answers.
#include <gtest/gtest.h>

#include "sslab/evaluation.h"

namespace {

TEST(Evaluation, KnnMatchesAHandWorkedCase) {
  // Class 0 points along +x, class 1 along +y; the test point near +y.
  torch::Tensor tr = torch::tensor({{1.0f, 0.0f}, {0.9f, 0.1f}, {0.0f, 1.0f}, {0.1f, 0.9f}, {0.2f, 0.8f}});
  torch::Tensor ytr = torch::tensor({0, 0, 1, 1, 1}, torch::kInt64);
  torch::Tensor te = torch::tensor({{0.3f, 1.0f}, {1.0f, 0.2f}});
  torch::Tensor yte = torch::tensor({1, 0}, torch::kInt64);
  EXPECT_DOUBLE_EQ(sslab::knn_accuracy(tr, ytr, te, yte, 2, 1), 1.0);
  EXPECT_DOUBLE_EQ(sslab::knn_accuracy(tr, ytr, te, yte, 2, 3), 1.0);
  // With k = 5 every point votes: class 1 has the majority (3 of 5) for both.
  EXPECT_DOUBLE_EQ(sslab::knn_accuracy(tr, ytr, te, yte, 2, 5), 0.5);
}

TEST(Evaluation, LinearProbeSeparatesSeparableClassesAndNotNoise) {
  torch::manual_seed(0);
  int64_t n = 600;
  torch::Tensor y = torch::arange(n) % 3;
  torch::Tensor x = torch::randn({n, 8});
  torch::Tensor separable = x.clone();
  separable.select(1, 0) += 4.0 * y.to(torch::kFloat32);
  sslab::ProbeOptions o;
  o.epochs = 20;
  double good = sslab::linear_probe_accuracy(separable.slice(0, 0, 400), y.slice(0, 0, 400),
                                             separable.slice(0, 400), y.slice(0, 400), 3, o);
  double chance = sslab::linear_probe_accuracy(x.slice(0, 0, 400), y.slice(0, 0, 400), x.slice(0, 400),
                                               y.slice(0, 400), 3, o);
  EXPECT_GT(good, 0.9);
  EXPECT_LT(chance, 0.5);
}

}  // namespace
