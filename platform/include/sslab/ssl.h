// Joint-embedding losses, modality-agnostic, as published. Every function
// takes embeddings [N, D] of this rank's samples; with a communicator
// (data-parallel run) the batch-level terms (negatives, variance,
// covariance, cross-correlation) cover the global batch, differentiably.
// The objectives `ssl.*` registered by the platform wrap these.
#pragma once

#include <map>
#include <vector>

#include <torch/torch.h>

#include "sslab/export.h"

namespace sslab {

class Communicator;

namespace ssl {

// SimCLR's NT-Xent: 2N anchors (both views), each with its other view as
// the positive and the remaining 2N-2 embeddings as negatives; cosine
// similarity / temperature; mean cross-entropy.
SSLAB_API torch::Tensor nt_xent(const torch::Tensor& z1, const torch::Tensor& z2, double temperature,
                                Communicator* comm = nullptr);

// InfoNCE of queries against their keys (same row) and a queue of negatives
// [K, D] (MoCo v2); q and k are L2-normalised here; the queue must already be.
// An undefined queue uses the other keys of the batch as negatives (MoCo v3).
SSLAB_API torch::Tensor moco_infonce(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& queue,
                                     double temperature, Communicator* comm = nullptr);

// BYOL: 2 - 2 cos(p, z) averaged over rows (z is a target: detached here).
SSLAB_API torch::Tensor byol_loss(const torch::Tensor& p, const torch::Tensor& z);

// SimSiam: -cos(p, stopgrad(z)) averaged over rows.
SSLAB_API torch::Tensor negative_cosine(const torch::Tensor& p, const torch::Tensor& z);

struct VicRegTerms {
  torch::Tensor loss, invariance, variance, covariance;
};
// VICReg: sim * MSE(z1, z2) + var * (hinge(1 - std) per dim, both branches
// averaged) + cov * (squared off-diagonal covariance / D, both branches summed).
SSLAB_API VicRegTerms vicreg(const torch::Tensor& z1, const torch::Tensor& z2, double sim_coeff, double std_coeff,
                             double cov_coeff, Communicator* comm = nullptr, double eps = 1e-4);

// Barlow Twins: C = standardised(z1)^T standardised(z2) / N;
// sum_i (1 - C_ii)^2 + lambda * sum_{i != j} C_ij^2.
SSLAB_API torch::Tensor barlow_twins(const torch::Tensor& z1, const torch::Tensor& z2, double lambda,
                                     Communicator* comm = nullptr, double eps = 1e-5);

// CLIP: symmetric cross-entropy of scale * a_n b_n^T (a, b L2-normalised
// here) with the matching pair on the diagonal.
SSLAB_API torch::Tensor clip_loss(const torch::Tensor& a, const torch::Tensor& b, const torch::Tensor& logit_scale,
                                  Communicator* comm = nullptr);

// SwAV (Caron et al. 2020), the codes: Sinkhorn-Knopp on scores [B, K] (this
// rank's samples against K prototypes; cosine similarities), as the paper's
// reference: Q = exp(scores / epsilon)^T normalised to sum 1, then
// `iterations` rounds of scaling each prototype's row to 1/K and each
// sample's column to 1/B (B the global batch: sums over every rank with a
// communicator). Returns B * Q^T [B, K]: each row a distribution over the
// prototypes, the prototypes equally used over the batch. Computed in
// float64, without gradient.
SSLAB_API torch::Tensor sinkhorn_knopp(const torch::Tensor& scores, double epsilon, int64_t iterations,
                                       Communicator* comm = nullptr);

// SwAV's swapped prediction over views: for every pair of views v != w, the
// cross-entropy -sum_k q_v[b, k] log softmax(scores_w[b] / temperature)_k
// with codes q_v of view v (no gradient through them) averaged over rows,
// then over the pairs. codes.size() <= scores.size(): the views with codes
// come first (multi-crop computes codes for the large crops only).
SSLAB_API torch::Tensor swav_loss(const std::vector<torch::Tensor>& scores, const std::vector<torch::Tensor>& codes,
                                  double temperature);

// DINO (Caron et al. 2021): for every teacher view v and student view w != v,
// the cross-entropy -sum_k t_v[b, k] log softmax(s_w[b] / student_temp)_k with
// t_v = softmax((teacher_v - center) / teacher_temp) (no gradient), averaged
// over rows, then over the pairs. The teacher's views are the student's first
// teacher.size() views (the global crops).
SSLAB_API torch::Tensor dino_loss(const std::vector<torch::Tensor>& student, const std::vector<torch::Tensor>& teacher,
                                  const torch::Tensor& center, double student_temp, double teacher_temp);

// DINO's centre after a step: center * momentum + (1 - momentum) * the mean
// row of the teacher outputs over all its views and, with a communicator,
// every rank. center [1, K] or [K]; returns the same shape, no gradient.
SSLAB_API torch::Tensor dino_center(const torch::Tensor& center, const std::vector<torch::Tensor>& teacher,
                                    double momentum, Communicator* comm = nullptr);

// Top-1 accuracy of the positive among a row's candidates (for logs):
// fraction of rows of a whose nearest row of b (cosine) is the same index.
SSLAB_API double pair_accuracy(const torch::Tensor& a, const torch::Tensor& b);

// Recall@K of cosine retrieval: for each row i of queries, whether row i of
// keys is among its K most similar keys; K -> fraction of rows.
SSLAB_API std::map<int64_t, double> recall_at(const torch::Tensor& queries, const torch::Tensor& keys,
                                              const std::vector<int64_t>& ks);

// Label-level Recall@K: a query counts as found when any of its K most
// similar keys carries the same label (labels [N] or [N, L]; rows equal),
// for pairs whose labels do not single out one partner (a caption naming
// only the items of a clip).
SSLAB_API std::map<int64_t, double> label_recall_at(const torch::Tensor& queries, const torch::Tensor& keys,
                                                    const torch::Tensor& labels, const std::vector<int64_t>& ks);

// Chance of label_recall_at for a random ranking: mean over queries of
// 1 - C(N - m, K) / C(N, K), m = keys with the query's label.
SSLAB_API std::map<int64_t, double> label_chance_at(const torch::Tensor& labels, const std::vector<int64_t>& ks);

}  // namespace ssl
}  // namespace sslab
