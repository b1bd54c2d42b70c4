package eval

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/qsparse/qsparse/model"
)

// shardSweep runs the sweep as shard i of n and round-trips its partial through JSON.
func shardSweep(t *testing.T, m, base *model.Model, tokens []int, configs []Config, opts PPLOptions, i, n int) *Partial {
	t.Helper()
	opts.Shard, opts.Shards = i, n
	rep, err := Sweep(context.Background(), m, tokens, configs, SweepOptions{PPLOptions: opts, Base: base})
	if err != nil {
		t.Fatal(err)
	}
	p := &Partial{ID: RunID{Fingerprint: model.Fingerprint(&m.Spec), Ctx: opts.Ctx, Chunks: NumChunks(len(tokens), opts),
		Configs: ConfigIDs(configs)}, Shard: i, Shards: n, Report: rep}
	var buf bytes.Buffer
	if err := p.Write(&buf); err != nil {
		t.Fatal(err)
	}
	back, err := ReadPartial(&buf, "shard")
	if err != nil {
		t.Fatal(err)
	}
	return back
}

// Four shards merged give exactly the figures of one run: PPL, its error, KL divergence, top-1
// agreement and the running perplexity (float equality, not a tolerance).
func TestShardsMergeExactly(t *testing.T) {
	m, tokens := loadStoriesEval(t)
	for _, base := range []*model.Model{nil, m} {
		name := "dense reference"
		if base != nil {
			name = "base model"
		}
		t.Run(name, func(t *testing.T) { testShardsMerge(t, m, base, tokens) })
	}
}

func testShardsMerge(t *testing.T, m, base *model.Model, tokens []int) {
	configs, err := Grid{Sparsities: []float64{0, 0.25, 0.5}}.Configs(&m.Spec)
	if err != nil {
		t.Fatal(err)
	}
	opts := PPLOptions{Ctx: 128, Chunks: 6}
	one, err := Sweep(context.Background(), m, tokens, configs, SweepOptions{PPLOptions: opts, Base: base})
	if err != nil {
		t.Fatal(err)
	}
	const n = 4
	var parts []*Partial
	var names []string
	for i := n - 1; i >= 0; i-- { // any order
		parts = append(parts, shardSweep(t, m, base, tokens, configs, opts, i, n))
		names = append(names, fmt.Sprintf("part%d.json", i))
	}
	if c := parts[0].Report.Rows[0].Chunks; c != 1 { // shard 3 of 4 over 6 chunks: chunk 3
		t.Fatalf("shard 3/4 evaluated %d chunks, want 1", c)
	}
	got, err := MergeShards(parts, names)
	if err != nil {
		t.Fatal(err)
	}
	want := 3 // dense, 25%, 50%
	if base != nil {
		want = 4 // base, model, 25%, 50%
	}
	if len(got.Rows) != len(one.Rows) || len(one.Rows) != want {
		t.Fatalf("%d merged rows, %d in one run", len(got.Rows), len(one.Rows))
	}
	for r := range one.Rows {
		w, g := one.Rows[r], got.Rows[r]
		if g.Label != w.Label || g.PPL != w.PPL || g.Err != w.Err || g.MeanNLL != w.MeanNLL || g.DeltaPPL != w.DeltaPPL ||
			g.KLD != w.KLD || g.KLDErr != w.KLDErr || g.SameTop != w.SameTop || g.SameTopErr != w.SameTopErr ||
			g.Tokens != w.Tokens || g.Chunks != w.Chunks || g.Bytes != w.Bytes || g.ByteSparsity != w.ByteSparsity {
			t.Errorf("row %d: merged %+v\none run %+v", r, g, w)
		}
		if len(g.Running) != len(w.Running) {
			t.Fatalf("row %d: running %v, want %v", r, g.Running, w.Running)
		}
		for i := range w.Running {
			if g.Running[i] != w.Running[i] {
				t.Errorf("row %d: running[%d] = %v, want %v", r, i, g.Running[i], w.Running[i])
			}
		}
	}
	if last := one.Rows[len(one.Rows)-1]; last.KLD <= 0 || last.SameTop >= 1 {
		t.Errorf("sparse rows look dense: %+v", one.Rows[1:])
	}
	var a, b bytes.Buffer
	if err := one.WriteMarkdown(&a); err != nil {
		t.Fatal(err)
	}
	if err := got.WriteMarkdown(&b); err != nil {
		t.Fatal(err)
	}
	if a.String() != b.String() {
		t.Errorf("markdown differs:\n%s\n%s", a.String(), b.String())
	}

	// Refusals: a missing shard, a duplicate, a different run.
	if _, err := MergeShards(parts[:3], names[:3]); !errors.Is(err, ErrMerge) {
		t.Errorf("3 of 4 shards: %v", err)
	}
	dup := append([]*Partial{parts[0]}, parts[:3]...)
	if _, err := MergeShards(dup, append([]string{"again.json"}, names[:3]...)); !errors.Is(err, ErrMerge) {
		t.Errorf("duplicate shard: %v", err)
	}
	other := *parts[1]
	other.ID.DataSHA256 = "x"
	if _, err := MergeShards([]*Partial{parts[0], &other, parts[2], parts[3]}, names); !errors.Is(err, ErrMerge) {
		t.Errorf("different data: %v", err)
	}
	if _, err := Sweep(context.Background(), m, tokens, configs, SweepOptions{PPLOptions: PPLOptions{Ctx: 128, Chunks: 3, Shard: 3, Shards: 4}}); !errors.Is(err, ErrShard) {
		t.Errorf("a shard without chunks: %v", err)
	}
}
