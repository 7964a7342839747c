package redisstore_test

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/apitoken/apitoken"
	"github.com/apitoken/apitoken/internal/testservers"
	"github.com/apitoken/apitoken/stores/redisstore"
	"github.com/apitoken/apitoken/storetest"
)

// TestDurableRevokeWaits drives the waiting code of WithDurableRevoke
// through every answer WAITAOF can give, whatever the version of the
// redis-server under test (Debian bookworm's 7.0 has no WAITAOF; the
// real command is tested by TestDurableRevoke where the server has it).
//
// A waitProxy sits between the Store's client and a real redis-server with
// its append-only file on. Every command reaches the real server, in
// order, on one connection per client connection; the proxy only rewrites
// WAITAOF into a script that returns the acknowledgements the test chose
// (or an error), and COMMAND INFO WAITAOF into COMMAND INFO WAIT so that
// New accepts the server.
//
// What it proves: Revoke, RevokeAll and Delete send WAITAOF 1 <replicas>
// <timeout ms> right after their script, on the same connection; they
// succeed when the reply confirms the local append-only file and enough
// replicas; otherwise they fail with an error matching
// redisstore.ErrNotDurable, after the change took effect. What it does not
// prove: that a real WAITAOF blocks until the fsync, answers in this
// shape, or accepts being pipelined after EVALSHA (TestDurableRevoke
// checks that on a server that has WAITAOF, such as Redis 7.2+ or Valkey),
// nor the routing to the primary of the namespace's slot on a Cluster.
func TestDurableRevokeWaits(t *testing.T) {
	t.Parallel()
	srv := testservers.StartRedis(t)
	direct := singleClient(t, srv)
	ctx := t.Context()
	// A real append-only file: New checks for it, and WAITAOF needs it.
	if err := direct.ConfigSet(ctx, "appendonly", "yes").Err(); err != nil {
		t.Fatal(err)
	}
	proxy := newWaitProxy(t, srv.Addr)
	client := redis.NewClient(&redis.Options{Addr: proxy.addr, Protocol: 2})
	t.Cleanup(func() { client.Close() })

	const replicas = 2
	timeout := 1500 * time.Millisecond
	ns := redisstore.WithKeyPrefix(storetest.Namespace(t))
	s := newStore(t, client, ns, redisstore.WithDurableRevoke(replicas, timeout))
	server := newStore(t, direct, ns) // reads the real server, past the proxy
	pol := apitoken.Policy{Prefix: prefix}
	v := newValidator(t, s, pol)
	now := time.Now()
	wantWait := []string{"WAITAOF", "1", strconv.Itoa(replicas), strconv.FormatInt(timeout.Milliseconds(), 10)}

	for _, tc := range []struct {
		name  string
		reply string // the Lua expression the rewritten WAITAOF returns
		want  error  // nil: confirmed
	}{
		{"local file and enough replicas", "{1, 2}", nil},
		{"more replicas than asked for", "{1, 3}", nil},
		{"too few replicas", "{1, 1}", redisstore.ErrNotDurable},
		{"local file not confirmed", "{0, 2}", redisstore.ErrNotDurable},
		{"an error instead of a count", "redis.error_reply('ERR WAITAOF cannot be used when numlocal is set but appendonly is disabled.')", redisstore.ErrNotDurable},
		{"a reply of the wrong shape", "{1}", redisstore.ErrNotDurable},
	} {
		proxy.answer(tc.reply)
		secret, tok := issue(t, s, pol, apitoken.Spec{})
		check := func(op string, err error) {
			t.Helper()
			if (tc.want == nil) != (err == nil) || !errors.Is(err, tc.want) {
				t.Errorf("%s: %s error = %v, want %v", tc.name, op, err, tc.want)
			}
			if err != nil && strings.Contains(err.Error(), secret) {
				t.Errorf("%s: %s error holds the token", tc.name, op)
			}
			if got := proxy.lastWait(); !slicesEqual(got, wantWait) {
				t.Errorf("%s: %s sent %q after its script, want %q", tc.name, op, got, wantWait)
			}
		}

		check("Revoke", s.Revoke(ctx, tok.ID, now))
		// Confirmed or not, the revocation is in effect on the server.
		if got, err := server.Get(ctx, tok.ID); err != nil || !got.Revoked() {
			t.Errorf("%s: after Revoke, Get = %+v, %v; want the token revoked", tc.name, got, err)
		}
		if _, err := v.Validate(ctx, secret, req); !errors.Is(err, apitoken.ErrRevoked) {
			t.Errorf("%s: Validate after Revoke error = %v, want ErrRevoked", tc.name, err)
		}

		_, other := issue(t, s, pol, apitoken.Spec{Kind: apitoken.KindUser, OwnerID: "user_" + strconv.Itoa(len(tc.name))})
		_, err := s.RevokeAll(ctx, other.Owner(), now)
		check("RevokeAll", err)
		if got, err := server.Get(ctx, other.ID); err != nil || !got.Revoked() {
			t.Errorf("%s: after RevokeAll, Get = %+v, %v; want the token revoked", tc.name, got, err)
		}

		check("Delete", s.Delete(ctx, tok.ID))
		if _, err := server.Get(ctx, tok.ID); !errors.Is(err, apitoken.ErrNotFound) {
			t.Errorf("%s: after Delete, Get error = %v, want ErrNotFound", tc.name, err)
		}
	}
}

func slicesEqual(a, b []string) bool {
	return len(a) == len(b) && strings.Join(a, "\x00") == strings.Join(b, "\x00")
}

// waitProxy is a loopback TCP proxy in front of a real redis-server that
// rewrites WAITAOF (see TestDurableRevokeWaits). It speaks RESP2: clients
// send arrays of bulk strings, which is all go-redis sends.
type waitProxy struct {
	addr string

	mu    sync.Mutex
	reply string   // Lua expression WAITAOF is rewritten to return
	wait  []string // the last WAITAOF seen, if it followed an EVALSHA or EVAL
}

func newWaitProxy(t *testing.T, upstream string) *waitProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &waitProxy{addr: ln.Addr().String()}
	var wg sync.WaitGroup
	t.Cleanup(func() {
		ln.Close()
		wg.Wait()
	})
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return // closed
			}
			wg.Go(func() { p.serve(t, c, upstream) })
		}
	})
	return p
}

// answer sets what the next WAITAOF commands return.
func (p *waitProxy) answer(luaExpr string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.reply, p.wait = luaExpr, nil
}

// lastWait returns the last WAITAOF's arguments, or nil if none followed a
// script since the last answer.
func (p *waitProxy) lastWait() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	w := p.wait
	p.wait = nil
	return w
}

// serve relays one client connection to its own upstream connection,
// rewriting commands on the way up; replies come back unchanged and in
// order.
func (p *waitProxy) serve(t *testing.T, c net.Conn, upstream string) {
	defer c.Close()
	up, err := net.Dial("tcp", upstream)
	if err != nil {
		t.Errorf("proxy: %v", err)
		return
	}
	defer up.Close()
	go func() {
		io.Copy(c, up)
		c.Close()
	}()
	r := bufio.NewReader(c)
	prev := ""
	for {
		args, err := readCommand(r)
		if err != nil {
			return // the client closed, or sent what go-redis never sends
		}
		name := strings.ToUpper(args[0])
		switch {
		case name == "WAITAOF":
			p.mu.Lock()
			if prev == "EVALSHA" || prev == "EVAL" {
				p.wait = append([]string{name}, args[1:]...)
			}
			args = []string{"EVAL", "return " + p.reply, "0"}
			p.mu.Unlock()
		case name == "COMMAND" && len(args) == 3 && strings.EqualFold(args[1], "INFO") && strings.EqualFold(args[2], "WAITAOF"):
			args[2] = "WAIT"
		}
		prev = name
		if _, err := up.Write(encodeCommand(args)); err != nil {
			return
		}
	}
}

// readCommand reads one RESP array of bulk strings.
func readCommand(r *bufio.Reader) ([]string, error) {
	n, err := readLen(r, '*')
	if err != nil || n < 1 {
		return nil, cmpErr(err, "empty command")
	}
	args := make([]string, n)
	for i := range args {
		l, err := readLen(r, '$')
		if err != nil || l < 0 {
			return nil, cmpErr(err, "null bulk string")
		}
		b := make([]byte, l+2)
		if _, err := io.ReadFull(r, b); err != nil {
			return nil, err
		}
		args[i] = string(b[:l])
	}
	return args, nil
}

func readLen(r *bufio.Reader, kind byte) (int, error) {
	line, err := r.ReadString('\n')
	if err != nil {
		return 0, err
	}
	if len(line) < 4 || line[0] != kind || !strings.HasSuffix(line, "\r\n") {
		return 0, fmt.Errorf("unexpected RESP line %q", line)
	}
	return strconv.Atoi(line[1 : len(line)-2])
}

func cmpErr(err error, msg string) error {
	if err != nil {
		return err
	}
	return errors.New(msg)
}

func encodeCommand(args []string) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	return []byte(b.String())
}
