//go:build !linux

package pages

import "errors"

// Resident is only implemented on Linux (/proc/self/smaps).
func Resident(b []byte) (int64, error) { return 0, errors.New("pages: Resident needs Linux") }
