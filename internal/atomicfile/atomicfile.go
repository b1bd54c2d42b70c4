// Package atomicfile writes files atomically: into a temporary file beside the target, synced,
// then renamed over it, so a reader sees the old file or the whole new one, never a part, and a
// failed or interrupted write leaves nothing behind. It is the one implementation of that
// sequence for every writer in the module (GGUF, safetensors, profiles, reports).
package atomicfile

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// WriteFile creates path through fill, which writes the whole content into the temporary
// file f (sequentially or at offsets). Then f is made 0644, synced, closed and renamed over
// path, and the directory is synced (best effort). An error from fill is returned as it is;
// the other steps' errors name path. On any error the temporary file is removed and path is
// left as it was.
func WriteFile(path string, fill func(f *os.File) error) (err error) {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if err = fill(tmp); err != nil {
		return err
	}
	if err = tmp.Chmod(0o644); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err = tmp.Sync(); err != nil {
		return fmt.Errorf("write %s: fsync: %w", path, err)
	}
	if err = tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err = os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if d, derr := os.Open(dir); derr == nil { // persist the rename (best effort)
		_ = d.Sync()
		d.Close()
	}
	return nil
}

// Write is WriteFile for a sequential writer: fill writes the whole content to w (buffered;
// flushed after fill returns).
func Write(path string, fill func(w io.Writer) error) error {
	return WriteBuffered(path, func(bw *bufio.Writer) error { return fill(bw) })
}

// WriteBuffered is Write handing fill the *bufio.Writer itself.
func WriteBuffered(path string, fill func(w *bufio.Writer) error) error {
	return WriteFile(path, func(f *os.File) error {
		bw := bufio.NewWriterSize(f, 1<<20)
		if err := fill(bw); err != nil {
			return err
		}
		if err := bw.Flush(); err != nil {
			return fmt.Errorf("write %s: %w", path, err)
		}
		return nil
	})
}
