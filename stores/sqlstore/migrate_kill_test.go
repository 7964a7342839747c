package sqlstore_test

import (
	"bufio"
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/apitoken/apitoken/stores/sqlstore"
	"github.com/apitoken/apitoken/stores/sqlstore/postgres"
	"github.com/apitoken/apitoken/stores/sqlstore/sqlite"
	"github.com/apitoken/apitoken/storetest"
)

// migrateChild is the test binary run as a migrating child process. mode
// is "<how> <n> <dialect> <schema or -> <path or DSN>", where how is
//
//   - "kill": migrate, and SIGKILL itself just before the database call
//     number n (0 first: BEGIN, each statement, COMMIT), so the migration
//     dies halfway; it exits 0 if the migration had fewer calls;
//   - "race": print "ready", wait for a line on stdin, then migrate (n
//     unused), so that several children start migrating together.
//
// It exits 2, with the error on stderr, if the migration fails.
func migrateChild(mode string) int {
	f := strings.SplitN(mode, " ", 5)
	if len(f) != 5 {
		fmt.Fprintf(os.Stderr, "migrate child: bad mode %q\n", mode)
		return 2
	}
	how, dialect, schema, target := f[0], f[2], f[3], f[4]
	n, _ := strconv.ParseInt(f[1], 10, 64)
	ctx := context.Background()
	err := func() error {
		db, d, err := openChildDB(ctx, dialect, target, how == "kill", n)
		if err != nil {
			return err
		}
		defer db.Close()
		var opts []sqlstore.Option
		if schema != "-" {
			opts = append(opts, sqlstore.WithSchema(schema))
		}
		s, err := sqlstore.New(db, d, opts...)
		if err != nil {
			return err
		}
		if how == "race" {
			os.Stdout.WriteString("ready\n")
			if _, err := bufio.NewReader(os.Stdin).ReadString('\n'); err != nil {
				return err
			}
		}
		return s.Migrate(ctx)
	}()
	if err != nil {
		fmt.Fprintln(os.Stderr, "migrate child:", err)
		return 2
	}
	return 0
}

// openChildDB opens the database of a migrate child: as sqlite.OpenDB or
// postgres.OpenDB would, but, if kill is set, through a driver that sends
// the process SIGKILL before its call number n.
func openChildDB(ctx context.Context, dialect, target string, kill bool, n int64) (*sql.DB, sqlstore.Dialect, error) {
	var db *sql.DB
	var d sqlstore.Dialect
	var dsn string
	var err error
	switch dialect {
	case "sqlite":
		// sqlite.OpenDB's settings, checked by it here and repeated below.
		d, dsn = sqlstore.SQLite, target+"?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)"+
			"&_pragma=synchronous(FULL)&_pragma=foreign_keys(1)&_txlock=immediate"
		db, err = sqlite.OpenDB(ctx, target)
	case "postgres":
		d, dsn = sqlstore.Postgres, target
		db, err = postgres.OpenDB(ctx, target)
	default:
		err = fmt.Errorf("unknown dialect %q", dialect)
	}
	if err != nil || !kill {
		return db, d, err
	}
	drv := db.Driver()
	db.Close()
	left := new(atomic.Int64)
	left.Store(n)
	return sql.OpenDB(killConnector{drv: drv, dsn: dsn, left: left}), d, nil
}

// killConnector opens connections that count down the calls left before
// the process kills itself.
type killConnector struct {
	drv  driver.Driver
	dsn  string
	left *atomic.Int64
}

func (c killConnector) Connect(context.Context) (driver.Conn, error) {
	cn, err := c.drv.Open(c.dsn)
	if err != nil {
		return nil, err
	}
	return &killConn{Conn: cn, left: c.left}, nil
}

func (c killConnector) Driver() driver.Driver { return c.drv }

// killConn passes every call to its driver connection, after step.
type killConn struct {
	driver.Conn
	left *atomic.Int64
}

// step kills the process with SIGKILL if no call is left.
func (c *killConn) step() {
	if c.left.Add(-1) < 0 {
		syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {} // the signal is on its way
	}
}

func (c *killConn) ExecContext(ctx context.Context, q string, args []driver.NamedValue) (driver.Result, error) {
	e, ok := c.Conn.(driver.ExecerContext)
	if !ok {
		return nil, driver.ErrSkip
	}
	c.step()
	return e.ExecContext(ctx, q, args)
}

func (c *killConn) QueryContext(ctx context.Context, q string, args []driver.NamedValue) (driver.Rows, error) {
	e, ok := c.Conn.(driver.QueryerContext)
	if !ok {
		return nil, driver.ErrSkip
	}
	c.step()
	return e.QueryContext(ctx, q, args)
}

func (c *killConn) PrepareContext(ctx context.Context, q string) (driver.Stmt, error) {
	if p, ok := c.Conn.(driver.ConnPrepareContext); ok {
		return p.PrepareContext(ctx, q)
	}
	return c.Conn.Prepare(q)
}

func (c *killConn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	c.step()
	b, ok := c.Conn.(driver.ConnBeginTx)
	if !ok {
		return nil, fmt.Errorf("driver %T has no BeginTx", c.Conn)
	}
	tx, err := b.BeginTx(ctx, opts)
	if err != nil {
		return nil, err
	}
	return killTx{tx, c}, nil
}

func (c *killConn) CheckNamedValue(nv *driver.NamedValue) error {
	if ch, ok := c.Conn.(driver.NamedValueChecker); ok {
		return ch.CheckNamedValue(nv)
	}
	return driver.ErrSkip
}

type killTx struct {
	driver.Tx
	c *killConn
}

func (tx killTx) Commit() error {
	tx.c.step()
	return tx.Tx.Commit()
}

// startMigrateChild starts a migrate child with mode.
func startMigrateChild(t *testing.T, mode string) (*exec.Cmd, io.WriteCloser, *bufio.Scanner) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"=migrate "+mode)
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	in, err := cmd.StdinPipe()
	require.NoError(t, err)
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start(), "start migrate child")
	return cmd, in, bufio.NewScanner(out)
}

// killed reports whether cmd ended by SIGKILL.
func killed(cmd *exec.Cmd) bool {
	ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus)
	return ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL
}

// schemaDump describes the schema of a store's tables in a form that
// differs only if the schemas differ: on SQLite the rows of sqlite_master
// (type, name, table, SQL); on PostgreSQL the columns of
// information_schema.columns, the indexes of pg_indexes and the constraints
// of pg_constraint of schema ns, with ns written as "S". The rows of the
// migrations table (version and name) come last.
func schemaDump(t *testing.T, db *sql.DB, d sqlstore.Dialect, ns string) []string {
	t.Helper()
	var queries []string
	migrations := `"` + sqlstore.DefaultTablePrefix + `migrations"`
	if d == sqlstore.SQLite {
		queries = []string{"SELECT type, name, tbl_name, coalesce(sql, '') FROM sqlite_master ORDER BY type, name"}
	} else {
		queries = []string{
			"SELECT table_name, column_name, ordinal_position::text, data_type, is_nullable, coalesce(column_default, ''), coalesce(collation_name, '') " +
				"FROM information_schema.columns WHERE table_schema = '" + ns + "' ORDER BY table_name, ordinal_position",
			"SELECT tablename, indexname, indexdef FROM pg_indexes WHERE schemaname = '" + ns + "' ORDER BY indexname",
			"SELECT c.conrelid::regclass::text, c.conname, c.contype::text, pg_get_constraintdef(c.oid) FROM pg_constraint c " +
				"JOIN pg_namespace n ON n.oid = c.connamespace WHERE n.nspname = '" + ns + "' ORDER BY 1, 2",
		}
		migrations = `"` + ns + `".` + migrations
	}
	queries = append(queries, "SELECT version, name FROM "+migrations+" ORDER BY version")
	var dump []string
	for _, q := range queries {
		rows, err := db.QueryContext(t.Context(), q)
		require.NoError(t, err, "schema dump: %s", q)
		cols, err := rows.Columns()
		require.NoError(t, err)
		for rows.Next() {
			vals := make([]string, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			require.NoError(t, rows.Scan(ptrs...))
			line := strings.Join(vals, " | ")
			if d == sqlstore.Postgres {
				line = strings.ReplaceAll(line, ns, "S")
			}
			dump = append(dump, line)
		}
		require.NoError(t, rows.Err())
		rows.Close()
	}
	return dump
}

// migrateTarget is where one migration of TestMigrateKilled or
// TestMigrateProcesses runs: a fresh SQLite file or PostgreSQL schema.
type migrateTarget struct {
	db     *sql.DB
	ns     string // the PostgreSQL schema ("public" when none is set)
	schema string // the schema argument of a child ("-": none)
	target string // the SQLite path or the PostgreSQL DSN
}

func (m migrateTarget) store(t *testing.T, d sqlstore.Dialect) *sqlstore.Store {
	t.Helper()
	var opts []sqlstore.Option
	if m.schema != "-" {
		opts = append(opts, sqlstore.WithSchema(m.schema))
	}
	s, err := sqlstore.New(m.db, d, opts...)
	require.NoError(t, err)
	t.Cleanup(func() { s.Close(context.Background()) })
	return s
}

// newTarget returns a fresh place to migrate: on SQLite a new file, on
// PostgreSQL a new schema on pg (with its DSN), or, if fresh is set, a new
// database used without a schema option.
func newTarget(t *testing.T, d sqlstore.Dialect, pg *sql.DB, pgDSN string, fresh bool) migrateTarget {
	t.Helper()
	if d == sqlstore.SQLite {
		path := filepath.Join(t.TempDir(), "migrate.db")
		db, err := sqlite.OpenDB(t.Context(), path)
		require.NoError(t, err)
		t.Cleanup(func() { db.Close() })
		return migrateTarget{db: db, schema: "-", target: path}
	}
	if fresh {
		db, dsn := openPostgres(t)
		return migrateTarget{db: db, ns: "public", schema: "-", target: dsn}
	}
	ns := storetest.Namespace(t)
	return migrateTarget{db: pg, ns: ns, schema: ns, target: pgDSN}
}

// TestMigrateKilled kills a migrating child process with SIGKILL before
// each of its database calls in turn (BEGIN, every statement, COMMIT),
// once from an empty database and once from schema version 1, then
// migrates again and checks that the schema dump (sqlite_master on SQLite;
// columns, indexes and constraints on PostgreSQL; the migrations table's
// rows) equals that of a clean migration, and that SQLite's integrity check
// passes.
func TestMigrateKilled(t *testing.T) {
	for _, d := range []sqlstore.Dialect{sqlstore.SQLite, sqlstore.Postgres} {
		t.Run(d.String(), func(t *testing.T) {
			var pg *sql.DB
			var pgDSN string
			if d == sqlstore.Postgres {
				pg, pgDSN = openPostgres(t)
			}
			clean := newTarget(t, d, pg, pgDSN, false)
			require.NoError(t, clean.store(t, d).Migrate(t.Context()))
			want := schemaDump(t, clean.db, d, clean.ns)
			require.NotEmpty(t, want)

			for _, from := range []int{0, 1} {
				t.Run(fmt.Sprintf("FromVersion%d", from), func(t *testing.T) {
					kills := 0
					for n := 0; ; n++ {
						m := newTarget(t, d, pg, pgDSN, false)
						if from > 0 {
							require.NoError(t, sqlstore.MigrateTo(t.Context(), m.store(t, d), from))
						}
						cmd, in, _ := startMigrateChild(t, fmt.Sprintf("kill %d %s %s %s", n, d, m.schema, m.target))
						in.Close()
						err := cmd.Wait()
						if !killed(cmd) {
							require.NoError(t, err, "migrate child with no kill point left")
							t.Logf("migration from version %d killed before each of its %d database calls, then re-run: same schema each time", from, kills)
							break
						}
						kills++
						if d == sqlstore.SQLite {
							var check string
							require.NoError(t, m.db.QueryRowContext(t.Context(), "PRAGMA integrity_check").Scan(&check))
							require.Equal(t, "ok", check, "PRAGMA integrity_check after a migration killed before call %d", n)
						}
						s := m.store(t, d)
						v, err := s.Version(t.Context())
						require.NoError(t, err)
						assert.Equal(t, from, v, "schema version after a migration from %d killed before call %d (one transaction: nothing or everything)", from, n)
						require.NoError(t, s.Migrate(t.Context()), "Migrate after a migration killed before call %d", n)
						assert.Equal(t, want, schemaDump(t, m.db, d, m.ns), "schema after a migration killed before call %d and re-run, vs a clean migration", n)
						require.NoError(t, s.CheckSchema(t.Context()))
					}
					assert.Greater(t, kills, 5, "kill points of one migration")
				})
			}
		})
	}
}

// TestMigrateProcesses starts four child processes that migrate one fresh
// database at once (released together once all four are connected) and
// checks that all four succeed and leave the schema of a clean migration.
func TestMigrateProcesses(t *testing.T) {
	const procs = 4
	for _, d := range []sqlstore.Dialect{sqlstore.SQLite, sqlstore.Postgres} {
		t.Run(d.String(), func(t *testing.T) {
			clean := newTarget(t, d, nil, "", true)
			require.NoError(t, clean.store(t, d).Migrate(t.Context()))
			want := schemaDump(t, clean.db, d, clean.ns)

			for round := range 3 {
				m := newTarget(t, d, nil, "", true)
				cmds := make([]*exec.Cmd, procs)
				ins := make([]io.WriteCloser, procs)
				for i := range procs {
					var out *bufio.Scanner
					cmds[i], ins[i], out = startMigrateChild(t, fmt.Sprintf("race 0 %s %s %s", d, m.schema, m.target))
					require.True(t, out.Scan(), "migrate child %d did not get ready", i)
					require.Equal(t, "ready", out.Text())
				}
				for _, in := range ins {
					io.WriteString(in, "go\n")
					in.Close()
				}
				for i, cmd := range cmds {
					assert.NoError(t, cmd.Wait(), "round %d: Migrate in process %d of %d migrating at once", round, i+1, procs)
				}
				s := m.store(t, d)
				require.NoError(t, s.CheckSchema(t.Context()))
				assert.Equal(t, want, schemaDump(t, m.db, d, m.ns), "round %d: schema after %d processes migrated at once, vs one clean migration", round, procs)
			}
		})
	}
}
