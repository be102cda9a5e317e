// Package catalog is Zombi's Iceberg catalog: namespaces, tables and the one
// commit path through which every change to table metadata goes, whether it
// comes from a REST client (Spark, PyIceberg, Trino), the flusher or the
// compactor.
//
// A commit loads the current metadata, validates the requirements, applies
// the updates with iceberg-go, writes the next metadata file to the warehouse
// and compare-and-swaps the table pointer in a Store. Losing the swap is
// ErrCommitFailed; the caller rebases and retries.
//
// The Store keeps only pointers (namespace properties, table metadata
// locations, idempotency receipts). Implementations live in subpackages
// (postgres, embedded) and all pass the conformance suite in storetest.
package catalog
