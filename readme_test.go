package apitoken_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/apitoken/apitoken"
	"github.com/apitoken/apitoken/stores/memstore"
)

// Example_quickStart is the README's quick start, between the markers.
// The hint it prints is random, so it has no Output; TestReadmeQuickStart
// runs it.
func Example_quickStart() {
	ctx := context.Background()
	var presented string                         // what a client will send
	show := func(s string) { presented = s }     // the host shows it to the owner
	clientIP := netip.MustParseAddr("192.0.2.7") // the request's client address

	// README: Quick start
	store := memstore.New()
	policy := apitoken.Policy{
		Prefix:          "acme",
		DefaultLifetime: apitoken.Months(6),
		Roles: map[string]apitoken.Role{
			"observer": {Grants: apitoken.Grants{"devices": apitoken.AccessRead}},
		},
	}
	iss, err := apitoken.NewIssuer(store, policy)
	v, err := apitoken.NewValidator(store, policy)

	secret, tok, err := iss.Issue(ctx, apitoken.Spec{
		Kind: apitoken.KindOrg, OrgID: "org_1", Name: "ci", Roles: []string{"observer"},
	})
	fmt.Println(secret)   // the hint, e.g. acme_8f3K…x9Q2; never the plaintext
	show(secret.Reveal()) // the plaintext, shown to its owner once

	p, err := v.Validate(ctx, presented, apitoken.Request{
		IP: clientIP, Org: "org_1", API: "devices", Access: apitoken.AccessRead,
	})
	err = iss.Revoke(ctx, tok.ID) // from now on Validate fails with apitoken.ErrRevoked
	// end of the README snippet

	if err != nil || p.TokenID != tok.ID {
		panic(fmt.Sprint("quick start: ", err))
	}
	if _, err := v.Validate(ctx, presented, apitoken.Request{Org: "org_1"}); !errors.Is(err, apitoken.ErrRevoked) {
		panic(fmt.Sprint("quick start: after Revoke: ", err))
	}
	if err := v.Close(ctx); err != nil {
		panic(fmt.Sprint("quick start: Close: ", err))
	}
}

func TestReadmeQuickStart(t *testing.T) {
	Example_quickStart() // panics if the flow breaks
}

// TestReadmeSnippetsCompile: every ```go block of README.md appears, line
// for line, in the body of an Example function somewhere in the module
// (the body dedented by one tab), or is the whole declaration of a Test
// function, from "func" to its closing brace, so the README compiles and
// runs as written.
func TestReadmeSnippetsCompile(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	require.NoError(t, err)
	blocks := goBlocks(string(readme))
	require.NotEmpty(t, blocks, "README.md has no ```go blocks")
	bodies, tests := exampleBodies(t, ".")
	for _, b := range blocks {
		found := ""
		for name, body := range bodies {
			if containsLines(body, b.lines) {
				found = name
				break
			}
		}
		for name, decl := range tests {
			if found == "" && slices.Equal(decl, b.lines) {
				found = name
			}
		}
		assert.NotEmpty(t, found, "README.md line %d: this ```go block is in no Example function and is no Test function:\n%s", b.line, strings.Join(b.lines, "\n"))
		if found != "" {
			t.Logf("README.md line %d: in %s", b.line, found)
		}
	}
}

type block struct {
	line  int
	lines []string
}

// goBlocks returns the ```go fenced blocks of markdown.
func goBlocks(markdown string) []block {
	var out []block
	var cur *block
	for i, l := range strings.Split(markdown, "\n") {
		switch {
		case cur == nil && strings.TrimSpace(l) == "```go":
			cur = &block{line: i + 2}
		case cur != nil && strings.TrimSpace(l) == "```":
			out = append(out, *cur)
			cur = nil
		case cur != nil:
			cur.lines = append(cur.lines, l)
		}
	}
	return out
}

// exampleBodies returns, by "file:name", the body lines (dedented by one
// tab) of every Example function and the declaration lines of every Test
// function in the _test.go files under root.
func exampleBodies(t *testing.T, root string) (examples, tests map[string][]string) {
	t.Helper()
	examples, tests = map[string][]string{}, map[string][]string{}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && path != root && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata" || d.Name() == "bench") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, "_test.go") {
			return nil
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		fset := token.NewFileSet()
		f, err := parser.ParseFile(fset, path, src, parser.ParseComments)
		if err != nil {
			return err
		}
		for _, decl := range f.Decls {
			fn, ok := decl.(*ast.FuncDecl)
			if !ok || fn.Recv != nil || fn.Body == nil {
				continue
			}
			if strings.HasPrefix(fn.Name.Name, "Test") {
				src := src[fset.Position(fn.Pos()).Offset:fset.Position(fn.End()).Offset]
				tests[path+":"+fn.Name.Name] = strings.Split(string(src), "\n")
				continue
			}
			if !strings.HasPrefix(fn.Name.Name, "Example") {
				continue
			}
			body := src[fset.Position(fn.Body.Lbrace).Offset+1 : fset.Position(fn.Body.Rbrace).Offset]
			var lines []string
			for _, l := range strings.Split(string(bytes.Trim(body, "\n")), "\n") {
				lines = append(lines, strings.TrimPrefix(l, "\t"))
			}
			examples[path+":"+fn.Name.Name] = lines
		}
		return nil
	})
	require.NoError(t, err)
	return examples, tests
}

// containsLines reports whether want appears as consecutive lines of body.
func containsLines(body, want []string) bool {
	for i := 0; i+len(want) <= len(body); i++ {
		match := true
		for j, l := range want {
			if body[i+j] != l {
				match = false
				break
			}
		}
		if match {
			return true
		}
	}
	return false
}
