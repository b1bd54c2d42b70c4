package sparse

// grow returns b resliced to length n, or a new zeroed slice when b's capacity is short. The
// contents are not kept: callers overwrite them. (Generic: it runs once per kernel call, never
// per element.)
func grow[T any](b []T, n int) []T {
	if cap(b) < n {
		return make([]T, n)
	}
	return b[:n]
}
