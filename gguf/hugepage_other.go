//go:build !linux

package gguf

// HugePages asks for the file's mappings to be backed by 2 MiB pages; only Linux does (see
// its documentation there): here it reports false.
func (f *File) HugePages() bool { return false }
