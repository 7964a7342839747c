package adminui

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// route serves r with the console's mux, unless r reached no page: then
// it serves an asset a mount page links (relative to itself), or a page
// that says how to mount the console when the mount looks wrong.
func (h *Handler) route(w http.ResponseWriter, r *http.Request) {
	if h.routed(r, r.URL.Path) {
		h.mux.ServeHTTP(w, r)
		return
	}
	if name, ok := assetName(r.URL.Path); ok && (r.Method == http.MethodGet || r.Method == http.MethodHead) {
		serveAsset(name)(w, r)
		return
	}
	p := h.cfg.prefix
	switch {
	case p != "" && r.URL.Path != p && !strings.HasPrefix(r.URL.Path, p+"/"):
		// Outside the prefix: behind http.StripPrefix, or mounted elsewhere.
		h.mountPage(w, r, fmt.Sprintf("No such page. The console serves the paths under %s (adminui.WithPrefix): mount it with mux.Handle(%q, h), not behind http.StripPrefix.", p, p+"/"))
		return
	case p == "":
		// Without a prefix a console serves from the root; one mounted
		// deeper sees its own pages only at the tail of each path.
		if mount, ok := h.mountedAt(r); ok {
			h.mountPage(w, r, fmt.Sprintf("No such page. Without adminui.WithPrefix the console serves paths from the root: if it is mounted at %s, build it with adminui.WithPrefix(%q) and mount it with mux.Handle(%q, h).", mount, mount, mount+"/"))
			return
		}
	}
	h.mux.ServeHTTP(w, r) // "No such page."
}

// routed reports whether path, in r's place, is one of the console's
// pages or assets.
func (h *Handler) routed(r *http.Request, path string) bool {
	r2 := new(http.Request)
	*r2 = *r
	r2.URL = &url.URL{Path: path}
	_, pattern := h.mux.Handler(r2)
	return pattern != "" && pattern != h.cfg.prefix+"/" // the latter answers "No such page."
}

// mountedAt guesses where a console without a prefix is mounted, for a
// request that reached no page: the shortest head of the path whose tail
// is a page.
func (h *Handler) mountedAt(r *http.Request) (string, bool) {
	path := r.URL.Path
	for i := 1; i < len(path); i++ {
		if path[i] == '/' && validPrefix(path[:i]) && h.routed(r, path[i:]) {
			return path[:i], true
		}
	}
	return "", false
}

// assetName returns the asset that path ends in, if any.
func assetName(path string) (string, bool) {
	for _, name := range []string{"console.css", "console.js"} {
		if strings.HasSuffix(path, "/assets/"+name) {
			return name, true
		}
	}
	return "", false
}

// mountPage renders msg, which says how to mount the console, with 404.
// The page links the assets relative to itself: wherever the console
// is mounted, they resolve to a path that reaches it (see route).
func (h *Handler) mountPage(w http.ResponseWriter, r *http.Request, msg string) {
	h.write(w, r, http.StatusNotFound, "message", pageData{Title: h.cfg.title, Heading: h.cfg.title,
		Stylesheet: h.cfg.stylesheet, Assets: "assets/", Page: messageView{Status: http.StatusNotFound, Message: msg}})
}
