package gguf

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"regexp"
)

// Split-model metadata keys (llama.cpp gguf-split).
const (
	KeySplitNo           = "split.no"
	KeySplitCount        = "split.count"
	KeySplitTensorsCount = "split.tensors.count"
	// MaxSplitShards bounds split.count.
	MaxSplitShards = 9999
)

var splitName = regexp.MustCompile(`^(.*)-([0-9]{5})-of-([0-9]{5})\.gguf$`)

// SplitPath returns the path of shard no (0-based) of count: PREFIX-0000(no+1)-of-0000count.gguf,
// the naming llama.cpp's gguf-split uses.
func SplitPath(prefix string, no, count int) string {
	return fmt.Sprintf("%s-%05d-of-%05d.gguf", prefix, no+1, count)
}

// splitInfo returns split.no and split.count of s (0, 1 when the keys are absent).
func (s *shard) splitInfo() (no, count uint64, err error) {
	count = 1
	if i, ok := s.kvIndex[KeySplitCount]; ok {
		v := s.kv[i].Value
		c, ok := v.Uint()
		if !ok || c == 0 || c > MaxSplitShards {
			return 0, 0, fmt.Errorf("%s: key %q is %v; want an integer from 1 to %d: %w", s.name, KeySplitCount, v, MaxSplitShards, ErrCorrupt)
		}
		count = c
	}
	if i, ok := s.kvIndex[KeySplitNo]; ok {
		v := s.kv[i].Value
		n, ok := v.Uint()
		if !ok || n >= count {
			return 0, 0, fmt.Errorf("%s: key %q is %v; want an integer below split.count %d: %w", s.name, KeySplitNo, v, count, ErrCorrupt)
		}
		no = n
	}
	return no, count, nil
}

// assemble fills f from the shard s that Open was given, opening the other shards of a split model.
func (f *File) assemble(s *shard) error {
	no, count, err := s.splitInfo()
	if err != nil {
		return err
	}
	shards := []*shard{s}
	if count > 1 {
		m := splitName.FindStringSubmatch(filepath.Base(s.path))
		if m == nil {
			return fmt.Errorf("%s: split.count is %d but the file name does not follow PREFIX-%05d-of-%05d.gguf, so the other shards cannot be found; rename the shards as gguf-split wrote them: %w",
				s.name, count, no+1, count, ErrMissingShard)
		}
		prefix := filepath.Join(filepath.Dir(s.path), m[1])
		shards = make([]*shard, count)
		for i := uint64(0); i < count; i++ {
			p := SplitPath(prefix, int(i), int(count))
			if i == no {
				if filepath.Base(p) != s.name {
					return fmt.Errorf("%s: split.no is %d of %d, so the file should be named %s: %w", s.name, no, count, filepath.Base(p), ErrCorrupt)
				}
				shards[i] = s
				continue
			}
			o, err := openShard(p)
			if err != nil {
				if errors.Is(err, fs.ErrNotExist) {
					return fmt.Errorf("%s: shard %d of %d (%s) is missing: %w: %w", s.name, i+1, count, filepath.Base(p), ErrMissingShard, fs.ErrNotExist)
				}
				return fmt.Errorf("shard %d of %d: %w", i+1, count, err)
			}
			f.unmaps = append(f.unmaps, o.unmap)
			if o.mapped != nil {
				f.maps, f.mapPaths = append(f.maps, o.mapped), append(f.mapPaths, o.path)
			}
			shards[i] = o
			ono, ocount, err := o.splitInfo()
			if err != nil {
				return err
			}
			if ocount != count || ono != i {
				return fmt.Errorf("%s: has split.no %d and split.count %d, want %d and %d (shards of different models mixed?): %w",
					o.name, ono, ocount, i, count, ErrCorrupt)
			}
		}
	}
	first := shards[0]
	f.Path, f.Version, f.Alignment, f.DataOffset = first.path, first.version, first.alignment, first.dataOffset
	f.KV, f.kvIndex = first.kv, first.kvIndex
	total := 0
	for _, sh := range shards {
		total += len(sh.tensors)
	}
	f.Tensors = make([]*TensorInfo, 0, total)
	f.tensorIndex = make(map[string]*TensorInfo, total)
	for k, sh := range shards {
		f.Shards = append(f.Shards, sh.path)
		f.Size += sh.size
		for _, t := range sh.tensors {
			if _, dup := f.tensorIndex[t.Name]; dup {
				return fmt.Errorf("%s: tensor %s also appears in an earlier shard: %w", sh.name, t.Name, ErrCorrupt)
			}
			t.Shard = k
			f.tensorIndex[t.Name] = t
			f.Tensors = append(f.Tensors, t)
		}
	}
	if count > 1 {
		if want, ok := first.kvIndex[KeySplitTensorsCount]; ok {
			v := first.kv[want].Value
			if n, ok := v.Uint(); !ok || n != uint64(total) {
				return fmt.Errorf("%s: split.tensors.count is %v but the %d shards hold %d tensors: %w", first.name, v, count, total, ErrCorrupt)
			}
		}
	}
	return nil
}
