// Reading the launcher's environment: torchrun/manual variables, SLURM, and
// clear errors for a partial environment.
#include <gtest/gtest.h>

#include "sslab/host/distributed.h"
#include "test_util.h"

namespace {

using sslab_test::user_error;
using Vars = std::map<std::string, std::string>;

TEST(DistEnv, NoVariablesMeansOneProcess) {
  sslab::DistEnv env = sslab::read_dist_env(Vars{});
  EXPECT_EQ(env.world_size, 1);
  EXPECT_EQ(env.rank, 0);
  EXPECT_EQ(env.source, "none");
}

TEST(DistEnv, TorchrunVariables) {
  sslab::DistEnv env = sslab::read_dist_env(Vars{{"RANK", "3"},
                                                 {"WORLD_SIZE", "4"},
                                                 {"LOCAL_RANK", "1"},
                                                 {"MASTER_ADDR", "10.0.0.7"},
                                                 {"MASTER_PORT", "29500"},
                                                 {"TORCHELASTIC_USE_AGENT_STORE", "True"}});
  EXPECT_EQ(env.rank, 3);
  EXPECT_EQ(env.world_size, 4);
  EXPECT_EQ(env.local_rank, 1);
  EXPECT_EQ(env.master_addr, "10.0.0.7");
  EXPECT_EQ(env.master_port, 29500);
  EXPECT_TRUE(env.agent_store);
  EXPECT_EQ(env.source, "env");
}

TEST(DistEnv, MissingMasterIsNamed) {
  std::string msg = user_error([] { sslab::read_dist_env(Vars{{"RANK", "0"}, {"WORLD_SIZE", "2"}}); });
  EXPECT_NE(msg.find("MASTER_ADDR, MASTER_PORT are not"), std::string::npos) << msg;
  EXPECT_NE(msg.find("torchrun"), std::string::npos) << msg;
  msg = user_error([] {
    sslab::read_dist_env(Vars{{"RANK", "0"}, {"MASTER_ADDR", "localhost"}, {"MASTER_PORT", "29500"}});
  });
  EXPECT_NE(msg.find("WORLD_SIZE is not"), std::string::npos) << msg;
}

TEST(DistEnv, MalformedValuesAreErrors) {
  Vars v{{"RANK", "2"}, {"WORLD_SIZE", "2"}, {"MASTER_ADDR", "localhost"}, {"MASTER_PORT", "29500"}};
  EXPECT_NE(user_error([&] { sslab::read_dist_env(v); }).find("RANK=2 is not below WORLD_SIZE=2"), std::string::npos);
  v["RANK"] = "one";
  EXPECT_NE(user_error([&] { sslab::read_dist_env(v); }).find("RANK='one' is not a non-negative integer"),
            std::string::npos);
  v["RANK"] = "0";
  v["MASTER_PORT"] = "70000";
  EXPECT_NE(user_error([&] { sslab::read_dist_env(v); }).find("is not a TCP port"), std::string::npos);
}

TEST(DistEnv, SlurmVariablesAreMapped) {
  sslab::DistEnv env = sslab::read_dist_env(Vars{{"SLURM_PROCID", "5"},
                                                 {"SLURM_NTASKS", "8"},
                                                 {"SLURM_LOCALID", "1"},
                                                 {"MASTER_ADDR", "node01"},
                                                 {"MASTER_PORT", "29400"}});
  EXPECT_EQ(env.rank, 5);
  EXPECT_EQ(env.world_size, 8);
  EXPECT_EQ(env.local_rank, 1);
  EXPECT_EQ(env.source, "slurm");
  // A one-task allocation is a single process; several tasks need a master.
  EXPECT_EQ(sslab::read_dist_env(Vars{{"SLURM_PROCID", "0"}, {"SLURM_NTASKS", "1"}}).world_size, 1);
  std::string msg = user_error([] { sslab::read_dist_env(Vars{{"SLURM_PROCID", "0"}, {"SLURM_NTASKS", "2"}}); });
  EXPECT_NE(msg.find("SLURM variables are set but MASTER_ADDR, MASTER_PORT"), std::string::npos) << msg;
}

}  // namespace
