package calibrate

import (
	"context"
	"fmt"
	"math"
	"sync"

	"github.com/qsparse/qsparse/model"
)

// klEval measures a profile against the dense model on the held-out slice of the calibration
// text: mean KL(dense || sparse) of the next-token distributions at every position, and the
// perplexity of the tokens that follow inside each chunk. The dense log-probabilities are
// computed once and kept (float32, [positions][vocab]).
type klEval struct {
	m       *model.Model
	st      *model.State
	tokens  []int // held-out slice, whole chunks
	ctx     int
	bos     int
	vocab   int
	ref     []float32 // [len(tokens)][vocab] dense log-softmax
	logits  []float32 // [ctx][vocab]
	lp      [][]float64
	workers int

	densePPL float64
	forwards int // forward passes over the slice so far
}

// klResult is one measurement on the held-out slice.
type klResult struct {
	KL  float64 // mean KL(dense || sparse), nats
	PPL float64
}

func newKLEval(ctx context.Context, m *model.Model, tokens []int, chunk, bos, workers int) (*klEval, error) {
	n := len(tokens) / chunk * chunk
	if n == 0 {
		return nil, fmt.Errorf("calibrate: the held-out slice has %d tokens, less than one chunk of %d", len(tokens), chunk)
	}
	v := m.Spec.Vocab
	e := &klEval{m: m, st: m.NewState(chunk), tokens: tokens[:n], ctx: chunk, bos: bos, vocab: v,
		ref: make([]float32, n*v), logits: make([]float32, chunk*v), workers: max(1, workers)}
	e.lp = make([][]float64, e.workers)
	for w := range e.lp {
		e.lp[w] = make([]float64, v)
	}
	var nll float64
	cnt := 0
	for c := 0; c < n; c += chunk {
		if err := e.forward(ctx, nil, c); err != nil {
			return nil, err
		}
		out := e.ref[c*v : (c+chunk)*v]
		e.parallel(chunk, func(w, t int) {
			logSoftmax32(out[t*v:(t+1)*v], e.logits[t*v:(t+1)*v], e.lp[w])
		})
		for t := 0; t+1 < chunk; t++ {
			nll -= float64(out[t*v+tokens[c+t+1]])
			cnt++
		}
	}
	e.densePPL = math.Exp(nll / float64(cnt))
	return e, nil
}

// forward runs chunk c0.. of the slice under profile p into e.logits.
func (e *klEval) forward(ctx context.Context, p *model.Profile, c0 int) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("calibrate: %w", err)
	}
	if err := e.st.SetProfile(p); err != nil {
		return fmt.Errorf("calibrate: %w", err)
	}
	toks := make([]int, e.ctx)
	copy(toks, e.tokens[c0:c0+e.ctx])
	if e.bos >= 0 {
		toks[0] = e.bos
	}
	e.st.Reset()
	if err := e.st.Forward(toks, 0, e.logits); err != nil {
		return fmt.Errorf("calibrate: held-out forward pass: %w", err)
	}
	return nil
}

// measure returns the KL and perplexity of p on the slice.
func (e *klEval) measure(ctx context.Context, p *model.Profile) (klResult, error) {
	v := e.vocab
	var kl, nll float64
	cnt := 0
	kls := make([]float64, e.ctx)
	nlls := make([]float64, e.ctx)
	for c := 0; c < len(e.tokens); c += e.ctx {
		if err := e.forward(ctx, p, c); err != nil {
			return klResult{}, err
		}
		ref := e.ref[c*v : (c+e.ctx)*v]
		e.parallel(e.ctx, func(w, t int) {
			lp := e.lp[w]
			logSoftmax64(lp, e.logits[t*v:(t+1)*v])
			r := ref[t*v : (t+1)*v]
			var s float64
			for i, b := range r {
				s += math.Exp(float64(b)) * (float64(b) - lp[i])
			}
			kls[t] = max(s, 0)
			if t+1 < e.ctx {
				nlls[t] = -lp[e.tokens[c+t+1]]
			}
		})
		for t := range e.ctx {
			kl += kls[t]
			if t+1 < e.ctx {
				nll += nlls[t]
				cnt++
			}
		}
	}
	e.forwards++
	return klResult{KL: kl / float64(len(e.tokens)), PPL: math.Exp(nll / float64(cnt))}, nil
}

// parallel runs fn(worker, t) for t in [0, n), rows split over the workers.
func (e *klEval) parallel(n int, fn func(w, t int)) {
	var wg sync.WaitGroup
	for w := range min(e.workers, n) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for t := w; t < n; t += e.workers {
				fn(w, t)
			}
		}()
	}
	wg.Wait()
}

// logSoftmax64 writes log softmax(x) into dst in float64.
func logSoftmax64(dst []float64, x []float32) {
	mx := x[0]
	for _, v := range x {
		mx = max(mx, v)
	}
	var s float64
	for _, v := range x {
		s += math.Exp(float64(v - mx))
	}
	l := math.Log(s)
	for i, v := range x {
		dst[i] = float64(v-mx) - l
	}
}

// logSoftmax32 is logSoftmax64 rounded to float32 into dst (scratch holds the float64 values).
func logSoftmax32(dst []float32, x []float32, scratch []float64) {
	logSoftmax64(scratch, x)
	for i, v := range scratch {
		dst[i] = float32(v)
	}
}
