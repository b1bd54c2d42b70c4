package eval

import (
	"context"
	"math"
	"slices"
	"testing"
)

func TestKLDivergenceIdentical(t *testing.T) {
	const vocab, nctx = 37, 16
	tokens := testTokens(4*nctx, vocab)
	r, err := KLDivergenceWith(context.Background(), &fakeLM{vocab: vocab}, &fakeLM{vocab: vocab}, tokens,
		PPLOptions{Ctx: nctx, Vocab: vocab, BOS: 1})
	if err != nil {
		t.Fatal(err)
	}
	p, _ := PerplexityWith(context.Background(), &fakeLM{vocab: vocab}, tokens, PPLOptions{Ctx: nctx, Vocab: vocab, BOS: 1})
	if r.KLD > 1e-12 || r.SameTop != 1 || r.PPL != p.PPL || r.BasePPL != p.PPL || r.Err != p.Err || r.Tokens != p.Tokens {
		t.Fatalf("%+v vs %+v", r, p)
	}
}

func TestKLDivergenceMatchesSlowTwin(t *testing.T) {
	const vocab, nctx = 23, 12
	tokens := testTokens(3*nctx+5, vocab)
	var progress []Progress
	r, err := KLDivergenceWith(context.Background(), &fakeLM{vocab: vocab}, &fakeLM{vocab: vocab, salt: 0.7}, tokens,
		PPLOptions{Ctx: nctx, Batch: 5, Vocab: vocab, BOS: -1, Progress: func(p Progress) { progress = append(progress, p) }})
	if err != nil {
		t.Fatal(err)
	}
	// slow twin: one position at a time, float64 softmax
	base, test := &fakeLM{vocab: vocab}, &fakeLM{vocab: vocab, salt: 0.7}
	var kls []float64
	same := 0
	for c := 0; c < 3; c++ {
		base.Reset()
		test.Reset()
		for p := 0; p < nctx-1; p++ {
			tok := tokens[c*nctx+p]
			base.prev[p], test.prev[p] = tok, tok
			if p < nctx/2 {
				continue
			}
			pb, pt := make([]float64, vocab), make([]float64, vocab)
			var sb, st float64
			for v := 0; v < vocab; v++ {
				pb[v] = math.Exp(float64(base.logit(p, tok, v)))
				pt[v] = math.Exp(float64(test.logit(p, tok, v)))
				sb += pb[v]
				st += pt[v]
			}
			kl := 0.0
			for v := range pb {
				kl += pb[v] / sb * math.Log((pb[v]/sb)/(pt[v]/st))
			}
			kls = append(kls, kl)
			ab, at := 0, 0
			for v := range pb {
				if pb[v] > pb[ab] {
					ab = v
				}
				if pt[v] > pt[at] {
					at = v
				}
			}
			if ab == at {
				same++
			}
		}
	}
	mean := 0.0
	for _, k := range kls {
		mean += k
	}
	mean /= float64(len(kls))
	slices.Sort(kls)
	if math.Abs(r.KLD-mean) > 1e-6*mean || r.KLDMax != r.KLDMax || math.Abs(r.KLDMax-kls[len(kls)-1]) > 1e-6 ||
		r.SameTop != float64(same)/float64(len(kls)) || r.Tokens != len(kls) {
		t.Fatalf("got KLD %v max %v same %v, want %v %v %v", r.KLD, r.KLDMax, r.SameTop, mean, kls[len(kls)-1], float64(same)/float64(len(kls)))
	}
	if r.KLD <= 0 || r.KLDErr <= 0 || r.KLDMedian <= 0 || r.KLD99 < r.KLDMedian || len(progress) != 3 || progress[2].KLD != r.KLD {
		t.Fatalf("%+v %+v", r, progress)
	}
	pb, _ := PerplexityWith(context.Background(), &fakeLM{vocab: vocab}, tokens, PPLOptions{Ctx: nctx, Vocab: vocab, BOS: -1})
	pt, _ := PerplexityWith(context.Background(), &fakeLM{vocab: vocab, salt: 0.7}, tokens, PPLOptions{Ctx: nctx, Vocab: vocab, BOS: -1})
	if math.Abs(r.BasePPL-pb.PPL) > 1e-9*pb.PPL || math.Abs(r.PPL-pt.PPL) > 1e-9*pt.PPL {
		t.Fatalf("ppl %v/%v vs %v/%v", r.BasePPL, r.PPL, pb.PPL, pt.PPL)
	}
}
