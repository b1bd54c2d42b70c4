package eval

import (
	"context"
	"errors"
	"fmt"
	"os"
	"unsafe"
)

// logitCache holds the logits one Forwarder produced over a whole chunk loop, call by call, so
// that later runs of the same loop (same tokens and options) can replay them instead of running
// the model again: a sweep computes the dense model once and compares every sparse row with the
// replayed dense logits. It lives in memory, or in a temporary file when it would be larger
// than the memory budget (the page cache then usually keeps it).
type logitCache struct {
	calls []cacheCall
	mem   []float32 // in-memory data, or nil
	file  *os.File  // on-disk data, or nil
	size  int64     // float32s recorded
	err   error     // first recording error; the cache is unusable when set
}

// cacheCall is one recorded Forward call.
type cacheCall struct {
	pos, n int   // first position, tokens
	off    int64 // offset of the logits, in float32s
	len    int   // logits written
}

// newLogitCache returns a cache for about want float32s: in memory when want*4 <= memBudget,
// else in a temporary file in dir ("" is os.TempDir()).
func newLogitCache(want, memBudget int64, dir string) (*logitCache, error) {
	if want*4 <= memBudget {
		return &logitCache{mem: make([]float32, 0, want)}, nil
	}
	f, err := os.CreateTemp(dir, "qsparse-dense-logits-*")
	if err != nil {
		return nil, fmt.Errorf("dense logits cache: %w", err)
	}
	_ = os.Remove(f.Name()) // unlinked: the space is freed when the file is closed
	return &logitCache{file: f}, nil
}

// Close frees the cache.
func (c *logitCache) Close() error {
	c.mem, c.calls = nil, nil
	if c.file != nil {
		err := c.file.Close()
		c.file = nil
		return err
	}
	return nil
}

// OnDisk reports whether the cache is a file.
func (c *logitCache) OnDisk() bool { return c.file != nil }

func f32Bytes(x []float32) []byte {
	if len(x) == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(&x[0])), 4*len(x))
}

func (c *logitCache) add(pos, n int, logits []float32) {
	if c.err != nil {
		return
	}
	c.calls = append(c.calls, cacheCall{pos: pos, n: n, off: c.size, len: len(logits)})
	if c.file != nil {
		if _, err := c.file.WriteAt(f32Bytes(logits), 4*c.size); err != nil {
			c.err = fmt.Errorf("dense logits cache: %w", err)
			return
		}
	} else {
		c.mem = append(c.mem, logits...)
	}
	c.size += int64(len(logits))
}

// recorder is a Forwarder that runs inner and records what it returns into cache.
type recorder struct {
	inner Forwarder
	cache *logitCache
}

func (r *recorder) Reset() { r.inner.Reset() }

// SetContext passes ctx on to the recorded Forwarder (see setContext).
func (r *recorder) SetContext(ctx context.Context) { setContext(r.inner, ctx) }

func (r *recorder) Forward(tokens []int, pos int, logits []float32) error {
	if err := r.inner.Forward(tokens, pos, logits); err != nil {
		return err
	}
	r.cache.add(pos, len(tokens), logits)
	return nil
}

// errCacheStep means a replay did not make the calls that were recorded.
var errCacheStep = errors.New("dense logits cache: replay out of step with the recording")

// replayer is a Forwarder that returns the cache's recorded logits, call by call.
type replayer struct {
	cache *logitCache
	next  int
}

func (r *replayer) Reset() {}

func (r *replayer) Forward(tokens []int, pos int, logits []float32) error {
	c := r.cache
	if c.err != nil {
		return c.err
	}
	if r.next >= len(c.calls) {
		return fmt.Errorf("%w: call %d, only %d recorded", errCacheStep, r.next+1, len(c.calls))
	}
	call := c.calls[r.next]
	if call.pos != pos || call.n != len(tokens) || call.len != len(logits) {
		return fmt.Errorf("%w: call %d is (pos %d, %d tokens, %d logits), recorded (pos %d, %d tokens, %d logits)",
			errCacheStep, r.next+1, pos, len(tokens), len(logits), call.pos, call.n, call.len)
	}
	r.next++
	if c.file == nil {
		copy(logits, c.mem[call.off:call.off+int64(call.len)])
		return nil
	}
	if _, err := c.file.ReadAt(f32Bytes(logits), 4*call.off); err != nil {
		return fmt.Errorf("dense logits cache: %w", err)
	}
	return nil
}
