// Package outage holds only tests: the middleware of package httpauth under
// a steady load while the server behind its Validator goes away and comes
// back (PostgreSQL behind the SQL store, Redis behind the Redis store, Redis
// behind the rate limiter). It sits apart from the stores and httpauth so
// that its tests may import all of them without an import cycle.
package outage
