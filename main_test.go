package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/qsparse/qsparse/internal/testenv"
)

// buildBinary builds qsparse into a temporary folder.
func buildBinary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := filepath.Join(t.TempDir(), "qsparse")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

func exitCode(err error) int {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	if err != nil {
		return -1
	}
	return 0
}

// TestExitCodes drives the built binary: usage errors exit 2, errors 1, Ctrl-C 130 with
// "qsparse CMD: interrupted".
func TestExitCodes(t *testing.T) {
	bin := buildBinary(t)
	for _, tc := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"evl"}, 2, `qsparse: unknown command "evl"; did you mean "eval"?`},
		{[]string{"inspect", "x.gguf", "--jsn"}, 2, "qsparse inspect: unknown flag --jsn; did you mean --json?"},
		{[]string{"inspect", filepath.Join(t.TempDir(), "none.gguf"), "--json"}, 1, "qsparse inspect: "},
		{[]string{"--version"}, 0, ""},
	} {
		var errb bytes.Buffer
		cmd := exec.Command(bin, tc.args...)
		cmd.Stderr = &errb
		err := cmd.Run()
		if c := exitCode(err); c != tc.code || !strings.HasPrefix(errb.String(), tc.msg) {
			t.Errorf("%q: exit %d, stderr %q; want %d, %q", tc.args, c, errb.String(), tc.code, tc.msg)
		}
	}

	mp := testenv.Path(t, "stories260K.gguf")
	data := testenv.Path(t, "wiki.test.raw")
	errb := &syncBuffer{}
	cmd := exec.Command(bin, "eval", "-m", mp, "-f", data, "-c", "256", "-t", "1")
	cmd.Stderr = errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Interrupt once the chunks are running.
	deadline := time.Now().Add(60 * time.Second)
	for !strings.Contains(errb.String(), "[1]") && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	cmd.Process.Signal(syscall.SIGINT)
	err := cmd.Wait()
	last := strings.TrimSpace(errb.String())
	last = last[strings.LastIndex(last, "\n")+1:]
	if c := exitCode(err); c != 130 || last != "qsparse eval: interrupted" {
		t.Errorf("Ctrl-C: exit %d, last line %q; want 130, %q", c, last, "qsparse eval: interrupted")
	}

	// Ctrl-C inside one long chunk (a 65,536-token forward takes far longer than a second) stops
	// within a second too: the forward pass checks between layers.
	errb = &syncBuffer{}
	cmd = exec.Command(bin, "eval", "-m", mp, "-f", data, "-c", "65536", "--allow-long-ctx", "--chunks", "1", "-t", "1")
	cmd.Stderr = errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	for !strings.Contains(errb.String(), "calculating perplexity") && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond) // inside the chunk's forward pass
	sent := time.Now()
	cmd.Process.Signal(syscall.SIGINT)
	err = cmd.Wait()
	took := time.Since(sent)
	last = strings.TrimSpace(errb.String())
	last = last[strings.LastIndex(last, "\n")+1:]
	if c := exitCode(err); c != 130 || last != "qsparse eval: interrupted" || took > 5*time.Second {
		t.Errorf("Ctrl-C in a long chunk: exit %d after %v, last line %q; want 130 within a second, %q", c, took, last, "qsparse eval: interrupted")
	}
	t.Logf("Ctrl-C inside a 65,536-token chunk: exit after %v", took)
	_ = os.Remove(bin)
}

// syncBuffer is a bytes.Buffer safe to read while a process writes to it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
