package main

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"regexp"
	"strings"

	"github.com/apitoken/apitoken"
	"github.com/apitoken/apitoken/stores/redisstore"
	"github.com/apitoken/apitoken/stores/sqlstore"
	"github.com/apitoken/apitoken/stores/sqlstore/postgres"
	"github.com/apitoken/apitoken/stores/sqlstore/sqlite"
	"github.com/redis/go-redis/v9"
)

// storeHelp documents the store URLs, for the root command's help.
const storeHelp = `Store URLs (--store, or APITOKEN_STORE):
  sqlite:PATH                  a SQLite file (sqlite:tokens.db, sqlite:///var/lib/app/tokens.db)
  postgres://USER:PASS@HOST:PORT/DB?sslmode=…   PostgreSQL (postgresql:// too)
  SQL URLs take ?table_prefix=P and PostgreSQL ones ?schema=S, as the servers'
  sqlstore.WithTablePrefix and sqlstore.WithSchema set them (defaults: prefix
  "apitoken_", no schema: the connection's search_path decides).
  redis://[USER:PASS@]HOST:PORT/DB   one Redis server (rediss:// for TLS)
  redis+cluster://HOST:PORT,HOST:PORT,…   a Redis Cluster (rediss+cluster:// for TLS)
  Redis URLs take ?prefix=NS for the key namespace (default "apitoken") and
  go-redis's own options (dial_timeout=3s, …).
  A URL with a password is better given in APITOKEN_STORE: other users of the
  machine can read command lines.`

// openedStore is a store and what closes it.
type openedStore struct {
	apitoken.Store
	sql       *sqlstore.Store // nil unless SQL
	namespace string          // the Redis key prefix; empty unless Redis
	close     func(ctx context.Context) error
	held      apitoken.PolicyID // the policy identity the store holds, once checked
}

// errNoStore is a usage error: no --store and no APITOKEN_STORE.
var errNoStore = errors.New("no store: give --store URL or set APITOKEN_STORE (see apitoken --help)")

// openStore opens the store rawURL names. With migrate unset, a SQL store
// must already hold the current schema: a missing SQLite file is not
// created, and fails as not migrated.
func openStore(ctx context.Context, rawURL string, pol apitoken.Policy, migrate bool) (*openedStore, error) {
	scheme, rest, ok := strings.Cut(rawURL, ":")
	if !ok || rawURL == "" {
		return nil, usagef("store URL: want sqlite:PATH, postgres://…, redis://… or redis+cluster://… (see apitoken --help)")
	}
	switch scheme {
	case "sqlite":
		path, query, _ := strings.Cut(strings.TrimPrefix(rest, "//"), "?")
		sqlOpts, err := sqlOptions(query, false)
		if err != nil {
			return nil, err
		}
		if path == "" {
			return nil, usagef("store URL: sqlite: needs a file path, e.g. sqlite:tokens.db")
		}
		if !migrate {
			if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
				return nil, storeErr(fmt.Errorf("sqlite %s: no such file: %w", path, sqlstore.ErrNotMigrated))
			}
		}
		opts := []sqlite.Option{sqlite.WithStoreOptions(sqlOpts...)}
		if migrate {
			opts = append(opts, sqlite.WithMigrate())
		}
		s, err := sqlite.Open(ctx, path, opts...)
		if err != nil {
			return nil, storeErr(err)
		}
		return &openedStore{Store: s, sql: s, close: s.Close}, nil
	case "postgres", "postgresql":
		u, err := url.Parse(rawURL)
		if err != nil {
			return nil, usagef("store URL: not a valid %s URL", scheme)
		}
		sqlOpts, err := sqlOptions(u.RawQuery, true)
		if err != nil {
			return nil, err
		}
		q := u.Query()
		q.Del("schema")
		q.Del("table_prefix")
		u.RawQuery = q.Encode()
		db, err := postgres.OpenDB(ctx, u.String())
		if err != nil {
			return nil, storeErr(err)
		}
		s, err := sqlstore.New(db, sqlstore.Postgres, append(sqlOpts, sqlstore.WithCloseDB())...)
		if err != nil {
			db.Close()
			return nil, err
		}
		if migrate {
			err = s.Migrate(ctx)
		} else {
			err = s.CheckSchema(ctx)
		}
		if err != nil {
			s.Close(ctx)
			return nil, storeErr(err)
		}
		return &openedStore{Store: s, sql: s, close: s.Close}, nil
	case "redis", "rediss", "redis+cluster", "rediss+cluster":
		// go-redis logs dial failures on stderr by itself; the error we
		// print says the same in one line.
		redis.SetLogger(quietLogger{})
		client, ns, err := redisClient(scheme, rawURL)
		if err != nil {
			return nil, err
		}
		retention := pol.ExpiredRetention
		if retention == 0 {
			retention = apitoken.DefaultRetention
		}
		s, err := redisstore.New(ctx, client, redisstore.WithKeyPrefix(ns), redisstore.WithRetention(retention))
		if err != nil {
			client.Close()
			return nil, storeErr(err)
		}
		return &openedStore{Store: s, namespace: ns, close: func(ctx context.Context) error {
			s.Close(ctx)
			return client.Close()
		}}, nil
	}
	return nil, usagef("store URL: unknown scheme %q: want sqlite, postgres, redis, rediss, redis+cluster or rediss+cluster", scheme)
}

var sqlName = regexp.MustCompile(`^[a-z_][a-z0-9_]*$`)

// sqlOptions returns the sqlstore options of a SQL URL's query:
// table_prefix, and schema where schema is set (PostgreSQL).
func sqlOptions(query string, schema bool) ([]sqlstore.Option, error) {
	q, err := url.ParseQuery(query)
	if err != nil {
		return nil, usagef("store URL: bad query")
	}
	var opts []sqlstore.Option
	if q.Has("table_prefix") {
		// The rules of sqlstore.WithTablePrefix and WithSchema, checked here
		// so that a typo is a usage error, not a store failure.
		if p := q.Get("table_prefix"); p != "" && !sqlName.MatchString(p) || len(p) > 32 {
			return nil, usagef("store URL: table_prefix %q: want up to 32 of [a-z0-9_], starting with a letter or '_'", p)
		}
		opts = append(opts, sqlstore.WithTablePrefix(q.Get("table_prefix")))
	}
	if q.Has("schema") && schema {
		if s := q.Get("schema"); !sqlName.MatchString(s) || len(s) > 63 {
			return nil, usagef("store URL: schema %q: want 1 to 63 of [a-z0-9_], starting with a letter or '_'", s)
		}
		opts = append(opts, sqlstore.WithSchema(q.Get("schema")))
	}
	for k := range q {
		if !schema && k != "table_prefix" {
			return nil, usagef("store URL: unknown parameter %q (sqlite: takes table_prefix)", k)
		}
	}
	return opts, nil
}

// redisClient builds the client of a redis URL and returns the key
// namespace its prefix parameter names. Errors never repeat the URL, which
// may hold a password.
func redisClient(scheme, rawURL string) (redis.UniversalClient, string, error) {
	cluster := strings.HasSuffix(scheme, "+cluster")
	var hosts []string
	if cluster {
		// A host list is no valid URL host: take it out before parsing.
		rest := strings.TrimPrefix(rawURL, scheme+"://")
		end := strings.IndexAny(rest, "/?")
		if end < 0 {
			end = len(rest)
		}
		auth, tail := rest[:end], rest[end:]
		user, list, ok := strings.Cut(auth, "@")
		if !ok {
			user, list = "", auth
		} else {
			user += "@"
		}
		hosts = strings.Split(list, ",")
		rawURL = scheme + "://" + user + hosts[0] + tail
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, "", usagef("store URL: not a valid %s URL", scheme)
	}
	q := u.Query()
	ns := q.Get("prefix")
	if ns == "" {
		ns = redisstore.DefaultKeyPrefix
	}
	q.Del("prefix")
	u.Scheme = strings.TrimSuffix(scheme, "+cluster")
	if !cluster {
		u.RawQuery = q.Encode()
		opts, err := redis.ParseURL(u.String())
		if err != nil {
			return nil, "", usagef("store URL: %s", strings.TrimPrefix(err.Error(), "redis: "))
		}
		return redis.NewClient(opts), ns, nil
	}
	for _, h := range hosts[1:] {
		q.Add("addr", h)
	}
	u.Path = ""
	u.RawQuery = q.Encode()
	opts, err := redis.ParseClusterURL(u.String())
	if err != nil {
		return nil, "", usagef("store URL: %s", strings.TrimPrefix(err.Error(), "redis: "))
	}
	return redis.NewClusterClient(opts), ns, nil
}

// quietLogger drops go-redis's own log lines.
type quietLogger struct{}

func (quietLogger) Printf(context.Context, string, ...any) {}
