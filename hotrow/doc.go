// Package hotrow is the format of the values in the hot tier, and the
// reading of them. Each value is one row of its table: ingest writes it,
// and hot reads and the flusher read it back in the table's current
// schema until it is committed and deleted.
//
// A value starts with a format byte:
//
//   - 1 (FormatEvent): a raw event of an event table (EventSchema),
//     written by AppendEventValue, read by DecodeEventValue.
//   - 2 (FormatRow): a typed row keyed by field ID, written with
//     AppendRowHeader and the other Append functions (package codec's
//     Converter writes rows from JSON with them), see row.go.
//
// Values outlive releases: the hot tier keeps them across upgrades, and a
// release must read every value an earlier one wrote. So an encoding never
// changes in place: a changed encoding needs a new format byte, and the
// readers keep reading the old ones. testdata/*.golden pins the current
// encodings and how they read; a change there is a change of format, never
// an -update to make a test pass.
//
// Reading: ArrowBuilder makes Arrow records in a table's current schema
// (for hot reads and the flusher), ValueJSON renders one value as a JSON
// object. Both map values to columns by field ID, so renamed, added and
// dropped columns and Iceberg's type promotions read as they should.
// SchemaNode prepares a schema for writing and reading rows, and Path
// names a place in a row for errors.
package hotrow
