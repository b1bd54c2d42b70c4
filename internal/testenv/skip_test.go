package testenv

import (
	"bytes"
	"go/ast"
	"go/parser"
	"go/printer"
	"go/token"
	"io/fs"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// fileLookup matches source that looks for a file on disk, or a message that says one is missing.
var fileLookup = regexp.MustCompile(`os\.(Stat|Lstat|ReadFile|Open|ReadDir)|filepath\.Glob|IsNotExist|ErrNotExist|(?i)missing|not found|no such file|does not exist`)

// skipsForMissingFile returns the positions of Skip/Skipf/SkipNow calls in src that skip because a
// file is missing: the call's arguments, the enclosing if statement or the (non-if) statement before
// that if look a file up or say that one is missing. Only testenv may decide that (it fails under CI).
func skipsForMissingFile(fset *token.FileSet, f *ast.File) []token.Position {
	var out []token.Position
	text := func(n ast.Node) string {
		if n == nil {
			return ""
		}
		var b bytes.Buffer
		printer.Fprint(&b, fset, n)
		return b.String()
	}
	var stack []ast.Node
	ast.Inspect(f, func(n ast.Node) bool {
		if n == nil {
			stack = stack[:len(stack)-1]
			return true
		}
		stack = append(stack, n)
		call, ok := n.(*ast.CallExpr)
		if !ok {
			return true
		}
		sel, ok := call.Fun.(*ast.SelectorExpr)
		if !ok || !strings.HasPrefix(sel.Sel.Name, "Skip") {
			return true
		}
		var ctx strings.Builder
		for _, a := range call.Args {
			ctx.WriteString(text(a))
		}
		// The innermost enclosing if statement and the statement just before it.
		for i := len(stack) - 2; i >= 0; i-- {
			ifs, ok := stack[i].(*ast.IfStmt)
			if !ok {
				continue
			}
			ctx.WriteString(text(ifs.Init))
			ctx.WriteString(text(ifs.Cond))
			if i > 0 {
				if blk, ok := stack[i-1].(*ast.BlockStmt); ok {
					for j, s := range blk.List {
						if _, prevIf := blk.List[max(j-1, 0)].(*ast.IfStmt); s == ifs && j > 0 && !prevIf {
							ctx.WriteString(text(blk.List[j-1]))
						}
					}
				}
			}
			break
		}
		if fileLookup.MatchString(ctx.String()) {
			out = append(out, fset.Position(call.Pos()))
		}
		return true
	})
	return out
}

// TestNoSkipForMissingFile: no test outside internal/testenv skips on its own because a data file
// is missing; real-data lookups go through testenv.Path / Ref / SmolLM2Path, which fail under
// CI=true instead of skipping.
func TestNoSkipForMissingFile(t *testing.T) {
	root := ModuleRoot()
	fset := token.NewFileSet()
	n := 0
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			name := d.Name()
			if p != root && (strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_") || name == "testdata") {
				return filepath.SkipDir
			}
			if p == filepath.Join(root, "internal", "testenv") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(p, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, p, nil, 0)
		if err != nil {
			return err
		}
		n++
		for _, pos := range skipsForMissingFile(fset, f) {
			rel, _ := filepath.Rel(root, pos.Filename)
			t.Errorf("%s:%d: skips because a file is missing; use testenv.Path/Ref/SmolLM2Path (they fail under CI=true)", rel, pos.Line)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n < 10 {
		t.Fatalf("only %d test files found under %s", n, root)
	}
}

// TestSkipCheckCatches: the check flags the patterns it is meant to catch and leaves others alone.
func TestSkipCheckCatches(t *testing.T) {
	src := `package x
func a(t *testing.T) {
	b, err := os.ReadFile("x")
	if err != nil {
		t.Skipf("files missing: %v", err)
	}
	if _, err := os.Stat("y"); err != nil {
		t.Skip(err)
	}
	if testing.Short() {
		t.Skip("slow")
	}
	if err := os.Symlink("a", "b"); err != nil {
		t.Skip("no symlinks:", err)
	}
}
`
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "x_test.go", src, 0)
	if err != nil {
		t.Fatal(err)
	}
	got := skipsForMissingFile(fset, f)
	var lines []int
	for _, p := range got {
		lines = append(lines, p.Line)
	}
	if len(lines) != 2 || lines[0] != 5 || lines[1] != 8 {
		t.Fatalf("flagged lines %v, want [5 8]", lines)
	}
}
