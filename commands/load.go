package commands

import (
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/qsparse/qsparse/model"
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

// modelPath returns the --model value or a usage error.
func modelPath(c *cli.Context) (string, error) {
	p := c.String("model")
	if p == "" {
		return "", usagef("%s: --model is required (a GGUF file or a Hugging Face model folder)", c.Command.Name)
	}
	return p, nil
}

// loadModel loads the --model checkpoint.
func loadModel(c *cli.Context, ctxLen int) (*model.Model, error) {
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
	m, err := model.Load(p, model.LoadOptions{WeightType: wt, Threads: t, Ctx: ctxLen})
	if err != nil {
		return nil, fmt.Errorf("loading model: %w", err)
	}
	return m, nil
}
