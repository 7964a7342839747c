// Package adminapi is a mountable REST API for managing tokens.
package adminapi
