// Translation unit that owns the precompiled <torch/torch.h>; other targets reuse it.
