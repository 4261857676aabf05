// Collectives and gradient averaging with two Gloo ranks as two threads of
// this process, checked against the same computation in one process.
#include <gtest/gtest.h>

#include <array>
#include <thread>

#include "sslab/host/distributed.h"
#include "sslab/nn/mlp.h"
#include "sslab/nn/norm.h"
#include "sslab/ssl.h"
#include "test_util.h"

namespace {

using sslab_test::free_port;

using Comms = std::array<std::shared_ptr<sslab::Communicator>, 2>;

// Runs f(rank) on ranks 0 and 1, one thread each; rethrows the first failure.
template <typename F>
void in_two_threads(F f) {
  std::exception_ptr errors[2];
  auto body = [&](int rank) {
    try {
      f(rank);
    } catch (...) {
      errors[rank] = std::current_exception();
    }
  };
  std::thread t0(body, 0), t1(body, 1);
  t0.join();
  t1.join();
  for (auto& e : errors)
    if (e) std::rethrow_exception(e);
}

// Ranks 0 and 1, each with its own Gloo process group (connected in two
// threads: the rendezvous needs both at once). A test builds whatever draws
// random numbers (modules) after this and before run_on_two_ranks: the rank
// threads must never share the global generator, whose draws would then
// depend on how the threads interleave (a flaky test; issue 23 finding 3).
Comms connect_two_ranks() {
  int port = free_port();
  Comms comms;
  in_two_threads([&](int rank) {
    sslab::DistEnv env;
    env.rank = rank;
    env.world_size = 2;
    env.master_addr = "127.0.0.1";
    env.master_port = port;
    comms[rank] = sslab::connect(env, "gloo", std::chrono::milliseconds(20000), torch::kCPU);
  });
  return comms;
}

// Runs f(comm) on both ranks at once, one thread each.
template <typename F>
void run_on_two_ranks(const Comms& comms, F f) {
  in_two_threads([&](int rank) { f(comms[rank]); });
}

// Connects two ranks and runs f(comm) on each; for tests that draw nothing
// random inside f.
template <typename F>
void on_two_ranks(F f) {
  run_on_two_ranks(connect_two_ranks(), f);
}

TEST(Collectives, BroadcastReduceGather) {
  on_two_ranks([](std::shared_ptr<sslab::Communicator> comm) {
    int r = comm->rank();
    EXPECT_EQ(comm->world_size(), 2);
    EXPECT_EQ(comm->backend(), "gloo");
    std::vector<torch::Tensor> b{torch::full({3}, static_cast<float>(r + 1)), torch::full({2, 2}, r * 10.0)};
    comm->broadcast(b, 0);
    EXPECT_TRUE(torch::equal(b[0], torch::full({3}, 1.0f)));
    EXPECT_TRUE(torch::equal(b[1], torch::zeros({2, 2}, torch::kFloat64)));
    std::vector<torch::Tensor> s{torch::full({4}, static_cast<float>(r + 1)), torch::full({1}, 2.0f * r)};
    comm->all_reduce_sum(s);
    EXPECT_TRUE(torch::equal(s[0], torch::full({4}, 3.0f)));
    EXPECT_TRUE(torch::equal(s[1], torch::full({1}, 2.0f)));
    auto g = comm->all_gather(torch::full({2}, static_cast<int64_t>(r)));
    ASSERT_EQ(g.size(), 2u);
    EXPECT_TRUE(torch::equal(g[1], torch::ones({2}, torch::kInt64)));
    auto m = sslab::average_metrics(*comm, {{"loss", r == 0 ? 1.0 : 3.0}, {"acc", 0.5}});
    EXPECT_DOUBLE_EQ(m["loss"], 2.0);
    EXPECT_DOUBLE_EQ(m["acc"], 0.5);
    comm->barrier();
  });
}

// A contrastive-style loss over the gathered batch: each rank's loss covers
// its own rows against every row. Averaging the ranks' gradients must give
// the gradient of the mean loss computed by one process on the whole batch.
TEST(Collectives, GatherWithGradMatchesOneProcess) {
  torch::manual_seed(3);
  torch::Tensor x = torch::randn({8, 5}, torch::kFloat64);
  torch::Tensor w0 = torch::randn({5, 4}, torch::kFloat64);
  auto loss_of = [](const torch::Tensor& local, const torch::Tensor& all) {
    return torch::logsumexp(torch::mm(local, all.t()), 1).sum() - (local * local).sum();
  };
  torch::Tensor w_ref = w0.clone().requires_grad_(true);
  torch::Tensor z = torch::mm(x, w_ref);
  // mean over ranks of each rank's loss
  (0.5 * (loss_of(z.narrow(0, 0, 4), z) + loss_of(z.narrow(0, 4, 4), z))).backward();
  torch::Tensor expected = w_ref.grad().clone();

  on_two_ranks([&](std::shared_ptr<sslab::Communicator> comm) {
    torch::Tensor w = w0.clone().requires_grad_(true);
    torch::Tensor local = torch::mm(x.narrow(0, 4 * comm->rank(), 4), w);
    torch::Tensor all = sslab::all_gather_with_grad(comm.get(), local);
    ASSERT_EQ(all.size(0), 8);
    loss_of(local, all).backward();
    sslab::GradientSync sync(comm, {w}, 1 << 20, false);
    sync.arm();
    sync.finish();
    EXPECT_TRUE(torch::allclose(w.grad(), expected, 1e-10, 1e-12)) << w.grad() - expected;
  });
}

// Batch statistics summed over ranks (synchronised batch norm).
TEST(Collectives, ReduceWithGradMatchesOneProcess) {
  torch::manual_seed(4);
  torch::Tensor x = torch::randn({6, 3}, torch::kFloat64);
  torch::Tensor w0 = torch::randn({3, 3}, torch::kFloat64);
  auto loss_of = [](const torch::Tensor& local, const torch::Tensor& mean) {
    return ((local - mean).pow(2) * torch::arange(1, 4, torch::kFloat64)).sum();
  };
  torch::Tensor w_ref = w0.clone().requires_grad_(true);
  torch::Tensor z = torch::mm(x, w_ref);
  torch::Tensor mean = z.sum(0) / 6;
  (0.5 * (loss_of(z.narrow(0, 0, 3), mean) + loss_of(z.narrow(0, 3, 3), mean))).backward();
  torch::Tensor expected = w_ref.grad().clone();

  on_two_ranks([&](std::shared_ptr<sslab::Communicator> comm) {
    torch::Tensor w = w0.clone().requires_grad_(true);
    torch::Tensor local = torch::mm(x.narrow(0, 3 * comm->rank(), 3), w);
    torch::Tensor m = sslab::all_reduce_sum_with_grad(comm.get(), local.sum(0)) / 6;
    loss_of(local, m).backward();
    sslab::GradientSync sync(comm, {w}, 1 << 20, false);
    sync.arm();
    sync.finish();
    EXPECT_TRUE(torch::allclose(w.grad(), expected, 1e-10, 1e-12)) << w.grad() - expected;
  });
}

// SwAV over two ranks = one process on the global batch: the Sinkhorn-Knopp
// codes (sums over ranks) and the prototypes' and projections' gradients.
TEST(Collectives, SwavMatchesOneProcess) {
  torch::manual_seed(8);
  torch::Tensor x0 = torch::randn({8, 4}, torch::kFloat64), x1 = torch::randn({8, 4}, torch::kFloat64);
  torch::Tensor w0 = torch::randn({5, 4}, torch::kFloat64);
  auto unit = [](const torch::Tensor& t) { return t / t.norm(2, 1, true); };
  auto loss_of = [&](const torch::Tensor& a, const torch::Tensor& b, const torch::Tensor& w, sslab::Communicator* comm) {
    torch::Tensor s0 = torch::mm(unit(a), unit(w).t()), s1 = torch::mm(unit(b), unit(w).t());
    std::vector<torch::Tensor> codes{sslab::ssl::sinkhorn_knopp(s0, 0.05, 3, comm),
                                     sslab::ssl::sinkhorn_knopp(s1, 0.05, 3, comm)};
    return std::make_pair(sslab::ssl::swav_loss({s0, s1}, codes, 0.1), codes[0]);
  };
  torch::Tensor w_ref = w0.clone().requires_grad_(true);
  auto [loss, codes] = loss_of(x0, x1, w_ref, nullptr);
  loss.backward();
  torch::Tensor expected = w_ref.grad().clone();

  on_two_ranks([&](std::shared_ptr<sslab::Communicator> comm) {
    torch::Tensor w = w0.clone().requires_grad_(true);
    const int64_t r = comm->rank();
    auto [l, q] = loss_of(x0.narrow(0, 4 * r, 4), x1.narrow(0, 4 * r, 4), w, comm.get());
    EXPECT_TRUE(torch::allclose(q, codes.narrow(0, 4 * r, 4), 1e-10, 1e-12)) << q - codes.narrow(0, 4 * r, 4);
    l.backward();
    sslab::GradientSync sync(comm, {w}, 1 << 20, false);
    sync.arm();
    sync.finish();
    EXPECT_TRUE(torch::allclose(w.grad(), expected, 1e-10, 1e-12)) << w.grad() - expected;
  });
}

// DINO over two ranks = one process: the student's gradients and the
// teacher centre (a mean over every rank's rows).
TEST(Collectives, DinoMatchesOneProcess) {
  torch::manual_seed(9);
  torch::Tensor x0 = torch::randn({6, 3}, torch::kFloat64), x1 = torch::randn({6, 3}, torch::kFloat64);
  torch::Tensor t0 = torch::randn({6, 7}, torch::kFloat64), t1 = torch::randn({6, 7}, torch::kFloat64);
  torch::Tensor w0 = torch::randn({3, 7}, torch::kFloat64), center = torch::randn({1, 7}, torch::kFloat64) * 0.1;
  torch::Tensor w_ref = w0.clone().requires_grad_(true);
  sslab::ssl::dino_loss({torch::mm(x0, w_ref), torch::mm(x1, w_ref)}, {t0, t1}, center, 0.1, 0.04).backward();
  torch::Tensor expected = w_ref.grad().clone();
  torch::Tensor expected_center = sslab::ssl::dino_center(center, {t0, t1}, 0.9);

  on_two_ranks([&](std::shared_ptr<sslab::Communicator> comm) {
    torch::Tensor w = w0.clone().requires_grad_(true);
    const int64_t r = comm->rank();
    auto rows = [&](const torch::Tensor& t) { return t.narrow(0, 3 * r, 3); };
    sslab::ssl::dino_loss({torch::mm(rows(x0), w), torch::mm(rows(x1), w)}, {rows(t0), rows(t1)}, center, 0.1, 0.04)
        .backward();
    sslab::GradientSync sync(comm, {w}, 1 << 20, false);
    sync.arm();
    sync.finish();
    EXPECT_TRUE(torch::allclose(w.grad(), expected, 1e-10, 1e-12)) << w.grad() - expected;
    torch::Tensor c = sslab::ssl::dino_center(center, {rows(t0), rows(t1)}, 0.9, comm.get());
    EXPECT_TRUE(torch::allclose(c, expected_center, 1e-12, 1e-14)) << c - expected_center;
  });
}

// Synchronised batch norm in an MLP head over two ranks = BatchNorm1d over
// the whole batch in one process (outputs, running statistics, gradients).
TEST(Collectives, SyncBatchNormMatchesOneProcess) {
  torch::manual_seed(6);
  torch::Tensor x = torch::randn({8, 5}) * 3 + 1;
  torch::Tensor coeff = torch::randn({8, 4});
  torch::manual_seed(7);
  sslab::nn::Mlp ref(sslab::nn::MlpOptions({5, 6, 4}).norm("batch"));
  torch::Tensor y_ref = ref->forward(x);
  (0.5 * (y_ref * coeff).sum()).backward();

  // Each rank's head is built here, before the rank threads start (they must
  // not draw from the global generator at once), and starts from the
  // reference's weights, copied.
  Comms comms = connect_two_ranks();
  std::vector<sslab::nn::Mlp> heads;
  for (const auto& comm : comms) {
    heads.emplace_back(sslab::nn::MlpOptions({5, 6, 4}).norm("batch").sync(comm));
    torch::NoGradGuard no_grad;
    auto params = heads.back()->parameters();
    auto initial = ref->parameters();
    ASSERT_EQ(params.size(), initial.size());
    for (size_t i = 0; i < params.size(); ++i) params[i].copy_(initial[i]);
  }
  run_on_two_ranks(comms, [&](std::shared_ptr<sslab::Communicator> comm) {
    sslab::nn::Mlp& head = heads[comm->rank()];
    ASSERT_NE(head->layers[1]->name().find("SyncBatchNorm"), std::string::npos) << head->layers[1]->name();
    int r = comm->rank();
    torch::Tensor y = head->forward(x.narrow(0, 4 * r, 4));
    EXPECT_TRUE(torch::allclose(y, y_ref.narrow(0, 4 * r, 4), 1e-4, 1e-5));
    (y * coeff.narrow(0, 4 * r, 4)).sum().backward();
    sslab::GradientSync sync(comm, head->parameters(), 1 << 20, false);
    sync.arm();
    sync.finish();
    auto mine = head->named_parameters();
    for (const auto& p : ref->named_parameters())
      EXPECT_TRUE(torch::allclose(mine[p.key()].grad(), p.value().grad(), 1e-4, 1e-5)) << p.key();
    auto buffers = head->named_buffers();
    for (const auto& b : ref->named_buffers())
      EXPECT_TRUE(torch::allclose(buffers[b.key()].to(torch::kFloat64), b.value().to(torch::kFloat64), 1e-4, 1e-5))
          << b.key();
  });
}

struct Net : torch::nn::Module {
  Net() {
    a = register_module("a", torch::nn::Linear(6, 32));
    b = register_module("b", torch::nn::Linear(32, 32));
    c = register_module("c", torch::nn::Linear(32, 2));
    rank1_only = register_parameter("rank1_only", torch::ones({3}));
    unused = register_parameter("unused", torch::ones({4}));
  }
  torch::Tensor forward(const torch::Tensor& x) { return c(torch::tanh(b(torch::tanh(a(x))))); }
  torch::nn::Linear a{nullptr}, b{nullptr}, c{nullptr};
  torch::Tensor rank1_only, unused;
};

// Bucketed, overlapped averaging over two ranks = the gradient of the mean
// loss over both ranks' data in one process, with accumulation.
void check_gradient_sync(bool overlap) {
  torch::manual_seed(5);
  torch::Tensor x = torch::randn({2, 8, 6});  // micro-batch, rows (4 per rank), features
  Net ref;
  auto loss_of = [](Net& n, const torch::Tensor& in, bool rank1) {
    torch::Tensor l = n.forward(in).pow(2).mean();
    return rank1 ? l + n.rank1_only.sum() : l;
  };
  for (int micro = 0; micro < 2; ++micro) {
    torch::Tensor l = 0.5 * (loss_of(ref, x[micro].narrow(0, 0, 4), false) + loss_of(ref, x[micro].narrow(0, 4, 4), true));
    l.backward();
  }
  // The ranks' nets are built before the rank threads start, from the
  // reference's weights.
  Comms comms = connect_two_ranks();
  std::array<Net, 2> nets;
  for (Net& net : nets) {
    torch::NoGradGuard g;
    auto src = ref.parameters();
    auto dst = net.parameters();
    for (size_t i = 0; i < src.size(); ++i) dst[i].copy_(src[i]);
  }
  run_on_two_ranks(comms, [&](std::shared_ptr<sslab::Communicator> comm) {
    Net& net = nets[comm->rank()];
    sslab::GradientSync sync(comm, net.parameters(), 256, overlap);  // several buckets
    EXPECT_GE(sync.buckets(), 3);
    for (int micro = 0; micro < 2; ++micro) {
      torch::Tensor l = loss_of(net, x[micro].narrow(0, 4 * comm->rank(), 4), comm->rank() == 1);
      if (micro == 1) sync.arm();
      l.backward();
      if (micro == 1) sync.finish();
    }
    if (overlap)
      EXPECT_GT(sync.overlapped_buckets(), 0);
    else
      EXPECT_EQ(sync.overlapped_buckets(), 0);
    auto mine = net.named_parameters();
    for (const auto& p : ref.named_parameters()) {
      const torch::Tensor& g = mine[p.key()].grad();
      if (p.key() == "unused") {
        EXPECT_FALSE(g.defined()) << "a parameter without gradient on any rank must keep none";
        continue;
      }
      ASSERT_TRUE(g.defined()) << p.key();
      EXPECT_TRUE(torch::allclose(g, p.value().grad(), 1e-5, 1e-6)) << p.key();
    }
  });
}

TEST(GradientSync, OverlappedBucketsMatchOneProcess) { check_gradient_sync(true); }
TEST(GradientSync, BucketsAfterBackwardMatchOneProcess) { check_gradient_sync(false); }

TEST(Collectives, UnreachableMasterIsAClearError) {
  sslab::DistEnv env;
  env.rank = 1;
  env.world_size = 2;
  env.master_addr = "127.0.0.1";
  env.master_port = free_port();  // nobody listens
  std::string msg = sslab_test::user_error(
      [&] { sslab::connect(env, "gloo", std::chrono::milliseconds(1500), torch::kCPU); });
  EXPECT_NE(msg.find("cannot reach the rendezvous store at 127.0.0.1:"), std::string::npos) << msg;
}

TEST(Collectives, NcclNeedsCuda) {
  sslab::DistEnv env;
  env.world_size = 2;
  env.master_addr = "127.0.0.1";
  env.master_port = 1;
  std::string msg = sslab_test::user_error([&] { sslab::connect(env, "nccl", std::chrono::milliseconds(100), torch::kCPU); });
  EXPECT_NE(msg.find("nccl"), std::string::npos) << msg;
}

}  // namespace
