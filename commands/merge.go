package commands

import (
	"fmt"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/qsparse/qsparse/eval"
)

// mergeCommand builds the merge subcommand: the report of a sharded eval from its partials.
func mergeCommand() *cli.Command {
	return &cli.Command{
		Name:      "merge",
		Usage:     "merge the partials of a sharded eval (eval --shard i/n --partial FILE) into the run's report",
		UsageText: "qsparse merge part-*.json [--markdown|--csv|--json] [--plot out.svg]",
		Description: "Every shard of one run must be given exactly once; partials of different runs (model, data,\n" +
			"--ctx, --batch, --chunks, configurations) are refused. The report is the one a single eval over\n" +
			"all chunks prints, with the same PPL, KL divergence and top-1 figures (bit for bit); seconds are\n" +
			"the shards' sum. See docs/sharding.md.",
		Flags: []cli.Flag{
			jsonFlag(),
			&cli.BoolFlag{Name: "markdown", Usage: "write the result as a markdown table"},
			&cli.BoolFlag{Name: "csv", Usage: "write the result as CSV"},
			&cli.StringFlag{Name: "plot", Usage: "also write PPL and KL divergence against sparsity as an SVG image to this file"},
			quietFlag(),
		},
		Action: runMerge,
	}
}

func runMerge(c *cli.Context) error {
	files := cmdArgs(c)
	if len(files) == 0 {
		return usagef("merge: give the partial files of every shard (qsparse eval --shard i/n --partial FILE)")
	}
	formats := 0
	for _, f := range []string{"json", "markdown", "csv"} {
		if c.Bool(f) {
			formats++
		}
	}
	if formats > 1 {
		return usagef("merge: choose one of --json, --markdown and --csv")
	}
	var parts []*eval.Partial
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			return fmt.Errorf("merge: %w", err)
		}
		p, err := eval.ReadPartial(fh, f)
		fh.Close()
		if err != nil {
			return fmt.Errorf("merge: %w", err)
		}
		parts = append(parts, p)
	}
	rep, err := eval.MergeShards(parts, files)
	if err != nil {
		return fmt.Errorf("merge: %w", err)
	}
	errw := infoWriter(c)
	fmt.Fprintf(errw, "merge: %d shards, %d chunks of %d tokens, %d rows\n", len(parts), parts[0].ID.Chunks, rep.Ctx, len(rep.Rows))
	for _, row := range rep.Rows {
		fmt.Fprintf(errw, "%s: %s\n", row.Label, eval.FormatFinal(&eval.PPLResult{PPL: row.PPL, Err: row.Err}))
	}
	return writeEvalReport(c, rep)
}
