// How weight matrices lie in GPU memory: in pages. Rows go in groups of kPageRows; each group is
// stored as its column chunks of kPageCols (the last chunk may be narrower), one after another, and
// within a chunk as blocks of 8 columns: block b holds the group's 8 rows' columns 8b .. 8b + 7,
// row after row (16 bytes each). So a page of the weight pipe (ops/weight_pipe.cuh: the rows of one
// group by one column chunk) is one contiguous run of bytes, one copy, and a matvec tile streams its
// weights front to back.
//
// Why not row-major: there a page is 8 row segments at a row's stride, and the measured stream rate
// of that order was 78% of a plain read on the H200, against 103% for contiguous pages with the
// same consumers (bench/pipe_stream.cu). Why blocks of 8 within a page: the page's consumers read
// it with ldmatrix, 8 rows by 16 bytes per matrix, and a block is one such matrix in 128
// consecutive bytes, free of bank conflicts (rows at the chunk's width, 2 KB apart, all fell in
// the same banks). Row-major rows are still what every reader sees through paged_index; only the
// addresses change.
//
// Every rank-2 loaded weight (projections, the LM head, token and position tables) is paged on the
// GPU; vectors (norms, biases) and the RoPE table stay as they are. The CPU executor's weights are
// row-major and never see this.
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "mk/isa.h"  // MK_HD

namespace mk::cuda {

inline constexpr uint32_t kPageRows = 8;     // rows of a group: the n of the decode consumers' mma
inline constexpr uint32_t kPageCols = 1024;  // bf16 columns of a chunk

// Elements a [rows, K] matrix takes: rows rounded up to a whole group (its padding is zero).
MK_HD inline size_t paged_size(size_t rows, uint32_t K) {
  return (rows + kPageRows - 1) / kPageRows * kPageRows * K;
}

// Where element (r_in_group, k) lies from the start of its group: the chunk's start, then its
// block of 8 columns (narrower at the end of a chunk whose width is not a multiple of 8), then the
// row within the block.
MK_HD inline size_t paged_in_group(uint32_t r_in_group, uint32_t k, uint32_t K) {
  // When K is a multiple of 8 every chunk is whole blocks, and the chunks vanish from the formula:
  // block k / 8 of the group starts at 64 * (k / 8) (chunk c starts at c * kPageCols * kPageRows).
  // The prefill loaders compute this per 16 bytes; the general form below costs a division, a
  // minimum and a multiplication more.
  if (K % 8 == 0) return size_t(k / 8) * (8 * kPageRows) + r_in_group * 8 + k % 8;
  const uint32_t c0 = k / kPageCols * kPageCols;
  const uint32_t width = K - c0 < kPageCols ? K - c0 : kPageCols;
  const uint32_t b0 = (k - c0) / 8 * 8;
  const uint32_t block = width - b0 < 8 ? width - b0 : 8;
  return size_t(c0) * kPageRows + size_t(b0) * kPageRows + r_in_group * block + (k - c0 - b0);
}

// Where element (r, k) of a [rows, K] matrix lies. Eight consecutive columns from a multiple of 8
// are one row of a block, so 16-byte pieces stay contiguous.
MK_HD inline size_t paged_index(uint32_t r, uint32_t k, uint32_t K) {
  return size_t(r / kPageRows) * kPageRows * K + paged_in_group(r % kPageRows, k, K);
}

// The start of page (group g, chunk c): the group's rows by the chunk's columns, contiguous, block
// after block.
MK_HD inline size_t paged_page(uint32_t g, uint32_t c, uint32_t K) {
  return size_t(g) * kPageRows * K + size_t(c) * kPageCols * kPageRows;
}

}  // namespace mk::cuda
