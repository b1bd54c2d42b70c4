package model

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// problems checks a checkpoint as Load does, but collects every problem instead of stopping
// at the first: each needed tensor present with its shape (shapeOf), no tensor of a layer
// beyond NLayers, and a tokenizer (vocab tokens; 0: unknown) no larger than the embedding.
func (s *Spec) problems(shapeOf func(name string) ([]int, bool), tensors []TensorDesc, vocab int) []string {
	var out []string
	for _, t := range s.Tensors() {
		sh, ok := shapeOf(t.Name)
		switch {
		case !ok:
			out = append(out, fmt.Sprintf("tensor %s is missing", t.Name))
		case !slices.Equal(sh, t.Shape):
			out = append(out, fmt.Sprintf("tensor %s has shape %v, want %v", t.Name, sh, t.Shape))
		}
	}
	extra := map[int]bool{}
	for _, t := range tensors {
		rest, ok := strings.CutPrefix(t.Name, "blk.")
		if !ok {
			continue
		}
		num, _, _ := strings.Cut(rest, ".")
		if l, err := strconv.Atoi(num); err == nil && l >= s.NLayers && !extra[l] {
			extra[l] = true
			out = append(out, fmt.Sprintf("tensors of layer %d are present, but the hyper-parameters say %d layers", l, s.NLayers))
		}
	}
	if vocab > s.Vocab {
		out = append(out, fmt.Sprintf("the tokenizer has %d tokens but the embedding only %d rows", vocab, s.Vocab))
	}
	return out
}
