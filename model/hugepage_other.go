//go:build !linux

package model

import "unsafe"

// hugePages is a no-op outside Linux.
func hugePages(p unsafe.Pointer, n int) {}
