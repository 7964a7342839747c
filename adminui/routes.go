package adminui

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/apitoken/apitoken"
	"github.com/apitoken/apitoken/adminapi"
)

// call is one authorized request: who acts, in which scope.
type call struct {
	m     *adminapi.Manager
	scope adminapi.Scope
	base  string          // the scope's page, escaped, ending in "/"
	ctx   context.Context // the request's, naming the actor
}

type op func(w http.ResponseWriter, r *http.Request, c *call)

// register adds every route. Paths, under the prefix, for each scope's
// page S (/, /orgs/{org}/, /users/{user}/):
//
//	GET  S                   the tokens (?cursor= for the next page)
//	GET  S new               the create form; POST creates and shows the key once
//	GET  S revoke-all        the confirmation; POST revokes every token of the scope
//	GET  S {id}/edit         the edit form; POST saves
//	GET  S {id}/regenerate   the expiry choice; POST shows the new key once
//	GET  S {id}/revoke       the confirmation; POST revokes
//	GET  S {id}/delete       the confirmation; POST deletes
//	POST S {id}/reveal       a recoverable token's key (JSON for the page's script)
func (h *Handler) register(mux *http.ServeMux) {
	p := h.cfg.prefix
	for _, name := range []string{"console.css", "console.js"} {
		mux.HandleFunc("GET "+p+"/assets/"+name, serveAsset(name))
	}
	mux.HandleFunc(p+"/", func(w http.ResponseWriter, r *http.Request) {
		h.fail(w, r, nil, http.StatusNotFound, "No such page.")
	})
	for _, s := range []string{"/", "/orgs/{org}/", "/users/{user}/"} {
		s = p + s
		h.handle(mux, "GET "+s+"{$}", h.list)
		h.handle(mux, "GET "+s+"new", h.newForm)
		h.handle(mux, "POST "+s+"new", h.create)
		h.handle(mux, "GET "+s+"revoke-all", h.confirmRevokeAll)
		h.handle(mux, "POST "+s+"revoke-all", h.revokeAll)
		h.handle(mux, "GET "+s+"{id}/edit", h.withToken(h.editForm))
		h.handle(mux, "POST "+s+"{id}/edit", h.withToken(h.update))
		h.handle(mux, "GET "+s+"{id}/regenerate", h.withToken(h.regenerateForm))
		h.handle(mux, "POST "+s+"{id}/regenerate", h.withToken(h.regenerate))
		h.handle(mux, "GET "+s+"{id}/revoke", h.withToken(h.confirmRevoke))
		h.handle(mux, "POST "+s+"{id}/revoke", h.withToken(h.act(h.iss.Revoke, "revoked")))
		h.handle(mux, "GET "+s+"{id}/delete", h.withToken(h.confirmDelete))
		h.handle(mux, "POST "+s+"{id}/delete", h.withToken(h.act(h.iss.Delete, "deleted")))
		h.handle(mux, "POST "+s+"{id}/reveal", h.withToken(h.reveal))
	}
}

// handle serves pattern with f, after the authorization hook and the
// scope check.
func (h *Handler) handle(mux *http.ServeMux, pattern string, f op) {
	mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		m, err := h.authorize(r)
		switch {
		case errors.Is(err, adminapi.ErrUnauthenticated):
			h.render(w, r, nil, http.StatusUnauthorized, "message", messageView{Status: http.StatusUnauthorized,
				Message: "Sign in to manage API tokens.", Link: h.cfg.signIn, LinkText: "Sign in"}, false)
			return
		case err != nil:
			h.fail(w, r, nil, http.StatusForbidden, "You may not manage these API tokens.")
			return
		case m == nil || m.Actor == "":
			// A hook that names nobody is a host bug: fail closed.
			h.fail(w, r, nil, http.StatusInternalServerError, "The console is misconfigured.")
			return
		}
		// Every Issuer call carries the manager: as actor for the audit
		// trail, and as privileges for the no-escalation rule, which the
		// Issuer applies to create, edit, regenerate and show alike.
		ctx := apitoken.WithPrivileges(apitoken.WithActor(r.Context(), m.Actor), m.Privileges)
		c := &call{m: m, ctx: ctx}
		switch org, user := r.PathValue("org"), r.PathValue("user"); {
		case org != "":
			c.scope = adminapi.Scope{Owner: apitoken.OrgOwner(org)}
			c.base = h.cfg.prefix + "/orgs/" + url.PathEscape(org) + "/"
		case user != "":
			c.scope = adminapi.Scope{Owner: apitoken.UserOwner(user)}
			c.base = h.cfg.prefix + "/users/" + url.PathEscape(user) + "/"
		default:
			c.scope = adminapi.Scope{Owner: apitoken.UserOwner(m.UserID), Self: true}
			c.base = h.cfg.prefix + "/"
		}
		if c.scope.Owner.ID == "" || m.May == nil || !m.May(c.scope) {
			h.fail(w, r, nil, http.StatusForbidden, "You may not manage these API tokens.")
			return
		}
		f(w, r, c)
	})
}

// tokenOp is an op on the token of the path's {id}.
type tokenOp func(w http.ResponseWriter, r *http.Request, c *call, t *apitoken.Token)

// withToken looks up the path's token in c's scope: a token of another
// scope is not found, exactly as an unknown ID.
func (h *Handler) withToken(f tokenOp) op {
	return func(w http.ResponseWriter, r *http.Request, c *call) {
		t, err := h.iss.Get(c.ctx, r.PathValue("id"))
		if err == nil && t.Owner() != c.scope.Owner {
			err = apitoken.ErrNotFound
		}
		if err != nil {
			h.issuerFail(w, r, c, err)
			return
		}
		f(w, r, c, t)
	}
}

func (h *Handler) list(w http.ResponseWriter, r *http.Request, c *call) {
	h.renderList(w, r, c, nil, http.StatusOK)
}

// listPageSize is how many tokens one page of the table shows.
const listPageSize = 50

// renderList renders the scope's tokens, with key (a key shown once) or
// the notice the query's done= names.
func (h *Handler) renderList(w http.ResponseWriter, r *http.Request, c *call, key *shownKey, status int) {
	page, err := h.iss.List(c.ctx, apitoken.Filter{Owner: c.scope.Owner, Cursor: r.URL.Query().Get("cursor"), Limit: listPageSize})
	if errors.Is(err, apitoken.ErrBadCursor) {
		page, err = h.iss.List(c.ctx, apitoken.Filter{Owner: c.scope.Owner, Limit: listPageSize})
	}
	if err != nil {
		h.issuerFail(w, r, c, err)
		return
	}
	v := listView{Key: key, Notice: notice(r.URL.Query()), NewURL: c.base + "new", RevokeAllURL: c.base + "revoke-all"}
	if page.Next != "" {
		v.NextURL = c.base + "?cursor=" + url.QueryEscape(page.Next)
	}
	now := h.cfg.clock()
	for _, t := range page.Tokens {
		v.Rows = append(v.Rows, h.row(c, t, now))
	}
	h.render(w, r, c, status, "list", v, key != nil)
}

func (h *Handler) newForm(w http.ResponseWriter, r *http.Request, c *call) {
	f := h.createForm(c)
	h.render(w, r, c, http.StatusOK, "form", f, false)
}

func (h *Handler) create(w http.ResponseWriter, r *http.Request, c *call) {
	h.submit(w, r, c, h.createForm(c), func(spec apitoken.Spec) error {
		if c.scope.Owner.Kind == apitoken.KindOrg {
			spec.Kind, spec.OrgID = apitoken.KindOrg, c.scope.Owner.ID
		} else {
			spec.Kind, spec.OwnerID = apitoken.KindUser, c.scope.Owner.ID
		}
		secret, t, err := h.iss.Issue(c.ctx, spec)
		if err == nil {
			h.renderList(w, r, c, &shownKey{Verb: "created", Name: t.Name, Key: secret.Reveal()}, http.StatusCreated)
		}
		return err
	})
}

// submit reads the posted form f and, if it is well formed, saves it with
// save, which writes the response when it succeeds. A policy error goes
// next to its field and the form is shown again (422), as is a malformed
// field; any other error is a message page.
func (h *Handler) submit(w http.ResponseWriter, r *http.Request, c *call, f *form, save func(apitoken.Spec) error) {
	if spec, ok := f.read(r, h.policy); ok {
		err := save(spec)
		if err == nil {
			return
		}
		if !f.blame(err) {
			h.issuerFail(w, r, c, err)
			return
		}
	}
	h.render(w, r, c, http.StatusUnprocessableEntity, "form", f, false)
}

// showForm renders the form for t, unless t is frozen.
func (h *Handler) showForm(w http.ResponseWriter, r *http.Request, c *call, t *apitoken.Token, f func(*call, *apitoken.Token) *form) {
	if !h.frozen(w, r, c, t) {
		h.render(w, r, c, http.StatusOK, "form", f(c, t), false)
	}
}

func (h *Handler) editForm(w http.ResponseWriter, r *http.Request, c *call, t *apitoken.Token) {
	h.showForm(w, r, c, t, h.updateForm)
}

func (h *Handler) update(w http.ResponseWriter, r *http.Request, c *call, t *apitoken.Token) {
	if h.frozen(w, r, c, t) {
		return
	}
	f := h.updateForm(c, t)
	h.submit(w, r, c, f, func(spec apitoken.Spec) error {
		pt := apitoken.Patch{Name: &spec.Name, Description: &spec.Description, Roles: &spec.Roles,
			Grants: &spec.Grants, Resources: &spec.Resources, IfVersion: f.version(r)}
		if !f.Lifetime.keep(r) {
			pt.Lifetime = &spec.Lifetime
		}
		if f.IP.Offered {
			pt.IPFilter = &apitoken.IPFilter{Name: spec.IPFilter}
		}
		_, err := h.iss.Update(c.ctx, t.ID, pt)
		if err == nil {
			http.Redirect(w, r, c.base+"?done=updated", http.StatusSeeOther)
		}
		return err
	})
}

func (h *Handler) regenerateForm(w http.ResponseWriter, r *http.Request, c *call, t *apitoken.Token) {
	h.showForm(w, r, c, t, h.rotateForm)
}

func (h *Handler) regenerate(w http.ResponseWriter, r *http.Request, c *call, t *apitoken.Token) {
	if h.frozen(w, r, c, t) {
		return
	}
	f := h.rotateForm(c, t)
	h.submit(w, r, c, f, func(spec apitoken.Spec) error {
		opts := []apitoken.RegenerateOption{}
		if v := f.version(r); v != 0 {
			opts = append(opts, apitoken.WithIfVersion(v))
		}
		secret, nt, err := h.iss.Regenerate(c.ctx, t.ID, spec.Lifetime, opts...)
		if err == nil {
			h.renderList(w, r, c, &shownKey{Verb: "regenerated", Name: nt.Name, Key: secret.Reveal()}, http.StatusOK)
		}
		return err
	})
}

func (h *Handler) confirmRevoke(w http.ResponseWriter, r *http.Request, c *call, t *apitoken.Token) {
	if h.frozen(w, r, c, t) {
		return
	}
	h.render(w, r, c, http.StatusOK, "confirm", confirmView{
		Question: "Revoke the token “" + t.Name + "” (" + t.Hint + ")?",
		Detail:   "Requests with it fail from now on. A revoked token cannot be used or changed again.",
		Warning:  signedInWithWarning(c, t),
		Action:   c.base + t.ID + "/revoke", Button: "Revoke token", Cancel: c.base,
	}, false)
}

// act is the tokenOp that calls do (Revoke, Delete) on the token and then
// goes back to the list, with the notice done names.
func (h *Handler) act(do func(context.Context, string) error, done string) tokenOp {
	return func(w http.ResponseWriter, r *http.Request, c *call, t *apitoken.Token) {
		if err := do(c.ctx, t.ID); err != nil {
			h.issuerFail(w, r, c, err)
			return
		}
		if signedInWith(c, t) {
			h.endedSignedIn(w, r, c, strings.TrimSuffix(notice(url.Values{"done": {done}}), ".")+
				": it is the token you were signed in with, so you are signed out.")
			return
		}
		http.Redirect(w, r, c.base+"?done="+done, http.StatusSeeOther)
	}
}

func (h *Handler) confirmDelete(w http.ResponseWriter, r *http.Request, c *call, t *apitoken.Token) {
	h.render(w, r, c, http.StatusOK, "confirm", confirmView{
		Question: "Delete the token “" + t.Name + "” (" + t.Hint + ")?",
		Detail:   "It disappears from this list; requests with it fail. This cannot be undone.",
		Warning:  signedInWithWarning(c, t),
		Action:   c.base + t.ID + "/delete", Button: "Delete token", Cancel: c.base,
	}, false)
}

func (h *Handler) confirmRevokeAll(w http.ResponseWriter, r *http.Request, c *call) {
	h.render(w, r, c, http.StatusOK, "confirm", confirmView{
		Question: "Revoke every token here?",
		Detail:   "Every request with any of these tokens fails from now on. Revoked tokens cannot be used or changed again.",
		Warning:  signedInWarning(c),
		Action:   c.base + "revoke-all", Button: "Revoke all tokens", Cancel: c.base,
	}, false)
}

func (h *Handler) revokeAll(w http.ResponseWriter, r *http.Request, c *call) {
	n, err := h.iss.RevokeAll(c.ctx, c.scope.Owner)
	if err != nil {
		h.issuerFail(w, r, c, err)
		return
	}
	if signedInHere(c) {
		h.revokedSignedIn(w, r, c, n)
		return
	}
	http.Redirect(w, r, c.base+"?done=revoked-all&n="+strconv.Itoa(n), http.StatusSeeOther)
}

// reveal answers the page's Show button with {"key": "..."}, or renders
// the list with the key for a browser without script. The reveal is
// audited by the Issuer (an EventRecovered naming the actor).
func (h *Handler) reveal(w http.ResponseWriter, r *http.Request, c *call, t *apitoken.Token) {
	secret, err := h.iss.Recover(c.ctx, t.ID)
	if r.Header.Get("Accept") != "application/json" {
		if err != nil {
			h.issuerFail(w, r, c, err)
			return
		}
		h.renderList(w, r, c, &shownKey{Verb: "shown", Name: t.Name, Key: secret.Reveal()}, http.StatusOK)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	if err != nil {
		status, msg := issuerStatus(err)
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(map[string]string{"error": msg})
		return
	}
	_ = json.NewEncoder(w).Encode(map[string]string{"key": secret.Reveal()})
}

// frozen renders the "cannot modify" page for an expired or revoked
// token and reports whether it did.
func (h *Handler) frozen(w http.ResponseWriter, r *http.Request, c *call, t *apitoken.Token) bool {
	switch h.policy.Status(t, h.cfg.clock()) {
	case apitoken.StatusExpired:
		h.fail(w, r, c, http.StatusConflict, "You cannot modify expired tokens: delete it and create a new one.")
		return true
	case apitoken.StatusRevoked:
		h.fail(w, r, c, http.StatusConflict, "You cannot modify revoked tokens: delete it and create a new one.")
		return true
	}
	return false
}

// issuerStatus maps an Issuer error to a status and words for the page.
func issuerStatus(err error) (int, string) {
	switch {
	case errors.Is(err, apitoken.ErrNotFound):
		return http.StatusNotFound, "No such token here."
	case errors.Is(err, apitoken.ErrExpired):
		return http.StatusConflict, "You cannot modify expired tokens: delete it and create a new one."
	case errors.Is(err, apitoken.ErrRevoked):
		return http.StatusConflict, "You cannot modify revoked tokens: delete it and create a new one."
	case errors.Is(err, apitoken.ErrNotRecoverable):
		return http.StatusConflict, "This token's key was not stored in recoverable form; regenerate it for a new key."
	case errors.Is(err, apitoken.ErrConflict):
		return http.StatusConflict, "The token was changed meanwhile (perhaps in another tab): go back, reload and try again."
	case errors.Is(err, apitoken.ErrPolicy):
		var pe *apitoken.PolicyError
		if errors.As(err, &pe) && pe.Detail != "" {
			return http.StatusUnprocessableEntity, sentence(pe.Detail)
		}
		return http.StatusUnprocessableEntity, "The policy does not allow this."
	case errors.Is(err, apitoken.ErrStoreUnavailable):
		return http.StatusServiceUnavailable, "The token store is unavailable right now; try again in a moment."
	}
	return http.StatusInternalServerError, "Something went wrong on our side."
}

func (h *Handler) issuerFail(w http.ResponseWriter, r *http.Request, c *call, err error) {
	status, msg := issuerStatus(err)
	h.fail(w, r, c, status, msg)
}

// notice is the words for the query's done= after a redirect.
func notice(q url.Values) string {
	switch q.Get("done") {
	case "updated":
		return "Token saved."
	case "revoked":
		return "Token revoked."
	case "deleted":
		return "Token deleted."
	case "revoked-all":
		n, err := strconv.Atoi(q.Get("n"))
		if err != nil || n < 0 {
			return "Tokens revoked."
		}
		if n == 1 {
			return "1 token revoked."
		}
		return strconv.Itoa(n) + " tokens revoked."
	}
	return ""
}
