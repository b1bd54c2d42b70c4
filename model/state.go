package model

import (
	"context"

	"github.com/qsparse/qsparse/sparse"
)

// maxBatch bounds the tokens one Forward step processes at once; longer inputs are split.
const maxBatch = 512

// State is one decoding session: the float32 KV cache and every scratch buffer of the forward
// pass, all allocated once by NewState. A State is not safe for concurrent use. States of one
// Model share its thread pool: Forward calls on different States may run concurrently, but their
// kernels are serialised by the pool.
type State struct {
	m      *Model
	cancel context.Context // see SetContext; nil: Forward never stops early
	ctx    int             // KV cache capacity in positions
	batch  int             // most tokens per forward step

	keyCache []float32 // [NLayers][ctx][KVDim]
	valCache []float32 // [NLayers][NKVHeads][HeadDim][ctxPad]: values transposed (see storeValues)
	vnew     []float32 // [batch][KVDim] values of the current step before they are stored

	x     []float32 // [batch][Dim] residual stream
	xb    []float32 // [batch][Dim] normed input of attention / MLP
	xb2   []float32 // [batch][Dim] output of o_proj / down_proj
	q     []float32 // [batch][QDim]
	att   []float32 // [batch][QDim] attention output (input of o_proj)
	hb    []float32 // [batch][FFNDim] gate, then SiLU(gate)*up
	hb2   []float32 // [batch][FFNDim] up
	fused []float32 // [batch][max(QDim+2*KVDim, 2*FFNDim)] output of a fused projection
	cos   []float32 // [batch][HeadDim/2]
	sin   []float32 // [batch][HeadDim/2]

	ctxPad int       // ctx rounded up to a multiple of 16
	used   int       // positions [0, used) of the KV cache may have been written (see Reset)
	stale  int       // used before the current step: value positions past it are zero (storeValues)
	scores []float32 // [max(threads·attnBlock, NHeads)][ctxPad] attention scratch (see attnWorker, attentionLong)

	attnArgs attnJob   // the current attention call (see attention)
	attnFn   func(int) // s.attnWorker, the method value made once
	// the phases of a long decode attention (see attentionLong), method values made once
	qkFn, softmaxFn, pvFn func(int)

	multiY [3][]float32       // outputs of a SparseGemvF16Multi call (see project)
	multiW [3]*sparse.F16Cols // its packs

	ternArgs ternJob                   // the current ternProject call
	ternFn   func(t, thread int)       // s.ternWorker, the method value made once
	ternScr  []sparse.TernaryQ8Scratch // per pool thread: ternWorker's kernel buffers
	ternIdx  []int32                   // [batch][max site dim] non-zero channels of masked rows (ternary packs, see SetProfile)

	hook func(site Site, layer int, in []float32, n int) // see SetHook

	// activation sparsity (see SetProfile): keep[layer][site] channels kept per token; nil: dense
	prof        *Profile
	keep        [][NumSites]int       // prof.Keep
	colNorms    [][NumSites][]float32 // Model.ColumnNorms when prof.Scoring is weighted
	masked      []float32             // [batch][max site dim] masked input of a sparse site
	topIdx      []int32               // [maskWorkers][max site dim] TopK output and scratch, one per worker
	scoreBuf    []float32             // [maskWorkers][max site dim] weighted scores
	maskWorkers int
	maskArgs    maskJob                                             // the current mask call (see maskSite)
	maskFn      func(int)                                           // s.maskWorker, the method value made once
	maskHook    func(site Site, layer int, masked []float32, n int) // tests: the masked input
	// maskedDecode makes a decoded token on column-major packs take the masked reference path
	// (mask, then the dense kernel over all columns) instead of the sparse kernel: the slow
	// twin tests compare against.
	maskedDecode bool
	// twinHook (tests) receives, at every sparse-kernel site, each matrix's kernel output and
	// its masked-path output computed from the same input (before biases).
	twinHook func(site Site, layer int, kernel, masked []float32)
	// selHook (tests) sees a token's channel selection at every sparse site of a decode or
	// prefill — own, ascending, from the site's input x ([SiteDim]; both read-only, valid only
	// during the call) — and returns the index set the site then uses: own, or another
	// ascending set (the lockstep test hands the masked path the sparse kernel's). It is called
	// by selectSite (sparse kernel) and maskWorker (masked path; rows of a batch may call it
	// concurrently), not by runTwin. nil costs one test per site.
	selHook func(site Site, layer int, x []float32, own []int32) []int32
	// ternRef (tests) replaces the ternary kernel at every site of a ternary pack: y = W·x over
	// the channels idx (nil: all), computed by the test's plain reference.
	ternRef func(w *Matrix, x []float32, idx []int32, y []float32)
}

// NewState allocates a State whose KV cache holds ctx positions. ctx <= 0 means the LoadOptions
// Ctx given to Load, or else min(Spec.CtxLen, 4096).
func (m *Model) NewState(ctx int) *State {
	sp := &m.Spec
	if ctx <= 0 {
		ctx = m.ctx
	}
	if ctx <= 0 {
		ctx = min(sp.CtxLen, 4096)
		if ctx <= 0 {
			ctx = 4096
		}
	}
	b := min(ctx, maxBatch)
	threads := 1
	if m.pool != nil { // nil after Close: Forward then reports the error
		threads = m.pool.Threads()
	}
	kv := sp.NLayers * ctx * sp.KVDim()
	cp := (ctx + 15) &^ 15
	s := &State{
		m: m, ctx: ctx, batch: b, ctxPad: cp,
		keyCache: make([]float32, kv),
		valCache: make([]float32, sp.NLayers*sp.KVDim()*cp),
		vnew:     make([]float32, b*sp.KVDim()),
		x:        make([]float32, b*sp.Dim),
		xb:       make([]float32, b*sp.Dim),
		xb2:      make([]float32, b*sp.Dim),
		q:        make([]float32, b*sp.QDim()),
		att:      make([]float32, b*sp.QDim()),
		hb:       make([]float32, b*sp.FFNDim),
		hb2:      make([]float32, b*sp.FFNDim),
		fused:    make([]float32, b*max(sp.QDim()+2*sp.KVDim(), 2*sp.FFNDim)),
		cos:      make([]float32, b*sp.HeadDim/2),
		sin:      make([]float32, b*sp.HeadDim/2),
		scores:   make([]float32, max(threads*attnBlock, sp.NHeads)*cp),
	}
	s.attnFn = s.attnWorker
	s.qkFn, s.softmaxFn, s.pvFn = s.qkChunk, s.softmaxHead, s.pvItem
	s.ternFn = s.ternWorker
	s.ternScr = make([]sparse.TernaryQ8Scratch, threads)
	return s
}

// Ctx returns the KV cache capacity in positions.
func (s *State) Ctx() int { return s.ctx }

// Model returns the model the State runs.
func (s *State) Model() *Model { return s.m }

// Reset clears the KV cache (not needed for correctness: positions are overwritten before use):
// the positions written since the last Reset, so that the pages of a cache that was never
// filled are not touched (a 4096-position SmolLM2 cache is 189 MB, of which a short run writes
// a few pages).
func (s *State) Reset() {
	sp := &s.m.Spec
	kvdim, used := sp.KVDim(), min(s.used, s.ctx)
	vused := min((used+15)&^15, s.ctxPad) // storeValues writes up to the next multiple of 16
	for l := range sp.NLayers {
		clear(s.keyCache[l*s.ctx*kvdim : (l*s.ctx+used)*kvdim])
		for c := range kvdim {
			row := s.valCache[(l*kvdim+c)*s.ctxPad:]
			clear(row[:vused])
		}
	}
	s.used = 0
}

// attnJob is the argument of one attention call, read by its workers (attnWorker).
type attnJob struct {
	layer, pos, n int // layer, first position and tokens of the step
	workers       int // work items are strided over this many workers
}

// ternJob is the argument of one ternProject call on several tokens, read by its workers.
type ternJob struct {
	nm      int                  // matrices of the site
	ws      [3]*sparse.TernaryQ8 // the site's matrices
	ys      [3][]float32         // their outputs, [n][rows]
	in      []float32            // [n][cols] input
	n, cols int                  // tokens, channels
	masked  bool                 // in is masked: run each token over its non-zero channels
}

// maskJob is the argument of one mask call, read by its workers (maskWorker).
type maskJob struct {
	in, out []float32 // [n][dim] input, masked output
	norms   []float32 // column norms of weighted scoring; nil: magnitude
	site    Site      // site and layer of the call, for selHook
	layer   int       // < 0: an anonymous call, not shown to selHook
	dim, k  int       // width, channels kept
	n       int       // tokens
	items   int       // rows are strided over this many workers
}
