package sparse

import (
	"runtime"
	"sync"
	"sync/atomic"
)

// Pool runs kernels on persistent worker goroutines (the calling goroutine works too). Calls
// are serialised by a mutex; a call does not allocate in steady state. Work is cut into
// items whose boundaries do not depend on the thread count, and every output element is
// computed by one thread in a fixed order, so results are identical for any thread count.
// A Pool must not be used from inside a function passed to its own Run.
type Pool struct {
	threads int
	mu      sync.Mutex
	wake    []chan struct{}
	done    chan struct{}
	closed  bool

	// current job
	kind    int
	next    atomic.Int64
	items   int
	fn      func(i int)
	gemv    gemvJob
	gemm    gemmJob
	sp      sparseJob
	scratch [][]float32 // per thread
	valBuf  [maxFused][]float32
	partBuf []float32
	ys1     [1][]float32
	f161    [1]*F16Cols
	tern1   [1]*TernaryCols
}

const (
	jobRun = iota
	jobGemvF32
	jobGemvF16
	jobGemm
	jobSparse
)

// NewPool starts a pool of threads workers (threads <= 0 means runtime.NumCPU()).
func NewPool(threads int) *Pool {
	if threads <= 0 {
		threads = runtime.NumCPU()
	}
	p := &Pool{threads: threads, done: make(chan struct{}, threads)}
	p.scratch = make([][]float32, threads)
	p.wake = make([]chan struct{}, threads-1)
	for i := range p.wake {
		p.wake[i] = make(chan struct{}, 1)
		go p.worker(i+1, p.wake[i])
	}
	return p
}

// Threads returns the number of threads (including the caller) the pool runs on.
func (p *Pool) Threads() int { return p.threads }

// Close stops the workers. It is safe to call more than once; the pool must not be used after.
func (p *Pool) Close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return
	}
	p.closed = true
	for _, c := range p.wake {
		close(c)
	}
}

func (p *Pool) worker(id int, wake chan struct{}) {
	for range wake {
		p.work(id)
		p.done <- struct{}{}
	}
}

// work takes items until none are left.
func (p *Pool) work(id int) {
	for {
		i := int(p.next.Add(1) - 1)
		if i >= p.items {
			return
		}
		switch p.kind {
		case jobRun:
			p.fn(i)
		case jobGemvF32, jobGemvF16:
			p.gemv.do(i, p.kind)
		case jobGemm:
			p.gemm.do(i, p.scratch[id])
		case jobSparse:
			p.sp.do(i, p.scratch[id])
		}
	}
}

// dispatch runs the prepared job on all threads and waits. p.mu must be held.
func (p *Pool) dispatch(kind, items int) {
	if p.closed {
		panic("sparse: Pool used after Close")
	}
	p.kind, p.items = kind, items
	p.next.Store(0)
	helpers := min(len(p.wake), items-1)
	for i := 0; i < helpers; i++ {
		p.wake[i] <- struct{}{}
	}
	p.work(0)
	for i := 0; i < helpers; i++ {
		<-p.done
	}
}

// Run calls fn(i) for every i in [0, n) on the pool's threads and returns when all are done.
func (p *Pool) Run(n int, fn func(i int)) {
	if n <= 0 {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.fn = fn
	p.dispatch(jobRun, n)
	p.fn = nil
}

// gemvJob splits rows into chunks of gemvChunk rows.
type gemvJob struct {
	y, w, x    []float32
	w16        []uint16
	rows, cols int
	chunk      int
}

func gemvChunkRows(rows, cols, threads int) int {
	// about 8 items per thread, at least ~16 KiB of weights each, multiple of 16 rows
	c := rows / (threads * 8)
	if m := (16 << 10) / (2*cols + 1); c < m {
		c = m
	}
	c = (c + 15) / 16 * 16
	return max(c, 16)
}

func (g *gemvJob) do(i, kind int) {
	r0 := i * g.chunk
	r1 := min(r0+g.chunk, g.rows)
	if kind == jobGemvF32 {
		k.gemvF32(g.y, g.w, g.x, g.cols, r0, r1)
	} else {
		k.gemvF16(g.y, g.w16, g.x, g.cols, r0, r1)
	}
}

// GemvF32 is GemvF32 split over the pool's threads by output rows.
func (p *Pool) GemvF32(y, w, x []float32, rows, cols int) {
	checkGemv("Pool.GemvF32", len(y), len(w), len(x), rows, cols)
	if rows == 0 {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	c := gemvChunkRows(rows, cols, p.threads)
	p.gemv = gemvJob{y: y, w: w, x: x, rows: rows, cols: cols, chunk: c}
	p.dispatch(jobGemvF32, (rows+c-1)/c)
	p.gemv = gemvJob{}
}

// GemvF16 is GemvF16 split over the pool's threads by output rows.
func (p *Pool) GemvF16(y []float32, w []uint16, x []float32, rows, cols int) {
	checkGemv("Pool.GemvF16", len(y), len(w), len(x), rows, cols)
	if rows == 0 {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	c := gemvChunkRows(rows, cols, p.threads)
	p.gemv = gemvJob{y: y, w16: w, x: x, rows: rows, cols: cols, chunk: c}
	p.dispatch(jobGemvF16, (rows+c-1)/c)
	p.gemv = gemvJob{}
}

// GemmF32 is GemmF32 split over the pool's threads (blocks of rows × tokens).
func (p *Pool) GemmF32(y, x, w []float32, n, rows, cols int) {
	checkGemm("Pool.GemmF32", len(y), len(x), len(w), n, rows, cols)
	p.mu.Lock()
	defer p.mu.Unlock()
	p.gemm.init(y, x, w, nil, n, rows, cols)
	if p.gemm.items > 0 {
		p.dispatch(jobGemm, p.gemm.items)
	}
	p.gemm = gemmJob{}
}

// GemmF16 is GemmF16 split over the pool's threads (blocks of rows × tokens).
func (p *Pool) GemmF16(y []float32, x []float32, w []uint16, n, rows, cols int) {
	checkGemm("Pool.GemmF16", len(y), len(x), len(w), n, rows, cols)
	p.mu.Lock()
	defer p.mu.Unlock()
	p.gemm.init(y, x, nil, w, n, rows, cols)
	if p.gemm.items > 0 {
		if m := k.gemmF16Scratch(p.gemm.rowChunk, cols); m > 0 {
			for i := range p.scratch {
				if cap(p.scratch[i]) < m {
					p.scratch[i] = make([]float32, m)
				}
			}
		}
		p.dispatch(jobGemm, p.gemm.items)
	}
	p.gemm = gemmJob{}
}
