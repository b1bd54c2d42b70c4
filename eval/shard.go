package eval

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
)

// PartialFormat names the format of a shard's partial result.
const PartialFormat = "qsparse-eval-partial/1"

// ErrMerge is returned (wrapped) when partials cannot be merged: from different runs, a shard
// missing or given twice, or an incomplete shard.
var ErrMerge = errors.New("cannot merge the partials")

// RunID identifies a sharded evaluation: partials merge only when every field is equal.
type RunID struct {
	// Fingerprint is model.Fingerprint of the model; ModelBytes its file size.
	Fingerprint string `json:"fingerprint"`
	ModelBytes  int64  `json:"model_bytes"`
	WeightType  string `json:"weight_type"`
	// BaseFingerprint and BaseBytes identify the --base model ("" and 0 without one).
	BaseFingerprint string `json:"base_fingerprint,omitempty"`
	BaseBytes       int64  `json:"base_bytes,omitempty"`
	BaseWeightType  string `json:"base_weight_type,omitempty"`
	DataSHA256      string `json:"data_sha256"`
	DataTokens      int    `json:"data_tokens"`
	Ctx             int    `json:"ctx"`
	Batch           int    `json:"batch"`
	// Chunks is the number of chunks of the whole run (every shard together).
	Chunks int `json:"chunks"`
	// Configs identifies the configurations, in order (ConfigIDs).
	Configs []string `json:"configs"`
}

// ConfigIDs returns one identity per configuration: its label, requested sparsity and a hash of
// its profile.
func ConfigIDs(configs []Config) []string {
	out := make([]string, len(configs))
	for i, c := range configs {
		h := "dense"
		if c.Profile != nil {
			b, _ := json.Marshal(c.Profile)
			s := sha256.Sum256(b)
			h = hex.EncodeToString(s[:8])
		}
		out[i] = c.Label + " @" + strconv.FormatFloat(c.Requested, 'g', -1, 64) + " " + h
	}
	return out
}

// diff names the fields in which id and o differ.
func (id *RunID) diff(o *RunID) []string {
	var d []string
	add := func(eq bool, name string) {
		if !eq {
			d = append(d, name)
		}
	}
	add(id.Fingerprint == o.Fingerprint && id.ModelBytes == o.ModelBytes, "model")
	add(id.WeightType == o.WeightType, "weight type")
	add(id.BaseFingerprint == o.BaseFingerprint && id.BaseBytes == o.BaseBytes && id.BaseWeightType == o.BaseWeightType, "base model")
	add(id.DataSHA256 == o.DataSHA256 && id.DataTokens == o.DataTokens, "data (sha256)")
	add(id.Ctx == o.Ctx, "ctx")
	add(id.Batch == o.Batch, "batch")
	add(id.Chunks == o.Chunks, "chunks")
	add(slices.Equal(id.Configs, o.Configs), "configurations")
	return d
}

// Partial is the result of one shard of a sharded evaluation: the shard's report, whose rows
// carry the raw per-chunk sums (Row.Sums), and the identity of the run.
type Partial struct {
	Format string  `json:"format"`
	ID     RunID   `json:"run"`
	Shard  int     `json:"shard"`
	Shards int     `json:"shards"`
	Report *Report `json:"report"`
}

// Write writes p as indented JSON.
func (p *Partial) Write(w io.Writer) error {
	p.Format = PartialFormat
	enc := json.NewEncoder(w)
	enc.SetIndent("", " ")
	return enc.Encode(p)
}

// ReadPartial reads a partial written by Partial.Write; name is used in errors.
func ReadPartial(r io.Reader, name string) (*Partial, error) {
	var p Partial
	dec := json.NewDecoder(r)
	if err := dec.Decode(&p); err != nil {
		return nil, fmt.Errorf("%w: %s is not a shard partial (JSON: %v); write one with qsparse eval --shard i/n --partial FILE",
			ErrMerge, name, err)
	}
	if p.Format != PartialFormat || p.Report == nil {
		return nil, fmt.Errorf("%w: %s is not a shard partial (format %q, want %q); write one with qsparse eval --shard i/n --partial FILE",
			ErrMerge, name, p.Format, PartialFormat)
	}
	return &p, nil
}

// MergeShards merges the partials of every shard of one run (names label them in errors) into
// the report one run over all chunks gives: each row's per-chunk sums are put in chunk order
// and totalled as a single run totals them, so PPL, KL divergence, top-1 agreement, their
// errors and the running perplexity are exactly equal. Seconds add up. It refuses (ErrMerge)
// partials of different runs, a shard missing or given twice, incomplete shards, and chunks
// missing or evaluated twice.
func MergeShards(parts []*Partial, names []string) (*Report, error) {
	if len(parts) == 0 {
		return nil, fmt.Errorf("%w: no partials given", ErrMerge)
	}
	first := parts[0]
	n := first.Shards
	if n < 1 {
		return nil, fmt.Errorf("%w: %s has %d shards", ErrMerge, names[0], n)
	}
	byShard := make([]int, n)
	for i := range byShard {
		byShard[i] = -1
	}
	for i, p := range parts {
		if d := first.ID.diff(&p.ID); len(d) > 0 {
			return nil, fmt.Errorf("%w: %s and %s come from different runs (their %s differ)", ErrMerge, names[0], names[i], strings.Join(d, ", "))
		}
		if p.Shards != n {
			return nil, fmt.Errorf("%w: %s is shard %d/%d but %s is of %d shards", ErrMerge, names[i], p.Shard, p.Shards, names[0], n)
		}
		if p.Shard < 0 || p.Shard >= n {
			return nil, fmt.Errorf("%w: %s has shard %d/%d", ErrMerge, names[i], p.Shard, n)
		}
		if j := byShard[p.Shard]; j >= 0 {
			return nil, fmt.Errorf("%w: shard %d/%d is given twice (%s and %s)", ErrMerge, p.Shard, n, names[j], names[i])
		}
		byShard[p.Shard] = i
		if p.Report.Incomplete {
			return nil, fmt.Errorf("%w: %s is incomplete (the shard was interrupted); run shard %d/%d again", ErrMerge, names[i], p.Shard, n)
		}
		if len(p.Report.Rows) != len(first.Report.Rows) {
			return nil, fmt.Errorf("%w: %s has %d rows but %s has %d", ErrMerge, names[i], len(p.Report.Rows), names[0], len(first.Report.Rows))
		}
	}
	var missing []string
	for s, j := range byShard {
		if j < 0 {
			missing = append(missing, fmt.Sprintf("%d/%d", s, n))
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("%w: shard %s missing; merge the partials of all %d shards", ErrMerge, strings.Join(missing, ", "), n)
	}

	rep := *first.Report
	rep.Rows = make([]Row, len(first.Report.Rows))
	rep.Incomplete = false
	for r := range rep.Rows {
		row := first.Report.Rows[r]
		var sums []ChunkSums
		row.Seconds = 0
		for i, p := range parts {
			pr := &p.Report.Rows[r]
			if pr.Label != row.Label || pr.Sparsity != row.Sparsity || pr.Reference != row.Reference {
				return nil, fmt.Errorf("%w: row %d is %q in %s but %q in %s", ErrMerge, r+1, row.Label, names[0], pr.Label, names[i])
			}
			sums = append(sums, pr.Sums...)
			row.Seconds += pr.Seconds
		}
		slices.SortStableFunc(sums, func(a, b ChunkSums) int { return a.Chunk - b.Chunk })
		for c, s := range sums {
			if s.Chunk != c {
				return nil, fmt.Errorf("%w: row %q: chunk %d is missing or evaluated twice (the partials hold chunks %s); run every shard with the same --chunks",
					ErrMerge, row.Label, c, chunkList(sums))
			}
		}
		if len(sums) != first.ID.Chunks {
			return nil, fmt.Errorf("%w: row %q has %d chunks, the run has %d", ErrMerge, row.Label, len(sums), first.ID.Chunks)
		}
		setFromSums(&row, sums, row.Running != nil)
		if !row.Reference {
			row.DeltaPPL = row.PPL/rep.Rows[0].PPL - 1
		}
		rep.Rows[r] = row
	}
	return &rep, nil
}

// setFromSums sets the figures of row from its per-chunk sums in chunk order.
func setFromSums(row *Row, sums []ChunkSums, running bool) {
	t, run := Total(sums)
	row.Sums = sums
	row.PPL, row.Err, row.MeanNLL = pplStats(t.NLL, t.NLL2, t.Count)
	row.Tokens, row.Chunks = t.Count, len(sums)
	row.Running = nil
	if running {
		row.Running = run
	}
	if !row.Reference {
		row.KLD, row.KLDErr, row.SameTop, row.SameTopErr = klStats(&t)
	}
}

// chunkList formats the chunk indices of sums briefly.
func chunkList(sums []ChunkSums) string {
	var b strings.Builder
	for i, s := range sums {
		if i == 8 {
			b.WriteString(", ...")
			break
		}
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(strconv.Itoa(s.Chunk))
	}
	return b.String()
}
