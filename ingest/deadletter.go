package ingest

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/table"
	"github.com/zombi-db/zombi/catalog"
	"github.com/zombi-db/zombi/hot"
	"github.com/zombi-db/zombi/hotrow"
	"github.com/zombi-db/zombi/ingest/codec"
	"github.com/zombi-db/zombi/internal/ingesttable"
	"github.com/zombi-db/zombi/warehouse"
)

// Dead letters: the records a partial bulk write (?partial=true) refuses
// are kept, not forgotten, in a row table beside their table, named
// DeadLetterTable(name). Ingest appends them to the hot tier like any
// row, and the flusher commits them with the same exactly-once rule.

// PropDeadLettersOf marks a dead-letter table with the table whose records
// it keeps.
const PropDeadLettersOf = "zombi.ingest.dead-letters-of"

// deadLetterSuffix ends the name of a table's dead-letter table.
const deadLetterSuffix = "__dlq"

// Error codes of dead letters.
const (
	// DeadSyntax: the record is not JSON.
	DeadSyntax = "syntax"
	// DeadField: a field does not fit its column (or names no column the
	// table can get).
	DeadField = "field"
	// DeadRecord: the record as a whole does not fit (not an object, a bad
	// envelope).
	DeadRecord = "record"
)

// Field IDs of the dead-letter schema.
const (
	dlOffset = iota + 1
	dlReceived
	dlCode
	dlField
	dlMessage
	dlRaw
	dlKey
	dlIndex
)

// DeadLetterTable is the name of the dead-letter table of the table called
// name (in the same namespace): name + "__dlq", name cut to keep within
// the 128 characters a name part may have.
func DeadLetterTable(name string) string {
	if max := 128 - len(deadLetterSuffix); len(name) > max {
		name = name[:max]
	}
	return name + deadLetterSuffix
}

// deadLetterTable is the create request of the dead-letter table of src.
func deadLetterTable(src catalog.Ident) (catalog.CreateTableRequest, error) {
	p := iceberg.PrimitiveTypes
	schema := iceberg.NewSchema(0,
		iceberg.NestedField{ID: dlOffset, Name: offsetColumn, Type: p.Int64, Doc: "the dead letter's sequence in this table, set by Zombi"},
		iceberg.NestedField{ID: dlReceived, Name: "received_at", Type: p.TimestampTz, Doc: "when Zombi received the record"},
		iceberg.NestedField{ID: dlCode, Name: "error_code", Type: p.String, Doc: "syntax, field or record"},
		iceberg.NestedField{ID: dlField, Name: "field", Type: p.String, Doc: "the path of the field that did not fit"},
		iceberg.NestedField{ID: dlMessage, Name: "message", Type: p.String, Doc: "why the record was refused"},
		iceberg.NestedField{ID: dlRaw, Name: "raw", Type: p.Binary, Doc: "the record as it was sent"},
		iceberg.NestedField{ID: dlKey, Name: "idempotency_key", Type: p.String, Doc: "the record's idempotency key, if it had one"},
		iceberg.NestedField{ID: dlIndex, Name: "record_index", Type: p.Int32, Doc: "the record's position in its request"},
	)
	fieldID := 1000
	spec, err := iceberg.NewPartitionSpecOpts(iceberg.AddPartitionFieldBySourceID(dlReceived, "received_at_hour", iceberg.HourTransform{}, schema, &fieldID))
	if err != nil {
		return catalog.CreateTableRequest{}, err
	}
	order, err := table.NewSortOrder(1, []table.SortField{
		{SourceIDs: []int{dlReceived}, Transform: iceberg.IdentityTransform{}, Direction: table.SortASC, NullOrder: table.NullsFirst},
		{SourceIDs: []int{dlOffset}, Transform: iceberg.IdentityTransform{}, Direction: table.SortASC, NullOrder: table.NullsFirst},
	})
	if err != nil {
		return catalog.CreateTableRequest{}, err
	}
	return catalog.CreateTableRequest{
		Ident: catalog.Ident{Namespace: src.Namespace, Name: DeadLetterTable(src.Name)}, Schema: schema, Spec: &spec, SortOrder: &order,
		Properties: iceberg.Properties{
			PropFormat:                       formatRows,
			PropDeadLettersOf:                src.String(),
			ingesttable.PropOffsetColumn:     offsetColumn,
			ingesttable.PropIngestTimeColumn: "received_at",
			propCompressionLevel:             "1",
		},
	}, nil
}

// deadLetterCode classifies a refused record.
func deadLetterCode(b codec.RecordError) string {
	switch {
	case b.Field != "":
		return DeadField
	case strings.HasPrefix(b.Reason, "invalid JSON"):
		return DeadSyntax
	}
	return DeadRecord
}

// deadLetters says where a write kept its refused records.
type deadLetters struct {
	table string
	n     int
}

// bulkRecords are the records of a bulk body by index, for dead letters:
// nil for a protobuf body (its records are kept without their bytes).
func bulkRecords(req Request) [][]byte {
	if req.MediaType == MediaProtobuf {
		return nil
	}
	rows, err := codec.SplitBulkRows(req.Body, req.MediaType == MediaNDJSON)
	if err != nil {
		return nil
	}
	return rows
}

// idempotencyMember is the member of t's records that holds their
// idempotency key.
func idempotencyMember(t *tableState) string {
	if t.events {
		return "idempotency_key"
	}
	return t.props[PropIdempotencyColumn]
}

// keepDeadLetters appends the refused records of a partial write to t to
// t's dead-letter table, creating it if needed, and returns its name and
// how many it appended. raw holds each record's bytes by index (nil when
// the body's format does not split into them); idemColumn is the member
// holding a record's idempotency key. A record with a key is kept once
// for it.
func (s *Service) keepDeadLetters(ctx context.Context, t *tableState, bad []codec.RecordError, raw [][]byte, idemColumn string, now time.Time) (deadLetters, error) {
	if len(bad) == 0 || t.props[PropDeadLettersOf] != "" {
		return deadLetters{}, nil
	}
	req, err := deadLetterTable(t.ident)
	if err != nil {
		return deadLetters{}, err
	}
	dt, err := s.table(ctx, req.Ident, &req)
	if err != nil {
		return deadLetters{}, fmt.Errorf("the dead-letter table of %s: %w", t.name, err)
	}
	if dt.events || dt.props[PropDeadLettersOf] != t.name {
		return deadLetters{}, fmt.Errorf("%w: %s exists and is not the dead-letter table of %s", catalog.ErrInvalid, dt.name, t.name)
	}
	recs := make([]hot.Record, 0, len(bad))
	for _, b := range bad {
		var r []byte
		if b.Index < len(raw) {
			r = raw[b.Index]
		}
		key := recordKey(r, idemColumn)
		v := hotrow.AppendRowHeader(nil, dt.schema.ID)
		n := 3 // received_at, error_code, message
		if b.Field != "" {
			n++
		}
		if r != nil {
			n++
		}
		if key != "" {
			n++
		}
		n++ // record_index
		v = hotrow.AppendCount(v, n)
		v = hotrow.AppendTimestamp(hotrow.AppendFieldID(v, dlReceived), hotrow.KindTimestampTz, now.UnixMicro())
		v = hotrow.AppendString(hotrow.AppendFieldID(v, dlCode), []byte(deadLetterCode(b)))
		if b.Field != "" {
			v = hotrow.AppendString(hotrow.AppendFieldID(v, dlField), []byte(validUTF8(b.Field)))
		}
		v = hotrow.AppendString(hotrow.AppendFieldID(v, dlMessage), []byte(validUTF8(b.Reason)))
		if r != nil {
			v = hotrow.AppendBinary(hotrow.AppendFieldID(v, dlRaw), r)
		}
		if key != "" {
			v = hotrow.AppendString(hotrow.AppendFieldID(v, dlKey), []byte(key))
			key = "dlq:" + key
		}
		v = hotrow.AppendInt(hotrow.AppendFieldID(v, dlIndex), int32(b.Index))
		recs = append(recs, hot.Record{Key: key, Value: v})
	}
	res, err := s.appendRecords(ctx, dt, recs)
	if err != nil {
		return deadLetters{}, err
	}
	n := 0
	for _, r := range res {
		if !r.Duplicate {
			n++
		}
	}
	t.m.deadLetters.Add(float64(n))
	return deadLetters{table: dt.name, n: len(res)}, nil
}

// recordKey is the idempotency key a refused record holds in member
// column, if it is a JSON object with a string there.
func recordKey(raw []byte, column string) string {
	if raw == nil || column == "" {
		return ""
	}
	var m map[string]json.RawMessage
	if json.Unmarshal(raw, &m) != nil {
		return ""
	}
	var key string
	if json.Unmarshal(m[column], &key) != nil || len(key) > codec.MaxIdempotencyKeyLen {
		return ""
	}
	return validUTF8(key)
}

// validUTF8 is s with invalid UTF-8 replaced, for string columns.
func validUTF8(s string) string { return strings.ToValidUTF8(s, "\uFFFD") }

// PropReplayedThrough is the dead-letter table property holding the
// highest _zombi_offset a replay has taken.
const PropReplayedThrough = "zombi.ingest.dlq.replayed-through"

// MaxReplay is how many dead letters one replay takes.
const MaxReplay = 1000

// ReplayResult says what a replay of dead letters did.
type ReplayResult struct {
	Table, DeadLetterTable string
	// Replayed were stored in the table; Duplicates of them were stored
	// before (their idempotency key); Failed were refused again and are
	// kept as new dead letters; Skipped had no bytes to replay (from
	// protobuf bodies).
	Replayed, Duplicates, Failed, Skipped int
	// Through is the highest offset of the dead-letter table replayed so
	// far; More says more dead letters wait after it.
	Through uint64
	More    bool
}

// ReplayDeadLetters writes the dead letters of the table ref names that no
// replay has taken yet, up to MaxReplay of them, to the table again: after
// its schema was fixed, they may fit. It commits the dead-letter table
// first, so that every dead letter kept before the call is taken. Each is
// written as a single write of its raw bytes, with its own idempotency
// key, or "dlq:<offset>" when it has none, so that a replay repeated after
// a failure stores nothing twice (within the idempotency window). One
// that fails again becomes a new dead letter. The dead-letter table's
// PropReplayedThrough then moves past them.
func (s *Service) ReplayDeadLetters(ctx context.Context, ref string) (ReplayResult, error) {
	if s.files == nil || s.flusher == nil {
		return ReplayResult{}, fmt.Errorf("%w: this server does not replay dead letters (it does not flush)", catalog.ErrUnavailable)
	}
	t, err := s.resolve(ctx, ref, nil)
	if err != nil {
		return ReplayResult{}, err
	}
	if t.props[PropDeadLettersOf] != "" {
		return ReplayResult{}, fmt.Errorf("%w: %s is a dead-letter table; replay the table it keeps records of", catalog.ErrInvalid, t.name)
	}
	dlq := catalog.Ident{Namespace: t.ident.Namespace, Name: DeadLetterTable(t.ident.Name)}
	out := ReplayResult{Table: t.name, DeadLetterTable: dlq.String()}
	mu, _ := s.replaying.LoadOrStore(cacheKey(t.ident), &sync.Mutex{})
	mu.(*sync.Mutex).Lock()
	defer mu.(*sync.Mutex).Unlock()
	if _, err := s.flusher.Flush(ctx, dlq); errors.Is(err, catalog.ErrNoSuchTable) {
		return out, nil // no dead letters, ever
	} else if err != nil {
		return out, fmt.Errorf("committing %s before the replay: %w", dlq, err)
	}
	tbl, err := s.catalog.LoadTable(ctx, dlq)
	if err != nil {
		return out, err
	}
	if tbl.Metadata.Properties()[PropDeadLettersOf] != t.name {
		return out, fmt.Errorf("%w: %s is not the dead-letter table of %s", catalog.ErrInvalid, dlq, t.name)
	}
	if p := tbl.Metadata.Properties()[PropReplayedThrough]; p != "" {
		if out.Through, err = strconv.ParseUint(p, 10, 64); err != nil {
			return out, fmt.Errorf("%w: %s=%q on %s", catalog.ErrInvalid, PropReplayedThrough, p, dlq)
		}
	}
	letters, more, err := s.readDeadLetters(ctx, tbl, out.Through, MaxReplay)
	if err != nil {
		return out, err
	}
	out.More = more
	if len(letters) == 0 {
		return out, nil
	}
	idem := idempotencyMember(t)
	for _, l := range letters {
		if l.raw == nil {
			out.Skipped++
			continue
		}
		req := Request{MediaType: MediaJSON, Body: l.raw}
		if recordKey(l.raw, idem) == "" {
			req.IdempotencyKey = "dlq:" + strconv.FormatUint(l.offset, 10)
		}
		res, err := s.WriteOne(ctx, ref, req)
		switch {
		case err == nil && res.Duplicate:
			out.Duplicates++
		case err == nil:
			out.Replayed++
		case errors.Is(err, catalog.ErrInvalid):
			out.Failed++
			bad := codec.RecordErrorFor(0, err)
			if _, err := s.keepDeadLetters(ctx, t, []codec.RecordError{bad}, [][]byte{l.raw}, idem, s.now()); err != nil {
				return out, err
			}
		default:
			return out, err
		}
	}
	through := letters[len(letters)-1].offset
	ch := catalog.TableChange{Ident: dlq, Updates: table.Updates{table.NewSetPropertiesUpdate(iceberg.Properties{PropReplayedThrough: strconv.FormatUint(through, 10)})}}
	if _, err := s.catalog.CommitTable(ctx, ch, nil); err != nil {
		return out, fmt.Errorf("recording the replay in %s: %w", dlq, err)
	}
	out.Through = through
	return out, nil
}

// deadLetter is one dead letter to replay.
type deadLetter struct {
	offset uint64
	raw    []byte
}

// readDeadLetters reads the committed dead letters of tbl after offset
// after: the limit lowest, in offset order, and whether there are more.
// It streams through every file the filter keeps but holds at most about
// twice limit of them, however many wait: the files are in no offset
// order, so all are read to find the lowest.
func (s *Service) readDeadLetters(ctx context.Context, tbl *catalog.Table, after uint64, limit int) ([]deadLetter, bool, error) {
	if tbl.Metadata.CurrentSnapshot() == nil {
		return nil, false, nil
	}
	id := append(append(table.Identifier{}, tbl.Ident.Namespace...), tbl.Ident.Name)
	loc := tbl.Metadata.Location()
	it := table.New(id, tbl.Metadata, tbl.MetadataLocation, warehouse.ConfineF(s.files, loc), nil)
	_, recs, err := it.Scan(
		table.WithRowFilter(iceberg.GreaterThan(iceberg.Reference(offsetColumn), int64(after))),
		table.WithSelectedFields(offsetColumn, "raw"),
	).ToArrowRecords(ctx)
	if err != nil {
		return nil, false, fmt.Errorf("reading %s: %w", tbl.Ident, err)
	}
	byOffset := func(a, b deadLetter) int { return cmp.Compare(a.offset, b.offset) }
	var out []deadLetter
	more := false
	for rec, err := range recs {
		if err != nil {
			return nil, false, fmt.Errorf("reading %s: %w", tbl.Ident, err)
		}
		offs := rec.Column(rec.Schema().FieldIndices(offsetColumn)[0]).(*array.Int64)
		raws := rec.Column(rec.Schema().FieldIndices("raw")[0]).(*array.Binary)
		for i := range int(rec.NumRows()) {
			l := deadLetter{offset: uint64(offs.Value(i))}
			if raws.IsValid(i) {
				l.raw = bytes.Clone(raws.Value(i))
			}
			out = append(out, l)
		}
		rec.Release()
		if len(out) > 2*limit {
			slices.SortFunc(out, byOffset)
			clear(out[limit:])
			out, more = out[:limit], true
		}
	}
	slices.SortFunc(out, byOffset)
	if len(out) > limit {
		out, more = out[:limit], true
	}
	return out, more, nil
}
