// Package bufpool is a typed sync.Pool of reusable slices, for code that streams data in chunks
// (converters read and write every tensor a chunk at a time; a fresh buffer per chunk made
// hundreds of garbage collections).
package bufpool

import "sync"

// Pool hands out *[]T buffers; the zero value is ready to use.
type Pool[T any] struct{ p sync.Pool }

// Get returns a buffer of n elements (contents undefined); Put it back when done.
func (s *Pool[T]) Get(n int) *[]T {
	b, _ := s.p.Get().(*[]T)
	if b == nil {
		b = new([]T)
	}
	if cap(*b) < n {
		*b = make([]T, n)
	}
	*b = (*b)[:n]
	return b
}

// Put returns b to the pool.
func (s *Pool[T]) Put(b *[]T) { s.p.Put(b) }
