// How the decode matvecs' input row is split among threads while it is turned into the weight
// pipe's B fragments in shared memory (load_row_hi_lo in device_common.cuh): by half blocks. The
// row is in blocks of 16 values (64 bytes fp32 in, the same 64 bytes of hi/lo bf16 pairs out);
// half h of a block takes values a = [4h, 4h + 4) and c = [8 + 4h, 12 + 4h), whose hi pairs fill a's
// 16 bytes and lo pairs fill c's, so each thread rewrites in place exactly what it read and needs no
// barrier between its copy and its rewrite.
//
// Threads 2b and 2b + 1 take block b; for every other pair of blocks c comes first, so that the
// 16-byte accesses of 8 neighbouring threads (one phase of a 128-bit shared memory access) fall on 8
// different bank quads. With a thread per whole block, 64 bytes apart, they fell on 2 (4-way
// conflicts), and half the threads had no block of a 2048-wide row: traced, the pass over the row
// after its sum of squares took ~0.7 us, and the half blocks made decode 2-4% faster
// (docs/PERFORMANCE.md, session 44). Plain integer arithmetic, tested on the host.
#pragma once

#include <stdint.h>

#include "mk/isa.h"  // MK_HD

namespace mk::cuda {

struct HalfBlock {
  uint32_t a, c;  // floats from the row's start
  bool c_first;   // c is read and written before a
};

// Half u of a row's blocks (u < 2 * the row's blocks).
MK_HD inline HalfBlock half_block(uint32_t u) {
  const uint32_t a = u / 2 * 16 + u % 2 * 4;
  return {a, a + 8, (u & 4) != 0};
}

}  // namespace mk::cuda
