// Command lifecycle runs a token's lifecycle through the Go client that
// oapi-codegen generates from the admin API's document, as a Go user of the
// API would write it: create, list, get, update (clearing the rate limit
// with null), regenerate, revoke and delete, then a 401 from the token
// middleware read as a problem. TestGoClient builds it with the generated
// package at test time; it is not part of the module's build.
//
// It reads the API's URL, the org and the manager's token from ADMIN_URL,
// ADMIN_ORG and ADMIN_TOKEN, prints one line per step (never a key) and
// exits 1 with the reason on the first surprise.
package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strings"

	"github.com/oapi-codegen/nullable"

	"github.com/apitoken/apitoken/adminapi/clienttest/internal/apiclient"
)

func main() {
	if err := run(context.Background(), os.Getenv("ADMIN_URL"), os.Getenv("ADMIN_ORG"), os.Getenv("ADMIN_TOKEN")); err != nil {
		fmt.Fprintln(os.Stderr, "lifecycle:", err)
		os.Exit(1)
	}
}

// bearer sends token in the Authorization header of every request.
func bearer(token string) apiclient.ClientOption {
	return apiclient.WithRequestEditorFn(func(_ context.Context, r *http.Request) error {
		r.Header.Set("Authorization", "Bearer "+token)
		return nil
	})
}

// unexpected describes a response that is not the one wanted: with its
// body if it is a problem, never a successful body, which may hold a key.
func unexpected(step string, status int, body []byte) error {
	if status < 400 {
		return fmt.Errorf("%s: status %d with an unexpected body", step, status)
	}
	return fmt.Errorf("%s: status %d: %s", step, status, body)
}

func run(ctx context.Context, url, org, token string) error {
	if url == "" || org == "" || token == "" {
		return errors.New("set ADMIN_URL, ADMIN_ORG and ADMIN_TOKEN")
	}
	c, err := apiclient.NewClientWithResponses(url, bearer(token))
	if err != nil {
		return err
	}

	doc, err := c.GetOpenAPIWithResponse(ctx)
	if err != nil {
		return err
	}
	if doc.JSON200 == nil || !strings.HasPrefix(doc.JSON200.Openapi, "3.1") {
		return unexpected("openapi.json", doc.StatusCode(), doc.Body)
	}
	fmt.Println("openapi.json", doc.StatusCode(), doc.JSON200.Openapi)

	created, err := c.CreateOrgTokenWithResponse(ctx, org, apiclient.TokenCreate{
		Name:      "ci",
		Roles:     nullable.NewNullableWithValue([]string{"reader"}),
		RateLimit: nullable.NewNullableWithValue(apiclient.Limit{Rate: 1.0 / 60, Burst: 5}),
	})
	if err != nil {
		return err
	}
	if created.JSON201 == nil {
		return unexpected("create", created.StatusCode(), created.Body)
	}
	tok := created.JSON201
	if tok.Key == "" || tok.RateLimit == nil || tok.RateLimit.Rate != 1.0/60 {
		return fmt.Errorf("create: want a key and the rate limit 1/60, got key %t, rate limit %+v", tok.Key != "", tok.RateLimit)
	}
	id, key := tok.Id, tok.Key
	fmt.Println("create", created.StatusCode(), tok.Status, tok.Roles != nil && slices.Equal(*tok.Roles, []string{"reader"}))

	limit := apiclient.PageSize(10)
	list, err := c.ListOrgTokensWithResponse(ctx, org, &apiclient.ListOrgTokensParams{Limit: &limit})
	if err != nil {
		return err
	}
	if list.JSON200 == nil {
		return unexpected("list", list.StatusCode(), list.Body)
	}
	listed := slices.ContainsFunc(list.JSON200.Tokens, func(t apiclient.Token) bool { return t.Id == id })
	fmt.Println("list", list.StatusCode(), listed)

	got, err := c.GetOrgTokenWithResponse(ctx, org, id)
	if err != nil {
		return err
	}
	if got.JSON200 == nil || got.Headers200 == nil || got.Headers200.ETag == nil {
		return unexpected("get", got.StatusCode(), got.Body)
	}
	fmt.Println("get", got.StatusCode(), got.JSON200.Name)

	// A merge patch: a new name, and null for rate_limit (back to the
	// policy's limit), which only nullable.Nullable can send.
	upd, err := c.UpdateOrgTokenWithResponse(ctx, org, id, &apiclient.UpdateOrgTokenParams{IfMatch: got.Headers200.ETag},
		apiclient.TokenPatch{Name: new("ci-renamed"), RateLimit: nullable.NewNullNullable[apiclient.Limit]()})
	if err != nil {
		return err
	}
	if upd.JSON200 == nil || upd.Headers200 == nil || upd.Headers200.ETag == nil {
		return unexpected("update", upd.StatusCode(), upd.Body)
	}
	fmt.Println("update", upd.StatusCode(), upd.JSON200.Name, upd.JSON200.RateLimit == nil)

	regen, err := c.RegenerateOrgTokenWithResponse(ctx, org, id, &apiclient.RegenerateOrgTokenParams{IfMatch: upd.Headers200.ETag},
		apiclient.Regenerate{})
	if err != nil {
		return err
	}
	if regen.JSON200 == nil {
		return unexpected("regenerate", regen.StatusCode(), regen.Body)
	}
	fmt.Println("regenerate", regen.StatusCode(), regen.JSON200.Key != "" && regen.JSON200.Key != key)

	rev, err := c.RevokeOrgTokenWithResponse(ctx, org, id, apiclient.Empty{})
	if err != nil {
		return err
	}
	if rev.JSON200 == nil {
		return unexpected("revoke", rev.StatusCode(), rev.Body)
	}
	fmt.Println("revoke", rev.StatusCode(), rev.JSON200.Status)

	del, err := c.DeleteOrgTokenWithResponse(ctx, org, id)
	if err != nil {
		return err
	}
	if del.StatusCode() != http.StatusNoContent {
		return unexpected("delete", del.StatusCode(), del.Body)
	}
	fmt.Println("delete", del.StatusCode())

	gone, err := c.GetOrgTokenWithResponse(ctx, org, id)
	if err != nil {
		return err
	}
	if gone.ApplicationproblemJSON404 == nil {
		return unexpected("get after delete", gone.StatusCode(), gone.Body)
	}
	fmt.Println("get after delete", gone.StatusCode(), gone.ApplicationproblemJSON404.Code)

	// The token middleware in front of the API answers a forged token
	// itself, with a problem of the same shape.
	forged, err := apiclient.NewClientWithResponses(url, bearer(strings.Repeat("x", 40)))
	if err != nil {
		return err
	}
	denied, err := forged.ListOrgTokensWithResponse(ctx, org, nil)
	if err != nil {
		return err
	}
	if denied.ApplicationproblemJSON401 == nil || denied.Headers401 == nil || denied.Headers401.WWWAuthenticate == nil {
		return unexpected("forged token", denied.StatusCode(), denied.Body)
	}
	fmt.Println("forged token", denied.StatusCode(), denied.ApplicationproblemJSON401.Code, *denied.Headers401.WWWAuthenticate)
	return nil
}
