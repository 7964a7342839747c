package redisstore

// Internal test of the cluster-slot algorithm (CRC16) and of the claim the
// whole design rests on: every key every script touches hashes to the slot
// of the namespace's tag, so no script can fail with CROSSSLOT.

import (
	"bufio"
	"fmt"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/apitoken/apitoken"
	"github.com/apitoken/apitoken/internal/testservers"
)

// crc16 is CRC-16/XMODEM (polynomial 0x1021, initial value 0), the
// checksum of Redis Cluster key slots.
func crc16(s string) uint16 {
	var crc uint16
	for i := 0; i < len(s); i++ {
		crc ^= uint16(s[i]) << 8
		for range 8 {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return crc
}

// slot returns the Redis Cluster slot of key: the CRC16 of its hash tag
// (the text between the first '{' and the first '}' after it, if not
// empty) or of the whole key, modulo 16384.
func slot(key string) int {
	if i := strings.IndexByte(key, '{'); i >= 0 {
		if j := strings.IndexByte(key[i+1:], '}'); j > 0 {
			key = key[i+1 : i+1+j]
		}
	}
	return int(crc16(key) % 16384)
}

func TestSlot(t *testing.T) {
	t.Parallel()
	if got := crc16("123456789"); got != 0x31C3 {
		t.Errorf("crc16(%q) = %#04x, want 0x31c3 (the check value in the Redis Cluster spec)", "123456789", got)
	}
	for _, tc := range []struct {
		key  string
		want int
	}{
		{"foo", 12182}, // redis-cli CLUSTER KEYSLOT foo
		{"{foo}:anything", 12182},
		{"{}foo", slot("{}foo")},  // an empty tag hashes the whole key
		{"{foo}{bar}", 12182},     // only the first tag counts
		{"{apitoken}:h:00", 4705}, // redis-cli CLUSTER KEYSLOT apitoken
	} {
		if got := slot(tc.key); got != tc.want {
			t.Errorf("slot(%q) = %d, want %d", tc.key, got, tc.want)
		}
	}
}

// TestSlotMatchesCluster checks slot against CLUSTER KEYSLOT of a real
// Cluster for the keys of every kind a Store writes.
func TestSlotMatchesCluster(t *testing.T) {
	t.Parallel()
	c := testservers.StartRedisCluster(t)
	k := keys{prefix: "{st_ns1}:"}
	var h apitoken.Hash
	h[0], h[31] = 0xab, 0x01
	for _, key := range []string{
		k.record(h), k.id("0190c0de-0000-7000-8000-000000000001"), k.all(),
		k.owner(apitoken.UserOwner("user_{1}")), k.legacyOwner("user_{1}"), k.org("org 1"), k.kind(apitoken.KindOrg), k.lastUsed(), k.ended(),
		k.budget(apitoken.UserKey("user_1")), "foo", "{}x", "plain key",
	} {
		got, err := testservers.RedisCommand(c.Addrs[0], "CLUSTER", "KEYSLOT", key)
		if err != nil {
			t.Fatalf("CLUSTER KEYSLOT %q: %v", key, err)
		}
		if want := strconv.Itoa(slot(key)); got != want {
			t.Errorf("slot(%q) = %s, CLUSTER KEYSLOT says %s", key, want, got)
		}
	}
}

// TestScriptKeysShareOneSlot runs every operation of a Store and a Limiter
// against a real server under MONITOR, asks the server which arguments of
// each command executed (by the client and by the scripts) are keys
// (COMMAND GETKEYS), and checks that every one hashes to the namespace's
// slot.
func TestScriptKeysShareOneSlot(t *testing.T) {
	t.Parallel()
	srv := testservers.StartRedis(t)
	client := redis.NewClient(&redis.Options{Addr: srv.Addr})
	t.Cleanup(func() { client.Close() })
	ctx := t.Context()
	lines := monitor(t, srv.Addr)

	const ns = "slots_ns"
	s, err := New(ctx, client, WithKeyPrefix(ns), WithRetention(time.Hour))
	if err != nil {
		t.Fatalf("New error = %v", err)
	}
	lim, err := NewLimiter(ctx, client, WithKeyPrefix(ns))
	if err != nil {
		t.Fatalf("NewLimiter error = %v", err)
	}
	now := time.Now().Truncate(time.Second)
	tok := func(id, owner string, kind apitoken.Kind, b byte) *apitoken.Token {
		x := &apitoken.Token{ID: id, Kind: kind, OwnerID: owner, OrgID: "org {1}", Name: "n", CreatedAt: now,
			UpdatedAt: now, ExpiresAt: now.Add(time.Hour), Version: 1, RateLimit: &apitoken.Limit{Rate: 5, Burst: 2}}
		x.Hash[0], x.Hash[1] = b, 1
		return x
	}
	a := tok("id-a", "user {1}", apitoken.KindUser, 1)
	a.PrevHash[0], a.PrevHash[1] = 1, 2
	a.PrevExpiresAt = now.Add(time.Hour)
	b := tok("id-b", "org {1}", apitoken.KindOrg, 2)
	c := tok("id-c", "user {1}", apitoken.KindUser, 3)
	c.CreatedAt = now.AddDate(-1, 0, 0)
	must := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s error = %v", what, err)
		}
	}
	must("Create(a)", s.Create(ctx, a, 5))
	must("Create(b)", s.Create(ctx, b, 5))
	must("Create(c)", s.Create(ctx, c, 0))
	_, err = s.Get(ctx, a.ID)
	must("Get", err)
	_, err = s.GetByHash(ctx, a.PrevHash)
	must("GetByHash(prev)", err)
	// A user token is charged to its user's budget under the user default.
	_, d, err := s.GetByHashAllow(ctx, a.Hash, apitoken.LimitDefaults{User: apitoken.Limit{Rate: 5, Burst: 2}}, now)
	must("GetByHashAllow", err)
	if d == nil {
		t.Fatalf("GetByHashAllow took no decision, want one (the budget key must be touched)")
	}
	_, _, err = s.GetByHashAllow(ctx, b.Hash, apitoken.LimitDefaults{}, now)
	must("GetByHashAllow(org)", err)
	_, err = lim.Allow(ctx, apitoken.UserKey("user {1}"), apitoken.Limit{Rate: 1, Burst: 1}, now)
	must("Limiter.Allow", err)
	_, err = s.Allow(ctx, apitoken.TokenKey(b.ID), apitoken.Limit{Rate: 1, Burst: 1}, now)
	must("Store.Allow", err)
	u, err := s.Get(ctx, b.ID)
	must("Get(b)", err)
	u.PrevHash, u.PrevExpiresAt = u.Hash, now.Add(time.Hour)
	u.Hash[2] = 9
	u.OwnerID, u.OrgID, u.Kind = "other {2}", "org {2}", apitoken.KindUser
	must("Update", s.Update(ctx, u))
	must("Touch", s.Touch(ctx, []apitoken.Use{{ID: a.ID, At: now.Add(time.Minute)}, {ID: "missing", At: now}}))
	for _, f := range []apitoken.Filter{{}, {Owner: apitoken.UserOwner("user {1}")}, {OrgID: "org {1}"}, {Kind: apitoken.KindOrg}, {Limit: 1}} {
		_, err := s.List(ctx, f)
		must("List", err)
	}
	must("Revoke", s.Revoke(ctx, a.ID, now))
	_, err = s.RevokeAll(ctx, apitoken.UserOwner("user {1}"), now)
	must("RevokeAll", err)
	must("Refund", s.Refund(ctx, apitoken.UserKey("user {1}"), apitoken.Limit{Rate: 5, Burst: 2}, now))
	must("Limiter.Refund", lim.Refund(ctx, apitoken.UserKey("user {1}"), apitoken.Limit{Rate: 1, Burst: 1}, now))
	_, err = s.Prune(ctx, apitoken.PruneRequest{IdleBefore: now.AddDate(0, -1, 0), EndedBefore: now.Add(time.Second), Limit: 10})
	must("Prune", err)
	must("Delete", s.Delete(ctx, u.ID))
	_, err = s.RecordPolicy(ctx, apitoken.PolicyID{Prefix: "acme", Fingerprint: "0011223344556677"})
	must("RecordPolicy", err)
	_, err = s.RecordPolicy(ctx, apitoken.PolicyID{})
	must("RecordPolicy(read)", err)

	want := slot("{" + ns + "}")
	got := lines()
	commands, keyCount := 0, 0
	for _, line := range got {
		args, from, err := parseMonitorLine(line)
		if err != nil {
			t.Fatalf("parsing MONITOR line %q: %v", line, err)
		}
		if len(args) == 0 || from == "" {
			continue
		}
		name := strings.ToUpper(args[0])
		if name == "MONITOR" || name == "COMMAND" || name == "INFO" || name == "SCRIPT" || name == "ECHO" || name == "HELLO" || name == "CLIENT" {
			continue
		}
		commands++
		ks, err := client.CommandGetKeys(ctx, toAny(args)...).Result()
		if err != nil {
			continue // no key arguments (TIME, …)
		}
		for _, key := range ks {
			keyCount++
			if sl := slot(key); sl != want {
				t.Errorf("%s (from %s) touches key %q in slot %d, want the namespace's slot %d", name, from, key, sl, want)
			}
		}
	}
	if commands < 100 || keyCount < 100 {
		t.Errorf("MONITOR saw %d commands with %d keys, want many more: is it recording?", commands, keyCount)
	}
	t.Logf("checked %d keys of %d commands, all in slot %d", keyCount, commands, want)
}

func toAny(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

// monitor opens a MONITOR connection to addr and returns a function that
// ends it and returns the lines recorded so far (through an ECHO marker,
// so none is missing).
func monitor(t *testing.T, addr string) func() []string {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("MONITOR: %v", err)
	}
	t.Cleanup(func() { conn.Close() })
	if _, err := conn.Write([]byte("*1\r\n$7\r\nMONITOR\r\n")); err != nil {
		t.Fatalf("MONITOR: %v", err)
	}
	r := bufio.NewReader(conn)
	if line, err := r.ReadString('\n'); err != nil || line != "+OK\r\n" {
		t.Fatalf("MONITOR reply = %q, %v", line, err)
	}
	return func() []string {
		marker := fmt.Sprintf("monitor-end-%d", time.Now().UnixNano())
		if _, err := testservers.RedisCommand(addr, "ECHO", marker); err != nil {
			t.Fatalf("ECHO: %v", err)
		}
		conn.SetReadDeadline(time.Now().Add(30 * time.Second))
		var lines []string
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				t.Fatalf("reading MONITOR: %v", err)
			}
			line = strings.TrimSuffix(strings.TrimPrefix(line, "+"), "\r\n")
			if strings.Contains(line, marker) {
				return lines
			}
			lines = append(lines, line)
		}
	}
}

// parseMonitorLine splits a MONITOR line, `1700000000.000001 [0 lua]
// "HGET" "k" "f"`, into its arguments (unquoting Redis's escapes) and the
// client it came from ("lua" or an address).
func parseMonitorLine(line string) (args []string, from string, err error) {
	i := strings.IndexByte(line, '[')
	j := strings.IndexByte(line, ']')
	if i < 0 || j < i {
		return nil, "", nil // not a command line
	}
	if f := strings.Fields(line[i+1 : j]); len(f) == 2 {
		from = f[1]
	}
	rest := line[j+1:]
	for {
		rest = strings.TrimLeft(rest, " ")
		if rest == "" {
			return args, from, nil
		}
		if rest[0] != '"' {
			return nil, "", fmt.Errorf("expected a quoted argument at %q", rest)
		}
		var b strings.Builder
		k := 1
		for ; k < len(rest) && rest[k] != '"'; k++ {
			if rest[k] != '\\' {
				b.WriteByte(rest[k])
				continue
			}
			k++
			if k >= len(rest) {
				return nil, "", fmt.Errorf("dangling escape")
			}
			switch rest[k] {
			case 'n':
				b.WriteByte('\n')
			case 'r':
				b.WriteByte('\r')
			case 't':
				b.WriteByte('\t')
			case 'a':
				b.WriteByte('\a')
			case 'b':
				b.WriteByte('\b')
			case 'x':
				if k+2 >= len(rest) {
					return nil, "", fmt.Errorf("short \\x escape")
				}
				v, err := strconv.ParseUint(rest[k+1:k+3], 16, 8)
				if err != nil {
					return nil, "", err
				}
				b.WriteByte(byte(v))
				k += 2
			default:
				b.WriteByte(rest[k])
			}
		}
		if k >= len(rest) {
			return nil, "", fmt.Errorf("unterminated argument")
		}
		args = append(args, b.String())
		rest = rest[k+1:]
	}
}
