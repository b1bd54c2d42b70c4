package model

import (
	"errors"
	"fmt"
)

// Sentinel errors: every error Load, Validate and the profile setters return for a bad model or
// bad input wraps one of these, so callers (and tests) can tell the cases apart with errors.Is.
var (
	// ErrUnsupportedArch: the checkpoint's architecture is not one qsparse runs (or the file is
	// not a model at all).
	ErrUnsupportedArch = errors.New("unsupported architecture")
	// ErrUnsupported: the architecture is known but the checkpoint uses a feature qsparse does not
	// implement (an activation, a bias, partial RoPE, a RoPE scaling type, a weight type).
	ErrUnsupported = errors.New("unsupported model feature")
	// ErrBadSpec: hyper-parameters are missing, out of range or inconsistent.
	ErrBadSpec = errors.New("invalid model hyper-parameters")
	// ErrMissingTensor: a tensor the architecture needs is not in the checkpoint.
	ErrMissingTensor = errors.New("missing tensor")
	// ErrTensorShape: a tensor is present with the wrong shape (or rows were asked out of range).
	ErrTensorShape = errors.New("tensor shape mismatch")
	// ErrVocabMismatch: the tokenizer and the embedding table disagree on the vocabulary.
	ErrVocabMismatch = errors.New("tokenizer does not match the model")
	// ErrNoTokenizer: the checkpoint carries no tokenizer.
	ErrNoTokenizer = errors.New("no tokenizer")
	// ErrBadProfile: a sparsity ratio, profile or site name is invalid for the model.
	ErrBadProfile = errors.New("invalid sparsity profile")
)

// kindError is an error whose message is msg's and which wraps both a sentinel and whatever msg
// wraps, so the sentinel need not be spelled out in the message.
type kindError struct {
	kind error
	msg  error
}

func (e *kindError) Error() string   { return e.msg.Error() }
func (e *kindError) Unwrap() []error { return []error{e.kind, e.msg} }

// errorf formats like fmt.Errorf (%w allowed) and wraps kind as well.
func errorf(kind error, format string, args ...any) error {
	return &kindError{kind: kind, msg: fmt.Errorf(format, args...)}
}
