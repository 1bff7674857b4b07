package archtest

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/chainsink/chainsink/"

type pkg struct {
	ImportPath string
	Imports    []string
}

// listPackages is `go list -json ./...` of the module: every package with its non-test imports.
func listPackages(t *testing.T) map[string][]string {
	t.Helper()
	cmd := exec.Command("go", "list", "-json", "./...")
	cmd.Dir = "../.."
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	got := map[string][]string{}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for dec.More() {
		var p pkg
		if err := dec.Decode(&p); err != nil {
			t.Fatal(err)
		}
		var own []string
		for _, imp := range p.Imports {
			if strings.HasPrefix(imp, module) {
				own = append(own, strings.TrimPrefix(imp, module))
			}
		}
		slices.Sort(own)
		got[strings.TrimPrefix(p.ImportPath, module)] = own
	}
	return got
}

var (
	mapRow   = regexp.MustCompile("^\\| `([a-z0-9/_-]+)` \\| ([^|]*) \\|")
	backtick = regexp.MustCompile("`([a-z0-9/_-]+)`")
)

// TestPackageMap: the package table of docs/architecture.md lists every package of the module with exactly
// the module packages it imports, so a newcomer can trust it and a new arrow is a documented decision.
func TestPackageMap(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: shells out to go list, which loads every package of the module")
	}
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "architecture.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(doc), "## Package map")
	if !ok {
		t.Fatal("docs/architecture.md has no Package map section")
	}
	section, _, _ = strings.Cut(section, "\n## ")
	documented := map[string][]string{}
	for _, line := range strings.Split(section, "\n") {
		m := mapRow.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		var imports []string
		for _, b := range backtick.FindAllStringSubmatch(m[2], -1) {
			imports = append(imports, b[1])
		}
		slices.Sort(imports)
		documented[m[1]] = imports
	}
	actual := listPackages(t)
	for p, imports := range actual {
		doc, ok := documented[p]
		if !ok {
			t.Errorf("package %s is missing from the package map", p)
			continue
		}
		if !slices.Equal(doc, imports) {
			t.Errorf("package %s imports %v; the package map says %v", p, imports, doc)
		}
	}
	for p := range documented {
		if _, ok := actual[p]; !ok && !testOnly(p) {
			t.Errorf("the package map lists %s, which is not a package", p)
		}
	}
}

// testOnly packages have only _test.go files, which go list reports without their imports.
func testOnly(p string) bool {
	files, _ := filepath.Glob(filepath.Join("..", "..", p, "*.go"))
	for _, f := range files {
		if !strings.HasSuffix(f, "_test.go") {
			return false
		}
	}
	return len(files) > 0
}

// TestDecodersArePure keeps the row model and the decoders free of I/O: none of them may depend, even
// indirectly, on the database driver, Kafka, metrics or the network. A change that makes one of them import
// store (and so pgx) or internal/metrics fails here, not in review.
func TestDecodersArePure(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: shells out to go list, which loads every package of the module")
	}
	forbidden := []string{
		"github.com/jackc/pgx/v5",
		"github.com/confluentinc/confluent-kafka-go/v2/kafka",
		"github.com/prometheus/client_golang/prometheus",
		module + "store",
		"net/http",
	}
	for _, p := range []string{"store/chain", "internal/format", "internal/decode", "internal/config", "internal/typed", "abi"} {
		cmd := exec.Command("go", "list", "-deps", "./"+p)
		cmd.Dir = "../.."
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("go list -deps %s: %v\n%s", p, err, out)
		}
		deps := strings.Fields(string(out))
		for _, f := range forbidden {
			if slices.Contains(deps, f) {
				t.Errorf("%s depends on %s", p, f)
			}
		}
	}
}

// TestEveryPackageHasDocGo: every library package (commands keep theirs in main.go, as Go's do) has a doc.go
// whose package comment is the first thing a newcomer reads of it, and no other file of the package has a
// package comment that would compete with it.
func TestEveryPackageHasDocGo(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: shells out to go list, which loads every package of the module")
	}
	pkgComment := regexp.MustCompile(`(?m)^// Package \w+ `)
	for p := range listPackages(t) {
		if strings.HasPrefix(p, "cmd/") || testOnly(p) {
			continue
		}
		dir := filepath.Join("..", "..", filepath.FromSlash(p))
		doc, err := os.ReadFile(filepath.Join(dir, "doc.go"))
		if err != nil {
			t.Errorf("%s has no doc.go", p)
			continue
		}
		if !pkgComment.Match(doc) {
			t.Errorf("%s/doc.go has no package comment (// Package %s …)", p, filepath.Base(p))
		}
		files, _ := filepath.Glob(filepath.Join(dir, "*.go"))
		for _, f := range files {
			if filepath.Base(f) == "doc.go" {
				continue
			}
			src, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			if pkgComment.Match(src) {
				t.Errorf("%s has a package comment besides doc.go's", filepath.ToSlash(f))
			}
		}
	}
}

// TestMakeFuzzRunsEveryTarget: `make fuzz` says it runs every fuzz target; a new target that the Makefile
// does not name would never run there.
func TestMakeFuzzRunsEveryTarget(t *testing.T) {
	mk, err := os.ReadFile(filepath.Join("..", "..", "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	target := regexp.MustCompile(`(?m)^func (Fuzz\w+)\(`)
	err = filepath.WalkDir(filepath.Join("..", ".."), func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == ".git" || d.Name() == "testdata" || d.Name() == "bin") {
			return filepath.SkipDir
		}
		if !strings.HasSuffix(path, "_test.go") {
			return nil
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		pkg := "./" + filepath.ToSlash(filepath.Dir(strings.TrimPrefix(path, filepath.Join("..", "..")+string(filepath.Separator))))
		for _, m := range target.FindAllSubmatch(src, -1) {
			if want := "test " + pkg + " -run '^$$' -fuzz " + string(m[1]) + " "; !strings.Contains(string(mk), want) {
				t.Errorf("make fuzz does not run %s of %s (want a line with %q)", m[1], pkg, want)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
