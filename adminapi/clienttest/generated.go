//go:build clienttest_generated

package clienttest

// The Go client the tests generate imports these. This file is never built
// (its build tag is never set); go mod tidy reads every build tag, so it
// keeps them in go.mod, at the versions the tests build the client with.
import (
	_ "github.com/oapi-codegen/nullable"
	_ "github.com/oapi-codegen/runtime"
)
