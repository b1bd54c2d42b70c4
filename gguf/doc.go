// Package gguf reads and writes GGUF model files (versions 2 and 3, little-endian) and
// dequantizes ggml tensor types to float32.
//
// Open memory-maps a file read-only and parses only the header: metadata and tensor infos are
// decoded into Go values, tensor data stays in the mapping (TensorInfo.Data is a view; nothing
// is copied until Dequantize). A split model (PREFIX-00001-of-0000N.gguf, with the split.count,
// split.no and split.tensors.count keys written by llama.cpp's gguf-split) is opened as one File
// holding the tensors of every shard and the metadata of the first.
//
// Format rules enforced by Open (bad input gives an error wrapping one of the sentinels
// ErrBadMagic, ErrVersion, ErrTruncated, ErrUnsupportedType, ErrCorrupt or ErrMissingShard;
// it never panics, and no allocation is sized by an unchecked header field):
//
//   - magic "GGUF", version 2 or 3 (1 and big-endian files are rejected with ErrVersion);
//   - every count and length (tensor count, metadata count, string lengths, array lengths) is
//     checked against the bytes left in the file, at the smallest encoded size of one element,
//     before anything is allocated; arrays of arrays nest at most MaxArrayDepth levels; value
//     types must be known; duplicate metadata keys are rejected;
//   - general.alignment (default 32) must be an integer power of two up to MaxAlignment; the
//     data section starts at the first aligned offset after the tensor infos;
//   - tensors have 1..MaxDims dimensions, each below 2^63, whose product and byte size fit in
//     63 bits; the type id must be a known ggml type; ne[0] must be a multiple of the type's block
//     size; data offsets must be multiples of the alignment; every tensor's data must end inside
//     the file; tensors must not overlap and names must be unique (across all shards);
//   - split shards must all exist, carry matching split.no / split.count, and together hold
//     split.tensors.count tensors.
//
// Dequantize supports F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K,
// IQ4_NL, IQ4_XS, TQ1_0 and TQ2_0, bit-identical to ggml's dequantize_row_* (including the sign
// of zero); other types can be opened but not dequantized (ErrUnsupportedType).
//
// WriteFile writes a GGUF v3 file atomically (temporary file in the same directory, fsync,
// rename). F32ToF16, F32ToBF16 and QuantizeQ8_0 produce data for it.
//
// The mapping is shared with the page cache: if another process truncates the file while it is
// open, touching the lost pages raises SIGBUS. Tensor data must not be used after Close.
package gguf
