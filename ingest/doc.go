// Package ingest accepts events from producers: it resolves the target
// table through the catalog (auto-creating event tables), decodes and
// validates request bodies with package codec, appends them durably to the
// hot tier as values in the formats of package hotrow and reads them back
// while they are still there. It also bounds the bytes of requests in
// flight so overload is answered with 429 instead of memory exhaustion.
// HTTP binding lives in package server.
package ingest
