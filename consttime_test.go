package apitoken_test

import (
	"bytes"
	"errors"
	"fmt"
	"go/ast"
	"go/build"
	"go/importer"
	"go/parser"
	"go/token"
	"go/types"
	"io"
	"io/fs"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Checklist item 9: no library code compares a secret or a digest with ==,
// != or a byte comparison that returns at the first difference. The one
// comparison helper is equal in hash.go (crypto/subtle); Parse compares
// checksums with crypto/subtle too.

// srcPackage is one type-checked package of the repository.
type srcPackage struct {
	path, dir string
	files     []*ast.File
	pkg       *types.Package
	info      *types.Info
}

// srcRepo type-checks every package of the repository's modules from
// source, without tests: the module's own imports from source, the standard
// library from source, other modules' packages as fakes (their types are
// unknown, which does not matter to the checks here: what they look for
// is the root package's types).
type srcRepo struct {
	fset    *token.FileSet
	modules map[string]string // module path → directory
	pkgs    map[string]*srcPackage
	std     types.ImporterFrom
	errs    []string
	// inRepoErrs are the type errors in files that import no other
	// module's package: a bug of the loader.
	inRepoErrs []string
}

// thirdParty reports whether the file imports a package that is neither
// standard nor the repository's (and so is not loaded).
func (r *srcRepo) thirdParty(filename string) bool {
	f, err := parser.ParseFile(token.NewFileSet(), filename, nil, parser.ImportsOnly)
	if err != nil {
		return false
	}
	for _, imp := range f.Imports {
		path := strings.Trim(imp.Path.Value, `"`)
		first, _, _ := strings.Cut(path, "/")
		if _, ok := r.dirOf(path); !ok && strings.Contains(first, ".") {
			return true
		}
	}
	return false
}

var (
	repoOnce sync.Once
	repo     *srcRepo
	repoErr  error
)

// loadRepo loads the repository once per test binary.
func loadRepo(t *testing.T) *srcRepo {
	t.Helper()
	repoOnce.Do(func() { repo, repoErr = newSrcRepo(".") })
	require.NoError(t, repoErr, "loading the repository's sources")
	return repo
}

func newSrcRepo(root string) (*srcRepo, error) {
	r := &srcRepo{fset: token.NewFileSet(), modules: map[string]string{}, pkgs: map[string]*srcPackage{}}
	var dirs []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			if d.Name() == "go.mod" {
				b, err := os.ReadFile(path)
				if err != nil {
					return err
				}
				for line := range strings.Lines(string(b)) {
					if mod, ok := strings.CutPrefix(strings.TrimSpace(line), "module "); ok {
						r.modules[strings.Trim(strings.TrimSpace(mod), `"`)] = filepath.Dir(path)
					}
				}
			}
			return nil
		}
		if path != root && (d.Name() == "testdata" || d.Name() == "node_modules" || strings.HasPrefix(d.Name(), ".") || strings.HasPrefix(d.Name(), "_")) {
			return filepath.SkipDir
		}
		dirs = append(dirs, path)
		return nil
	})
	if err != nil {
		return nil, err
	}
	// The standard library comes from the build cache's export data, which
	// one go list call locates (and builds, on a cold cache).
	stdSet := map[string]bool{}
	for _, dir := range dirs {
		bp, err := build.Default.ImportDir(dir, 0)
		if err != nil {
			continue
		}
		for _, imp := range bp.Imports {
			if first, _, _ := strings.Cut(imp, "/"); !strings.Contains(first, ".") && imp != "C" {
				stdSet[imp] = true
			}
		}
	}
	exports, err := stdExports(slices.Sorted(maps.Keys(stdSet)))
	if err != nil {
		return nil, err
	}
	r.std = importer.ForCompiler(r.fset, "gc", func(path string) (io.ReadCloser, error) {
		f, ok := exports[path]
		if !ok {
			return nil, fmt.Errorf("no export data for %s", path)
		}
		return os.Open(f)
	}).(types.ImporterFrom)
	for _, dir := range dirs {
		path, ok := r.importPath(dir)
		if !ok {
			continue
		}
		if _, err := r.load(path, dir); err != nil {
			var noGo *build.NoGoError
			if errors.As(err, &noGo) {
				continue
			}
			return nil, err
		}
	}
	return r, nil
}

// stdExports returns the export data files of the standard packages pkgs
// and their dependencies.
func stdExports(pkgs []string) (map[string]string, error) {
	args := append([]string{"list", "-export", "-deps", "-f", "{{.ImportPath}} {{.Export}}"}, pkgs...)
	cmd := exec.Command("go", args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("go list -export: %w: %s", err, stderr.String())
	}
	m := map[string]string{}
	for line := range strings.Lines(string(out)) {
		if path, file, ok := strings.Cut(strings.TrimSpace(line), " "); ok && file != "" {
			m[path] = file
		}
	}
	return m, nil
}

// importPath returns the import path of the package in dir.
func (r *srcRepo) importPath(dir string) (string, bool) {
	best, bestDir := "", ""
	for mod, mdir := range r.modules {
		rel, err := filepath.Rel(mdir, dir)
		if err != nil || strings.HasPrefix(rel, "..") {
			continue
		}
		if len(mdir) > len(bestDir) || bestDir == "" {
			best, bestDir = mod, mdir
			if rel != "." {
				best = mod + "/" + filepath.ToSlash(rel)
			}
		}
	}
	return best, best != ""
}

// dirOf returns the directory of a repository import path.
func (r *srcRepo) dirOf(path string) (string, bool) {
	best, bestMod := "", ""
	for mod, mdir := range r.modules {
		if path == mod || strings.HasPrefix(path, mod+"/") {
			if len(mod) > len(bestMod) {
				best, bestMod = filepath.Join(mdir, filepath.FromSlash(strings.TrimPrefix(strings.TrimPrefix(path, mod), "/"))), mod
			}
		}
	}
	return best, best != ""
}

func (r *srcRepo) load(path, dir string) (*srcPackage, error) {
	if p, ok := r.pkgs[path]; ok {
		return p, nil
	}
	bp, err := build.Default.ImportDir(dir, 0)
	if err != nil {
		return nil, err
	}
	p := &srcPackage{path: path, dir: dir}
	r.pkgs[path] = p
	for _, name := range bp.GoFiles {
		f, err := parser.ParseFile(r.fset, filepath.Join(dir, name), nil, parser.SkipObjectResolution)
		if err != nil {
			return nil, err
		}
		p.files = append(p.files, f)
	}
	p.info = &types.Info{Types: map[ast.Expr]types.TypeAndValue{}, Uses: map[*ast.Ident]types.Object{}, Defs: map[*ast.Ident]types.Object{}, Selections: map[*ast.SelectorExpr]*types.Selection{}}
	conf := types.Config{
		Importer: srcImporter{r, dir},
		Error: func(err error) {
			var te types.Error
			if errors.As(err, &te) && !r.thirdParty(te.Fset.Position(te.Pos).Filename) {
				r.inRepoErrs = append(r.inRepoErrs, err.Error())
			}
			r.errs = append(r.errs, err.Error())
		},
	}
	p.pkg, _ = conf.Check(path, r.fset, p.files, p.info)
	return p, nil
}

// srcImporter imports the repository's packages from source, the standard
// library from source, and reports anything else as missing (go/types then
// makes a fake package whose uses have no type).
type srcImporter struct {
	r   *srcRepo
	dir string
}

func (im srcImporter) Import(path string) (*types.Package, error) {
	return im.ImportFrom(path, im.dir, 0)
}

func (im srcImporter) ImportFrom(path, dir string, mode types.ImportMode) (*types.Package, error) {
	if d, ok := im.r.dirOf(path); ok {
		p, err := im.r.load(path, d)
		if err != nil {
			return nil, err
		}
		return p.pkg, nil
	}
	if first, _, _ := strings.Cut(path, "/"); !strings.Contains(first, ".") {
		return im.r.std.ImportFrom(path, dir, mode)
	}
	return nil, fmt.Errorf("%s: not type-checked here", path)
}

// ctFinding is one comparison of a secret or a digest that is not constant
// time: where, and the expression.
type ctFinding struct {
	file, fn, expr string
}

// ctAllowed are the comparisons the test accepts, each with why timing
// cannot leak a secret through it. An entry that no longer matches any
// code fails the test, so the list stays exact.
var ctAllowed = map[ctFinding]string{
	{"stores/memstore/index.go", "Store.slotOf", "r.hash == *h"}: "a hash-table lookup: h is the digest of a presented token, " +
		"the probe already matched its first 8 bytes (as any map keyed by digest does), and learning how many leading bytes of a " +
		"stored digest match a chosen token's digest gives no way to a token (a preimage), under HMAC not even the digest; " +
		"the Validator confirms the match with the constant-time helper",
	{"stores/memstore/index.go", "Store.slotOf", "r.prevHash == *h"}:           "the same lookup for the previous secret's digest",
	{"stores/redisstore/store.go", "Store.Create", "t.Hash == t.PrevHash"}:     ownDigests,
	{"stores/redisstore/store.go", "Store.Update", "t.Hash == t.PrevHash"}:     ownDigests,
	{"stores/memstore/memstore.go", "Store.hashTaken", "t.Hash == t.PrevHash"}: ownDigests,
	{"stores/sqlstore/store.go", "Store.Create", "t.Hash == t.PrevHash"}:       ownDigests,
	{"stores/sqlstore/store.go", "Store.Update", "t.Hash == t.PrevHash"}:       ownDigests,
	{"stores/redisstore/store.go", "Store.GetByHash", "t.PrevHash != h"}: "confirms a previous-hash alias found by a Redis key " +
		"lookup on h itself (Redis compares key strings as any map does); the digest is no secret, and the Validator confirms " +
		"the match with the constant-time helper",
}

// ownDigests is the reason for a store's check that a record's two digests
// differ before it writes the record.
const ownDigests = "two digests of the record being written (Hash and PrevHash), both made by the Issuer; " +
	"nothing a client presents takes part"

// ctHarness are the packages whose code runs only in tests: they compare
// records the test itself wrote, never a token a client presented.
var ctHarness = map[string]string{
	"github.com/apitoken/apitoken/storetest": "the store conformance suite: compares the records it wrote with what the store returns",
}

// ctSensitive reports whether values of type typ are secrets or digests:
// apitoken.Hash, apitoken.Secret, or a SHA-256 or SHA-512 sized byte array.
func ctSensitive(typ types.Type) bool {
	if typ == nil {
		return false
	}
	if n, ok := types.Unalias(typ).(*types.Named); ok && n.Obj().Pkg() != nil && n.Obj().Pkg().Path() == "github.com/apitoken/apitoken" {
		switch n.Obj().Name() {
		case "Hash", "Secret":
			return true
		}
	}
	if a, ok := typ.Underlying().(*types.Array); ok {
		if b, ok := a.Elem().Underlying().(*types.Basic); ok && b.Kind() == types.Byte && (a.Len() == 32 || a.Len() == 64) {
			return true
		}
	}
	return false
}

// ctDerived reports whether e is a secret or a digest, or bytes or text
// taken from one: a sensitive value, a slice or conversion of one,
// Secret.Reveal(), or a Token's Sealed field.
func ctDerived(info *types.Info, e ast.Expr) bool {
	e = ast.Unparen(e)
	if ctSensitive(info.TypeOf(e)) {
		return true
	}
	switch x := e.(type) {
	case *ast.SliceExpr:
		return ctDerived(info, x.X)
	case *ast.StarExpr:
		return ctDerived(info, x.X)
	case *ast.CallExpr:
		if tv, ok := info.Types[x.Fun]; ok && tv.IsType() && len(x.Args) == 1 { // a conversion
			return ctDerived(info, x.Args[0])
		}
		if sel, ok := x.Fun.(*ast.SelectorExpr); ok && sel.Sel.Name == "Reveal" {
			return ctSensitive(info.TypeOf(sel.X))
		}
	case *ast.SelectorExpr:
		if s, ok := info.Selections[x]; ok && s.Kind() == types.FieldVal && x.Sel.Name == "Sealed" {
			if n, ok := types.Unalias(derefType(s.Recv())).(*types.Named); ok && n.Obj().Name() == "Token" {
				return true
			}
		}
	}
	return false
}

func derefType(t types.Type) types.Type {
	if p, ok := t.(*types.Pointer); ok {
		return p.Elem()
	}
	return t
}

// ctZero reports whether e is a zero value: Hash{}, nil or "". Comparing
// with it tells only whether a value is set (a string comparison with ""
// is a length check). A comparison with any other constant counts.
func ctZero(e ast.Expr) bool {
	switch x := ast.Unparen(e).(type) {
	case *ast.CompositeLit:
		return len(x.Elts) == 0
	case *ast.Ident:
		return x.Name == "nil"
	case *ast.BasicLit:
		return x.Kind == token.STRING && (x.Value == `""` || x.Value == "``")
	}
	return false
}

// ctVariableTime are the functions that compare bytes or strings and
// return at the first difference.
var ctVariableTime = map[string]bool{
	"bytes.Equal": true, "bytes.Compare": true, "bytes.EqualFold": true, "bytes.HasPrefix": true, "bytes.HasSuffix": true,
	"strings.Compare": true, "strings.EqualFold": true, "strings.HasPrefix": true, "strings.HasSuffix": true,
	"slices.Equal": true, "slices.Compare": true, "reflect.DeepEqual": true,
}

// ctCheck returns every comparison of a secret or a digest in files that is
// not constant time.
func ctCheck(fset *token.FileSet, files []*ast.File, info *types.Info, rel func(string) string) []ctFinding {
	var out []ctFinding
	for _, f := range files {
		file := rel(fset.Position(f.Pos()).Filename)
		for _, decl := range f.Decls {
			fn := "package level"
			if fd, ok := decl.(*ast.FuncDecl); ok {
				fn = fd.Name.Name
				if fd.Recv != nil && len(fd.Recv.List) == 1 {
					recv := fd.Recv.List[0].Type
					if st, ok := recv.(*ast.StarExpr); ok {
						recv = st.X
					}
					if ix, ok := recv.(*ast.IndexExpr); ok {
						recv = ix.X
					}
					fn = types.ExprString(recv) + "." + fn
				}
			}
			ast.Inspect(decl, func(n ast.Node) bool {
				switch x := n.(type) {
				case *ast.BinaryExpr:
					if x.Op != token.EQL && x.Op != token.NEQ || ctZero(x.X) || ctZero(x.Y) {
						return true
					}
					if ctDerived(info, x.X) || ctDerived(info, x.Y) {
						out = append(out, ctFinding{file, fn, types.ExprString(x)})
					}
				case *ast.SwitchStmt:
					if x.Tag != nil && ctDerived(info, x.Tag) {
						out = append(out, ctFinding{file, fn, "switch " + types.ExprString(x.Tag)})
					}
				case *ast.CallExpr:
					sel, ok := x.Fun.(*ast.SelectorExpr)
					if !ok {
						return true
					}
					obj, ok := info.Uses[sel.Sel].(*types.Func)
					if !ok || obj.Pkg() == nil || !ctVariableTime[obj.Pkg().Path()+"."+obj.Name()] {
						return true
					}
					for _, a := range x.Args {
						if ctDerived(info, a) {
							out = append(out, ctFinding{file, fn, types.ExprString(x)})
							break
						}
					}
				}
				return true
			})
		}
	}
	return out
}

// TestConstantTimeSource type-checks every non-test Go file of the
// repository (all its modules) and finds each ==, !=, switch or
// early-exit byte comparison (bytes.Equal, strings.Compare, …) on an
// apitoken.Hash, an apitoken.Secret, text from Secret.Reveal, a Token's
// Sealed bytes or a 32- or 64-byte array. Comparing with the zero value
// (Hash{}, nil, "") is not counted, nor is ctHarness. Every finding must be in ctAllowed with its
// reason, and every entry of ctAllowed must still be found. A canary
// package with one comparison of each form checks that the search sees them.
func TestConstantTimeSource(t *testing.T) {
	r := loadRepo(t)
	root, err := filepath.Abs(".")
	require.NoError(t, err)
	rel := func(f string) string {
		if abs, err := filepath.Abs(f); err == nil {
			if r, err := filepath.Rel(root, abs); err == nil {
				return filepath.ToSlash(r)
			}
		}
		return f
	}
	require.Contains(t, r.pkgs, "github.com/apitoken/apitoken", "root package loaded")
	require.Empty(t, r.inRepoErrs, "type errors in files that use only the standard library and the repository")
	files := 0
	var found []ctFinding
	for path := range ctHarness {
		assert.Containsf(t, r.pkgs, path, "ctHarness names %s, which is not in the repository any more", path)
	}
	for _, path := range slices.Sorted(maps.Keys(r.pkgs)) {
		if _, ok := ctHarness[path]; ok {
			continue
		}
		p := r.pkgs[path]
		files += len(p.files)
		found = append(found, ctCheck(r.fset, p.files, p.info, rel)...)
	}
	seen := map[ctFinding]bool{}
	for _, f := range found {
		seen[f] = true
		if _, ok := ctAllowed[f]; !ok {
			t.Errorf("%s, %s: %s compares a secret or a digest in variable time; use the constant-time helper "+
				"(crypto/subtle), or add it to ctAllowed with the reason timing cannot leak through it", f.file, f.fn, f.expr)
		}
	}
	for f := range ctAllowed {
		if !seen[f] {
			t.Errorf("ctAllowed entry %s, %s: %s matches no code any more; remove it", f.file, f.fn, f.expr)
		}
	}
	t.Logf("%d packages, %d files (%d type errors, all where other modules' packages are used: they are not loaded): "+
		"%d variable-time comparisons of secrets or digests, all %d in the allow-list",
		len(r.pkgs), files, len(r.errs), len(found), len(ctAllowed))

	// The canary.
	const canary = `package canary

import (
	"bytes"
	"crypto/sha256"
	"strings"

	"github.com/apitoken/apitoken"
)

func f(a, b apitoken.Hash, s apitoken.Secret, t *apitoken.Token, p *apitoken.Hash) bool {
	_ = a == b
	_ = bytes.Equal(a[:], b[:])
	_ = s.Reveal() == "x"
	_ = strings.HasPrefix(s.Reveal(), "x")
	switch a {
	case b:
	}
	_ = bytes.Equal(t.Sealed, nil)
	_ = sha256.Sum256(nil) == [32]byte(a)
	_ = string(a[:]) != "abc"
	_ = *p == a
	_ = a == apitoken.Hash{} // not counted: the zero value
	_ = s.Reveal() == ""     // not counted: a length check
	_ = t.Sealed != nil      // not counted: nil
	_ = s.Reveal() == "admin-key-1"
	_ = t.ID == "x"          // not counted: not a secret
	return a != t.PrevHash
}
`
	cf, err := parser.ParseFile(r.fset, "canary.go", canary, 0)
	require.NoError(t, err)
	info := &types.Info{Types: map[ast.Expr]types.TypeAndValue{}, Uses: map[*ast.Ident]types.Object{}, Defs: map[*ast.Ident]types.Object{}, Selections: map[*ast.SelectorExpr]*types.Selection{}}
	conf := types.Config{Importer: srcImporter{r, "."}}
	_, err = conf.Check("canary", r.fset, []*ast.File{cf}, info)
	require.NoError(t, err, "type-checking the canary")
	var exprs []string
	for _, f := range ctCheck(r.fset, []*ast.File{cf}, info, rel) {
		exprs = append(exprs, f.expr)
	}
	assert.ElementsMatch(t, []string{
		"a == b", "bytes.Equal(a[:], b[:])", `s.Reveal() == "x"`, `s.Reveal() == "admin-key-1"`, `strings.HasPrefix(s.Reveal(), "x")`, "switch a",
		"bytes.Equal(t.Sealed, nil)", "sha256.Sum256(nil) == [32]byte(a)", `string(a[:]) != "abc"`, "*p == a", "a != t.PrevHash",
	}, exprs, "comparisons the search finds in the canary")
}
