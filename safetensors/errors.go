package safetensors

import "errors"

// Sentinel errors. Errors returned by this package wrap one of them (test with errors.Is).
var (
	// ErrCorrupt: the header or tensor table is malformed or inconsistent.
	ErrCorrupt = errors.New("corrupt safetensors file")
	// ErrTruncated: the file is shorter than its header says.
	ErrTruncated = errors.New("truncated safetensors file")
	// ErrUnsupportedDType: a dtype this package does not know or cannot convert.
	ErrUnsupportedDType = errors.New("unsupported safetensors dtype")
	// ErrMissingShard: a weights file named by the folder or its index is missing, or a tensor
	// listed by the index is not in its shard.
	ErrMissingShard = errors.New("missing safetensors shard or tensor")
	// ErrConfig: config.json is missing, malformed or describes an unsupported model.
	ErrConfig = errors.New("bad model config")
)
