package adminui_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/apitoken/apitoken"
	"github.com/apitoken/apitoken/adminui"
	"github.com/apitoken/apitoken/apitokentest"
	"github.com/apitoken/apitoken/internal/testservers"
)

// The browser tests drive Debian's chromium, headless, through every
// screen as a person would. Without chromium they skip, or fail when
// CI=true or APITOKEN_REQUIRE_SERVERS=1 (scripts/test installs it).

// screenshots is the folder the tests save their screenshots in (not
// committed): $APITOKEN_SCREENSHOTS, or a new temporary folder.
var screenshots = sync.OnceValues(func() (string, error) {
	if dir := os.Getenv("APITOKEN_SCREENSHOTS"); dir != "" {
		return dir, os.MkdirAll(dir, 0o755)
	}
	return os.MkdirTemp("", "apitoken-adminui-screenshots-")
})

// newBrowser starts a headless Chromium for t and returns its tab.
func newBrowser(t *testing.T) context.Context {
	t.Helper()
	path := ""
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			path = p
			break
		}
	}
	if path == "" {
		msg := "chromium not found: install it (apt-get install chromium) or run scripts/test"
		if os.Getenv("CI") == "true" || testservers.Required() {
			t.Fatal(msg)
		}
		t.Skip("SKIPPING: " + msg)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(path), chromedp.WindowSize(1400, 1000))
	if os.Geteuid() == 0 {
		opts = append(opts, chromedp.NoSandbox) // Chromium refuses to run as root with its sandbox
	}
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(alloc)
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
	})
	// Bound every step: a page that never shows what a step waits for
	// fails the test instead of hanging it.
	ctx, cancelRun := context.WithTimeout(ctx, time.Minute)
	t.Cleanup(cancelRun)
	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate("about:blank")), "start chromium")
	return ctx
}

// grantClipboard lets pages of origin read and write the clipboard, so a
// test can read what Copy put there.
func grantClipboard(t *testing.T, ctx context.Context, origin string) {
	t.Helper()
	for _, name := range []string{"clipboard-read", "clipboard-write"} {
		_, err := chromedp.CallBrowser(ctx, browser.SetPermission, browser.SetPermissionParams{
			Permission: &browser.PermissionDescriptor{Name: name}, Setting: browser.PermissionSettingGranted, Origin: origin})
		require.NoError(t, err, "grant %s", name)
	}
}

// shot saves a screenshot of the whole page as name.png.
func shot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	dir, err := screenshots()
	require.NoError(t, err)
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	require.NoError(t, err)
	file := filepath.Join(dir, name+".png")
	require.NoError(t, os.WriteFile(file, png, 0o644))
	t.Logf("screenshot: %s", file)
}

func run[T any](t *testing.T, ctx context.Context, a chromedp.Action[T]) T {
	t.Helper()
	v, err := chromedp.Run(ctx, a)
	require.NoError(t, err)
	return v
}

func do(t *testing.T, ctx context.Context, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	require.NoError(t, chromedp.Do(ctx, steps...))
}

// signIn signs who in with the host and opens path.
func signIn(t *testing.T, ctx context.Context, h *host, who, path string) {
	t.Helper()
	do(t, ctx, chromedp.Navigate(h.srv.URL+"/login?as="+who+"&next="+url.QueryEscape(path)))
}

// unlabelled lists the page's controls that have no accessible name from
// a label (or, for buttons and links, their text).
const unlabelled = `[...document.querySelectorAll("input:not([type=hidden]), select, textarea, button, a[href]")]
	.filter(e => !(e.labels && e.labels.length) && !e.textContent.trim() && !e.getAttribute("aria-label"))
	.map(e => e.outerHTML)`

func requireLabelled(t *testing.T, ctx context.Context) {
	t.Helper()
	assert.Empty(t, run(t, ctx, chromedp.Evaluate[[]string](unlabelled)), "controls without a label")
}

// orgToken returns the org_1 token named name.
func orgToken(t *testing.T, h *host, name string) *apitoken.Token {
	t.Helper()
	page, err := h.kit.Issuer.List(t.Context(), apitoken.Filter{Owner: apitoken.OrgOwner(apitokentest.DefaultOrg)})
	require.NoError(t, err)
	for _, tok := range page.Tokens {
		if tok.Name == name {
			return tok
		}
	}
	require.Failf(t, "no such token", "%q", name)
	return nil
}

// TestBrowserLifecycle goes through the console as a person would: create
// a token with Read on one API and Full on another, see the key once, copy
// it, use it, reload and see only the hint, regenerate it for 12 months,
// revoke it, revoke all, and delete an expired token.
func TestBrowserLifecycle(t *testing.T) {
	h := newHost(t, apitoken.Policy{})
	ctx := newBrowser(t)
	grantClipboard(t, ctx, h.srv.URL)
	signIn(t, ctx, h, "alice", orgPage)
	do(t, ctx, chromedp.WaitVisible(chromedp.ID("new-token")))
	assert.Contains(t, run(t, ctx, chromedp.Text(chromedp.CSS("main"))), "No tokens yet.")

	// Create: Read on Billing, Full on Devices, the default 6 months.
	do(t, ctx, chromedp.Click(chromedp.ID("new-token")), chromedp.WaitVisible(chromedp.ID("name")))
	requireLabelled(t, ctx)
	assert.Equal(t, "6mo", run(t, ctx, chromedp.Value(chromedp.ID("lifetime-choice"))), "the policy's default is chosen")
	options := run(t, ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll("#lifetime-choice option")].map(o => o.textContent)`))
	assert.Equal(t, []string{"3 months", "6 months (default)", "12 months"}, options)
	assert.True(t, run(t, ctx, chromedp.Evaluate[bool](`document.getElementById("access-billing-none").checked && document.getElementById("access-devices-none").checked`)),
		"No access is the default")
	do(t, ctx,
		chromedp.SendKeys(chromedp.ID("name"), "deploy-bot"),
		chromedp.SendKeys(chromedp.ID("description"), "Deploys from CI"),
		chromedp.Click(chromedp.ID("access-billing-read")),
		chromedp.Click(chromedp.ID("access-devices-full")),
	)
	shot(t, ctx, "1-create-form")
	do(t, ctx, chromedp.Click(chromedp.ID("submit")), chromedp.WaitVisible(chromedp.ID("new-key")))

	// The key, once, with the warning and Copy.
	key := run(t, ctx, chromedp.Value(chromedp.ID("new-key")))
	require.True(t, strings.HasPrefix(key, "acme_"), "a key is shown")
	assert.Contains(t, run(t, ctx, chromedp.Text(chromedp.CSS(".new-key"))), "It will not be shown again.")
	do(t, ctx, chromedp.Click(chromedp.CSS("button[data-copy]")))
	run(t, ctx, chromedp.Poll[bool](`document.getElementById("new-key-status").textContent !== ""`)) // the copy is done
	copied := run(t, ctx, chromedp.Evaluate[string](`navigator.clipboard.readText()`, chromedp.EvalAwaitPromise))
	sameKey(t, key, copied, "Copy put the key on the clipboard")
	assert.Equal(t, "Copied to the clipboard.", run(t, ctx, chromedp.Text(chromedp.ID("new-key-status"))))
	// The page's script has replaced the history entry with the list's.
	run(t, ctx, chromedp.Poll[bool](fmt.Sprintf(`location.pathname === %q`, orgPage)))
	shot(t, ctx, "2-key-shown-once")

	// The copied key works as the grid said.
	assert.Equal(t, http.StatusOK, h.use(t, http.MethodGet, "/billing", copied))
	assert.Equal(t, http.StatusForbidden, h.use(t, http.MethodPost, "/billing", copied))
	assert.Equal(t, http.StatusOK, h.use(t, http.MethodPost, "/devices", copied))

	// Away and back: the history entry is the list's, so Back loads the
	// list (no form resubmission) and the key is gone. (Chromium keeps
	// no-store pages out of its back/forward cache here; for browsers that
	// do not, the script also drops the key on pagehide.)
	tok := orgToken(t, h, "deploy-bot")
	do(t, ctx, chromedp.Click(chromedp.CSS("#token-"+tok.ID+` a[href$="/edit"]`)), chromedp.WaitVisible(chromedp.ID("name")),
		chromedp.NavigateBack(), chromedp.WaitVisible(chromedp.ID("token-"+tok.ID)))
	noKey(t, run(t, ctx, chromedp.OuterHTML(chromedp.CSS("html"))), key, "the key is gone after going back")

	// Reload: only the hint is left.
	do(t, ctx, chromedp.Reload(), chromedp.WaitVisible(chromedp.ID("token-"+tok.ID)))
	html := run(t, ctx, chromedp.OuterHTML(chromedp.CSS("html")))
	noKey(t, html, key, "the key is gone after a reload")
	assert.Contains(t, html, tok.Hint)
	row := run(t, ctx, chromedp.Text(chromedp.ID("token-"+tok.ID)))
	for _, want := range []string{"deploy-bot", "Deploys from CI", "org", "billing: read", "devices: full", "user:alice", "active", timeWords(h.kit.Clock.Now())} { // last used: just now
		assert.Contains(t, row, want)
	}
	requireLabelled(t, ctx)
	shot(t, ctx, "3-list")

	// Regenerate with 12 months: a new key, once; the old one stops.
	do(t, ctx, chromedp.Click(chromedp.CSS("#token-"+tok.ID+` a[href$="/regenerate"]`)), chromedp.WaitVisible(chromedp.ID("lifetime-choice")))
	requireLabelled(t, ctx)
	do(t, ctx, chromedp.SetValue(chromedp.ID("lifetime-choice"), "12mo"), chromedp.Click(chromedp.ID("submit")), chromedp.WaitVisible(chromedp.ID("new-key")))
	newKey := run(t, ctx, chromedp.Value(chromedp.ID("new-key")))
	assert.True(t, key != newKey, "a new key") // keys stay out of test output
	assert.Equal(t, http.StatusUnauthorized, h.use(t, http.MethodGet, "/billing", key))
	assert.Equal(t, http.StatusOK, h.use(t, http.MethodGet, "/billing", newKey))
	assert.Equal(t, apitoken.Months(12).ExpiresAt(h.kit.Clock.Now()), orgToken(t, h, "deploy-bot").ExpiresAt)
	assert.Contains(t, run(t, ctx, chromedp.Text(chromedp.ID("token-"+tok.ID))), timeWords(apitoken.Months(12).ExpiresAt(h.kit.Clock.Now())))

	// Revoke, behind a confirmation.
	do(t, ctx, chromedp.Click(chromedp.CSS("#token-"+tok.ID+` a[href$="/revoke"]`)), chromedp.WaitVisible(chromedp.ID("confirm")))
	assert.Contains(t, run(t, ctx, chromedp.Text(chromedp.ID("confirm-question"))), "Revoke the token “deploy-bot”")
	shot(t, ctx, "4-confirm-revoke")
	do(t, ctx, chromedp.Click(chromedp.ID("confirm")), chromedp.WaitVisible(chromedp.CSS(".notice")))
	assert.Equal(t, "Token revoked.", run(t, ctx, chromedp.Text(chromedp.CSS(".notice"))))
	assert.Equal(t, http.StatusUnauthorized, h.use(t, http.MethodGet, "/billing", newKey))
	row = run(t, ctx, chromedp.Text(chromedp.ID("token-"+tok.ID)))
	assert.Contains(t, row, "revoked")
	assert.Contains(t, row, "You cannot modify revoked tokens.")

	// Revoke all: two more tokens, then every token of the org.
	keys := []string{
		h.kit.Issue(apitoken.Spec{Kind: apitoken.KindOrg, OrgID: apitokentest.DefaultOrg, Name: "one", Roles: []string{"reader"}}),
		h.kit.Issue(apitoken.Spec{Kind: apitoken.KindOrg, OrgID: apitokentest.DefaultOrg, Name: "two", Roles: []string{"reader"}}),
	}
	do(t, ctx, chromedp.Reload(), chromedp.WaitVisible(chromedp.ID("revoke-all")),
		chromedp.Click(chromedp.ID("revoke-all")), chromedp.WaitVisible(chromedp.ID("confirm")),
		chromedp.Click(chromedp.ID("confirm")), chromedp.WaitVisible(chromedp.CSS(".notice")))
	assert.Equal(t, "2 tokens revoked.", run(t, ctx, chromedp.Text(chromedp.CSS(".notice"))))
	for _, k := range keys {
		assert.Equal(t, http.StatusUnauthorized, h.use(t, http.MethodGet, "/devices", k))
	}

	// An expired token offers only Delete.
	_, old := h.kit.IssueToken(apitoken.Spec{Kind: apitoken.KindOrg, OrgID: apitokentest.DefaultOrg, Name: "old", Lifetime: apitoken.Months(3)})
	h.kit.Clock.Advance(100 * 24 * time.Hour)
	do(t, ctx, chromedp.Navigate(h.srv.URL+orgPage), chromedp.WaitVisible(chromedp.ID("token-"+old.ID)))
	row = run(t, ctx, chromedp.Text(chromedp.ID("token-"+old.ID)))
	assert.Contains(t, row, "expired")
	assert.Contains(t, row, "You cannot modify expired tokens.")
	links := run(t, ctx, chromedp.Evaluate[[]string](fmt.Sprintf(`[...document.querySelectorAll("#token-%s a")].map(a => a.textContent)`, old.ID)))
	assert.Equal(t, []string{"Delete old"}, links, "only Delete")
	shot(t, ctx, "5-expired")
	do(t, ctx, chromedp.Click(chromedp.CSS("#token-"+old.ID+` a[href$="/delete"]`)), chromedp.WaitVisible(chromedp.ID("confirm")),
		chromedp.Click(chromedp.ID("confirm")), chromedp.WaitVisible(chromedp.CSS(".notice")))
	assert.Equal(t, "Token deleted.", run(t, ctx, chromedp.Text(chromedp.CSS(".notice"))))
	do(t, ctx, chromedp.WaitNotPresent(chromedp.ID("token-"+old.ID)))
	_, err := h.kit.Issuer.Get(t.Context(), old.ID)
	assert.ErrorIs(t, err, apitoken.ErrNotFound)
}

// TestBrowserShowHide reveals a recoverable token's key and hides it.
func TestBrowserShowHide(t *testing.T) {
	sealKey := make([]byte, 32)
	_, _ = rand.Read(sealKey)
	h := newHost(t, apitoken.Policy{}, apitoken.WithSealKeys(sealKey))
	key, tok := h.kit.IssueToken(apitoken.Spec{Kind: apitoken.KindUser, OwnerID: "alice", Name: "laptop"})
	ctx := newBrowser(t)
	signIn(t, ctx, h, "alice", prefix+"/")
	button := chromedp.CSS("#token-" + tok.ID + " button[data-reveal]")
	out := chromedp.ID("key-" + tok.ID)
	do(t, ctx, chromedp.WaitVisible(button))
	assert.Equal(t, "Your API tokens", run(t, ctx, chromedp.Text(chromedp.CSS("h1"))))
	assert.True(t, strings.HasPrefix(run(t, ctx, chromedp.Text(button)), "Show"))
	do(t, ctx, chromedp.Click(button), chromedp.WaitVisible(out))
	sameKey(t, key, run(t, ctx, chromedp.Text(out)), "the key")
	assert.True(t, strings.HasPrefix(run(t, ctx, chromedp.Text(button)), "Hide"))
	assert.Equal(t, "true", run(t, ctx, chromedp.AttributeValue(button, "aria-expanded")).Value)
	shot(t, ctx, "6-shown")
	do(t, ctx, chromedp.Click(button), chromedp.WaitNotVisible(out))
	assert.True(t, strings.HasPrefix(run(t, ctx, chromedp.Text(button)), "Show"))
	noKey(t, run(t, ctx, chromedp.OuterHTML(chromedp.CSS("html"))), key, "Hide removes the key from the page")
	events := h.audited(apitoken.EventRecovered)
	require.Len(t, events, 1, "the reveal is audited")
	assert.Equal(t, "user:alice", events[0].Actor)
}

// TestBrowserPolicyError asks for a lifetime the policy forbids, with the
// keyboard: the error appears next to the expiry field, in words.
func TestBrowserPolicyError(t *testing.T) {
	pol := testPolicy()
	pol.AllowedLifetimes, pol.MaxLifetime = nil, apitoken.Months(12)
	h := newHost(t, pol)
	ctx := newBrowser(t)
	signIn(t, ctx, h, "alice", orgPage+"new")
	do(t, ctx, chromedp.WaitVisible(chromedp.ID("lifetime-n")))
	requireLabelled(t, ctx)
	do(t, ctx,
		chromedp.SendKeys(chromedp.ID("name"), "forever"),
		chromedp.Clear(chromedp.ID("lifetime-n")), // it shows the default, 6
		chromedp.SendKeys(chromedp.ID("lifetime-n"), "24"),
		chromedp.SetValue(chromedp.ID("lifetime-unit"), "months"),
		chromedp.Focus(chromedp.ID("name")),
		chromedp.KeyEvent("\r"), // Enter submits the form
		chromedp.WaitVisible(chromedp.ID("lifetime-error")),
	)
	msg := run(t, ctx, chromedp.Text(chromedp.ID("lifetime-error")))
	assert.Contains(t, msg, "12 months")
	inExpiry := run(t, ctx, chromedp.Evaluate[bool](`document.getElementById("lifetime-error").closest("fieldset").id === "lifetime"`))
	assert.True(t, inExpiry, "the error is inside the expiry field")
	assert.Equal(t, "lifetime-error", run(t, ctx, chromedp.AttributeValue(chromedp.ID("lifetime"), "aria-describedby")).Value)
	assert.Equal(t, "24", run(t, ctx, chromedp.Value(chromedp.ID("lifetime-n"))), "what was typed stays")
	shot(t, ctx, "7-policy-error")
	page, err := h.kit.Issuer.List(t.Context(), apitoken.Filter{})
	require.NoError(t, err)
	assert.Empty(t, page.Tokens)
}

// TestBrowserCrossSiteAndRefused posts a form to the console from another
// site, and opens it as a manager the hook refuses.
func TestBrowserCrossSiteAndRefused(t *testing.T) {
	h := newHost(t, apitoken.Policy{})
	key, tok := h.kit.IssueToken(apitoken.Spec{Kind: apitoken.KindOrg, OrgID: apitokentest.DefaultOrg, Name: "target", Roles: []string{"reader"}})
	// The attacker's page, on another site (localhost is not 127.0.0.1),
	// posts a form to Revoke all as soon as it loads.
	target := h.srv.URL + orgPage + "revoke-all"
	evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintf(w, `<!doctype html><form id="f" method="post" action="%s"><input name="x" value="1"></form><script>document.getElementById("f").submit()</script>`, target)
	}))
	t.Cleanup(evil.Close)
	ctx := newBrowser(t)
	signIn(t, ctx, h, "alice", orgPage)
	do(t, ctx, chromedp.WaitVisible(chromedp.ID("token-"+tok.ID)))
	do(t, ctx, chromedp.Navigate(strings.Replace(evil.URL, "127.0.0.1", "localhost", 1)), chromedp.WaitVisible(chromedp.CSS(".message")))
	assert.Contains(t, run(t, ctx, chromedp.Text(chromedp.CSS(".message"))), "sent from another site")
	assert.Equal(t, "403", run(t, ctx, chromedp.AttributeValue(chromedp.CSS(".message"), "data-status")).Value)
	assert.Equal(t, http.StatusOK, h.use(t, http.MethodGet, "/devices", key), "nothing was revoked")
	assert.Empty(t, h.audited(apitoken.EventRevokedAll))

	signIn(t, ctx, h, "mallory", orgPage)
	do(t, ctx, chromedp.WaitVisible(chromedp.CSS(".message")))
	assert.Equal(t, "You may not manage these API tokens.", run(t, ctx, chromedp.Text(chromedp.CSS(".message"))))
	html := run(t, ctx, chromedp.OuterHTML(chromedp.CSS("html")))
	assert.NotContains(t, html, tok.Name)
	assert.NotContains(t, html, tok.Hint)
	shot(t, ctx, "8-refused")
}

// TestBrowserEditKeepsInlineFilter is the attack of issue 20 §2 in the
// browser: a person renames a token that the API gave an inline /32 filter
// and resource IDs with spaces and commas. The token must still refuse
// every other address and keep its resources; the edit page shows the
// filter read only.
func TestBrowserEditKeepsInlineFilter(t *testing.T) {
	h := newHost(t, inlinePolicy())
	resources := []string{"site a", "b,c", " padded "}
	key, tok := h.kit.IssueToken(apitoken.Spec{Kind: apitoken.KindOrg, OrgID: apitokentest.DefaultOrg, Name: "pinned",
		Roles: []string{"admin"}, Resources: resources, IPPrefixes: []string{allowedIP.String() + "/32"}})
	require.ErrorIs(t, useFrom(t, h, key, otherIP), apitoken.ErrIPNotAllowed)

	ctx := newBrowser(t)
	signIn(t, ctx, h, "alice", orgPage)
	do(t, ctx, chromedp.WaitVisible(chromedp.ID("token-"+tok.ID)),
		chromedp.Click(chromedp.CSS("#token-"+tok.ID+` a[href$="/edit"]`)), chromedp.WaitVisible(chromedp.ID("name")))
	requireLabelled(t, ctx)
	shot(t, ctx, "9-edit-inline-filter")
	do(t, ctx,
		chromedp.Clear(chromedp.ID("name")),
		chromedp.SendKeys(chromedp.ID("name"), "pinned-renamed"),
		chromedp.Click(chromedp.ID("submit")),
		chromedp.WaitVisible(chromedp.CSS(".notice")),
	)
	assert.Equal(t, "Token saved.", run(t, ctx, chromedp.Text(chromedp.CSS(".notice"))))

	got, err := h.kit.Issuer.Get(t.Context(), tok.ID)
	require.NoError(t, err)
	assert.Equal(t, "pinned-renamed", got.Name)
	assert.ErrorIs(t, useFrom(t, h, key, otherIP), apitoken.ErrIPNotAllowed, "the renamed token still refuses another address")
	assert.NoError(t, useFrom(t, h, key, allowedIP))
	assert.Equal(t, "{ [192.0.2.7/32]}", fmt.Sprint(got.IPFilter), "the inline filter is kept")
	assert.Equal(t, resources, got.Resources, "the resources are kept")

	// The edit page shows the filter, read only, and the resources one a line.
	do(t, ctx, chromedp.Navigate(h.srv.URL+orgPage+tok.ID+"/edit"), chromedp.WaitVisible(chromedp.ID("name")))
	shown := run(t, ctx, chromedp.Evaluate[[]any](`(() => { const f = document.getElementById("ip-prefixes");
		return [f ? f.value : null, f ? f.readOnly : null, f ? f.name : null, document.getElementById("resources").value] })()`))
	assert.Equal(t, []any{"192.0.2.7/32", true, "", "site a\nb,c\n padded "}, shown)
}

// TestBrowserRevokeAllSignedIn revokes every token of an org as a manager
// signed in with one of them: the confirmation warns, the result says how
// many were revoked, and a reload loads the list's URL (now a sign-in
// page), not the post again.
func TestBrowserRevokeAllSignedIn(t *testing.T) {
	h := newHost(t, apitoken.Policy{})
	key, own := h.kit.IssueToken(apitoken.Spec{Kind: apitoken.KindOrg, OrgID: apitokentest.DefaultOrg, Name: "console", Roles: []string{"admin"}})
	h.kit.Issue(apitoken.Spec{Kind: apitoken.KindOrg, OrgID: apitokentest.DefaultOrg, Name: "other", Roles: []string{"admin"}})
	ctx := newBrowser(t)
	signIn(t, ctx, h, h.signInWithKey(t, key), orgPage)
	do(t, ctx, chromedp.WaitVisible(chromedp.ID("revoke-all")),
		chromedp.Click(chromedp.ID("revoke-all")), chromedp.WaitVisible(chromedp.ID("confirm")))
	assert.Equal(t, "This includes the token you are signed in with (“console”, "+own.Hint+"): you will be signed out.",
		run(t, ctx, chromedp.Text(chromedp.ID("confirm-warning"))))
	shot(t, ctx, "10-revoke-all-signed-in")
	do(t, ctx, chromedp.Click(chromedp.ID("confirm")), chromedp.WaitVisible(chromedp.CSS(".message")))
	assert.Equal(t, "2 tokens revoked, including the token you were signed in with, so you are signed out.",
		run(t, ctx, chromedp.Text(chromedp.CSS(".message"))))
	run(t, ctx, chromedp.Poll[bool](fmt.Sprintf(`location.pathname === %q`, orgPage)))
	shot(t, ctx, "11-revoked-all-signed-out")
	do(t, ctx, chromedp.Reload(), chromedp.WaitVisible(chromedp.CSS(`.message[data-status="401"]`)))
	assert.Equal(t, "Sign in to manage API tokens.", run(t, ctx, chromedp.Text(chromedp.CSS(".message"))))
	assert.Len(t, h.audited(apitoken.EventRevokedAll), 1, "the reload did not post again")
}

// TestBrowserWrongMount opens a console built with WithPrefix but mounted
// behind http.StripPrefix: the page says how to mount it, styled.
func TestBrowserWrongMount(t *testing.T) {
	kit := apitokentest.New(t)
	ui, err := adminui.New(kit.Issuer, authorize, adminui.WithPrefix(prefix))
	require.NoError(t, err)
	srv := httptest.NewServer(strip(prefix)(ui))
	t.Cleanup(srv.Close)
	ctx := newBrowser(t)
	do(t, ctx, chromedp.Navigate(srv.URL+orgPage)) // returns once the page has loaded
	assert.Equal(t, `No such page. The console serves the paths under /settings/api-tokens (adminui.WithPrefix): mount it with mux.Handle("/settings/api-tokens/", h), not behind http.StripPrefix.`,
		run(t, ctx, chromedp.Evaluate[string](`(document.querySelector(".message") || document.body).textContent.trim()`)))
	// Stylesheets are loaded by the load event, which Navigate waited for.
	styled := `[...document.styleSheets].some(s => s.href && s.href.endsWith("/assets/console.css") && s.cssRules.length > 0) &&
		getComputedStyle(document.querySelector("main")).maxWidth !== "none"`
	assert.True(t, run(t, ctx, chromedp.Evaluate[bool](styled)), "the console's stylesheet applies")
	shot(t, ctx, "12-wrong-mount")
}

// timeWords is how the table writes a time.
func timeWords(t time.Time) string { return t.UTC().Format("2 Jan 2006 15:04 UTC") }

// TestBrowserNoEscalation is the attack of issue 20 in a browser: a
// manager signed in with a reader token clicks Show on the org's admin
// token and then regenerates it. Before, Show displayed the admin key and
// Regenerate displayed a new one with roles [admin]; now Show says why
// not, the regenerate form shows the refusal above it, no key reaches the
// page and the admin key still works.
func TestBrowserNoEscalation(t *testing.T) {
	sealKey := make([]byte, 32)
	_, _ = rand.Read(sealKey)
	h := newHost(t, apitoken.Policy{}, apitoken.WithSealKeys(sealKey))
	adminKey, admin := h.kit.IssueToken(apitoken.Spec{Kind: apitoken.KindOrg, OrgID: apitokentest.DefaultOrg, Name: "admin", Roles: []string{"admin"}})
	readerKey, _ := h.kit.IssueToken(apitoken.Spec{Kind: apitoken.KindOrg, OrgID: apitokentest.DefaultOrg, Name: "reader", Roles: []string{"reader"}})
	ctx := newBrowser(t)
	signIn(t, ctx, h, h.signInWithKey(t, readerKey), orgPage)

	button := chromedp.CSS("#token-" + admin.ID + " button[data-reveal]")
	out := chromedp.ID("key-" + admin.ID)
	do(t, ctx, chromedp.WaitVisible(button), chromedp.Click(button), chromedp.WaitVisible(out))
	shown := run(t, ctx, chromedp.Text(out))
	assert.True(t, shown == `Issuer lacks role "admin".`, "Show says why not (what it shows may be a key: not printed)")
	noKey(t, run(t, ctx, chromedp.OuterHTML(chromedp.CSS("html"))), adminKey, "Show refused")

	do(t, ctx, chromedp.Navigate(h.srv.URL+orgPage+admin.ID+"/regenerate"), chromedp.WaitVisible(chromedp.ID("submit")),
		chromedp.Click(chromedp.ID("submit")), chromedp.WaitVisible(chromedp.ID("form-error")))
	assert.Equal(t, `Issuer lacks role "admin".`, run(t, ctx, chromedp.Text(chromedp.ID("form-error"))), "the refusal above the form")
	page := run(t, ctx, chromedp.OuterHTML(chromedp.CSS("html")))
	noKey(t, page, adminKey, "the old key")
	assert.Empty(t, shownKey(page), "no new key")
	shot(t, ctx, "12-no-escalation")

	assert.Equal(t, http.StatusOK, h.use(t, http.MethodGet, "/devices", adminKey), "the admin key still works")
	assert.Empty(t, h.audited(apitoken.EventRegenerated))
	assert.Empty(t, h.audited(apitoken.EventRecovered))
}
