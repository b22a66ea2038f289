// Package docs_test keeps the documentation honest about the tests it cites. It needs neither
// Postgres nor Temporal: it reads files.
package docs_test

import (
	"errors"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
)

// citingDocs are the documents whose cited tests must exist, relative to the repository root.
var citingDocs = []string{"docs/security.md"}

var (
	// span is one backticked span of Markdown.
	span = regexp.MustCompile("`([^`\n]+)`")
	// testName is a Go test or fuzz target's name.
	testName = regexp.MustCompile(`^(Test|Fuzz)[A-Z0-9_][A-Za-z0-9_]*$`)
	// pkgPath is a backticked package directory, such as internal/testkit/e2e or workflows.
	pkgPath = regexp.MustCompile(`^[a-z][a-z0-9_-]*(/[a-z][a-z0-9_.-]*)*$`)
)

// TestSecurityDocCitesRealTests: every backticked TestXxx or FuzzXxx in docs/security.md is a
// top-level func of a *_test.go file in the repository, and, when a package directory is
// backticked before it on the same line (the attack table's "`internal/testkit/e2e`
// `TestX`, `TestY`; `workflows` `TestZ`"), a func of that directory's test files. A renamed
// or deleted test fails here until the document says what proves the rule now.
func TestSecurityDocCitesRealTests(t *testing.T) {
	root := repoRoot(t)
	tests := testFuncs(t, root) // name -> directories (slash-separated, relative to root)
	for _, doc := range citingDocs {
		text, err := os.ReadFile(filepath.Join(root, doc))
		if err != nil {
			t.Fatal(err)
		}
		cited := 0
		for i, line := range strings.Split(string(text), "\n") {
			pkg := ""
			for _, m := range span.FindAllStringSubmatch(line, -1) {
				s := m[1]
				switch {
				case testName.MatchString(s):
					cited++
					dirs := tests[s]
					switch {
					case len(dirs) == 0:
						t.Errorf("%s:%d cites `%s`: no *_test.go in the repository has that func", doc, i+1, s)
					case pkg != "" && !slices.Contains(dirs, pkg):
						t.Errorf("%s:%d cites `%s` in `%s`: it is in %s", doc, i+1, s, pkg, strings.Join(dirs, ", "))
					}
				case pkgPath.MatchString(s) && isDir(filepath.Join(root, filepath.FromSlash(s))):
					pkg = s
				}
			}
		}
		// A document that cites nothing (or a pattern that matches nothing) proves nothing.
		if cited < 20 {
			t.Errorf("%s: only %d tests cited; the pattern or the document is broken", doc, cited)
		}
	}
}

// repoRoot walks up from the working directory to the directory holding go.mod.
func repoRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		} else if !errors.Is(err, fs.ErrNotExist) {
			t.Fatal(err)
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the working directory")
		}
		dir = parent
	}
}

// testFuncs maps the name of every top-level TestXxx and FuzzXxx func of the repository's
// *_test.go files to the directories that declare it. Hidden directories (.git, .data, .bin),
// testdata and vendor are skipped, as the go tool skips them.
func testFuncs(t *testing.T, root string) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	fset := token.NewFileSet()
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if d.IsDir() {
			if path != root && (strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_") || name == "testdata" || name == "vendor" || name == "node_modules") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(name, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, filepath.Dir(path))
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		for _, decl := range f.Decls {
			fn, ok := decl.(*ast.FuncDecl)
			if !ok || fn.Recv != nil || !testName.MatchString(fn.Name.Name) {
				continue
			}
			if name := fn.Name.Name; !slices.Contains(out[name], rel) {
				out[name] = append(out[name], rel)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, dirs := range out {
		sort.Strings(dirs)
	}
	if len(out) == 0 {
		t.Fatal("found no test funcs at all")
	}
	return out
}

func isDir(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.IsDir()
}
