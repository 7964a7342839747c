package redisstore

import (
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/apitoken/apitoken"
)

var (
	// ErrEvictionPolicy is returned by [New] and [NewLimiter] when a server
	// of the client has a maxmemory-policy other than noeviction (or hides
	// it), unless [WithEvictionAllowed] is given. An evicting server would
	// silently delete tokens, revocations and rate-limit budgets.
	ErrEvictionPolicy = errors.New("redisstore: maxmemory-policy is not noeviction")

	// ErrNotDurable is returned (wrapped: match it with errors.Is) by
	// Revoke, RevokeAll and Delete under [WithDurableRevoke] when WAITAOF
	// did not confirm the write in the primary's append-only file and in
	// those of enough replicas within the timeout, or failed. The change
	// is then in effect on the primary but may be lost by a crash or a
	// failover; repeating the call is safe (see WithDurableRevoke).
	ErrNotDurable = errors.New("redisstore: write not confirmed durable")

	// ErrOutOfMemory is returned (wrapped: match it with errors.Is) by a
	// write the server refused because it has reached maxmemory under the
	// noeviction policy New requires: Create, Update, Touch (last-used
	// times) and Prune's re-scoring. The error also matches
	// [apitoken.ErrStoreUnavailable], so generic callers treat it as an
	// outage (adminapi answers 503). Reads go on: tokens keep validating,
	// and rate-limit budgets, revocations and deletions are still written
	// (see [Limiter.Allow] and [Store.Revoke]); the condition ends when
	// memory is freed or maxmemory raised, with no restart of the
	// application.
	ErrOutOfMemory = errors.New("redisstore: server out of memory (maxmemory reached, noeviction)")

	// ErrServerTooOld is returned by [New] and [NewLimiter] when a server
	// of the client runs a Redis older than 7.0, whose scripts cannot run
	// at maxmemory (see ErrOutOfMemory) and lack the functions the Store's
	// scripts use.
	ErrServerTooOld = errors.New("redisstore: Redis 7.0 or later is needed")
)

// oomError is a write the server refused at maxmemory: it reads
// "redisstore: <op>: server out of memory (maxmemory reached, noeviction):
// <the server's reply>" and matches ErrOutOfMemory and
// apitoken.ErrStoreUnavailable.
type oomError struct {
	op  string
	err error
}

func (e *oomError) Error() string {
	return "redisstore: " + e.op + ": " + strings.TrimPrefix(ErrOutOfMemory.Error(), "redisstore: ") + ": " + e.err.Error()
}

func (e *oomError) Is(target error) bool {
	return target == ErrOutOfMemory || target == apitoken.ErrStoreUnavailable
}

func (e *oomError) Unwrap() error { return e.err }

// isOOM reports whether err is the server's refusal of a write at
// maxmemory ("OOM command not allowed when used memory > 'maxmemory'"),
// whether a command or a script met it.
func isOOM(err error) bool {
	var re redis.Error
	return errors.As(err, &re) && strings.Contains(re.Error(), "OOM command not allowed")
}

// A KeyError reports a key of the Store's namespace that holds the wrong
// type or data the Store cannot read, such as a corrupt token record. Only
// the operations that touch the key fail; other tokens are unaffected.
// Batch operations (Touch, RevokeAll, Prune) do their work on every other
// token and then return the KeyErrors they met, joined.
type KeyError struct {
	// Op is the Store operation, such as "get by hash".
	Op string
	// Key is the key's name. A hash in it (the h: keys of token records
	// and previous-hash aliases) is cut to its first 8 hex digits and
	// "…": enough to find the key with SCAN MATCH, never the hash itself.
	Key string
	// Reason says what is wrong: "wrong type", "corrupt record", …
	Reason string
}

// Error returns "redisstore: <op>: key "<key>": <reason>".
func (e *KeyError) Error() string {
	return fmt.Sprintf("redisstore: %s: key %q: %s", e.Op, e.Key, e.Reason)
}

const badKeyCode = "APITOKEN_BADKEY "

// badKey parses the error a script raises for a bad key.
func (k keys) badKey(op, msg string) (*KeyError, bool) {
	i := strings.Index(msg, badKeyCode)
	if i < 0 {
		return nil, false
	}
	rest := msg[i+len(badKeyCode):]
	hexKey, reason, _ := strings.Cut(rest, " ")
	key, err := hex.DecodeString(hexKey)
	if err != nil {
		return &KeyError{Op: op, Key: "(unreadable)", Reason: "bad key"}, true
	}
	// Redis appends " script: <sha>, on @user_script:<line>."
	if i := strings.Index(reason, " script: "); i >= 0 {
		reason = reason[:i]
	}
	return &KeyError{Op: op, Key: k.redact(string(key)), Reason: reason}, true
}

// wrap turns a script or command error into the Store's error for op.
func (k keys) wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	if ke, ok := k.badKey(op, err.Error()); ok {
		return ke
	}
	if isOOM(err) {
		return &oomError{op: op, err: err}
	}
	return fmt.Errorf("redisstore: %s: %w", op, err)
}

// badKeys turns the bad-key messages a batch script returns into one
// joined error, or nil.
func (k keys) badKeys(op string, msgs []any) error {
	var errs []error
	for _, m := range msgs {
		s, _ := m.(string)
		if ke, ok := k.badKey(op, s); ok {
			errs = append(errs, ke)
		}
	}
	return errors.Join(errs...)
}

func isNil(err error) bool { return errors.Is(err, redis.Nil) }
