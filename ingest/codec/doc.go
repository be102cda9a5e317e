// Package codec is the data layer of ingest: pure functions over bytes
// that decode producer requests, encode and decode the values stored in
// the hot tier, and build Arrow records and JSON from them.
//
// Requests:
//
//   - Raw events for event tables (EventSchema): one envelope as JSON
//     (DecodeEnvelopeJSON) or Protobuf (DecodeEnvelopeProto, zombi.v1.Event
//     in ingest/ingestpb), many as {"records": [...]} JSON, NDJSON or a
//     zombi.v1.BulkWriteRequest (DecodeBulkJSON, DecodeBulkNDJSON,
//     DecodeBulkProto). A bulk decoder returns one Envelope per record and
//     a RecordError for each invalid one; its error rejects the body.
//   - Rows for typed tables (schemas made by Spark, PyIceberg, ...): JSON
//     objects converted by column name (Converter.Convert, or AppendConvert
//     to share one buffer among the rows of a bulk request), bulk bodies
//     split into rows by SplitBulkRows.
//
// Hot values start with a format byte:
//
//   - 1 (FormatEvent): a raw event, see AppendEventValue.
//   - 2 (FormatRow): a typed row keyed by field ID, see row.go.
//
// Values outlive releases in the hot tier: changing an encoding needs a
// new format byte, and testdata/*.golden pins the current ones.
//
// Reading: ArrowBuilder makes Arrow records in a table's current schema
// (for hot reads and the flusher), ValueJSON renders one value as a JSON
// object. Both map values to columns by field ID, so renamed, added and
// dropped columns and Iceberg's type promotions read as they should.
//
// The JSON decoder is a strict RFC 8259 scanner written for this package:
// it decodes only what it needs, aliases the request body instead of
// copying where it can, and rejects invalid UTF-8 and lone surrogates,
// which encoding/json would replace silently.
package codec
