// Package e2e runs Zombi as a real process (built from ./cmd/zombi) and
// drives it through iceberg-go's REST client and plain HTTP: the catalog
// conformance suite, concurrent writers and multi-table transactions, on
// the embedded store with a local warehouse and on Postgres with an
// S3-compatible server.
package e2e
