// Package codec decodes producer requests: pure functions over bytes that
// turn request bodies into events and rows, stored in the hot tier in the
// value formats of package hotrow.
//
//   - Raw events for event tables (hotrow.EventSchema): one envelope as JSON
//     (DecodeEnvelopeJSON) or Protobuf (DecodeEnvelopeProto, zombi.v1.Event
//     in ingest/ingestpb), many as {"records": [...]} JSON, NDJSON or a
//     zombi.v1.BulkWriteRequest (DecodeBulkJSON, DecodeBulkNDJSON,
//     DecodeBulkProto). A bulk decoder returns one Envelope per record and
//     a RecordError for each invalid one; its error rejects the body.
//     Envelope.Event is the event whose hot value hotrow.AppendEventValue
//     writes.
//   - Rows for typed tables (schemas made by Spark, PyIceberg, ...): JSON
//     objects converted by column name into hot values of typed rows
//     (Converter.Convert, or AppendConvert to share one buffer among the
//     rows of a bulk request), bulk bodies split into rows by
//     SplitBulkRows.
//
// The JSON decoder is a strict RFC 8259 scanner written for this package:
// it decodes only what it needs, aliases the request body instead of
// copying where it can, and rejects invalid UTF-8 and lone surrogates,
// which encoding/json would replace silently.
package codec
