// The trainer's optimizer (train.optimizer: adamw or sgd) with two parameter
// groups: weight decay on weights, none on biases and norm weights (dim < 2).
#pragma once

#include <memory>
#include <vector>

#include <torch/torch.h>

#include "sslab/recipe.h"

namespace sslab {

// From the validated [train] table (optimizer, lr, weight_decay, betas, momentum).
std::unique_ptr<torch::optim::Optimizer> make_optimizer(const Config& train, const std::vector<torch::Tensor>& params);
// Sets the learning rate of every parameter group.
void set_lr(torch::optim::Optimizer& optimizer, double lr);

}  // namespace sslab
