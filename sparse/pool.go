package sparse

import (
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// Pool runs kernels on persistent worker goroutines (the calling goroutine works too). Calls
// are serialised by a mutex; a call does not allocate in steady state. Work is cut into
// items whose boundaries do not depend on the thread count, and every output element is
// computed by one thread in a fixed order, so results are identical for any thread count.
// A Pool must not be used from inside a function passed to its own Run.
//
// Scheduling: a job is published by bumping a generation in one atomic word that also holds
// the next unclaimed item; threads claim items by compare-and-swap on it, and the caller
// waits for a count of finished items. Between jobs the workers spin on the word for a while
// (poolSpin) before parking on a channel, because a decode step issues ~180 small jobs per
// token and waking a parked goroutine costs tens of microseconds each time.
type Pool struct {
	threads int
	mu      sync.Mutex
	closed  bool

	claim atomic.Uint64 // generation<<32 | next unclaimed item of the current job
	_     [56]byte
	fin   atomic.Int64 // items of the current job finished
	_     [56]byte
	stop  atomic.Bool
	park  []parker

	// current job
	kind    int
	job     atomic.Uint64 // generation<<32 | item count of the current job (see work)
	fn      func(i int)
	fnT     func(i, thread int) // RunThreads
	gemv    gemvJob
	gemm    gemmJob
	sp      sparseJob
	gc      gemmColsJob // GemmF16Cols (cols.go)
	scratch [][]float32 // per thread
	valBuf  [maxFused][]float32
	partBuf []float32
	ys1     [1][]float32
	f161    [1]*F16Cols
	tern1   [1]*TernaryCols
	q8      [maxFused]*q8Job // SparseGemvTernaryQ8(Multi), made on first use
	q8m     q8Multi
}

// parker is where one worker sleeps when no job came for poolSpin.
type parker struct {
	sleeping atomic.Int32
	ch       chan struct{}
	_        [48]byte
}

// poolSpin is how long an idle worker polls for the next job before it parks.
const poolSpin = 50 * time.Microsecond

const (
	jobRun = iota
	jobRunThreads
	jobGemvF32
	jobGemvF16
	jobGemm
	jobSparse
	jobGemmCols
)

// NewPool starts a pool of threads workers (threads <= 0 means runtime.NumCPU()).
func NewPool(threads int) *Pool {
	if threads <= 0 {
		threads = runtime.NumCPU()
	}
	p := &Pool{threads: threads}
	p.scratch = make([][]float32, threads)
	p.park = make([]parker, threads-1)
	for i := range p.park {
		p.park[i].ch = make(chan struct{}, 1)
		go p.worker(i + 1)
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
	p.stop.Store(true)
	for i := range p.park {
		p.wake(i)
	}
}

// wake unparks worker i+1 if it sleeps.
func (p *Pool) wake(i int) {
	if p.park[i].sleeping.Swap(0) == 1 {
		select {
		case p.park[i].ch <- struct{}{}:
		default:
		}
	}
}

func (p *Pool) worker(id int) {
	pk := &p.park[id-1]
	gen := p.claim.Load() >> 32
	late := false
	for {
		// Wait for a new generation: spin (unless this worker came too late to the last
		// job), then park.
		start := time.Now()
		for spins := 1; ; spins++ {
			if p.stop.Load() {
				return
			}
			if g := p.claim.Load() >> 32; g != gen {
				gen = g
				break
			}
			if !late {
				if spins&255 != 0 {
					continue
				}
				// Let the caller (or anything else) have this P when threads > GOMAXPROCS.
				runtime.Gosched()
				if time.Since(start) < poolSpin {
					continue
				}
			}
			// Park. The caller publishes a job then checks sleeping; we set sleeping then
			// check the job: one of us sees the other.
			pk.sleeping.Store(1)
			if p.claim.Load()>>32 != gen || p.stop.Load() {
				pk.sleeping.Store(0)
				continue
			}
			<-pk.ch
			late = false
			start = time.Now()
		}
		// A worker that finds the job already taken was descheduled or is slower than the
		// caller (a busy machine): spinning would only burn the time slice it needs when it
		// does get items, so it parks right away next time.
		late = p.work(id, gen) == 0
	}
}

// work claims and runs items of job generation gen until none are left, and returns how many
// it ran.
func (p *Pool) work(id int, gen uint64) (ran int) {
	for ; ; ran++ {
		c := p.claim.Load()
		if c>>32 != gen {
			return
		}
		i := int(uint32(c))
		// The item count must be the one of generation gen. A worker one job late holds
		// the finished job's word (next item = its count); had it compared that with the
		// count of the next job, published before the claim word, its CAS could win in
		// between, and it would run a spare item on half-set fields and count it finished,
		// so the caller would return while a real item still ran.
		if j := p.job.Load(); j>>32 != gen || i >= int(uint32(j)) {
			return
		}
		if !p.claim.CompareAndSwap(c, c+1) {
			ran--
			continue
		}
		switch p.kind {
		case jobRun:
			p.fn(i)
		case jobRunThreads:
			p.fnT(i, id)
		case jobGemvF32, jobGemvF16:
			p.gemv.do(i, p.kind)
		case jobGemm:
			p.gemm.do(i, p.scratch[id])
		case jobSparse:
			p.sp.do(i, p.scratch[id])
		case jobGemmCols:
			p.gc.do(i, id)
		}
		p.fin.Add(1)
	}
}

// dispatch runs the prepared job on all threads and waits. p.mu must be held.
func (p *Pool) dispatch(kind, items int) {
	if p.closed {
		panic("sparse: Pool used after Close")
	}
	if uint64(items) > 0xffffffff {
		panic("sparse: Pool job with more than 2^32-1 items")
	}
	p.kind = kind
	p.fin.Store(0)
	gen := (p.claim.Load()>>32 + 1) & 0xffffffff
	p.job.Store(gen<<32 | uint64(items))
	p.claim.Store(gen << 32)
	for i := range min(len(p.park), items-1) {
		p.wake(i)
	}
	p.work(0, gen)
	for spins := 1; p.fin.Load() < int64(items); spins++ {
		if spins&255 == 0 {
			runtime.Gosched()
		}
	}
}

// Run calls fn(i) for every i in [0, n) on the pool's threads and returns when all are done.
func (p *Pool) Run(n int, fn func(i int)) {
	if n <= 0 {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.runLocked(n, fn)
}

// runLocked is Run with p.mu held (callers that prepare a job under the lock).
func (p *Pool) runLocked(n int, fn func(i int)) {
	if n <= 0 {
		return
	}
	p.fn = fn
	p.dispatch(jobRun, n)
	p.fn = nil
}

// RunThreads is Run with the number of the thread that runs each call, in [0, Threads()):
// calls with the same thread number never overlap, so fn can use per-thread buffers.
func (p *Pool) RunThreads(n int, fn func(i, thread int)) {
	if n <= 0 {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.fnT = fn
	p.dispatch(jobRunThreads, n)
	p.fnT = nil
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
		kern.gemvF32(g.y, g.w, g.x, g.cols, r0, r1)
	} else {
		kern.gemvF16(g.y, g.w16, g.x, g.cols, r0, r1)
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
		p.growScratch(kern.gemmScratch(false, p.gemm.rowChunk, cols))
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
		p.growScratch(kern.gemmScratch(true, p.gemm.rowChunk, cols))
		p.dispatch(jobGemm, p.gemm.items)
	}
	p.gemm = gemmJob{}
}
