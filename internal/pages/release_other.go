//go:build !linux

package pages

// Release does nothing here: on other systems the readers either read files into memory (no
// mapping to release) or the kernel's page reclaim is left to do it.
func Release(m, b []byte) { _, _, _ = span(m, b, grain()) }
