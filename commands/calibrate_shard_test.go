package commands

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/qsparse/qsparse/internal/testenv"
)

// calibrate --shard i/n --partial for 3 shards, then --merge: the same profile file as one
// calibrate; a missing shard is refused.
func TestCalibrateShardMerge(t *testing.T) {
	mp := testenv.Path(t, "stories260K.gguf")
	data := testenv.Path(t, "tinystories_valid_first1000.txt")
	dir := t.TempDir()
	args := []string{"calibrate", "-m", mp, "-f", data, "--target", "0.4", "--tokens", "2048", "--kl-tokens", "256", "--ctx", "256"}
	one := filepath.Join(dir, "one.json")
	if _, errs, err := runApp(t, append(args, "-o", one)...); err != nil {
		t.Fatalf("%v\n%s", err, errs)
	}
	var parts []string
	for i := range 3 {
		p := filepath.Join(dir, fmt.Sprintf("part-%d.json", i))
		if out, errs, err := runApp(t, append(args, "--shard", fmt.Sprintf("%d/3", i), "--partial", p)...); err != nil || !strings.Contains(out, "wrote "+p) {
			t.Fatalf("shard %d: %v\n%s%s", i, err, out, errs)
		}
		parts = append(parts, p)
	}
	merged := filepath.Join(dir, "merged.json")
	if _, errs, err := runApp(t, append(append(args, "-o", merged, "--merge"), parts...)...); err != nil {
		t.Fatalf("merge: %v\n%s", err, errs)
	}
	a, _ := os.ReadFile(one)
	b, err := os.ReadFile(merged)
	if err != nil || len(a) == 0 || string(a) != string(b) {
		t.Fatalf("merged profile differs from one run (%v):\n%s\n%s", err, b, a)
	}
	if _, _, err := runApp(t, append(append(args, "-o", merged, "--merge"), parts[:2]...)...); err == nil || !strings.Contains(err.Error(), "shard 2/3 missing") {
		t.Errorf("2 of 3 shards: %v", err)
	}
	if _, _, err := runApp(t, append(args, "--shard", "1/3")...); err == nil {
		t.Error("--shard without --partial: no error")
	}
}
