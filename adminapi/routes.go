package adminapi

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/apitoken/apitoken"
)

// call is one authorized request: who acts, in which scope.
type call struct {
	m     *Manager
	scope Scope
	ctx   context.Context // the request's, naming the actor
}

type op func(w http.ResponseWriter, r *http.Request, c *call)

// scopeKind says how a route finds its scope.
type scopeKind int

const (
	noScope scopeKind = iota
	selfScope
	orgScope
	userScope
)

func (h *Handler) register() {
	h.mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) {
		writeProblem(w, &problem{Status: http.StatusNotFound, Code: "not_found", Detail: "No such route."})
	})
	h.handle("/openapi.json", noScope, false, map[string]op{http.MethodGet: h.openAPI})
	h.handle("/policy", noScope, true, map[string]op{http.MethodGet: h.policy})
	for _, s := range []struct {
		prefix string
		kind   scopeKind
	}{
		{"/self/apitokens", selfScope},
		{"/orgs/{org}/apitokens", orgScope},
		{"/users/{user}/apitokens", userScope},
	} {
		h.handle(s.prefix, s.kind, true, map[string]op{http.MethodGet: h.list, http.MethodPost: h.create})
		h.handle(s.prefix+"/revoke-all", s.kind, true, map[string]op{http.MethodPost: h.revokeAll})
		h.handle(s.prefix+"/expiring", s.kind, true, map[string]op{http.MethodGet: h.expiring})
		h.handle(s.prefix+"/{id}", s.kind, true, map[string]op{
			http.MethodGet: h.get, http.MethodPatch: h.update, http.MethodDelete: h.delete})
		h.handle(s.prefix+"/{id}/regenerate", s.kind, true, map[string]op{http.MethodPost: h.regenerate})
		h.handle(s.prefix+"/{id}/revoke", s.kind, true, map[string]op{http.MethodPost: h.revoke})
		h.handle(s.prefix+"/{id}/reveal", s.kind, true, map[string]op{http.MethodPost: h.reveal})
	}
}

// handle serves pattern: the method's op, after the authorization hook
// (when auth) and the scope check; 405 for other methods.
func (h *Handler) handle(pattern string, kind scopeKind, auth bool, ops map[string]op) {
	methods := make([]string, 0, len(ops))
	for m := range ops {
		methods = append(methods, m)
	}
	slices.Sort(methods)
	for _, m := range methods {
		h.routes = append(h.routes, Route{Method: m, Pattern: pattern})
	}
	allow := strings.Join(methods, ", ")
	h.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		f, ok := ops[r.Method]
		if !ok {
			w.Header().Set("Allow", allow)
			writeProblem(w, &problem{Status: http.StatusMethodNotAllowed, Code: "method_not_allowed",
				Detail: "Allowed: " + allow + "."})
			return
		}
		if !auth {
			f(w, r, &call{ctx: r.Context()})
			return
		}
		m, err := h.authorize(r)
		switch {
		case errors.Is(err, ErrUnauthenticated):
			if h.cfg.challenge != "" {
				w.Header().Set("WWW-Authenticate", h.cfg.challenge)
			}
			writeProblem(w, &problem{Status: http.StatusUnauthorized, Code: "unauthenticated",
				Detail: "Sign in to manage API tokens."})
			return
		case err != nil:
			writeProblem(w, forbidden())
			return
		case m == nil || m.Actor == "":
			// A hook that names nobody is a host bug: fail closed.
			writeProblem(w, &problem{Status: http.StatusInternalServerError, Code: "internal"})
			return
		}
		// Every Issuer call of the request carries the manager: as actor for
		// the audit trail, and as privileges for the no-escalation rule.
		ctx := apitoken.WithPrivileges(apitoken.WithActor(r.Context(), m.Actor), m.Privileges)
		c := &call{m: m, ctx: ctx}
		if kind != noScope {
			switch kind {
			case selfScope:
				c.scope = Scope{Owner: apitoken.UserOwner(m.UserID), Self: true}
			case orgScope:
				c.scope = Scope{Owner: apitoken.OrgOwner(r.PathValue("org"))}
			case userScope:
				c.scope = Scope{Owner: apitoken.UserOwner(r.PathValue("user"))}
			}
			if c.scope.Owner.ID == "" || m.May == nil || !m.May(c.scope) {
				writeProblem(w, forbidden())
				return
			}
		}
		f(w, r, c)
	})
}

func forbidden() *problem {
	return &problem{Status: http.StatusForbidden, Code: "forbidden",
		Detail: "You may not manage these API tokens."}
}

// tokenJSON is a token as the API shows it: the stored record's JSON
// (never its hash or sealed secret) with its status.
type tokenJSON struct {
	*apitoken.Token
	Status apitoken.Status `json:"status"`
}

// keyJSON is a token with its key, in the create, regenerate and reveal
// responses only.
type keyJSON struct {
	tokenJSON
	Key string `json:"key"`
}

func (h *Handler) show(t *apitoken.Token) tokenJSON {
	return tokenJSON{Token: t, Status: h.status(t, h.cfg.clock())}
}

// status returns t's status at now under the policy given with
// WithPolicy, or else the Issuer's (its MaxLifetime and RequireExpiry can
// end a token before its own expiry).
func (h *Handler) status(t *apitoken.Token, now time.Time) apitoken.Status {
	if h.cfg.policy != nil {
		return h.cfg.policy.Status(t, now)
	}
	return h.issPolicy.Status(t, now)
}

func writeJSON(w http.ResponseWriter, status int, v any, noStore bool) {
	b, err := json.Marshal(v)
	if err != nil {
		writeProblem(w, &problem{Status: http.StatusInternalServerError, Code: "internal"})
		return
	}
	hd := w.Header()
	hd.Set("Content-Type", "application/json")
	hd.Set("X-Content-Type-Options", "nosniff")
	if noStore {
		hd.Set("Cache-Control", "no-store")
	} else {
		hd.Set("Cache-Control", "private, no-cache")
	}
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

func etag(t *apitoken.Token) string { return `"` + strconv.FormatInt(t.Version, 10) + `"` }

// ifMatch reads If-Match: the version it names (0 when absent or "*"),
// and whether one was given. A value that names no version can match
// nothing: it is a failed precondition.
func ifMatch(r *http.Request) (version int64, given bool, p *problem) {
	v := strings.TrimSpace(r.Header.Get("If-Match"))
	if v == "" || v == "*" {
		return 0, false, nil
	}
	if len(v) >= 3 && v[0] == '"' && v[len(v)-1] == '"' {
		if n, err := strconv.ParseInt(v[1:len(v)-1], 10, 64); err == nil && n > 0 {
			return n, true, nil
		}
	}
	return 0, true, &problem{Status: http.StatusPreconditionFailed, Code: "precondition_failed",
		Detail: `If-Match must be one ETag this API returned, such as "3".`}
}

// lookup returns the token of the path's {id} if it is in c's scope;
// a token of another scope is not found, exactly as an unknown ID.
func (h *Handler) lookup(w http.ResponseWriter, r *http.Request, c *call) *apitoken.Token {
	t, err := h.iss.Get(c.ctx, r.PathValue("id"))
	if err == nil && t.Owner() != c.scope.Owner {
		err = apitoken.ErrNotFound
	}
	if err != nil {
		writeProblem(w, issuerProblem(err, false))
		return nil
	}
	return t
}

func (h *Handler) openAPI(w http.ResponseWriter, _ *http.Request, _ *call) {
	hd := w.Header()
	hd.Set("Content-Type", "application/json")
	hd.Set("Cache-Control", "public, max-age=3600")
	_, _ = w.Write(OpenAPI())
}

// listJSON is one page of a listing.
type listJSON struct {
	Tokens     []tokenJSON `json:"tokens"`
	NextCursor string      `json:"next_cursor,omitempty"`
}

func (h *Handler) list(w http.ResponseWriter, r *http.Request, c *call) {
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		writeProblem(w, badRequest("", "The query string is malformed."))
		return
	}
	f := apitoken.Filter{Owner: c.scope.Owner}
	var status apitoken.Status
	for k, vs := range q {
		if len(vs) != 1 {
			writeProblem(w, badRequest(k, "Give "+k+" at most once."))
			return
		}
		switch v := vs[0]; k {
		case "limit":
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > apitoken.MaxPageSize {
				writeProblem(w, badRequest("limit", "limit must be a whole number from 1 to "+strconv.Itoa(apitoken.MaxPageSize)+"."))
				return
			}
			f.Limit = n
		case "cursor":
			f.Cursor = v
		case "status":
			switch st := apitoken.Status(v); st {
			case apitoken.StatusActive, apitoken.StatusExpired, apitoken.StatusRevoked:
				status = st
			default:
				writeProblem(w, badRequest("status", `status must be "active", "expired" or "revoked".`))
				return
			}
		default:
			writeProblem(w, badRequest(k, "Unknown query parameter "+strconv.Quote(k)+"."))
			return
		}
	}
	// A status filters before paging: store pages (of the asked size, so
	// the answer never holds more) are read until one holds a match, so a
	// page is empty only at the end of the listing.
	out := listJSON{Tokens: []tokenJSON{}}
	now := h.cfg.clock()
	for {
		page, err := h.iss.List(c.ctx, f)
		if err != nil {
			writeProblem(w, issuerProblem(err, false))
			return
		}
		for _, t := range page.Tokens {
			if s := h.status(t, now); status == "" || s == status {
				out.Tokens = append(out.Tokens, tokenJSON{Token: t, Status: s})
			}
		}
		out.NextCursor = page.Next
		if len(out.Tokens) > 0 || page.Next == "" || status == "" {
			break
		}
		f.Cursor = page.Next
	}
	writeJSON(w, http.StatusOK, out, false)
}

// expiringJSON lists the live tokens expiring soon.
type expiringJSON struct {
	Tokens []tokenJSON `json:"tokens"`
}

func (h *Handler) expiring(w http.ResponseWriter, r *http.Request, c *call) {
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		writeProblem(w, badRequest("", "The query string is malformed."))
		return
	}
	for k, vs := range q {
		if k != "within" {
			writeProblem(w, badRequest(k, "Unknown query parameter "+strconv.Quote(k)+"."))
			return
		}
		if len(vs) != 1 {
			writeProblem(w, badRequest(k, "Give "+k+" at most once."))
			return
		}
	}
	const what = `within must be a span such as "7d", "24h" or "1mo".`
	l, err := apitoken.ParseLifetime(q.Get("within"))
	if err != nil || !l.Expires() {
		writeProblem(w, badRequest("within", what))
		return
	}
	now := h.cfg.clock()
	toks, err := h.iss.Expiring(c.ctx, apitoken.Filter{Owner: c.scope.Owner}, l.ExpiresAt(now).Sub(now))
	if err != nil {
		writeProblem(w, issuerProblem(err, false))
		return
	}
	out := expiringJSON{Tokens: []tokenJSON{}}
	for _, t := range toks {
		out.Tokens = append(out.Tokens, tokenJSON{Token: t, Status: h.status(t, now)})
	}
	writeJSON(w, http.StatusOK, out, false)
}

func (h *Handler) create(w http.ResponseWriter, r *http.Request, c *call) {
	obj, p := readObject(w, r, h.cfg.maxBody)
	if p != nil {
		writeProblem(w, p)
		return
	}
	if obj == nil {
		writeProblem(w, badRequest("", "The body must be a JSON object describing the token."))
		return
	}
	ms := &members{m: obj}
	ms.only("name", "description", "roles", "grants", "all_apis", "resources", "lifetime", "ip_filter", "rate_limit", "metadata")
	var spec apitoken.Spec
	switch c.scope.Owner.Kind {
	case apitoken.KindOrg:
		spec.Kind, spec.OrgID = apitoken.KindOrg, c.scope.Owner.ID
	default:
		spec.Kind, spec.OwnerID = apitoken.KindUser, c.scope.Owner.ID
	}
	ms.get("name", &spec.Name, "a string")
	ms.get("description", &spec.Description, "a string")
	ms.get("roles", &spec.Roles, "an array of role names")
	spec.Grants, _ = ms.grants("grants", "all_apis", nil)
	ms.get("resources", &spec.Resources, "an array of resource IDs")
	spec.Lifetime, _, _ = ms.lifetime("lifetime")
	var ipf ipFilterBody
	if present, null := ms.get("ip_filter", &ipf, ipFilterWhat); present && !null {
		spec.IPFilter, spec.IPPrefixes = ipf.Name, ipf.Prefixes
	}
	var lim apitoken.Limit
	if present, null := ms.get("rate_limit", &lim, `an object {"rate": 10, "burst": 20}`); present && !null {
		spec.RateLimit = &lim
	}
	ms.get("metadata", &spec.Metadata, "an object of strings")
	if ms.prob != nil {
		writeProblem(w, ms.prob)
		return
	}
	secret, t, err := h.iss.Issue(c.ctx, spec)
	if err != nil {
		writeProblem(w, issuerProblem(err, false))
		return
	}
	w.Header().Set("Location", lastSegment(r.URL.Path)+"/"+t.ID)
	w.Header().Set("ETag", etag(t))
	writeJSON(w, http.StatusCreated, keyJSON{tokenJSON: h.show(t), Key: secret.Reveal()}, true)
}

// lastSegment returns the last segment of a path, so that a Location
// relative to the collection's URL names the new token wherever the
// handler is mounted.
func lastSegment(p string) string { return p[strings.LastIndexByte(p, '/')+1:] }

func (h *Handler) get(w http.ResponseWriter, r *http.Request, c *call) {
	t := h.lookup(w, r, c)
	if t == nil {
		return
	}
	w.Header().Set("ETag", etag(t))
	writeJSON(w, http.StatusOK, h.show(t), false)
}

func (h *Handler) update(w http.ResponseWriter, r *http.Request, c *call) {
	version, given, p := ifMatch(r)
	if p == nil {
		var obj map[string]json.RawMessage
		if obj, p = readObject(w, r, h.cfg.maxBody); p == nil && obj == nil {
			p = badRequest("", "The body must be a JSON object of the fields to change.")
		}
		if p == nil {
			t := h.lookup(w, r, c)
			if t == nil {
				return
			}
			h.patch(w, c, t, obj, version, given)
			return
		}
	}
	writeProblem(w, p)
}

func (h *Handler) patch(w http.ResponseWriter, c *call, t *apitoken.Token, obj map[string]json.RawMessage, version int64, given bool) {
	ms := &members{m: obj}
	ms.only("name", "description", "roles", "grants", "all_apis", "resources", "lifetime", "ip_filter", "rate_limit", "metadata")
	pt := apitoken.Patch{IfVersion: version}
	var name string
	if present, null := ms.get("name", &name, "a string"); null {
		ms.fail(badRequest("name", "A token needs a name."))
	} else if present {
		pt.Name = &name
	}
	var desc string
	if present, _ := ms.get("description", &desc, "a string"); present {
		pt.Description = &desc
	}
	var roles []string
	if present, _ := ms.get("roles", &roles, "an array of role names"); present {
		roles = append([]string{}, roles...)
		pt.Roles = &roles
	}
	if _, ok := obj["all_apis"]; ok && ms.prob == nil {
		if _, withGrants := obj["grants"]; !withGrants && version == 0 {
			// all_apis alone changes the grants as read: make the write
			// conditional on that read.
			pt.IfVersion = t.Version
		}
	}
	if g, changed := ms.grants("grants", "all_apis", t.Grants); changed {
		pt.Grants = &g
	}
	var res []string
	if present, _ := ms.get("resources", &res, "an array of resource IDs"); present {
		res = append([]string{}, res...)
		pt.Resources = &res
	}
	if l, present, null := ms.lifetime("lifetime"); null {
		ms.fail(badRequest("lifetime", `To make a token never expire, send "none".`))
	} else if present {
		pt.Lifetime = &l
	}
	var ipf ipFilterBody
	if present, null := ms.get("ip_filter", &ipf, ipFilterWhat); present {
		f := apitoken.IPFilter{Name: ipf.Name}
		if !null {
			for _, s := range ipf.Prefixes {
				pfx, err := apitoken.ParsePrefix(s)
				if err != nil {
					ms.fail(&problem{Status: http.StatusUnprocessableEntity, Code: "policy", Rule: "IPPrefixes",
						Field: "ip_filter.prefixes", Detail: "Not a CIDR prefix or address: " + strconv.Quote(s) + "."})
					break
				}
				f.Prefixes = append(f.Prefixes, pfx)
			}
		}
		pt.IPFilter = &f
	}
	var lim apitoken.Limit
	if present, null := ms.get("rate_limit", &lim, `an object {"rate": 10, "burst": 20}`); null {
		pt.ResetRateLimit = true
	} else if present {
		pt.RateLimit = &lim
	}
	var md map[string]string
	if present, _ := ms.get("metadata", &md, "an object of strings"); present {
		if md == nil {
			md = map[string]string{}
		}
		pt.Metadata = &md
	}
	if ms.prob != nil {
		writeProblem(w, ms.prob)
		return
	}
	nt, err := h.iss.Update(c.ctx, t.ID, pt)
	if err != nil {
		writeProblem(w, issuerProblem(err, given))
		return
	}
	w.Header().Set("ETag", etag(nt))
	writeJSON(w, http.StatusOK, h.show(nt), false)
}

func (h *Handler) regenerate(w http.ResponseWriter, r *http.Request, c *call) {
	version, given, p := ifMatch(r)
	var obj map[string]json.RawMessage
	if p == nil {
		obj, p = readObject(w, r, h.cfg.maxBody)
	}
	ms := &members{m: obj}
	ms.only("lifetime", "grace")
	life, _, _ := ms.lifetime("lifetime")
	var graceText string
	var grace time.Duration
	if present, null := ms.get("grace", &graceText, `a duration such as "1h" or "30m"`); present && !null {
		d, err := time.ParseDuration(graceText)
		if err != nil || d < 0 {
			ms.fail(badRequest("grace", `The field "grace" must be a duration such as "1h" or "30m".`))
		}
		grace = d
	}
	if p == nil {
		p = ms.prob
	}
	if p != nil {
		writeProblem(w, p)
		return
	}
	t := h.lookup(w, r, c)
	if t == nil {
		return
	}
	opts := []apitoken.RegenerateOption{}
	if grace > 0 {
		opts = append(opts, apitoken.WithGrace(grace))
	}
	if given {
		opts = append(opts, apitoken.WithIfVersion(version))
	}
	secret, nt, err := h.iss.Regenerate(c.ctx, t.ID, life, opts...)
	if err != nil {
		writeProblem(w, issuerProblem(err, given))
		return
	}
	w.Header().Set("ETag", etag(nt))
	writeJSON(w, http.StatusOK, keyJSON{tokenJSON: h.show(nt), Key: secret.Reveal()}, true)
}

// noBody accepts an empty body or an empty JSON object.
func (h *Handler) noBody(w http.ResponseWriter, r *http.Request) *problem {
	obj, p := readObject(w, r, h.cfg.maxBody)
	if p != nil {
		return p
	}
	ms := &members{m: obj}
	ms.only()
	return ms.prob
}

func (h *Handler) revoke(w http.ResponseWriter, r *http.Request, c *call) {
	if p := h.noBody(w, r); p != nil {
		writeProblem(w, p)
		return
	}
	t := h.lookup(w, r, c)
	if t == nil {
		return
	}
	if err := h.iss.Revoke(c.ctx, t.ID); err != nil {
		writeProblem(w, issuerProblem(err, false))
		return
	}
	nt, err := h.iss.Get(c.ctx, t.ID)
	if err != nil {
		writeProblem(w, issuerProblem(err, false))
		return
	}
	w.Header().Set("ETag", etag(nt))
	writeJSON(w, http.StatusOK, h.show(nt), false)
}

// revokedJSON answers revoke-all.
type revokedJSON struct {
	Revoked int `json:"revoked"`
}

func (h *Handler) revokeAll(w http.ResponseWriter, r *http.Request, c *call) {
	if p := h.noBody(w, r); p != nil {
		writeProblem(w, p)
		return
	}
	n, err := h.iss.RevokeAll(c.ctx, c.scope.Owner)
	if err != nil {
		writeProblem(w, issuerProblem(err, false))
		return
	}
	writeJSON(w, http.StatusOK, revokedJSON{Revoked: n}, false)
}

func (h *Handler) delete(w http.ResponseWriter, r *http.Request, c *call) {
	t := h.lookup(w, r, c)
	if t == nil {
		return
	}
	if err := h.iss.Delete(c.ctx, t.ID); err != nil {
		writeProblem(w, issuerProblem(err, false))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (h *Handler) reveal(w http.ResponseWriter, r *http.Request, c *call) {
	if p := h.noBody(w, r); p != nil {
		writeProblem(w, p)
		return
	}
	t := h.lookup(w, r, c)
	if t == nil {
		return
	}
	secret, err := h.iss.Recover(c.ctx, t.ID)
	if err != nil {
		writeProblem(w, issuerProblem(err, false))
		return
	}
	writeJSON(w, http.StatusOK, keyJSON{tokenJSON: h.show(t), Key: secret.Reveal()}, true)
}

// policyJSON is the read-only view of the policy GET /policy serves.
type policyJSON struct {
	Prefix              string              `json:"prefix"`
	DefaultLifetime     string              `json:"default_lifetime,omitempty"`
	MaxLifetime         string              `json:"max_lifetime,omitempty"`
	AllowedLifetimes    []string            `json:"allowed_lifetimes"`
	RequireExpiry       bool                `json:"require_expiry"`
	RequireIPFilter     bool                `json:"require_ip_filter"`
	AllowInlineIPFilter bool                `json:"allow_inline_ip_filter"`
	IPFilters           []string            `json:"ip_filters"`
	Roles               map[string]roleJSON `json:"roles"`
	DefaultRoles        []string            `json:"default_roles"`
}

type roleJSON struct {
	Description string          `json:"description,omitempty"`
	Grants      apitoken.Grants `json:"grants,omitempty"`
}

func (h *Handler) policy(w http.ResponseWriter, _ *http.Request, _ *call) {
	p := h.cfg.policy
	if p == nil {
		writeProblem(w, &problem{Status: http.StatusNotFound, Code: "not_found", Detail: "The policy is not published."})
		return
	}
	out := policyJSON{Prefix: p.Prefix, RequireExpiry: p.RequireExpiry, RequireIPFilter: p.RequireIPFilter,
		AllowInlineIPFilter: p.AllowInlineIPFilter, AllowedLifetimes: []string{}, IPFilters: []string{},
		Roles: map[string]roleJSON{}, DefaultRoles: append([]string{}, p.DefaultRoles...)}
	if out.Prefix == "" {
		out.Prefix = "tok"
	}
	if !p.DefaultLifetime.IsZero() {
		out.DefaultLifetime = p.DefaultLifetime.String()
	}
	if !p.MaxLifetime.IsZero() {
		out.MaxLifetime = p.MaxLifetime.String()
	}
	for _, l := range p.AllowedLifetimes {
		out.AllowedLifetimes = append(out.AllowedLifetimes, l.String())
	}
	for name := range p.IPFilters {
		out.IPFilters = append(out.IPFilters, name)
	}
	slices.Sort(out.IPFilters)
	for name, role := range p.Roles {
		out.Roles[name] = roleJSON{Description: role.Description, Grants: role.Grants}
	}
	writeJSON(w, http.StatusOK, out, false)
}
