package storetest

import (
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/apitoken/apitoken"
)

func listClauses() []clause {
	return []clause{
		{"EmptyStore", testListEmpty},
		{"FilterByOwner", testListFilter(apitoken.Filter{Owner: apitoken.UserOwner("user_1")})},
		{"FilterByOrg", testListFilter(apitoken.Filter{OrgID: "org_2"})},
		{"FilterByKind", testListFilter(apitoken.Filter{Kind: apitoken.KindOrg})},
		{"FilterByOwnerKind", testListFilter(apitoken.Filter{Owner: apitoken.UserOwner("42")}, apitoken.Filter{Owner: apitoken.OrgOwner("42")},
			apitoken.Filter{Owner: apitoken.OrgOwner("user_1")})},
		{"FilterCombined", testListFilter(apitoken.Filter{Owner: apitoken.UserOwner("user_1"), OrgID: "org_2", Kind: apitoken.KindUser})},
		{"FilterMatchingNothing", testListFilter(apitoken.Filter{Owner: apitoken.UserOwner("nobody")})},
		{"AscendingIDOrder", testListOrder},
		{"ZeroLimitIsDefault", testListZeroLimit},
		{"Pagination", testListPagination},
		{"StableUnderDeletes", testListStableUnderDeletes},
		{"StableUnderCreates", testListStableUnderCreates},
		{"CursorPastEnd", testListCursorPastEnd},
		{"BadCursorIsErrBadCursor", testListBadCursor},
		{"ReturnsCopies", testListReturnsCopies},
	}
}

// ids returns the IDs of toks.
func ids(toks []*apitoken.Token) []string {
	out := make([]string, len(toks))
	for i, t := range toks {
		out[i] = t.ID
	}
	return out
}

// namer names tokens in failure messages by their position among the
// tokens a clause made ("#0", "#1", …), which reads better than UUIDs.
type namer map[string]int

func newNamer(toks []*apitoken.Token) namer {
	n := make(namer, len(toks))
	for i, t := range toks {
		n[t.ID] = i
	}
	return n
}

func (n namer) names(ids []string) []string {
	out := make([]string, len(ids))
	for i, id := range ids {
		if k, ok := n[id]; ok {
			out[i] = fmt.Sprintf("#%d", k)
		} else {
			out[i] = "unknown " + id
		}
	}
	return out
}

// list returns one page, failing the test on error.
func list(t testing.TB, s apitoken.Store, f apitoken.Filter) apitoken.Page {
	t.Helper()
	p, err := s.List(t.Context(), f)
	if err != nil {
		t.Fatalf("List(%+v) error = %v, want nil", f, err)
	}
	return p
}

// listAll follows f's pages to the end and returns every token listed.
func listAll(t testing.TB, s apitoken.Store, f apitoken.Filter) []*apitoken.Token {
	t.Helper()
	var out []*apitoken.Token
	for pages := 0; ; pages++ {
		if pages > 2000 {
			t.Fatalf("List(%+v): still a Next cursor after %d pages", f, pages)
		}
		p := list(t, s, f)
		out = append(out, p.Tokens...)
		if p.Next == "" {
			return out
		}
		if p.Next == f.Cursor {
			t.Fatalf("List returned the cursor it was given as Next: the listing never ends")
		}
		f.Cursor = p.Next
	}
}

// makeTokens creates n tokens of user_1 in ID order and returns them.
func makeTokens(t testing.TB, s apitoken.Store, n int) []*apitoken.Token {
	t.Helper()
	toks := make([]*apitoken.Token, n)
	for i := range toks {
		toks[i] = newToken(t)
	}
	create(t, s, toks...)
	return toks
}

func testListEmpty(t *testing.T, s apitoken.Store) {
	p := list(t, s, apitoken.Filter{})
	if len(p.Tokens) != 0 || p.Next != "" {
		t.Errorf("List on an empty store = %d tokens, Next %q; want 0 tokens, no Next", len(p.Tokens), p.Next)
	}
}

// testListFilter lists the tokens of a fixed mix of owners, orgs and kinds
// under each filter, and wants exactly those [apitoken.Filter.Matches]
// selects: an Owner matches Kind and OwnerID both (user "42" and org "42"
// are different owners).
func testListFilter(filters ...apitoken.Filter) func(t *testing.T, s apitoken.Store) {
	return func(t *testing.T, s apitoken.Store) {
		var all []*apitoken.Token
		for _, spec := range []struct {
			kind       apitoken.Kind
			owner, org string
		}{
			{apitoken.KindUser, "user_1", "org_1"},
			{apitoken.KindUser, "user_1", "org_2"},
			{apitoken.KindUser, "user_2", "org_1"},
			{apitoken.KindUser, "user_2", "org_2"},
			{apitoken.KindUser, "user_10", "org_2"},
			{apitoken.KindOrg, "org_1", "org_1"},
			{apitoken.KindOrg, "org_2", "org_2"},
			{apitoken.KindUser, "user_1", "org_2"},
			{apitoken.KindOrg, "user_1", "org_2"}, // odd, but a store does not judge
			{apitoken.KindUser, "user_1", ""},
			{apitoken.KindUser, "42", "org_1"},
			{apitoken.KindOrg, "42", "42"},
			{apitoken.KindUser, "42", "42"},
			{apitoken.KindOrg, "42", "42"},
		} {
			tok := newToken(t)
			tok.Kind, tok.OwnerID, tok.OrgID = spec.kind, spec.owner, spec.org
			all = append(all, tok)
		}
		create(t, s, all...)
		nm := newNamer(all)
		for _, f := range filters {
			var want []string
			for _, tok := range all {
				if f.Matches(tok) {
					want = append(want, tok.ID)
				}
			}
			for _, limit := range []int{0, 2} {
				f.Limit = limit
				got := ids(listAll(t, s, f))
				if !slices.Equal(got, want) {
					t.Errorf("List(%+v), all pages = %v, want %v", f, nm.names(got), nm.names(want))
				}
			}
		}
	}
}

func testListOrder(t *testing.T, s apitoken.Store) {
	toks := make([]*apitoken.Token, 10)
	for i := range toks {
		toks[i] = newToken(t) // ascending IDs
	}
	// Create them out of order: 9 0 8 1 7 2 6 3 5 4.
	for i := range toks {
		k := i / 2
		if i%2 == 0 {
			k = len(toks) - 1 - i/2
		}
		create(t, s, toks[k])
	}
	nm := newNamer(toks)
	want := ids(toks)
	if got := ids(list(t, s, apitoken.Filter{Limit: 100}).Tokens); !slices.Equal(got, want) {
		t.Errorf("List(Limit 100) of tokens created out of ID order = %v, want %v", nm.names(got), nm.names(want))
	}
}

func testListZeroLimit(t *testing.T, s apitoken.Store) {
	toks := makeTokens(t, s, 10)
	p := list(t, s, apitoken.Filter{})
	if got, want := ids(p.Tokens), ids(toks); !slices.Equal(got, want) || p.Next != "" {
		nm := newNamer(toks)
		t.Errorf("List(zero Limit, default %d) of 10 tokens = %v, Next %q; want %v, no Next",
			apitoken.DefaultPageSize, nm.names(got), p.Next, nm.names(want))
	}
}

func testListPagination(t *testing.T, s apitoken.Store) {
	toks := makeTokens(t, s, 10)
	nm := newNamer(toks)
	var got []string
	f := apitoken.Filter{Limit: 3}
	for pages := 0; ; pages++ {
		if pages > len(toks) {
			t.Fatalf("List: still a Next cursor after %d pages of size 3 over 10 tokens", pages)
		}
		p := list(t, s, f)
		// A store must honour any limit up to MaxPageSize.
		if want := min(3, len(toks)-len(got)); len(p.Tokens) != want {
			t.Errorf("List page %d (Limit 3) after %d of 10 tokens has %d tokens, want %d", pages+1, len(got), len(p.Tokens), want)
		}
		got = append(got, ids(p.Tokens)...)
		if p.Next == "" {
			break
		}
		f.Cursor = p.Next
	}
	if want := ids(toks); !slices.Equal(got, want) {
		t.Errorf("List pages of size 3, concatenated = %v, want each token once in ID order: %v", nm.names(got), nm.names(want))
	}
}

func testListStableUnderDeletes(t *testing.T, s apitoken.Store) {
	toks := makeTokens(t, s, 10)
	nm := newNamer(toks)
	first := list(t, s, apitoken.Filter{Limit: 3})
	if len(first.Tokens) != 3 || first.Next == "" {
		t.Fatalf("List(Limit 3) of 10 tokens = %d tokens, Next %q; want 3 and a cursor", len(first.Tokens), first.Next)
	}
	// Delete the last token of the page (the one the cursor continues
	// after) and one the next page would hold.
	for _, tok := range []*apitoken.Token{toks[2], toks[4]} {
		if err := s.Delete(t.Context(), tok.ID); err != nil {
			t.Fatalf("Delete error = %v, want nil", err)
		}
	}
	got := append(ids(first.Tokens), ids(listAll(t, s, apitoken.Filter{Limit: 3, Cursor: first.Next}))...)
	want := ids(slices.Delete(slices.Clone(toks), 4, 5))
	if !slices.Equal(got, want) {
		t.Errorf("List pages with #2 (the cursor's token) and #4 deleted after page 1 = %v, want %v", nm.names(got), nm.names(want))
	}
}

func testListStableUnderCreates(t *testing.T, s apitoken.Store) {
	toks := make([]*apitoken.Token, 10)
	for i := range toks {
		toks[i] = newToken(t)
	}
	nm := newNamer(toks)
	// #1 and #9 are created between pages: one sorts before the cursor,
	// one after it.
	late := []*apitoken.Token{toks[1], toks[9]}
	for i, tok := range toks {
		if i != 1 && i != 9 {
			create(t, s, tok)
		}
	}
	first := list(t, s, apitoken.Filter{Limit: 3})
	if len(first.Tokens) != 3 || first.Next == "" {
		t.Fatalf("List(Limit 3) of 8 tokens = %d tokens, Next %q; want 3 and a cursor", len(first.Tokens), first.Next)
	}
	create(t, s, late...)
	got := append(ids(first.Tokens), ids(listAll(t, s, apitoken.Filter{Limit: 3, Cursor: first.Next}))...)
	seen := map[string]int{}
	for _, id := range got {
		seen[id]++
	}
	for i, tok := range toks {
		n, isLate := seen[tok.ID], i == 1 || i == 9
		if n > 1 || (n == 0 && !isLate) {
			t.Errorf("List pages with #1 and #9 created after page 1 = %v: #%d listed %d times, want once (at most once for #1, #9)", nm.names(got), i, n)
		}
	}
	if !slices.IsSorted(got) {
		t.Errorf("List pages with #1 and #9 created after page 1 = %v, want ascending ID order", nm.names(got))
	}
}

func testListCursorPastEnd(t *testing.T, s apitoken.Store) {
	toks := makeTokens(t, s, 3)
	p := list(t, s, apitoken.Filter{Limit: 2})
	if p.Next == "" {
		t.Fatalf("List(Limit 2) of 3 tokens: no Next cursor")
	}
	// With the last token gone, the cursor now points past the end.
	if err := s.Delete(t.Context(), toks[2].ID); err != nil {
		t.Fatalf("Delete error = %v, want nil", err)
	}
	p = list(t, s, apitoken.Filter{Limit: 2, Cursor: p.Next})
	if len(p.Tokens) != 0 || p.Next != "" {
		t.Errorf("List(cursor after the last token) = %d tokens, Next %q; want 0 tokens, no Next", len(p.Tokens), p.Next)
	}

	// A full last page may or may not carry a cursor; if it does, the
	// page after it is empty and final.
	p = list(t, s, apitoken.Filter{Limit: 2})
	if len(p.Tokens) != 2 {
		t.Fatalf("List(Limit 2) of 2 tokens = %d tokens, want 2", len(p.Tokens))
	}
	if p.Next != "" {
		p = list(t, s, apitoken.Filter{Limit: 2, Cursor: p.Next})
		if len(p.Tokens) != 0 || p.Next != "" {
			t.Errorf("List(cursor of a full last page) = %d tokens, Next %q; want 0 tokens, no Next", len(p.Tokens), p.Next)
		}
	}
}

func testListBadCursor(t *testing.T, s apitoken.Store) {
	makeTokens(t, s, 3)
	for _, c := range []string{
		"not a cursor!",
		"!",
		"\x00",
		"c1",
		"c1!!!!",
		"c1 ",
		"../../etc/passwd",
		"\xff\xfe",
		"' OR 1=1 --",
		string(make([]byte, 600)),
	} {
		p, err := s.List(t.Context(), apitoken.Filter{Cursor: c})
		if !errors.Is(err, apitoken.ErrBadCursor) {
			t.Errorf("List(Cursor %q) = %d tokens, error %v; want error %v", c, len(p.Tokens), err, apitoken.ErrBadCursor)
		}
	}
}

func testListReturnsCopies(t *testing.T, s apitoken.Store) {
	tok := fullToken(t)
	create(t, s, tok)
	p := list(t, s, apitoken.Filter{})
	if len(p.Tokens) != 1 {
		t.Fatalf("List of 1 token = %d tokens, want 1", len(p.Tokens))
	}
	mutate(p.Tokens[0])
	p.Tokens[0] = nil
	wantSame(t, "Get after the caller changed a List result", get(t, s, tok.ID), tok)
	p = list(t, s, apitoken.Filter{})
	if len(p.Tokens) != 1 {
		t.Fatalf("List of 1 token = %d tokens, want 1", len(p.Tokens))
	}
	wantSame(t, "List after the caller changed an earlier List result", p.Tokens[0], tok)
}
