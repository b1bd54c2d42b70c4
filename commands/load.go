package commands

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/urfave/cli/v2"

	"github.com/qsparse/qsparse/model"
	"github.com/qsparse/qsparse/pull"
)

// checkModelFlags checks --model, --threads and --weight-type before any work is done.
func checkModelFlags(c *cli.Context) error {
	if _, err := modelPath(c); err != nil {
		return err
	}
	if _, err := threads(c); err != nil {
		return err
	}
	_, err := weightType(c)
	return err
}

// modelPath returns the --model value or a usage error. A built-in model name (qsparse pull
// smollm2) that is not a local path stands for its file in the cache.
func modelPath(c *cli.Context) (string, error) {
	p := c.String("model")
	if p == "" {
		return "", usagef("%s: --model is required (a GGUF file or a Hugging Face model folder)", c.Command.Name)
	}
	return resolveModel(p)
}

// resolveModel maps a built-in model name to its cached file; other values are paths.
func resolveModel(p string) (string, error) {
	k := pull.Lookup(p)
	if k == nil {
		return p, nil
	}
	if _, err := os.Stat(p); err == nil {
		return p, nil // a local file or folder of that name wins
	}
	cached := filepath.Join(pull.DefaultCacheDir(), filepath.FromSlash(k.File))
	if _, err := os.Stat(cached); err != nil {
		return "", usagef("model %q is not downloaded yet: run qsparse pull %s (%s, %d MB) first", p, k.Name, k.Desc, k.Size>>20)
	}
	return cached, nil
}

// loadModel loads the --model checkpoint with the default weight layout.
func loadModel(c *cli.Context, ctxLen int) (*model.Model, error) {
	return loadModelLayout(c, ctxLen, "")
}

// loadModelLayout loads the --model checkpoint with the given site weight layout ("" or "auto":
// the file's own: column-major for pack files, row-major otherwise).
func loadModelLayout(c *cli.Context, ctxLen int, layout string) (*model.Model, error) {
	p, err := modelPath(c)
	if err != nil {
		return nil, err
	}
	t, err := threads(c)
	if err != nil {
		return nil, err
	}
	wt, err := weightType(c)
	if err != nil {
		return nil, err
	}
	if ctxLen > 0 && lookupFlag(c.Command.Flags, "allow-long-ctx") != nil {
		// Refuse a too-long --ctx before the (slow) load; Inspect reads no tensor data.
		if info, err := model.Inspect(p); err == nil {
			if err := checkCtxLen(c, info.Spec.CtxLen, ctxLen, false); err != nil {
				return nil, err
			}
		}
	}
	m, err := model.Load(p, model.LoadOptions{WeightType: wt, Threads: t, Ctx: ctxLen, Layout: layout})
	if err != nil {
		return nil, fmt.Errorf("loading model: %w", err)
	}
	return m, nil
}

// checkCtx refuses a context longer than the model was trained for, unless --allow-long-ctx
// (then it warns).
func checkCtx(c *cli.Context, m *model.Model, nctx int) error {
	return checkCtxLen(c, m.Spec.CtxLen, nctx, true)
}

func checkCtxLen(c *cli.Context, train, nctx int, warn bool) error {
	if train <= 0 || nctx <= train {
		return nil
	}
	if !c.Bool("allow-long-ctx") {
		return usagef("--ctx %d is longer than the model's training context of %d tokens; use --ctx %d or less, or --allow-long-ctx to run past it anyway",
			nctx, train, train)
	}
	if warn {
		fmt.Fprintf(stderr(c), "warning: --ctx %d is longer than the model's training context %d (--allow-long-ctx)\n", nctx, train)
	}
	return nil
}
