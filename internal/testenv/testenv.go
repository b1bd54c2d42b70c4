// Package testenv finds the shared real models and texts that tests read (never copied into
// the repository). QSPARSE_DATA points at the shared data folder (default: ../shared/data beside
// the module root); QSPARSE_SMOLLM2 at SmolLM2-135M-Instruct.Q4_1.gguf (default: the cache that
// ../shared/scripts/fetch-smollm2 fills). When a file is missing a test is skipped on a user's
// machine and fails when CI=true.
package testenv

import (
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

// ModuleRoot returns the repository root (the folder holding go.mod).
func ModuleRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// DataDir returns the shared data folder, whether or not it exists.
func DataDir() string {
	if d := os.Getenv("QSPARSE_DATA"); d != "" {
		return d
	}
	return filepath.Join(ModuleRoot(), "..", "shared", "data")
}

// RefsDir returns the shared llama.cpp reference folder (sibling of the data folder).
func RefsDir() string {
	return filepath.Join(filepath.Dir(filepath.Clean(DataDir())), "refs")
}

// Path returns the path of name inside the shared data folder, or skips (fails under CI=true)
// when it is missing.
func Path(tb testing.TB, name string) string {
	tb.Helper()
	return need(tb, filepath.Join(DataDir(), name))
}

// Ref returns the path of name inside the shared refs folder (see Path).
func Ref(tb testing.TB, name string) string {
	tb.Helper()
	return need(tb, filepath.Join(RefsDir(), name))
}

// SmolLM2Path returns the SmolLM2-135M-Instruct Q4_1 GGUF, or skips (fails under CI=true).
func SmolLM2Path(tb testing.TB) string {
	tb.Helper()
	p := os.Getenv("QSPARSE_SMOLLM2")
	if p == "" {
		dir := os.Getenv("QSPARSE_MODELS")
		if dir == "" {
			home, _ := os.UserHomeDir()
			dir = filepath.Join(home, ".cache", "qsparse", "models")
		}
		p = filepath.Join(dir, "SmolLM2-135M-Instruct.Q4_1.gguf")
	}
	return need(tb, p)
}

func need(tb testing.TB, p string) string {
	tb.Helper()
	if _, err := os.Stat(p); err != nil {
		if os.Getenv("CI") == "true" {
			tb.Fatalf("test data missing: %v (CI needs it; see .ci/run)", err)
		}
		tb.Skipf("test data missing: %v (set QSPARSE_DATA / QSPARSE_SMOLLM2, or run ../shared/scripts/fetch-smollm2)", err)
	}
	return p
}
