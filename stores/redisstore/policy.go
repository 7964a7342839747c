package redisstore

import (
	"context"
	"errors"

	"github.com/apitoken/apitoken"
)

var _ apitoken.PolicyRecorder = (*Store)(nil)

// RecordPolicy implements [apitoken.PolicyRecorder] with one script on the
// namespace's policy key ({ns}:pol, in the namespace's slot; no TTL, and
// Prune never deletes it): one round trip, a read unless the key must be
// written.
func (s *Store) RecordPolicy(ctx context.Context, id apitoken.PolicyID) (apitoken.PolicyID, error) {
	if err := s.check(ctx); err != nil {
		return apitoken.PolicyID{}, err
	}
	v, err := s.run(ctx, scriptRecordPolicy, []string{s.k.policy()}, s.args(id.Prefix, id.Fingerprint)...).StringSlice()
	if err != nil {
		return apitoken.PolicyID{}, s.k.wrap("record policy", err)
	}
	if len(v) != 2 {
		return apitoken.PolicyID{}, errors.New("redisstore: record policy: unexpected script reply")
	}
	return apitoken.PolicyID{Prefix: v[0], Fingerprint: v[1]}, nil
}
