package pull

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
)

func (o *Options) hfEndpoint() string {
	e := o.HFEndpoint
	if e == "" {
		e = os.Getenv("HF_ENDPOINT")
	}
	if e == "" {
		e = "https://huggingface.co"
	}
	return strings.TrimRight(e, "/")
}

func (o *Options) hfHeader() http.Header {
	tok := o.HFToken
	if tok == "" {
		tok = os.Getenv("HF_TOKEN")
	}
	h := http.Header{}
	if tok != "" {
		h.Set("Authorization", "Bearer "+tok)
	}
	return h
}

func revision(f *HFFile) string {
	if f.Revision == "" {
		return "main"
	}
	return f.Revision
}

// hfURL is {endpoint}/{repo}/resolve/{revision}/{file}.
func (o *Options) hfURL(f *HFFile, file string) string {
	var parts []string
	for _, p := range strings.Split(file, "/") {
		parts = append(parts, url.PathEscape(p))
	}
	return o.hfEndpoint() + "/" + f.Repo + "/resolve/" + url.PathEscape(revision(f)) + "/" + strings.Join(parts, "/")
}

// hfDir is the cache folder of a repository: hf/org/repo (hf/org/repo@rev off main).
func (o *Options) hfDir(f *HFFile) string {
	d := filepath.Join(o.cacheDir(), "hf", filepath.FromSlash(f.Repo))
	if r := revision(f); r != "main" {
		d += "@" + r
	}
	return d
}

// hfFolderFiles are the files a Hugging Face model folder needs (besides the weights).
var hfFolderFiles = []string{"config.json", "tokenizer.json", "tokenizer_config.json", "generation_config.json",
	"special_tokens_map.json", "model.safetensors.index.json"}

// pullHF fetches one file of a repository, or, without a file, its only GGUF or its
// safetensors model folder.
func (o *Options) pullHF(ctx context.Context, f *HFFile) (string, error) {
	dir := o.hfDir(f)
	if f.File != "" {
		dst := filepath.Join(dir, filepath.FromSlash(f.File))
		if _, err := os.Stat(dst); err == nil { // checked when it came; no sha256 to check again
			o.logf("pull: %s is in the cache", dst)
			return dst, nil
		}
		o.logf("pull %s: %s", f.Repo, f.File)
		if err := o.download(ctx, o.hfURL(f, f.File), o.hfHeader(), dst, want{}, path.Base(f.File)); err != nil {
			return "", err
		}
		return dst, nil
	}
	files, err := o.hfList(ctx, f)
	if err != nil {
		return "", err
	}
	var ggufs, weights []string
	for _, n := range files {
		switch {
		case strings.HasSuffix(n, ".gguf"):
			ggufs = append(ggufs, n)
		case strings.HasSuffix(n, ".safetensors") && !strings.Contains(n, "/"):
			weights = append(weights, n)
		}
	}
	switch {
	case len(ggufs) == 1:
		g := *f
		g.File = ggufs[0]
		return o.pullHF(ctx, &g)
	case len(ggufs) > 1:
		return "", fmt.Errorf("%s holds %d GGUF files; pick one as %s:FILE: %s", f.Repo, len(ggufs), f.Repo, strings.Join(ggufs, ", "))
	case len(weights) == 0 || !slices.Contains(files, "config.json") || !slices.Contains(files, "tokenizer.json"):
		return "", fmt.Errorf("%s has no GGUF file and is not a safetensors model folder (config.json, tokenizer.json, *.safetensors); name a file as %s:FILE", f.Repo, f.Repo)
	}
	var need []string
	for _, n := range hfFolderFiles {
		if slices.Contains(files, n) {
			need = append(need, n)
		}
	}
	need = append(need, weights...)
	for _, n := range need {
		dst := filepath.Join(dir, n)
		if _, err := os.Stat(dst); err == nil {
			continue
		}
		o.logf("pull %s: %s", f.Repo, n)
		if err := o.download(ctx, o.hfURL(f, n), o.hfHeader(), dst, want{}, n); err != nil {
			return "", err
		}
	}
	return dir, nil
}

// hfList lists a repository's files with the Hub API ({endpoint}/api/models/{repo}/revision/{rev}).
func (o *Options) hfList(ctx context.Context, f *HFFile) ([]string, error) {
	u := o.hfEndpoint() + "/api/models/" + f.Repo + "/revision/" + url.PathEscape(revision(f))
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	req.Header = o.hfHeader()
	resp, err := o.client().Do(req)
	if err != nil {
		return nil, err // a *url.Error: names the method and URL
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, statusError(u, resp)
	}
	var info struct {
		Siblings []struct {
			Name string `json:"rfilename"`
		} `json:"siblings"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<20)).Decode(&info); err != nil {
		return nil, fmt.Errorf("GET %s: %w", u, err)
	}
	var names []string
	for _, s := range info.Siblings {
		names = append(names, s.Name)
	}
	return names, nil
}
