// BatchTensors that view a ForwardBatch kept in host memory: the "upload" of backends whose
// tensors are host memory (cpu, null). The views stay valid while `batch` is unchanged.
#pragma once

#include "backend/forward_batch.h"

namespace llmserve {

BatchTensors host_batch_views(const ForwardBatch& batch);

}  // namespace llmserve
