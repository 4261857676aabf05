// The CUDA path end to end: a smoke recipe trained on the GPU in fp32 and
// under bf16 autocast, a checkpoint written on the GPU read back on the CPU,
// and the NCCL collectives on a world of one. Skipped without a GPU.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <filesystem>

#include "sslab/host/distributed.h"
#include "test_util.h"

namespace {

namespace fs = std::filesystem;
using sslab_test::metric;
using sslab_test::TempDir;

#define SKIP_WITHOUT_CUDA() \
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device (LibTorch " TORCH_VERSION ")"

const std::string kSmoke = std::string(SSLAB_SOURCE_DIR) + "/recipes/smoke/vision_mae.toml";

// `sslab train` of the smoke recipe on the GPU with `sets`; the run folder.
std::string train_on_gpu(const TempDir& dir, const std::string& sets) {
  auto r = sslab_test::run(sslab_test::sslab_cli() + " train " + kSmoke + " --out " + dir / "run" +
                           " --set train.device='\"cuda\"' " + sets);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  return dir / "run";
}

void expect_trains(const std::string& run_dir) {
  auto loss = metric(run_dir, "loss");
  ASSERT_GE(loss.size(), 2u);
  for (double l : loss) EXPECT_TRUE(std::isfinite(l)) << "non-finite loss on the GPU";
  EXPECT_LT(loss.back(), 0.9 * loss.front()) << "loss did not fall";
}

TEST(CudaTraining, SmokeRecipeTrainsOnTheGpuInFp32) {
  SKIP_WITHOUT_CUDA();
  TempDir dir;
  std::string run = train_on_gpu(dir, "");
  expect_trains(run);
  EXPECT_TRUE(fs::exists(run + "/eval.json")) << "evaluation did not run after GPU training";
}

TEST(CudaTraining, SmokeRecipeTrainsUnderBf16Autocast) {
  SKIP_WITHOUT_CUDA();
  TempDir dir;
  expect_trains(train_on_gpu(dir, "--set train.precision='\"bf16\"'"));
}

TEST(CudaTraining, GpuCheckpointEvaluatesOnTheCpu) {
  SKIP_WITHOUT_CUDA();
  TempDir dir;
  std::string run = train_on_gpu(dir, "--no-eval");
  auto e = sslab_test::run(sslab_test::sslab_cli() + " eval " + run + " --set train.device='\"cpu\"'");
  ASSERT_EQ(e.exit_code, 0) << e.err;
  EXPECT_TRUE(fs::exists(run + "/eval.json"));
}

TEST(CudaNccl, CollectivesOnAWorldOfOne) {
  SKIP_WITHOUT_CUDA();
  sslab::DistEnv env;
  env.rank = 0;
  env.world_size = 1;
  env.master_addr = "127.0.0.1";
  env.master_port = sslab_test::free_port();
  auto comm = sslab::connect(env, "nccl", std::chrono::milliseconds(60000), torch::Device(torch::kCUDA, 0));
  EXPECT_EQ(comm->backend(), "nccl");
  auto opts = torch::TensorOptions().device(torch::kCUDA, 0);
  std::vector<torch::Tensor> t{torch::arange(8, opts.dtype(torch::kFloat))};
  comm->all_reduce_sum(t);
  EXPECT_TRUE(torch::equal(t[0].cpu(), torch::arange(8, torch::kFloat)));
  comm->broadcast(t, 0);
  auto gathered = comm->all_gather(t[0]);
  ASSERT_EQ(gathered.size(), 1u);
  EXPECT_TRUE(gathered[0].is_cuda());
  auto x = torch::randn({4, 3}, opts).requires_grad_();
  auto y = sslab::all_gather_with_grad(comm.get(), x);
  y.sum().backward();
  EXPECT_TRUE(torch::allclose(x.grad().cpu(), torch::ones({4, 3})));
  comm->barrier();
}

}  // namespace
