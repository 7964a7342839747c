package sqlstore

import (
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/apitoken/apitoken"
)

// attrs is the JSON object in the attrs column: the parts of a token the
// store never queries by.
type attrs struct {
	Roles     []string          `json:"roles,omitempty"`
	Grants    apitoken.Grants   `json:"grants,omitempty"`
	Resources []string          `json:"resources,omitempty"`
	IPFilter  apitoken.IPFilter `json:"ip_filter,omitzero"`
	Metadata  map[string]string `json:"metadata,omitempty"`
	CreatedBy string            `json:"created_by,omitempty"`
}

// emptyAttrs is the attrs column of a token with none of them.
const emptyAttrs = "{}"

// timeArg returns the column value of an instant: NULL for the zero time;
// microseconds since the Unix epoch (SQLite) or a UTC time.Time truncated
// to the microsecond (PostgreSQL).
func (s *Store) timeArg(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return s.instant(t)
}

// instant is timeArg for NOT NULL columns: it stores the zero time too.
func (s *Store) instant(t time.Time) any {
	if s.dialect == SQLite {
		return t.UnixMicro()
	}
	return t.UTC().Truncate(time.Microsecond)
}

// before is instant for the right side of "column < t": t rounded up to
// the microsecond, so that for a stored (whole-microsecond) instant x,
// x < t exactly when x < before(t). Truncating instead would keep a token
// last active in t's microsecond but before t.
func (s *Store) before(t time.Time) any {
	if r := t.Truncate(time.Microsecond); r.Before(t) {
		t = r.Add(time.Microsecond)
	}
	return s.instant(t)
}

// hashArg returns the column value of a hash: NULL for the zero hash.
func hashArg(h apitoken.Hash) any {
	if h.IsZero() {
		return nil
	}
	return h[:]
}

// tokenArgs returns t's column values in the order of columns.
func (s *Store) tokenArgs(t *apitoken.Token) ([]any, error) {
	a := attrs{Roles: t.Roles, Grants: t.Grants, Resources: t.Resources, IPFilter: t.IPFilter, Metadata: t.Metadata,
		CreatedBy: t.CreatedBy}
	js := emptyAttrs
	if len(a.Roles) > 0 || len(a.Grants) > 0 || len(a.Resources) > 0 || !a.IPFilter.IsZero() || len(a.Metadata) > 0 ||
		a.CreatedBy != "" {
		b, err := json.Marshal(a)
		if err != nil {
			return nil, fmt.Errorf("token %s: encode attributes: %w", t.ID, err)
		}
		js = string(b)
	}
	var rate, burst any
	if t.RateLimit != nil {
		rate, burst = float64(t.RateLimit.Rate), int64(t.RateLimit.Burst)
	}
	var sealed any
	if t.Sealed != nil {
		sealed = t.Sealed
	}
	return []any{
		t.ID, int64(t.Kind), t.OwnerID, t.OrgID, t.Name, t.Description, t.Hint,
		t.Hash[:], hashArg(t.PrevHash), s.timeArg(t.PrevExpiresAt), sealed,
		s.instant(t.CreatedAt), s.instant(t.UpdatedAt), s.timeArg(t.ExpiresAt), s.timeArg(t.LastUsedAt), s.timeArg(t.RevokedAt),
		t.Version, rate, burst, js, s.timeArg(t.IssuedAt),
	}, nil
}

// timeDst scans an instant column: NULL is the zero time.
type timeDst struct{ p *time.Time }

func (d timeDst) Scan(src any) error {
	switch v := src.(type) {
	case nil:
		*d.p = time.Time{}
	case int64:
		*d.p = time.UnixMicro(v).UTC()
	case time.Time:
		*d.p = v.UTC()
	default:
		return fmt.Errorf("instant column holds %T", src)
	}
	return nil
}

// hashDst scans a hash column: NULL is the zero hash. Its error never holds
// the value.
type hashDst struct{ p *apitoken.Hash }

func (d hashDst) Scan(src any) error {
	switch v := src.(type) {
	case nil:
		*d.p = apitoken.Hash{}
	case []byte:
		if len(v) != len(d.p) {
			return fmt.Errorf("hash column holds %d bytes, want %d", len(v), len(d.p))
		}
		copy(d.p[:], v)
	default:
		return fmt.Errorf("hash column holds %T", src)
	}
	return nil
}

// scanner is *sql.Row or *sql.Rows.
type scanner interface{ Scan(dest ...any) error }

// scanToken reads one row of columns. A row that cannot be decoded is an
// error naming the token's ID (never its hashes).
func scanToken(sc scanner) (*apitoken.Token, error) {
	t := new(apitoken.Token)
	var (
		kind   int64
		rate   sql.NullFloat64
		burst  sql.NullInt64
		js     []byte
		sealed []byte
	)
	err := sc.Scan(&t.ID, &kind, &t.OwnerID, &t.OrgID, &t.Name, &t.Description, &t.Hint,
		hashDst{&t.Hash}, hashDst{&t.PrevHash}, timeDst{&t.PrevExpiresAt}, &sealed,
		timeDst{&t.CreatedAt}, timeDst{&t.UpdatedAt}, timeDst{&t.ExpiresAt}, timeDst{&t.LastUsedAt}, timeDst{&t.RevokedAt},
		&t.Version, &rate, &burst, &js, timeDst{&t.IssuedAt})
	if err != nil {
		if t.ID != "" && !errors.Is(err, sql.ErrNoRows) {
			return nil, fmt.Errorf("token %s: corrupt row: %w", t.ID, err)
		}
		return nil, err
	}
	t.Kind = apitoken.Kind(kind)
	if len(sealed) > 0 {
		t.Sealed = sealed
	}
	if rate.Valid || burst.Valid {
		t.RateLimit = &apitoken.Limit{Rate: apitoken.Rate(rate.Float64), Burst: int(burst.Int64)}
	}
	if string(js) != emptyAttrs {
		var a attrs
		if err := json.Unmarshal(js, &a); err != nil {
			return nil, fmt.Errorf("token %s: corrupt attributes (JSON): %w", t.ID, err)
		}
		t.Roles, t.Grants, t.Resources, t.IPFilter, t.Metadata = a.Roles, a.Grants, a.Resources, a.IPFilter, a.Metadata
		t.CreatedBy = a.CreatedBy
	}
	return t, nil
}
