package apitokentest_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/apitoken/apitoken"
	"github.com/apitoken/apitoken/apitokentest"
)

// A Clock moves only when the test moves it.
func ExampleClock() {
	clock := apitokentest.NewClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	fmt.Println(clock.Now())
	fmt.Println(clock.Advance(90 * 24 * time.Hour))
	clock.Set(time.Date(2027, 6, 1, 12, 0, 0, 0, time.UTC))
	fmt.Println(clock.Now())
	// Output:
	// 2026-01-01 00:00:00 +0000 UTC
	// 2026-04-01 00:00:00 +0000 UTC
	// 2027-06-01 12:00:00 +0000 UTC
}

// A Directory answers as a host's user store would.
func ExampleDirectory() {
	ctx := context.Background()
	var users apitokentest.Directory
	users.Set("user_7", "org_1", apitoken.Membership{Roles: []string{"observer"}})

	m, err := users.Member(ctx, "user_7", "org_1")
	fmt.Println(m.Roles, err)
	_, err = users.Member(ctx, "user_7", "org_2")
	fmt.Println(errors.Is(err, apitoken.ErrNotFound))

	users.SetError(errors.New("ldap: connection refused"))
	_, err = users.Member(ctx, "user_7", "org_1")
	fmt.Println(err)
	// Output:
	// [observer] <nil>
	// true
	// ldap: connection refused
}
