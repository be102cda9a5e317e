// Package ingesttable says which Iceberg tables Zombi ingests into: the
// tables its maintenance scheduler keeps small and that the live catalog
// view plans with their hot tail. One definition, so the two agree.
package ingesttable

import (
	"strings"

	"github.com/apache/iceberg-go"
)

// Table properties that mark a table Zombi writes.
const (
	// PropFormat is set on tables ingest creates ("events" for event
	// tables).
	PropFormat = "zombi.ingest.format"
	// PropWatermarkPrefix + a node ID is that node's flush watermark, set
	// by every flusher commit.
	PropWatermarkPrefix = "zombi.watermark."
	// PropOffsetColumn names a top-level long column of a row table that
	// holds each row's sequence, filled when the row is written to Parquet
	// (tables inferred from data have one).
	PropOffsetColumn = "zombi.ingest.offset-column"
	// PropIngestTimeColumn names a top-level timestamptz column of a row
	// table that holds the time Zombi accepted each row, filled by ingest.
	PropIngestTimeColumn = "zombi.ingest.time-column"
)

// OffsetColumnID is the field ID of the offset column props name in
// schema (PropOffsetColumn), 0 for none.
func OffsetColumnID(props iceberg.Properties, schema *iceberg.Schema) int {
	name := props[PropOffsetColumn]
	if name == "" {
		return 0
	}
	for _, f := range schema.Fields() {
		if f.Name == name {
			return f.ID
		}
	}
	return 0
}

// Is reports whether props are those of a table Zombi writes: one ingest
// created (an auto-created event table), or one a flusher has committed to.
func Is(props iceberg.Properties) bool {
	if props[PropFormat] != "" {
		return true
	}
	for k := range props {
		if strings.HasPrefix(k, PropWatermarkPrefix) {
			return true
		}
	}
	return false
}
