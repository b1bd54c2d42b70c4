package safetensors

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// File names inside a Hugging Face model folder.
const (
	ConfigFile      = "config.json"
	SingleFile      = "model.safetensors"
	IndexFile       = "model.safetensors.index.json"
	maxIndexSize    = 64 << 20
	maxConfigSize   = 16 << 20
	maxShardsPerDir = 100000
)

// Dir is an opened Hugging Face model folder.
type Dir struct {
	Path    string
	Config  *Config
	Tensors []Tensor // all tensors of all shards, sorted by name; Data are mmap views
	Files   []*File  // the opened weight files (one, or the shards in index order)

	index map[string]int
}

// Index is the content of model.safetensors.index.json.
type Index struct {
	Metadata  map[string]any    `json:"metadata"`
	WeightMap map[string]string `json:"weight_map"`
}

// OpenDir opens a model folder: config.json (see ParseConfig) plus either model.safetensors or
// the shards named by model.safetensors.index.json (model.safetensors wins when both exist, as
// in transformers). Every tensor the index lists must be in the shard it names; a tensor name
// found in two files is an error. Close the Dir when its tensors are no longer used.
func OpenDir(dir string) (*Dir, error) {
	cb, err := readSmall(filepath.Join(dir, ConfigFile), maxConfigSize)
	if err != nil {
		return nil, fmt.Errorf("safetensors: model folder %s: %w (want a Hugging Face folder with config.json): %w",
			dir, err, ErrConfig)
	}
	cfg, err := ParseConfig(cb)
	if err != nil {
		return nil, fmt.Errorf("safetensors: %s: %w", dir, err)
	}
	d := &Dir{Path: dir, Config: cfg}
	ok := false
	defer func() {
		if !ok {
			d.Close()
		}
	}()

	single := filepath.Join(dir, SingleFile)
	indexPath := filepath.Join(dir, IndexFile)
	if _, err := os.Stat(single); err == nil {
		f, err := Open(single)
		if err != nil {
			return nil, err
		}
		d.Files = append(d.Files, f)
		if err := d.addTensors(f); err != nil {
			return nil, err
		}
	} else if _, err := os.Stat(indexPath); err == nil {
		if err := d.openShards(indexPath); err != nil {
			return nil, err
		}
	} else {
		return nil, fmt.Errorf("safetensors: model folder %s has neither %s nor %s: %w",
			dir, SingleFile, IndexFile, ErrMissingShard)
	}
	slices.SortFunc(d.Tensors, func(a, b Tensor) int { return strings.Compare(a.Name, b.Name) })
	d.index = make(map[string]int, len(d.Tensors))
	for i, t := range d.Tensors {
		d.index[t.Name] = i
	}
	ok = true
	return d, nil
}

// ReadIndex reads and checks a model.safetensors.index.json: shard names must be plain file
// names (no folders), and there must be at least one entry.
func ReadIndex(path string) (*Index, error) {
	b, err := readSmall(path, maxIndexSize)
	if err != nil {
		return nil, fmt.Errorf("safetensors: %w: %w", err, ErrCorrupt)
	}
	var ix Index
	if err := json.Unmarshal(b, &ix); err != nil {
		return nil, fmt.Errorf("safetensors: %s: not a valid index: %v: %w", path, err, ErrCorrupt)
	}
	if len(ix.WeightMap) == 0 {
		return nil, fmt.Errorf("safetensors: %s: weight_map is empty or missing: %w", path, ErrCorrupt)
	}
	for name, shard := range ix.WeightMap {
		if shard == "" || shard != filepath.Base(shard) || strings.ContainsAny(shard, `/\`) || shard == "." || shard == ".." {
			return nil, fmt.Errorf("safetensors: %s: tensor %q: shard %q is not a plain file name in the folder: %w",
				path, name, shard, ErrCorrupt)
		}
	}
	return &ix, nil
}

func (d *Dir) openShards(indexPath string) error {
	ix, err := ReadIndex(indexPath)
	if err != nil {
		return err
	}
	byShard := map[string][]string{}
	for name, shard := range ix.WeightMap {
		byShard[shard] = append(byShard[shard], name)
	}
	if len(byShard) > maxShardsPerDir {
		return fmt.Errorf("safetensors: %s names %d shards: %w", indexPath, len(byShard), ErrCorrupt)
	}
	shards := make([]string, 0, len(byShard))
	for s := range byShard {
		shards = append(shards, s)
	}
	slices.Sort(shards)
	for _, s := range shards {
		p := filepath.Join(d.Path, s)
		f, err := Open(p)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("safetensors: %s: shard %s (holding %d tensors, e.g. %q) is missing: %w: %w",
					indexPath, s, len(byShard[s]), minName(byShard[s]), err, ErrMissingShard)
			}
			return err
		}
		d.Files = append(d.Files, f)
		names := byShard[s]
		slices.Sort(names)
		for _, name := range names {
			if _, ok := f.Tensor(name); !ok {
				return fmt.Errorf("safetensors: %s: tensor %q is listed in shard %s but not found there: %w",
					indexPath, name, s, ErrMissingShard)
			}
		}
		if err := d.addTensors(f); err != nil {
			return err
		}
	}
	return nil
}

func minName(names []string) string { return slices.Min(names) }

func (d *Dir) addTensors(f *File) error {
	if d.index == nil {
		d.index = map[string]int{}
	}
	for _, t := range f.Tensors {
		if i, dup := d.index[t.Name]; dup {
			return fmt.Errorf("safetensors: tensor %q is in both %s and %s: %w",
				t.Name, d.fileOf(i), f.Path, ErrCorrupt)
		}
		d.index[t.Name] = len(d.Tensors)
		d.Tensors = append(d.Tensors, t)
	}
	return nil
}

// fileOf returns the path of the file holding d.Tensors[i] (before sorting).
func (d *Dir) fileOf(i int) string {
	for _, f := range d.Files {
		if i < len(f.Tensors) {
			return f.Path
		}
		i -= len(f.Tensors)
	}
	return "?"
}

// Tensor returns the named tensor.
func (d *Dir) Tensor(name string) (Tensor, bool) {
	i, ok := d.index[name]
	if !ok {
		return Tensor{}, false
	}
	return d.Tensors[i], true
}

// Release drops the mapped pages holding b (a sub-slice of a tensor's Data) from the process's
// resident set (see File.Release).
func (d *Dir) Release(b []byte) {
	for _, f := range d.Files {
		f.Release(b)
	}
}

// Close unmaps all weight files. The tensors' Data must not be used afterwards.
func (d *Dir) Close() error {
	if d == nil {
		return nil
	}
	var errs []error
	for _, f := range d.Files {
		errs = append(errs, f.Close())
	}
	d.Files = nil
	return errors.Join(errs...)
}

// readSmall reads a whole file, refusing files larger than max bytes.
func readSmall(path string, max int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("%s: more than %d bytes (limit)", path, max)
	}
	return b, nil
}
