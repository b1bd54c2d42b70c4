package commands

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/qsparse/qsparse/internal/testenv"
)

// eval --shard i/n --partial for 4 shards, then merge: the same markdown table as one eval
// (seconds are not in it), and merge refuses a missing shard or a partial of another run.
func TestEvalShardMerge(t *testing.T) {
	mp := testenv.Path(t, "stories260K.gguf")
	data := testenv.Path(t, "tinystories_valid_first1000.txt")
	args := []string{"eval", "-m", mp, "-f", data, "-c", "128", "--chunks", "5", "--sparsity", "0,0.5", "-q"}
	one, errs, err := runApp(t, append(args, "--markdown")...)
	if err != nil {
		t.Fatalf("%v\n%s", err, errs)
	}
	dir := t.TempDir()
	var parts []string
	for i := range 4 {
		p := filepath.Join(dir, fmt.Sprintf("part-%d.json", i))
		if _, errs, err := runApp(t, append(args, "--shard", fmt.Sprintf("%d/4", i), "--partial", p)...); err != nil {
			t.Fatalf("shard %d: %v\n%s", i, err, errs)
		}
		parts = append(parts, p)
	}
	got, errs, err := runApp(t, append([]string{"merge", "--markdown"}, parts...)...)
	if err != nil {
		t.Fatalf("merge: %v\n%s", err, errs)
	}
	if got != one || !strings.Contains(got, "| dense |") {
		t.Fatalf("merged:\n%s\none run:\n%s", got, one)
	}
	if _, _, err := runApp(t, append([]string{"merge"}, parts[:3]...)...); err == nil || !strings.Contains(err.Error(), "shard 3/4 missing") {
		t.Errorf("3 of 4 shards: %v", err)
	}
	other := filepath.Join(dir, "other.json")
	if _, errs, err := runApp(t, "eval", "-m", mp, "-f", data, "-c", "128", "--chunks", "4", "--sparsity", "0,0.5", "-q",
		"--shard", "3/4", "--partial", other); err != nil {
		t.Fatalf("%v\n%s", err, errs)
	}
	if _, _, err := runApp(t, "merge", parts[0], parts[1], parts[2], other); err == nil || !strings.Contains(err.Error(), "different runs (their chunks differ)") {
		t.Errorf("another run: %v", err)
	}
	if _, _, err := runApp(t, append(args, "--shard", "1/4")...); err == nil || !strings.Contains(err.Error(), "needs --partial") {
		t.Errorf("--shard without --partial: %v", err)
	}
	if _, _, err := runApp(t, append(args, "--shard", "4/4", "--partial", other)...); err == nil || !strings.Contains(err.Error(), "--shard wants i/n") {
		t.Errorf("--shard 4/4: %v", err)
	}
}
