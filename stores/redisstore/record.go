package redisstore

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/apitoken/apitoken"
)

// Record fields, in the order of F in the scripts.
const (
	fID = iota
	fKind
	fOwner
	fOrg
	fCreated
	fUpdated
	fExpires
	fUsed
	fRevoked
	fVersion
	fPrev
	fPrevExpires
	fLimit
	fJSON
	fIssued // IssuedAt; missing in a record written before it existed
	nFields
)

// body is the part of a record no script reads, stored as JSON in field j.
type body struct {
	Name        string            `json:"n,omitempty"`
	Description string            `json:"d,omitempty"`
	Roles       []string          `json:"r,omitempty"`
	Grants      apitoken.Grants   `json:"g,omitempty"`
	Resources   []string          `json:"s,omitempty"`
	IPFilter    apitoken.IPFilter `json:"f,omitzero"`
	Metadata    map[string]string `json:"m,omitempty"`
	Hint        string            `json:"h,omitempty"`
	Sealed      []byte            `json:"x,omitempty"`
	CreatedBy   string            `json:"cb,omitempty"`
}

// maxMicros bounds the instants a record can hold: Lua compares them as
// doubles, exact up to 2^53 (about the years 1685 to 2255).
const maxMicros = 1 << 53

// micros encodes an instant as Unix microseconds ("" for the zero time).
func micros(field string, t time.Time) (string, error) {
	if t.IsZero() {
		return "", nil
	}
	us := t.UnixMicro()
	if us >= maxMicros || us <= -maxMicros {
		return "", fmt.Errorf("%s %s is out of the range a Redis record holds", field, t.UTC().Format(time.RFC3339))
	}
	return strconv.FormatInt(us, 10), nil
}

// ceilMicros returns t in Unix microseconds rounded up, so that for a
// stored (whole-microsecond) instant s, s < t exactly when s < ceilMicros(t).
func ceilMicros(t time.Time) string {
	us := t.UnixMicro()
	if t.Sub(time.UnixMicro(us)) > 0 {
		us++
	}
	return strconv.FormatInt(us, 10)
}

func parseMicros(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	us, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return time.Time{}, errors.New("bad instant")
	}
	return time.UnixMicro(us).UTC(), nil
}

func kindString(k apitoken.Kind) string { return strconv.Itoa(int(k)) }

// formatLimit encodes a rate-limit override: "" for nil, else "rate burst".
func formatLimit(l *apitoken.Limit) string {
	if l == nil {
		return ""
	}
	return strconv.FormatFloat(float64(l.Rate), 'g', -1, 64) + " " + strconv.Itoa(l.Burst)
}

func parseLimit(s string) (*apitoken.Limit, error) {
	if s == "" {
		return nil, nil
	}
	r, b, ok := strings.Cut(s, " ")
	if !ok {
		return nil, errors.New("bad rate limit")
	}
	rate, err1 := strconv.ParseFloat(r, 64)
	burst, err2 := strconv.Atoi(b)
	if err1 != nil || err2 != nil {
		return nil, errors.New("bad rate limit")
	}
	return &apitoken.Limit{Rate: apitoken.Rate(rate), Burst: burst}, nil
}

// encode returns t's record fields in script order, with the version given.
func encode(t *apitoken.Token, version int64) ([]any, error) {
	b, err := json.Marshal(body{
		Name: t.Name, Description: t.Description, Roles: t.Roles, Grants: t.Grants,
		Resources: t.Resources, IPFilter: t.IPFilter, Metadata: t.Metadata, Hint: t.Hint, Sealed: t.Sealed,
		CreatedBy: t.CreatedBy,
	})
	if err != nil {
		return nil, err
	}
	f := make([]any, nFields)
	f[fID] = t.ID
	f[fKind] = kindString(t.Kind)
	f[fOwner] = t.OwnerID
	f[fOrg] = t.OrgID
	for _, x := range []struct {
		i    int
		name string
		t    time.Time
	}{
		{fCreated, "CreatedAt", t.CreatedAt}, {fUpdated, "UpdatedAt", t.UpdatedAt},
		{fExpires, "ExpiresAt", t.ExpiresAt}, {fUsed, "LastUsedAt", t.LastUsedAt},
		{fRevoked, "RevokedAt", t.RevokedAt}, {fPrevExpires, "PrevExpiresAt", t.PrevExpiresAt},
		{fIssued, "IssuedAt", t.IssuedAt},
	} {
		if f[x.i], err = micros(x.name, x.t); err != nil {
			return nil, err
		}
	}
	f[fVersion] = strconv.FormatInt(version, 10)
	f[fPrev] = ""
	if !t.PrevHash.IsZero() {
		f[fPrev] = hex.EncodeToString(t.PrevHash[:])
	}
	if l := t.RateLimit; l != nil && (math.IsNaN(float64(l.Rate)) || math.IsInf(float64(l.Rate), 0)) {
		return nil, errors.New("RateLimit.Rate is not a finite number")
	}
	f[fLimit] = formatLimit(t.RateLimit)
	f[fJSON] = string(b)
	return f, nil
}

// decode builds a token from the fields of a record (at least nFields,
// in script order) at hash h, or when via is not "", at the hash via names
// in hex. It returns the record's hash and an error saying what is corrupt.
func decode(via string, fields []any, h apitoken.Hash) (*apitoken.Token, apitoken.Hash, error) {
	if len(fields) < nFields {
		return nil, h, errors.New("short reply")
	}
	var f [nFields]string
	for i := range f {
		s, ok := fields[i].(string)
		if !ok && i == fIssued && fields[i] == nil {
			continue // a record from before IssuedAt: zero
		}
		if !ok {
			return nil, h, fmt.Errorf("corrupt record: missing field %v", recordFields[i])
		}
		f[i] = s
	}
	if via != "" {
		if err := decodeHash(&h, via); err != nil {
			return nil, h, err
		}
	}
	t := &apitoken.Token{ID: f[fID], OwnerID: f[fOwner], OrgID: f[fOrg], Hash: h}
	k, err := strconv.ParseUint(f[fKind], 10, 8)
	if err != nil {
		return nil, h, errors.New("corrupt record: kind")
	}
	t.Kind = apitoken.Kind(k)
	for _, x := range []struct {
		dst *time.Time
		s   string
	}{
		{&t.CreatedAt, f[fCreated]}, {&t.UpdatedAt, f[fUpdated]}, {&t.ExpiresAt, f[fExpires]},
		{&t.LastUsedAt, f[fUsed]}, {&t.RevokedAt, f[fRevoked]}, {&t.PrevExpiresAt, f[fPrevExpires]},
		{&t.IssuedAt, f[fIssued]},
	} {
		if *x.dst, err = parseMicros(x.s); err != nil {
			return nil, h, errors.New("corrupt record: instant")
		}
	}
	if t.Version, err = strconv.ParseInt(f[fVersion], 10, 64); err != nil {
		return nil, h, errors.New("corrupt record: version")
	}
	if f[fPrev] != "" {
		if err := decodeHash(&t.PrevHash, f[fPrev]); err != nil {
			return nil, h, err
		}
	}
	if t.RateLimit, err = parseLimit(f[fLimit]); err != nil {
		return nil, h, errors.New("corrupt record: rate limit")
	}
	var b body
	if err := json.Unmarshal([]byte(f[fJSON]), &b); err != nil {
		return nil, h, errors.New("corrupt record: body")
	}
	t.Name, t.Description, t.Roles, t.Grants, t.Resources = b.Name, b.Description, b.Roles, b.Grants, b.Resources
	t.IPFilter, t.Metadata, t.Hint, t.Sealed, t.CreatedBy = b.IPFilter, b.Metadata, b.Hint, b.Sealed, b.CreatedBy
	return t, h, nil
}

func decodeHash(dst *apitoken.Hash, s string) error {
	if len(s) != hashHexLen {
		return errors.New("corrupt record: hash")
	}
	if _, err := hex.Decode(dst[:], []byte(s)); err != nil {
		return errors.New("corrupt record: hash")
	}
	return nil
}
