// Package clienttest checks that clients generated from package adminapi's
// OpenAPI document work as generated, with the generators people use: a Go
// client from oapi-codegen (the version this module's go.mod pins as a
// tool, with oapi-codegen.yaml, the options adminapi's doc recommends) and
// a TypeScript client from openapi-typescript and openapi-fetch.
//
// Its tests start the admin API as examples/server mounts it (package
// httpauth's token middleware in front of an adminapi.Handler over a
// memory store) on an httptest server, generate each client from
// adminapi.OpenAPI into a temporary directory, build it (go build; tsc)
// and run a token's whole lifecycle through it, from create to delete,
// plus a 401 from the middleware read as a problem with its code. Nothing
// generated is committed: the tests prove that generation works.
//
// It is a module of its own so that the generators and their dependencies
// never enter the library's go.mod. The TypeScript test needs Node.js and
// the npm packages openapi-typescript, openapi-fetch and typescript,
// installed in the directory named by APITOKEN_CLIENT_TOOLS (scripts/test
// installs them into a cache directory); without it the test skips, or
// fails when CI=true.
package clienttest
