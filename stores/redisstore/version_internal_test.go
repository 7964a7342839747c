package redisstore

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

// TestAtLeast7 reads INFO's redis_version: New refuses a Redis before 7.0.
func TestAtLeast7(t *testing.T) {
	for v, want := range map[string]bool{
		"7.0.15": true, "7.2.4": true, "8.0.0": true, "10.1": true,
		"6.2.14": false, "5.0.7": false, "": false, "unknown": false,
	} {
		assert.Equal(t, want, atLeast7(v), "atLeast7(%q)", v)
	}
}
