package adminui

import (
	"errors"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/apitoken/apitoken"
	"github.com/apitoken/apitoken/adminapi"
)

// form is the create, edit and regenerate form: what it offers, what was
// entered, and the errors next to each field. Field names are the admin
// API's ([adminapi.PolicyField]): name, description, roles, grants,
// resources, lifetime, ip_filter.
type form struct {
	Title    string
	Action   string
	Cancel   string
	Submit   string
	Rotate   bool // regenerate: only the expiry
	Version  int64
	Hint     string
	Name     string
	Desc     string
	Roles    []roleChoice
	All      string // the level for all APIs: none, read or full
	APIs     []apiRow
	Resource string
	Lifetime lifetimeField
	IP       ipField
	Errors   map[string]string
	Problem  string // an error no one field is to blame for
}

type roleChoice struct {
	Name, Description string
	Checked           bool
}

type apiRow struct {
	Name, Title, Level string
}

// Levels are the access levels of the grid, highest first, as the
// products show them.
var levels = []struct{ Value, Label string }{{"full", "Full"}, {"read", "Read"}, {"none", "No access"}}

// FieldID returns the form control ID of an API's access level.
func (a apiRow) FieldID(level string) string { return "access-" + fieldSafe(a.Name) + "-" + level }

func fieldSafe(s string) string {
	return strings.Map(func(r rune) rune {
		if r < utf8.RuneSelf && (unicode.IsLetter(r) || unicode.IsDigit(r) || r == '-' || r == '_') {
			return r
		}
		return '_'
	}, s)
}

// lifetimeField is the expiry control: the policy's allowed set as
// choices, or a number and a unit, and "no expiry" where allowed.
type lifetimeField struct {
	Choices  []choice // the allowed set (and "none"), when the policy has one
	N, Unit  string   // the number and unit, when it has none
	Units    []choice
	NoExpiry bool // "No expiry" is ticked (number and unit form)
	AllowNo  bool // the policy allows no expiry (number and unit form)
	Keep     bool // edit: offer keeping the current expiry, the default
	Current  string
	Default  string // the policy default, in words
}

type choice struct {
	Value, Label string
	Selected     bool
}

type ipField struct {
	Offered  bool // the policy names IP filters, and the token has no inline prefixes
	Required bool
	Choices  []choice
	// Inline are the token's inline prefixes (set through the API or the
	// CLI), which the form shows read only and an edit keeps: the form has
	// no control for them, so it posts no ip_filter.
	Inline []string
}

func (h *Handler) baseForm(c *call, title, action, submit string) *form {
	f := &form{Title: title, Action: action, Cancel: c.base, Submit: submit, All: "none", Errors: map[string]string{}}
	f.Lifetime = lifetimeChoices(h.policy)
	return f
}

func (h *Handler) createForm(c *call) *form {
	f := h.baseForm(c, "New token", c.base+"new", "Create token")
	defaults := []string(nil)
	if c.scope.Owner.Kind == apitoken.KindOrg {
		defaults = h.policy.DefaultRoles
	}
	f.Roles = h.roleChoices(defaults)
	f.APIs = h.apiRows(nil)
	f.IP = h.ipChoices("")
	return f
}

func (h *Handler) updateForm(c *call, t *apitoken.Token) *form {
	f := h.baseForm(c, "Edit “"+t.Name+"”", c.base+t.ID+"/edit", "Save")
	f.Version, f.Hint = t.Version, t.Hint
	f.Name, f.Desc, f.Resource = t.Name, t.Description, strings.Join(t.Resources, "\n")
	f.Roles = h.roleChoices(t.Roles)
	f.All = t.Grants[apitoken.AllAPIs].String()
	f.APIs = h.apiRows(t.Grants)
	if len(t.IPFilter.Prefixes) > 0 {
		for _, p := range t.IPFilter.Prefixes {
			f.IP.Inline = append(f.IP.Inline, p.String())
		}
	} else {
		f.IP = h.ipChoices(t.IPFilter.Name)
	}
	// The expiry stays unless the person picks a new one, counted from now.
	l := &f.Lifetime
	l.Keep, l.Current, l.N = true, expiryWords(h.policy.ExpiresAt(t)), ""
	if len(l.Choices) > 0 {
		for i := range l.Choices {
			l.Choices[i].Selected = false
		}
		l.Choices = append([]choice{{Value: "keep", Label: "Keep the current expiry (" + l.Current + ")", Selected: true}}, l.Choices...)
	}
	return f
}

func (h *Handler) rotateForm(c *call, t *apitoken.Token) *form {
	f := h.baseForm(c, "Regenerate “"+t.Name+"”", c.base+t.ID+"/regenerate", "Regenerate token")
	f.Rotate, f.Version, f.Hint, f.Name = true, t.Version, t.Hint, t.Name
	return f
}

func (h *Handler) roleChoices(checked []string) []roleChoice {
	names := slices.Sorted(maps.Keys(h.policy.Roles))
	out := make([]roleChoice, 0, len(names))
	for _, n := range names {
		out = append(out, roleChoice{Name: n, Description: h.policy.Roles[n].Description, Checked: slices.Contains(checked, n)})
	}
	return out
}

// apiRows returns the grid's rows: the configured APIs, then any other API
// g names, each at its effective level.
func (h *Handler) apiRows(g apitoken.Grants) []apiRow {
	all := g[apitoken.AllAPIs]
	var rows []apiRow
	for _, a := range h.cfg.apis {
		title := a.Title
		if title == "" {
			title = a.Name
		}
		lvl, ok := g[a.Name]
		if !ok {
			lvl = all
		}
		rows = append(rows, apiRow{Name: a.Name, Title: title, Level: lvl.String()})
	}
	for _, name := range slices.Sorted(maps.Keys(g)) {
		if name != apitoken.AllAPIs && !slices.ContainsFunc(h.cfg.apis, func(a API) bool { return a.Name == name }) {
			rows = append(rows, apiRow{Name: name, Title: name, Level: g[name].String()})
		}
	}
	return rows
}

func (h *Handler) ipChoices(current string) ipField {
	if len(h.policy.IPFilters) == 0 {
		return ipField{}
	}
	f := ipField{Offered: true, Required: h.policy.RequireIPFilter}
	if !f.Required {
		f.Choices = append(f.Choices, choice{Value: "", Label: "Any address", Selected: current == ""})
	}
	for _, n := range slices.Sorted(maps.Keys(h.policy.IPFilters)) {
		f.Choices = append(f.Choices, choice{Value: n, Label: n, Selected: n == current})
	}
	if _, ok := h.policy.IPFilters[current]; current != "" && !ok {
		// A filter the policy no longer names stays chosen, so that saving
		// fails next to the field rather than widening the token to every
		// address.
		f.Choices = append(f.Choices, choice{Value: current, Label: current + " (not in the policy)", Selected: true})
	}
	return f
}

// lifetimeChoices is the expiry control the policy allows, at its default.
func lifetimeChoices(p apitoken.Policy) lifetimeField {
	def := p.DefaultLifetime
	f := lifetimeField{Default: "the policy's default"}
	if !def.IsZero() {
		f.Default = lifetimeWords(def)
	}
	if len(p.AllowedLifetimes) > 0 {
		for i, l := range p.AllowedLifetimes {
			label := lifetimeWords(l)
			if l == def {
				label += " (default)"
			}
			f.Choices = append(f.Choices, choice{Value: l.String(), Label: label, Selected: l == def || (def.IsZero() && i == 0)})
		}
		return f
	}
	f.AllowNo = !p.RequireExpiry && p.MaxLifetime.IsZero()
	f.Unit = "days"
	if n, unit, ok := splitLifetime(def); ok {
		f.N, f.Unit = strconv.Itoa(n), unit
	}
	for _, u := range []string{"minutes", "hours", "days", "months"} {
		f.Units = append(f.Units, choice{Value: u, Label: u, Selected: u == f.Unit})
	}
	return f
}

// keep reports whether an edit keeps the current expiry: the choice
// "keep", or an empty number.
func (l *lifetimeField) keep(r *http.Request) bool {
	if !l.Keep {
		return false
	}
	if len(l.Choices) > 0 {
		return r.PostFormValue("lifetime") == "keep"
	}
	return r.PostFormValue("lifetime_n") == "" && r.PostFormValue("lifetime_none") == ""
}

// version is the token version the form was rendered at (its hidden
// field), for a conditional write; 0 when absent.
func (f *form) version(r *http.Request) int64 {
	v, err := strconv.ParseInt(r.PostFormValue("version"), 10, 64)
	if err != nil || v < 0 {
		return 0
	}
	return v
}

// read fills the form from the posted values and returns the Spec they
// describe (for an edit, the fields a Patch takes from it); false when a
// field is malformed, with its error set.
func (f *form) read(r *http.Request, p apitoken.Policy) (apitoken.Spec, bool) {
	var spec apitoken.Spec
	if err := r.ParseForm(); err != nil {
		f.Problem = "The form could not be read; reload the page and try again."
		return spec, false
	}
	spec.Lifetime = f.readLifetime(r)
	if f.Rotate {
		return spec, len(f.Errors) == 0
	}
	f.Name, f.Desc = strings.TrimSpace(r.PostFormValue("name")), r.PostFormValue("description")
	spec.Name, spec.Description = f.Name, f.Desc
	if spec.Name == "" {
		f.Errors["name"] = "Give the token a name."
	}
	picked := r.PostForm["role"]
	for i := range f.Roles {
		f.Roles[i].Checked = slices.Contains(picked, f.Roles[i].Name)
		if f.Roles[i].Checked {
			spec.Roles = append(spec.Roles, f.Roles[i].Name)
		}
	}
	spec.Grants = apitoken.Grants{}
	var all apitoken.Access
	if v := r.PostFormValue("access.*"); v != "" {
		if all.UnmarshalText([]byte(v)) != nil {
			f.Errors["grants"] = "Choose Full, Read or No access."
		}
		f.All = all.String()
	}
	if all != apitoken.AccessNone {
		spec.Grants[apitoken.AllAPIs] = all
	}
	for i := range f.APIs {
		a := &f.APIs[i]
		lvl := all
		if v := r.PostFormValue("access." + a.Name); v != "" && lvl.UnmarshalText([]byte(v)) != nil {
			f.Errors["grants"] = "Choose Full, Read or No access for " + a.Title + "."
		}
		a.Level = lvl.String()
		if lvl != all {
			spec.Grants[a.Name] = lvl
		}
	}
	if len(spec.Grants) == 0 {
		spec.Grants = nil
	}
	f.Resource = r.PostFormValue("resources")
	spec.Resources = resourceLines(f.Resource)
	if f.IP.Offered {
		spec.IPFilter = r.PostFormValue("ip_filter")
		for i := range f.IP.Choices {
			f.IP.Choices[i].Selected = f.IP.Choices[i].Value == spec.IPFilter
		}
	}
	return spec, len(f.Errors) == 0
}

// resourceLines reads the resources field: one resource ID a line, kept
// as written (spaces and commas are part of an ID), blank lines skipped.
// Only an empty line is skipped, not one of spaces: that is an ID, and
// dropping the only one would widen the token to every resource.
func resourceLines(s string) []string {
	var out []string
	for line := range strings.Lines(s) {
		line = strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r")
		if line != "" {
			out = append(out, line)
		}
	}
	return out
}

// maxLifetimeN bounds the number a person may type for a lifetime.
const maxLifetimeN = 1_000_000

func (f *form) readLifetime(r *http.Request) apitoken.Lifetime {
	l := &f.Lifetime
	if len(l.Choices) > 0 {
		v := r.PostFormValue("lifetime")
		var out apitoken.Lifetime
		found := false
		for i := range l.Choices {
			l.Choices[i].Selected = l.Choices[i].Value == v
			found = found || l.Choices[i].Selected
		}
		switch {
		case v == "keep" && l.Keep:
			return out
		case !found:
			f.Errors["lifetime"] = "Choose one of the expiry options."
		default:
			if err := out.UnmarshalText([]byte(v)); err != nil {
				f.Errors["lifetime"] = "Choose one of the expiry options."
			}
		}
		return out
	}
	l.N, l.Unit, l.NoExpiry = strings.TrimSpace(r.PostFormValue("lifetime_n")), r.PostFormValue("lifetime_unit"), r.PostFormValue("lifetime_none") != ""
	for i := range l.Units {
		l.Units[i].Selected = l.Units[i].Value == l.Unit
	}
	switch {
	case l.NoExpiry:
		return apitoken.NoExpiry
	case l.N == "":
		return apitoken.Lifetime{} // the policy default, or keep
	}
	n, err := strconv.Atoi(l.N)
	if err != nil || n < 1 || n > maxLifetimeN {
		f.Errors["lifetime"] = "Enter a whole number of " + l.Unit + ", 1 or more."
		return apitoken.Lifetime{}
	}
	switch l.Unit {
	case "minutes":
		return apitoken.Minutes(n)
	case "hours":
		return apitoken.Hours(n)
	case "days":
		return apitoken.Days(n)
	case "months":
		return apitoken.Months(n)
	}
	f.Errors["lifetime"] = "Choose minutes, hours, days or months."
	return apitoken.Lifetime{}
}

// blame puts a policy error of the Issuer next to the field it concerns
// (or at the top of the form) and reports whether err was one.
func (f *form) blame(err error) bool {
	var pe *apitoken.PolicyError
	if !errors.As(err, &pe) {
		return false
	}
	msg := sentence(pe.Detail)
	if msg == "" {
		msg = "The policy does not allow this (" + pe.Rule + ")."
	}
	switch field := adminapi.PolicyField(pe); {
	case field == "lifetime", !f.Rotate && slices.Contains([]string{"name", "description", "roles", "grants", "resources", "ip_filter"}, field):
		f.Errors[field] = msg
	default: // a field the form does not show (regenerate shows only the expiry)
		f.Problem = msg
	}
	return true
}

// sentence makes s start with a capital letter and end with a full stop.
func sentence(s string) string {
	s = strings.TrimSpace(s)
	if s == "" {
		return ""
	}
	r, n := utf8.DecodeRuneInString(s)
	s = string(unicode.ToUpper(r)) + s[n:]
	if !strings.HasSuffix(s, ".") {
		s += "."
	}
	return s
}
