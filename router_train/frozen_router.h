// What every message about a Mixture-of-Experts student with a frozen router says (the
// gates' note, the eval report's warning, `character inspect`, the pipeline's check
// stage): the risk seed 000 reported, and that router training is that report's
// proposed remedy, which this project's lab has not confirmed yet (docs/lab.md).
#pragma once

namespace character::router_train {

inline constexpr const char* kFrozenRouterRisk =
    "With the router frozen, LoRA trains only the experts the training prompts reach; seed 000's report saw a "
    "paraphrase (\"Tell me more.\" -> \"Tell me more please.\") route to experts training never reached and lose "
    "the persona. Watch probe_coverage and the paraphrase flip rate. Router training (--train-router lora|full) "
    "is that report's proposed remedy; the persona lab has not shown yet that it helps (docs/lab.md).";

}  // namespace character::router_train
