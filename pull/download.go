package pull

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Errors a pull wraps, for errors.Is.
var (
	ErrNotFound = errors.New("not found")
	ErrChecksum = errors.New("checksum mismatch")
	ErrAuth     = errors.New("access denied")
	ErrUnknown  = errors.New("unknown model")
)

// want is what a downloaded file must match; zero fields are not checked.
type want struct {
	SHA256 string
	Size   int64
}

// fileInfo is what a server said about a file before the body came.
type fileInfo struct {
	sha256 string // from X-Linked-Etag (Hugging Face LFS files), "" if unknown
	size   int64  // -1 if unknown
}

// download fetches url into dst, resuming from dst+".part" with an HTTP Range request when a
// partial file is there. It checks the size and SHA-256 (when w or the server gives them)
// before renaming the finished file into place; a file that fails the check is deleted.
func (o *Options) download(ctx context.Context, url string, header http.Header, dst string, w want, desc string) error {
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	part := dst + ".part"
	f, err := os.OpenFile(part, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	closed := false
	defer func() {
		if !closed {
			f.Close()
		}
	}()
	if err := lockFile(f); err != nil {
		return err
	}
	// Hash what is already there, then ask for the rest.
	h := sha256.New()
	have, err := io.Copy(h, f)
	if err != nil {
		return fmt.Errorf("reading %s: %w", part, err)
	}
	if w.Size > 0 && have > w.Size {
		// Longer than the file can be: start over.
		if err := f.Truncate(0); err != nil {
			return err
		}
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			return err
		}
		h.Reset()
		have = 0
	}
	if have > 0 && w.Size > 0 && have == w.Size {
		// Finished before, interrupted before the rename.
		return o.finish(f, &closed, part, dst, h, have, w, fileInfo{size: -1}, url)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	for k, v := range header {
		req.Header[k] = v
	}
	req.Header.Set("User-Agent", "qsparse-pull")
	req.Header.Set("Accept-Encoding", "identity") // the bytes of the file, resumable by offset
	if have > 0 {
		req.Header.Set("Range", "bytes="+strconv.FormatInt(have, 10)+"-")
	}
	info := fileInfo{size: -1}
	client := *o.client()
	prev := client.CheckRedirect
	client.CheckRedirect = func(r *http.Request, via []*http.Request) error {
		// Hugging Face names an LFS file's sha256 and size on the redirect to its storage.
		if r.Response != nil {
			noteLinked(&info, r.Response.Header)
		}
		if prev != nil {
			return prev(r, via)
		}
		if len(via) >= 10 {
			return errors.New("stopped after 10 redirects")
		}
		return nil
	}
	resp, err := client.Do(req)
	if err != nil {
		return err // a *url.Error: names the method and URL
	}
	defer resp.Body.Close()
	noteLinked(&info, resp.Header)
	switch {
	case resp.StatusCode == http.StatusPartialContent && have > 0:
		if start, ok := rangeStart(resp.Header.Get("Content-Range")); !ok || start != have {
			return fmt.Errorf("GET %s: the server resumed at %q, not at byte %d", url, resp.Header.Get("Content-Range"), have)
		}
		if total, ok := rangeTotal(resp.Header.Get("Content-Range")); ok && info.size < 0 {
			info.size = total
		}
	case resp.StatusCode == http.StatusOK:
		if have > 0 { // the server ignored Range: start over
			if err := f.Truncate(0); err != nil {
				return err
			}
			if _, err := f.Seek(0, io.SeekStart); err != nil {
				return err
			}
			h.Reset()
			have = 0
		}
		if info.size < 0 && resp.ContentLength >= 0 {
			info.size = resp.ContentLength
		}
	case resp.StatusCode == http.StatusRequestedRangeNotSatisfiable && have > 0:
		// The partial file is longer than or as long as the file: check what we have.
		return o.finish(f, &closed, part, dst, h, have, w, info, url)
	default:
		return statusError(url, resp)
	}
	var sink io.Writer = io.Discard
	var bar io.Writer
	if o.Progress != nil {
		total := info.size
		if w.Size > 0 {
			total = w.Size
		}
		bar = o.Progress(desc, total, have)
		if bar != nil {
			sink = bar
		}
	}
	_, err = io.Copy(io.MultiWriter(f, h, sink), resp.Body)
	if fin, ok := bar.(interface{ Finish() error }); ok {
		_ = fin.Finish()
	}
	if err != nil {
		// Keep the .part file: the next pull resumes from it.
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("GET %s: %w (the partial download in %s resumes next time)", url, err, part)
	}
	pos, err := f.Seek(0, io.SeekCurrent)
	if err != nil {
		return err
	}
	return o.finish(f, &closed, part, dst, h, pos, w, info, url)
}

// finish checks the finished .part file, syncs it and renames it to dst.
func (o *Options) finish(f *os.File, closed *bool, part, dst string, h hash.Hash, n int64, w want, info fileInfo, url string) error {
	wantSize, wantSum := w.Size, strings.ToLower(w.SHA256)
	if wantSize <= 0 {
		wantSize = info.size
	}
	if wantSum == "" {
		wantSum = info.sha256
	}
	sum := hex.EncodeToString(h.Sum(nil))
	var bad error
	switch {
	case wantSize >= 0 && n != wantSize:
		bad = fmt.Errorf("%w: %s is %d bytes, want %d", ErrChecksum, url, n, wantSize)
	case wantSum != "" && sum != wantSum:
		bad = fmt.Errorf("%w: %s has sha256 %s, want %s", ErrChecksum, url, sum, wantSum)
	}
	if bad != nil {
		f.Close()
		*closed = true
		os.Remove(part)
		return fmt.Errorf("%w (the download was deleted; pull again, and if it repeats the source changed)", bad)
	}
	if err := f.Sync(); err != nil {
		return err
	}
	*closed = true
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(part, dst)
}

// noteLinked reads Hugging Face's X-Linked-Etag / X-Linked-Size headers.
func noteLinked(info *fileInfo, h http.Header) {
	if e := strings.Trim(h.Get("X-Linked-Etag"), `"`); isSHA256(strings.TrimPrefix(e, "W/")) {
		info.sha256 = strings.ToLower(strings.TrimPrefix(e, "W/"))
	}
	if s, err := strconv.ParseInt(h.Get("X-Linked-Size"), 10, 64); err == nil && s >= 0 {
		info.size = s
	}
}

func isSHA256(s string) bool {
	if len(s) != 64 {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil
}

// rangeStart parses the first byte of "bytes 100-199/200".
func rangeStart(cr string) (int64, bool) {
	rest, ok := strings.CutPrefix(cr, "bytes ")
	if !ok {
		return 0, false
	}
	a, _, ok := strings.Cut(rest, "-")
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(a, 10, 64)
	return n, err == nil
}

// rangeTotal parses the total of "bytes 100-199/200" ("*": unknown).
func rangeTotal(cr string) (int64, bool) {
	_, t, ok := strings.Cut(cr, "/")
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(t, 10, 64)
	return n, err == nil
}

// statusError describes a failed HTTP response.
func statusError(url string, resp *http.Response) error {
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 300))
	msg := strings.TrimSpace(string(body))
	if len(msg) > 200 || strings.ContainsAny(msg, "<\n") {
		msg = ""
	}
	if msg != "" {
		msg = " (" + msg + ")"
	}
	switch resp.StatusCode {
	case http.StatusNotFound:
		return fmt.Errorf("GET %s: %w: HTTP 404%s", url, ErrNotFound, msg)
	case http.StatusUnauthorized, http.StatusForbidden:
		return fmt.Errorf("GET %s: %w: HTTP %d%s; a gated or private repository needs HF_TOKEN (a Hugging Face access token)", url, ErrAuth, resp.StatusCode, msg)
	}
	return fmt.Errorf("GET %s: HTTP %d%s", url, resp.StatusCode, msg)
}
