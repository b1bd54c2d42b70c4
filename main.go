// Command qsparse makes off-the-shelf LLM checkpoints sparsely activated, measures what that
// costs in accuracy, and runs them fast on a CPU. See README.md.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"

	"github.com/qsparse/qsparse/commands"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	err := commands.NewApp().RunContext(ctx, os.Args)
	stop()
	if err == nil {
		return
	}
	// Every message starts with "qsparse CMD: "; an interrupt reads "qsparse CMD: interrupted".
	fmt.Fprintln(os.Stderr, commands.Message(err))
	var usage *commands.UsageError
	switch {
	case errors.As(err, &usage):
		os.Exit(2)
	case errors.Is(err, context.Canceled):
		os.Exit(130)
	default:
		os.Exit(1)
	}
}
