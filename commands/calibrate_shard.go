package commands

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/qsparse/qsparse/calibrate"
	"github.com/qsparse/qsparse/internal/atomicfile"
	"github.com/qsparse/qsparse/model"
)

// calibratePartialFormat names the format of a calibrate shard's measurements.
const calibratePartialFormat = "qsparse-calibrate-partial/1"

// calibratePartial is what calibrate --shard i/n --partial FILE writes: the shard's savable
// measurements (calibrate.Saved) and what they were measured on.
type calibratePartial struct {
	Format     string           `json:"format"`
	Shard      int              `json:"shard"`
	Shards     int              `json:"shards"`
	Method     string           `json:"method"`
	Ctx        int              `json:"ctx"`
	DataSHA256 string           `json:"data_sha256"`
	Saved      *calibrate.Saved `json:"measurements"`
}

// shardOptions limits opt to shard i of n: shard 0 runs the statistics pass, and shard i
// measures the probes of the layers l with l % n == i.
func shardOptions(opt calibrate.Options, layers, i, n int) calibrate.Options {
	opt.SkipStats = i != 0
	opt.ProbeLayers = []int{}
	for l := i; l < layers; l += n {
		opt.ProbeLayers = append(opt.ProbeLayers, l)
	}
	return opt
}

// calibrateShard measures shard i of n and writes its partial to path.
func calibrateShard(ctx context.Context, m *model.Model, tokens []int, opt calibrate.Options, i, n int, dataSHA, path string) error {
	ms, err := calibrate.Measure(ctx, m, tokens, shardOptions(opt, m.Spec.NLayers, i, n))
	if err != nil {
		return err
	}
	p := &calibratePartial{Format: calibratePartialFormat, Shard: i, Shards: n, Method: opt.Method, Ctx: opt.Ctx,
		DataSHA256: dataSHA, Saved: ms.Export()}
	return atomicfile.Write(path, func(w io.Writer) error {
		enc := json.NewEncoder(w)
		return enc.Encode(p)
	})
}

// calibrateMerge reads the partials of every shard and rebuilds the measurements of one run.
func calibrateMerge(ctx context.Context, m *model.Model, tokens []int, opt calibrate.Options, dataSHA string, files []string) (*calibrate.Measurements, error) {
	var saved []*calibrate.Saved
	var seen []string
	n := -1
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		var p calibratePartial
		if err := json.Unmarshal(b, &p); err != nil || p.Format != calibratePartialFormat || p.Saved == nil {
			return nil, fmt.Errorf("%s is not a calibrate partial (write one with calibrate --shard i/n --partial FILE)", f)
		}
		if n < 0 {
			n = p.Shards
			seen = make([]string, n)
		}
		switch {
		case p.Shards != n || p.Shard < 0 || p.Shard >= n:
			return nil, fmt.Errorf("%s is shard %d/%d, but %s is of %d shards", f, p.Shard, p.Shards, files[0], n)
		case seen[p.Shard] != "":
			return nil, fmt.Errorf("shard %d/%d is given twice (%s and %s)", p.Shard, n, seen[p.Shard], f)
		case p.DataSHA256 != dataSHA:
			return nil, fmt.Errorf("%s was measured on another text (sha256 %.12s..., --data has %.12s...)", f, p.DataSHA256, dataSHA)
		case p.Method != opt.Method || p.Ctx != opt.Ctx:
			return nil, fmt.Errorf("%s was measured with --method %s --ctx %d, not --method %s --ctx %d", f, p.Method, p.Ctx, opt.Method, opt.Ctx)
		}
		seen[p.Shard] = f
		saved = append(saved, p.Saved)
	}
	var missing []string
	for i, f := range seen {
		if f == "" {
			missing = append(missing, fmt.Sprintf("%d/%d", i, n))
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("shard %s missing; give the partials of all %d shards", strings.Join(missing, ", "), n)
	}
	return calibrate.Restore(ctx, m, tokens, opt, saved)
}

// calibrateShardFlags are calibrate's flags for splitting the measurements over processes.
func calibrateShardFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "shard", Usage: "measure only shard i of n (i/n): shard 0 the statistics, shard i the probes of layers l % n == i; needs --partial"},
		&cli.StringFlag{Name: "partial", Usage: "write the shard's measurements to this JSON file (no profile is written)"},
		&cli.BoolFlag{Name: "merge", Usage: "allocate from the partial files given as arguments (every shard once) instead of measuring; same --model, --data and options"},
	}
}
