// Package safetensors reads and writes Hugging Face model folders: config.json plus weights in
// the safetensors format, either one model.safetensors file or shards listed by
// model.safetensors.index.json.
//
// Files are memory-mapped read-only and parsed with github.com/nlpodyssey/safetensors, which keeps
// views into the mapped bytes (no copy). Because the library trusts its input more than a loader
// of downloaded files should, every header is first validated here, eagerly and with bounded
// work: the 8-byte little-endian header length against the file size and a 100 MB cap, the JSON
// (well-formed, no duplicate names), every dtype, every shape (non-negative, products checked for
// overflow), every tensor's data_offsets (inside the data section, end-begin equal to the element
// count times the dtype size, no overlaps or gaps, no trailing bytes). Any panic from the
// library is recovered and returned as an error.
//
// Errors name the file, the tensor and the numbers involved, and wrap one of the sentinels
// ErrCorrupt, ErrTruncated, ErrUnsupportedDType, ErrMissingShard or ErrConfig (test with
// errors.Is).
//
// Tensor.Data is a view into the mapping: it is valid until the File or Dir is closed, and must
// not be written to. Tensor.Float32 converts F32, F16, BF16 (and integer dtypes) to float32.
//
// ParseConfig reads the fields of a Llama-family config.json as written and validates them; it
// does not decide which architectures are supported nor fill architecture-dependent defaults
// (package model does both).
//
// Open maps one file; Parse does the same checks on bytes already in memory; OpenDir opens a
// whole folder and exposes its tensors sorted by name.
//
// WriteFile, WriteSharded and Encode (to an io.Writer) write files the way Hugging Face does (header padded with spaces to
// a multiple of 8 bytes, tensors ordered by dtype size then name), atomically (temporary file in
// the same folder, fsync, rename).
package safetensors
