//go:build !linux

package sparse

// makeU16Huge returns a zeroed []uint16 of length n (huge pages are requested on Linux only).
func makeU16Huge(n int) []uint16 { return make([]uint16, n) }

// makeBytesHuge returns a zeroed []byte of length n.
func makeBytesHuge(n int) []byte { return make([]byte, n) }
