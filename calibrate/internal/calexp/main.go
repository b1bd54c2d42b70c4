// Command calexp is the experiment behind the README's "Calibrated profiles" table: it measures a
// model once on a calibration text, writes the uniform, teal and kl profiles at several targets
// (and optionally a perplexity budget), and evaluates each on a text with eval.PerplexityProfile.
//
//	go run ./calibrate/internal/calexp -m MODEL -cal FILE -eval FILE -targets 0.4,0.5,0.6 -out DIR
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/qsparse/qsparse/calibrate"
	"github.com/qsparse/qsparse/eval"
	"github.com/qsparse/qsparse/model"
)

var (
	threadsFlag = flag.Int("threads", 0, "model threads (0: all CPUs)")
	saveFlag    = flag.String("save", "", "write the measurements (JSON) here and stop")
	loadFlag    = flag.String("load", "", "comma-separated saved measurements to merge instead of measuring")
	skipStats   = flag.Bool("skip-stats", false, "measure without the statistics pass")
	probeLayers = flag.String("probe-layers", "", "probe only layers FROM-TO")
	methodFlag  = flag.String("measure-method", "kl", "method to measure for")
)

func main() {
	mpath := flag.String("m", "", "model")
	cal := flag.String("cal", "", "calibration text")
	calFirst := flag.Int("cal-first", 0, "use only the first N bytes of the calibration text (0: all)")
	evf := flag.String("eval", "", "evaluation text")
	evLast := flag.Int("eval-last", 0, "use only the last N bytes of the evaluation text (0: all)")
	ctxN := flag.Int("ctx", 512, "eval context")
	chunks := flag.Int("chunks", 40, "eval chunks")
	calCtx := flag.Int("cal-ctx", 512, "calibration chunk")
	tokens := flag.Int("tokens", 16384, "calibration tokens")
	klTokens := flag.Int("kl-tokens", 512, "held-out tokens")
	targets := flag.String("targets", "0.4,0.5,0.6", "targets")
	methods := flag.String("methods", "uniform,teal,kl", "methods")
	maxPPL := flag.Float64("max-ppl", 0, "also a perplexity budget (0.1 = 10%)")
	probes := flag.String("probes", "0.5", "probe ratios")
	out := flag.String("out", "", "output folder for profiles")
	noEval := flag.Bool("no-eval", false, "only write profiles")
	skipDense := flag.Bool("skip-dense", false, "with -profiles: do not evaluate dense")
	profiles := flag.String("profiles", "", "only evaluate these comma-separated profile files (and dense)")
	flag.Parse()
	if *profiles != "" {
		if err := evalOnly(*mpath, *evf, *evLast, *ctxN, *chunks, strings.Split(*profiles, ","), *skipDense); err != nil {
			fmt.Fprintln(os.Stderr, "calexp:", err)
			os.Exit(1)
		}
		return
	}
	if err := run(*mpath, *cal, *calFirst, *evf, *evLast, *ctxN, *chunks, *calCtx, *tokens, *klTokens, *targets, *methods, *maxPPL, *probes, *out, *noEval); err != nil {
		fmt.Fprintln(os.Stderr, "calexp:", err)
		os.Exit(1)
	}
}

func floats(s string) []float64 {
	var v []float64
	for _, f := range strings.Split(s, ",") {
		x, err := strconv.ParseFloat(strings.TrimSpace(f), 64)
		if err == nil {
			v = append(v, x)
		}
	}
	return v
}

func run(mpath, cal string, calFirst int, evf string, evLast, ctxN, chunks, calCtx, tokens, klTokens int,
	targets, methods string, maxPPL float64, probes, out string, noEval bool) error {
	ctx := context.Background()
	m, err := model.Load(mpath, model.LoadOptions{Threads: *threadsFlag})
	if err != nil {
		return err
	}
	defer m.Close()
	ct, err := os.ReadFile(cal)
	if err != nil {
		return err
	}
	if calFirst > 0 && calFirst < len(ct) {
		ct = ct[:calFirst]
	}
	calToks := eval.Tokenize(m, string(ct))
	opt := calibrate.Options{Method: calibrate.MethodKL, Tokens: tokens, KLTokens: klTokens, Ctx: calCtx,
		Probes: floats(probes), Target: 0.5,
		Progress: func(p calibrate.Progress) {
			if p.Stage == "search" || p.Stage == "budget" {
				fmt.Fprintf(os.Stderr, "%s %d/%d KL %.5f\n", p.Stage, p.Done, p.Total, p.KL)
			} else if p.Done == p.Total || p.Done%20 == 0 {
				fmt.Fprintf(os.Stderr, "%s %d/%d\n", p.Stage, p.Done, p.Total)
			}
		}}
	opt.Method = *methodFlag
	opt.SkipStats = *skipStats
	if *probeLayers != "" {
		var a, b int
		fmt.Sscanf(*probeLayers, "%d-%d", &a, &b)
		for l := a; l <= b; l++ {
			opt.ProbeLayers = append(opt.ProbeLayers, l)
		}
	}
	t0 := time.Now()
	var ms *calibrate.Measurements
	if *loadFlag != "" {
		var parts []*calibrate.Saved
		for _, f := range strings.Split(*loadFlag, ",") {
			b, err := os.ReadFile(f)
			if err != nil {
				return err
			}
			var sv calibrate.Saved
			if err := json.Unmarshal(b, &sv); err != nil {
				return err
			}
			parts = append(parts, &sv)
		}
		ms, err = calibrate.Restore(ctx, m, calToks, opt, parts)
	} else {
		ms, err = calibrate.Measure(ctx, m, calToks, opt)
	}
	if err != nil {
		return err
	}
	if *saveFlag != "" {
		b, err := json.Marshal(ms.Export())
		if err != nil {
			return err
		}
		fmt.Printf("measure: %.1f s\n", time.Since(t0).Seconds())
		return os.WriteFile(*saveFlag, b, 0o644)
	}
	fmt.Printf("measure: %.1f s (%d calibration tokens of %d)\n", time.Since(t0).Seconds(), tokens, len(calToks))
	if out != "" {
		if err := os.MkdirAll(out, 0o755); err != nil {
			return err
		}
	}
	type job struct {
		label string
		p     *model.Profile
	}
	var jobs []job
	for _, meth := range strings.Split(methods, ",") {
		o := opt
		o.Method = meth
		var list []float64
		list = append(list, floats(targets)...)
		if maxPPL > 0 {
			list = append(list, -maxPPL)
		}
		for _, t := range list {
			o.Target, o.MaxPPL = t, 0
			name := fmt.Sprintf("%s-%02.0f", meth, t*100)
			if t < 0 {
				o.Target, o.MaxPPL = 0, -t
				name = fmt.Sprintf("%s-ppl%02.0f", meth, -t*100)
			}
			t1 := time.Now()
			p, err := ms.Allocate(ctx, o)
			if err != nil {
				return err
			}
			c := p.Calibration
			fmt.Printf("%-12s sparsity %.4f  held-out KL %.5f PPL %.4f (dense %.4f)  %.1f s\n", name, c.Sparsity, c.KL, c.PPL, c.DensePPL, time.Since(t1).Seconds())
			printRatios(&m.Spec, p)
			if out != "" {
				if err := model.WriteProfile(filepath.Join(out, name+".json"), &m.Spec, p); err != nil {
					return err
				}
			}
			jobs = append(jobs, job{name, p})
		}
	}
	if noEval || evf == "" {
		return nil
	}
	et, err := os.ReadFile(evf)
	if err != nil {
		return err
	}
	if evLast > 0 && evLast < len(et) {
		et = et[len(et)-evLast:]
	}
	evToks := eval.Tokenize(m, string(et))
	po := eval.PPLOptions{Ctx: ctxN, Chunks: chunks}
	dense, err := eval.PerplexityProfile(ctx, m, nil, evToks, po)
	if err != nil {
		return err
	}
	fmt.Printf("eval dense PPL %.4f\n", dense.PPL)
	for _, j := range jobs {
		r, err := eval.PerplexityProfile(ctx, m, j.p, evToks, po)
		if err != nil {
			return err
		}
		fmt.Printf("eval %-12s sparsity %.4f PPL %.4f dPPL %.4f\n", j.label, j.p.ByteSparsity(&m.Spec), r.PPL, r.PPL-dense.PPL)
	}
	return nil
}

// evalOnly evaluates dense and the given profile files on the evaluation text.
func evalOnly(mpath, evf string, evLast, ctxN, chunks int, files []string, skipDense bool) error {
	m, err := model.Load(mpath, model.LoadOptions{Threads: *threadsFlag})
	if err != nil {
		return err
	}
	defer m.Close()
	et, err := os.ReadFile(evf)
	if err != nil {
		return err
	}
	if evLast > 0 && evLast < len(et) {
		et = et[len(et)-evLast:]
	}
	toks := eval.Tokenize(m, string(et))
	po := eval.PPLOptions{Ctx: ctxN, Chunks: chunks}
	if !skipDense {
		files = append([]string{"dense"}, files...)
	}
	for _, f := range files {
		var p *model.Profile
		if f != "dense" {
			if p, err = model.ReadProfile(f); err != nil {
				return err
			}
		}
		t0 := time.Now()
		r, err := eval.PerplexityProfile(context.Background(), m, p, toks, po)
		if err != nil {
			return err
		}
		fmt.Printf("eval %-40s sparsity %.4f PPL %.4f +/- %.4f  (%d chunks, %.0f s)\n", f, p.ByteSparsity(&m.Spec), r.PPL, r.Err, r.Chunks, time.Since(t0).Seconds())
	}
	return nil
}

// printRatios prints the mean ratio of each site type and the per-layer byte sparsity.
func printRatios(sp *model.Spec, p *model.Profile) {
	var b strings.Builder
	for s := model.AttnIn; s < model.NumSites; s++ {
		var r float64
		for l := range p.Keep {
			r += 1 - float64(p.Keep[l][s])/float64(sp.SiteDim(s))
		}
		fmt.Fprintf(&b, " %s %.3f", s, r/float64(len(p.Keep)))
	}
	b.WriteString(" | layers")
	for l := range p.Keep {
		var sk, tot float64
		for s := model.AttnIn; s < model.NumSites; s++ {
			w := float64(sp.SiteParams(s))
			sk += w * (1 - float64(p.Keep[l][s])/float64(sp.SiteDim(s)))
			tot += w
		}
		fmt.Fprintf(&b, " %.2f", sk/tot)
	}
	fmt.Println("   " + b.String())
}
