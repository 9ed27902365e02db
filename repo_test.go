package mnpool_test

import (
	"bufio"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
)

// The repository stands alone: a clone has nothing beside it, so no doc or
// comment may point outside it, and design rules are cited by the names
// docs/DESIGN.md gives them, never by number.

// maxFuncLines is the longest a non-test function may be.
const maxFuncLines = 80

// repoFiles lists the files git tracks (and, in a work tree, the new ones
// not yet added), relative to the repository root.
func repoFiles(t *testing.T, suffixes ...string) []string {
	t.Helper()
	out, err := exec.Command("git", "ls-files", "--cached", "--others", "--exclude-standard").Output()
	if err != nil {
		t.Fatalf("git ls-files: %v", err)
	}
	var files []string
	for _, f := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		for _, s := range suffixes {
			if strings.HasSuffix(f, s) {
				if _, err := os.Stat(f); err == nil {
					files = append(files, f)
				}
				break
			}
		}
	}
	return files
}

var (
	outsideRef   = regexp.MustCompile(`\.\./shared|shared/(DESIGN|STYLE)\.md|shared/seed`)
	ruleByNumber = regexp.MustCompile(`DESIGN\.md,? rules? [0-9]`)
	mdLink       = regexp.MustCompile(`\]\(([^)#\s]+)(#[^)\s]*)?\)`)
	ruleName     = regexp.MustCompile(`\*\*([a-z0-9-]+)\*\*`)
	ruleCite     = regexp.MustCompile(`DESIGN\.md, \*([a-z0-9-]+)\*`)
)

func TestNoReferenceOutsideTheRepository(t *testing.T) {
	design, err := os.ReadFile("docs/DESIGN.md")
	if err != nil {
		t.Fatalf("docs/DESIGN.md: %v", err)
	}
	rules := map[string]bool{}
	for _, m := range ruleName.FindAllStringSubmatch(string(design), -1) {
		rules[m[1]] = true
	}
	for _, f := range repoFiles(t, ".go", ".md") {
		if f == "repo_test.go" {
			continue
		}
		checkFileRefs(t, f, rules)
	}
}

func checkFileRefs(t *testing.T, f string, rules map[string]bool) {
	t.Helper()
	fh, err := os.Open(f)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	sc := bufio.NewScanner(fh)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if outsideRef.MatchString(line) {
			t.Errorf("%s:%d points outside the repository: %q", f, n, strings.TrimSpace(line))
		}
		if ruleByNumber.MatchString(line) {
			t.Errorf("%s:%d cites a design rule by number; cite it by its name in docs/DESIGN.md: %q", f, n, strings.TrimSpace(line))
		}
		for _, m := range ruleCite.FindAllStringSubmatch(line, -1) {
			if !rules[m[1]] {
				t.Errorf("%s:%d cites design rule %q, which docs/DESIGN.md does not name", f, n, m[1])
			}
		}
		if strings.HasSuffix(f, ".md") {
			checkLinks(t, f, n, line)
		}
	}
}

func checkLinks(t *testing.T, f string, n int, line string) {
	t.Helper()
	for _, m := range mdLink.FindAllStringSubmatch(line, -1) {
		target := m[1]
		if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
			continue
		}
		p := filepath.Clean(filepath.Join(filepath.Dir(f), target))
		if strings.HasPrefix(p, "..") {
			t.Errorf("%s:%d links outside the repository: %s", f, n, target)
			continue
		}
		if _, err := os.Stat(p); err != nil {
			t.Errorf("%s:%d links to %s, which does not exist", f, n, target)
		}
	}
}

// TestNoLongFunctions fails on a non-test function longer than
// maxFuncLines.
func TestNoLongFunctions(t *testing.T) {
	fset := token.NewFileSet()
	for _, f := range repoFiles(t, ".go") {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		file, err := parser.ParseFile(fset, f, nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		for _, d := range file.Decls {
			fd, ok := d.(*ast.FuncDecl)
			if !ok || fd.Body == nil {
				continue
			}
			lines := fset.Position(fd.End()).Line - fset.Position(fd.Pos()).Line + 1
			if lines > maxFuncLines {
				t.Errorf("%s: %s is %d lines; split it (at most %d)", f, funcName(fd), lines, maxFuncLines)
			}
		}
	}
}

func funcName(fd *ast.FuncDecl) string {
	if fd.Recv == nil || len(fd.Recv.List) == 0 {
		return fd.Name.Name
	}
	typ := fd.Recv.List[0].Type
	if st, ok := typ.(*ast.StarExpr); ok {
		typ = st.X
	}
	if ix, ok := typ.(*ast.IndexExpr); ok {
		typ = ix.X
	}
	if id, ok := typ.(*ast.Ident); ok {
		return id.Name + "." + fd.Name.Name
	}
	return fd.Name.Name
}

// maxPoolNames is the most exported names package pool may have: it is the
// bottom of the graph, not a hub; cohesive parts live in packages of their
// own (makemn, mnguard, poolsync, rolefiles, ...).
const maxPoolNames = 120

// TestPoolExportedNames counts the exported package-level names of pool's
// non-test files: each function (not methods), type, constant and
// variable. It fails when there are more than maxPoolNames.
func TestPoolExportedNames(t *testing.T) {
	fset := token.NewFileSet()
	files, err := filepath.Glob("pool/*.go")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		file, err := parser.ParseFile(fset, f, nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		names = append(names, exportedNames(file)...)
	}
	sort.Strings(names)
	if len(names) > maxPoolNames {
		t.Errorf("package pool exports %d names (at most %d); move a cohesive part into its own package or unexport what only pool uses:\n%s",
			len(names), maxPoolNames, strings.Join(names, "\n"))
	}
}

// exportedNames lists a file's exported package-level names as
// "kind Name": funcs without a receiver, types, consts and vars.
func exportedNames(file *ast.File) []string {
	var out []string
	for _, d := range file.Decls {
		switch d := d.(type) {
		case *ast.FuncDecl:
			if d.Recv == nil && d.Name.IsExported() {
				out = append(out, "func "+d.Name.Name)
			}
		case *ast.GenDecl:
			for _, s := range d.Specs {
				switch s := s.(type) {
				case *ast.TypeSpec:
					if s.Name.IsExported() {
						out = append(out, "type "+s.Name.Name)
					}
				case *ast.ValueSpec:
					for _, n := range s.Names {
						if n.IsExported() {
							out = append(out, d.Tok.String()+" "+n.Name)
						}
					}
				}
			}
		}
	}
	return out
}
