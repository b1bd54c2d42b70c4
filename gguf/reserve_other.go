//go:build !linux

package gguf

import "os"

// reserve sets f's size to n.
func reserve(f *os.File, n int64) error { return f.Truncate(n) }
