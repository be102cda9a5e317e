package ingest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unsafe"

	"github.com/zombi-db/zombi/catalog"
	"github.com/zombi-db/zombi/hot"
	"github.com/zombi-db/zombi/hotrow"
	"github.com/zombi-db/zombi/ingest/codec"
)

// Media types of request bodies.
const (
	MediaJSON     = "application/json"
	MediaNDJSON   = "application/x-ndjson"
	MediaProtobuf = "application/x-protobuf"
)

// The media types event tables take, for single and bulk writes. A body
// without a type is read as JSON.
var (
	eventMediaTypes     = []string{MediaJSON, MediaProtobuf}
	eventBulkMediaTypes = []string{MediaJSON, MediaNDJSON, MediaProtobuf}
)

// Errors beyond the catalog's.
var (
	// ErrUnsupportedMediaType: the body's type is not one this table
	// takes. HTTP 415.
	ErrUnsupportedMediaType = errors.New("unsupported media type")
	// ErrBacklogFull: the hot tier holds as much as it may; retry after
	// flushes catch up. HTTP 503.
	ErrBacklogFull = hot.ErrBacklogFull

	// errStoresNothing: a write to a missing table would store nothing,
	// so the table is not created.
	errStoresNothing = errors.New("the write stores nothing")
)

// RecordsError rejects a bulk write: every bad record's index and reason.
type RecordsError struct {
	Records []codec.RecordError
}

func (e *RecordsError) Error() string {
	if len(e.Records) == 1 {
		return fmt.Sprintf("record %d is invalid: %s", e.Records[0].Index, e.Records[0].Error())
	}
	return fmt.Sprintf("%d records are invalid; the first, record %d: %s", len(e.Records), e.Records[0].Index, e.Records[0].Error())
}

// Unwrap makes a RecordsError a catalog.ErrInvalid.
func (e *RecordsError) Unwrap() error { return catalog.ErrInvalid }

// Request is a write request's body and the headers that matter.
type Request struct {
	// MediaType is the body's media type without parameters; "" is JSON.
	MediaType string
	Body      []byte
	// IdempotencyKey is the Idempotency-Key header (single writes).
	IdempotencyKey string
	// Partition is the X-Partition header (protobuf single writes).
	Partition string
	// Partial writes the valid records of a bulk request and reports the
	// others instead of rejecting the request.
	Partial bool
	// WaitCommitted answers only once the events are committed to the
	// Iceberg table (?ack=committed).
	WaitCommitted bool
	// Charge holds the request's memory against the in-flight limit; a
	// bulk write adds its records to it (nil: not charged). The caller
	// charges the body and releases the Charge.
	Charge *Charge
}

// WriteResult answers a single write.
type WriteResult struct {
	Table     string
	Offset    uint64
	Partition int32
	// Stream is the stream of the node that stored the event: the high
	// bits of Offset (hot.StreamBits).
	Stream    uint32
	Duplicate bool
	// SnapshotID is the snapshot holding the event, for WaitCommitted.
	SnapshotID int64
}

// RecordResult is one record's outcome in a partial bulk write.
type RecordResult struct {
	Index     int
	Offset    uint64
	Duplicate bool
	Err       string // empty when written
}

// BulkResult answers a bulk write. Results is set for partial writes only.
type BulkResult struct {
	Table      string
	Offsets    []uint64
	Duplicates int
	Results    []RecordResult
	Rejected   int
	// DeadLetters is how many of the rejected records a partial write
	// kept in DeadLetterTable.
	DeadLetters     int
	DeadLetterTable string
	// SnapshotID is the snapshot holding the events, for WaitCommitted.
	SnapshotID int64
}

// WriteOne writes one event or row to the table named by ref.
func (s *Service) WriteOne(ctx context.Context, ref string, req Request) (WriteResult, error) {
	start := time.Now()
	t, err := s.resolveForWrite(ctx, ref, req, false, func(t *tableState) error {
		_, _, err := s.decodeOne(t, req)
		return err
	})
	if err != nil {
		return WriteResult{}, err
	}
	rec, partition, err := s.decodeOne(t, req)
	if err != nil && t.evolves() {
		// New fields: add their columns, then convert again.
		var t2 *tableState
		if t2, err = s.evolve(ctx, t, [][]byte{req.Body}); err != nil {
			return WriteResult{}, err
		}
		t = t2
		rec, partition, err = s.decodeOne(t, req)
	}
	if err != nil {
		t.m.rejected.Inc()
		t.m.bytesRejected.Add(float64(len(req.Body)))
		return WriteResult{}, err
	}
	res, err := s.appendRecords(ctx, t, []hot.Record{rec})
	if err != nil {
		return WriteResult{}, err
	}
	s.metrics.ack.Observe(time.Since(start).Seconds())
	s.count(t, res, len(req.Body))
	out := WriteResult{Table: t.name, Offset: res[0].Seq, Partition: partition, Stream: hot.StreamOf(res[0].Seq),
		Duplicate: res[0].Duplicate}
	if req.WaitCommitted {
		if out.SnapshotID, err = s.waitCommitted(ctx, t, res); err != nil {
			return WriteResult{}, err
		}
	}
	return out, nil
}

// resolveForWrite resolves the table of a write req. A missing table is
// auto-created only for a write that would store something in it: check
// must accept the body as the new table's before the table is created.
// The new table is an event table, or for plain JSON objects (plainRows)
// a typed table with columns from them (inferredTable). A body in a media
// type no new table takes is 415 for a missing table; one that fails
// check gets check's error. Either way nothing is created.
func (s *Service) resolveForWrite(ctx context.Context, ref string, req Request, bulk bool, check func(*tableState) error) (*tableState, error) {
	t, err := s.resolve(ctx, ref, nil)
	if err == nil || !s.autoCreate || !errors.Is(err, catalog.ErrNoSuchTable) {
		return t, err
	}
	mt := req.MediaType
	takes := eventMediaTypes
	if bulk {
		takes = eventBulkMediaTypes
	}
	if mt != "" && !slices.Contains(takes, mt) {
		return nil, fmt.Errorf("%w: table %s does not exist, and a new event table takes %s, not %s",
			ErrUnsupportedMediaType, ref, strings.Join(takes, ", "), mt)
	}
	id, err := s.Table(ref)
	if err != nil {
		return nil, err
	}
	create := &catalog.CreateTableRequest{}
	state := &tableState{ident: id, name: id.String(), events: true}
	if rows := s.plainRowsToInfer(req, bulk); rows != nil {
		if *create, err = s.inferredTable(id, rows); err != nil {
			return nil, err
		}
		state = &tableState{ident: id, name: id.String(), schema: create.Schema, props: create.Properties}
		if state.conv, err = rowConverter(state); err != nil {
			return nil, err
		}
	}
	if err := check(state); err != nil {
		return nil, err
	}
	return s.resolve(ctx, ref, create)
}

// resolve returns the state of the table ref names. With create, a
// missing table is created as create says (an event table when it names
// no schema).
func (s *Service) resolve(ctx context.Context, ref string, create *catalog.CreateTableRequest) (*tableState, error) {
	if t := s.cache.byRef(ref); t != nil {
		return t, nil
	}
	id, err := s.Table(ref)
	if err != nil {
		return nil, err
	}
	t, err := s.table(ctx, id, create)
	if err != nil {
		return nil, err
	}
	s.cache.putRef(ref, t)
	return t, nil
}

func (s *Service) count(t *tableState, res []hot.Result, bodyBytes int) {
	dups := 0
	for _, r := range res {
		if r.Duplicate {
			dups++
		}
	}
	if n := len(res) - dups; n > 0 {
		t.m.accepted.Add(float64(n))
	}
	if dups > 0 {
		t.m.duplicate.Add(float64(dups))
	}
	t.m.bytesAccepted.Add(float64(bodyBytes))
}

// decodeOne turns a single-write body into a hot record.
func (s *Service) decodeOne(t *tableState, req Request) (hot.Record, int32, error) {
	now := s.now()
	if !t.events {
		if req.MediaType != "" && req.MediaType != MediaJSON {
			return hot.Record{}, 0, fmt.Errorf("%w: table %s takes rows as %s, not %s", ErrUnsupportedMediaType, t.name, MediaJSON, req.MediaType)
		}
		value, key, err := t.conv.AppendConvertAt(nil, req.Body, now)
		if err != nil {
			return hot.Record{}, 0, fmt.Errorf("%w: %w", catalog.ErrInvalid, err)
		}
		key, err = oneKey(key, req.IdempotencyKey)
		return hot.Record{Key: key, Value: value}, 0, err
	}
	var env codec.Envelope
	var err error
	switch req.MediaType {
	case "", MediaJSON:
		env, err = codec.DecodeEnvelopeJSON(req.Body)
	case MediaProtobuf:
		env, err = codec.DecodeEnvelopeProto(req.Body, req.Partition)
	default:
		return hot.Record{}, 0, fmt.Errorf("%w: event table %s takes %s, not %s", ErrUnsupportedMediaType, t.name, strings.Join(eventMediaTypes, ", "), req.MediaType)
	}
	if err != nil {
		return hot.Record{}, 0, fmt.Errorf("%w: %w", catalog.ErrInvalid, err)
	}
	if env.IdempotencyKey, err = oneKey(env.IdempotencyKey, req.IdempotencyKey); err != nil {
		return hot.Record{}, 0, err
	}
	if env.EventTime.IsZero() {
		env.EventTime = now
	}
	ev := env.Event(now)
	value := make([]byte, 0, hotrow.MaxEventValueLen(ev))
	return hot.Record{Key: env.IdempotencyKey, Value: hotrow.AppendEventValue(value, ev)}, env.Partition, nil
}

// oneKey reconciles an idempotency key from the body with the header's.
func oneKey(body, header string) (string, error) {
	if err := codec.CheckIdempotencyKey("Idempotency-Key", header); err != nil {
		return "", fmt.Errorf("%w: %w", catalog.ErrInvalid, err)
	}
	switch {
	case header == "":
		return body, nil
	case body == "" || body == header:
		return header, nil
	}
	return "", fmt.Errorf("%w: the Idempotency-Key header and the body's idempotency key differ", catalog.ErrInvalid)
}

// WriteBulk writes many events or rows to the table named by ref: all or
// nothing, or with req.Partial the valid ones.
func (s *Service) WriteBulk(ctx context.Context, ref string, req Request) (BulkResult, error) {
	start := time.Now()
	bodyLen := len(req.Body)
	var name string // of a missing table
	var checked *decoded
	t, err := s.resolveForWrite(ctx, ref, req, true, func(t *tableState) error {
		name = t.name
		d, err := s.decodeBulk(ctx, t, req)
		switch {
		case err != nil:
			return err
		case len(d.bad) > 0 && !req.Partial:
			return &RecordsError{Records: d.bad}
		}
		checked = &d
		if len(d.recs) == 0 {
			return errStoresNothing
		}
		return nil
	})
	if errors.Is(err, errStoresNothing) {
		// Answered as the table would have, without creating it.
		out := BulkResult{Table: name, Offsets: []uint64{}}
		if req.Partial {
			out.Rejected, out.Results = len(checked.bad), make([]RecordResult, len(checked.bad))
			for i, b := range checked.bad {
				out.Results[i] = RecordResult{Index: b.Index, Err: b.Error()}
			}
		}
		return out, nil
	}
	if err != nil {
		return BulkResult{}, err
	}
	// The records decoded to create an event table are that table's,
	// unless someone else created it meanwhile as another kind.
	var d decoded
	if checked != nil && t.events {
		d = *checked
	} else if d, err = s.decodeBulk(ctx, t, req); err != nil {
		return BulkResult{}, err
	}
	var dead deadLetters
	if len(d.bad) > 0 {
		t.m.rejected.Add(float64(len(d.bad)))
		if !req.Partial {
			t.m.bytesRejected.Add(float64(bodyLen))
			return BulkResult{}, &RecordsError{Records: d.bad}
		}
		// The refused records are kept before the others are stored: if
		// that fails, the request fails whole and nothing is stored.
		if dead, err = s.keepDeadLetters(ctx, t, d.bad, bulkRecords(req), idempotencyMember(t), s.now()); err != nil {
			return BulkResult{}, err
		}
	}
	// The body is not needed any more; let it go before the hot tier
	// copies the records.
	req.Body = nil
	var res []hot.Result
	if len(d.recs) > 0 {
		if res, err = s.appendRecords(ctx, t, d.recs); err != nil {
			return BulkResult{}, err
		}
	}
	s.metrics.ack.Observe(time.Since(start).Seconds())
	s.count(t, res, bodyLen)

	out := BulkResult{Table: t.name, Offsets: make([]uint64, len(res)), Rejected: len(d.bad),
		DeadLetters: dead.n, DeadLetterTable: dead.table}
	for i, r := range res {
		out.Offsets[i] = r.Seq
		if r.Duplicate {
			out.Duplicates++
		}
	}
	if req.Partial {
		out.Results = make([]RecordResult, len(d.recs)+len(d.bad))
		for i, r := range res {
			out.Results[d.idx[i]] = RecordResult{Index: d.idx[i], Offset: r.Seq, Duplicate: r.Duplicate}
		}
		for _, b := range d.bad {
			out.Results[b.Index] = RecordResult{Index: b.Index, Err: b.Error()}
		}
	}
	if req.WaitCommitted && len(res) > 0 {
		if out.SnapshotID, err = s.waitCommitted(ctx, t, res); err != nil {
			return BulkResult{}, err
		}
	}
	return out, nil
}

// RecordCost is what a bulk write holds for each record beyond the bytes
// of its body and of the record's value, and is charged for each record
// before it decodes it: the hot.Record and its input index (with the
// slices' room to grow), the value's
// header (maxValueOverhead), the hot tier's result and the key and header
// of its batch entry (~64 bytes), the offsets answered and their JSON
// (~40 bytes), and for a partial write or a bad record its result or
// error and their JSON (~256 bytes). Idempotency keys, copied into the
// record's key and the hot tier's index, are charged once decoded.
const RecordCost = 2*int64(unsafe.Sizeof(hot.Record{})+unsafe.Sizeof(0)) + int64(unsafe.Sizeof(hot.Result{})) +
	maxValueOverhead + 64 + 40 + 256

// maxValueOverhead is how many bytes an event's hot value may take beyond
// its payload and idempotency key (hotrow.MaxEventValueLen).
const maxValueOverhead = 51

// rowChargeStep is how far a bulk write's row values may grow past what
// is charged before the next charge.
const rowChargeStep = 1 << 20

// recordStep is how many records of an event table's bulk write are
// charged at a time, before they are decoded.
const recordStep = 1024

// decoded is a bulk body decoded into hot records: the records, the input
// index of each, and the bad records.
type decoded struct {
	recs []hot.Record
	idx  []int
	bad  []codec.RecordError
}

// decodeBulk decodes a bulk body into hot records, charging
// RecordCost for each record before decoding it: a row table's rows are
// counted first, an event table's records charged recordStep at a time
// as they are decoded (counting a JSON body's records first took a third
// of the time of decoding them). The values of an event table's records
// go into a block the size of the body, which holds most or all of them
// (a value takes at most its bytes in the body and maxValueOverhead,
// which RecordCost covers), then into blocks of 1 MiB; the body's charge
// covers the rest.
func (s *Service) decodeBulk(ctx context.Context, t *tableState, req Request) (decoded, error) {
	if !t.events {
		return s.decodeRows(ctx, t, req)
	}
	var each func([]byte, codec.BulkFunc) error
	switch req.MediaType {
	case "", MediaJSON:
		each = codec.EachBulkJSON
	case MediaNDJSON:
		each = codec.EachBulkNDJSON
	case MediaProtobuf:
		each = codec.EachBulkProto
	default:
		return decoded{}, fmt.Errorf("%w: event table %s takes %s, not %s", ErrUnsupportedMediaType, t.name, strings.Join(eventBulkMediaTypes, ", "), req.MediaType)
	}
	now := s.now()
	var d decoded
	var keyBytes int64
	var block []byte
	blockSize := len(req.Body) + recordStep*maxValueOverhead
	var chargeErr error
	n := 0
	err := each(req.Body, func(env codec.Envelope, bad *codec.RecordError) error {
		if n%recordStep == 0 {
			if chargeErr = req.need(ctx, recordStep*RecordCost); chargeErr != nil {
				return chargeErr
			}
		}
		n++
		if bad != nil {
			d.bad = append(d.bad, *bad)
			return nil
		}
		if env.EventTime.IsZero() {
			env.EventTime = now
		}
		ev := env.Event(now)
		if size := hotrow.MaxEventValueLen(ev); cap(block)-len(block) < size {
			block = make([]byte, 0, max(size, blockSize))
			blockSize = 1 << 20
		}
		start := len(block)
		block = hotrow.AppendEventValue(block, ev)
		d.recs = append(d.recs, hot.Record{Key: env.IdempotencyKey, Value: block[start:len(block):len(block)]})
		d.idx = append(d.idx, n-1)
		keyBytes += int64(len(env.IdempotencyKey))
		return nil
	})
	if chargeErr != nil {
		return decoded{}, chargeErr
	}
	if err != nil {
		return decoded{}, fmt.Errorf("%w: %w", catalog.ErrInvalid, err)
	}
	return d, req.need(ctx, 2*keyBytes)
}

// decodeRows is decodeBulk for a row table.
func (s *Service) decodeRows(ctx context.Context, t *tableState, req Request) (decoded, error) {
	if req.MediaType != "" && req.MediaType != MediaJSON && req.MediaType != MediaNDJSON {
		return decoded{}, fmt.Errorf("%w: table %s takes rows as %s or %s, not %s", ErrUnsupportedMediaType, t.name, MediaJSON, MediaNDJSON, req.MediaType)
	}
	ndjson := req.MediaType == MediaNDJSON
	n, err := codec.CountBulk(req.Body, ndjson)
	if err != nil {
		return decoded{}, fmt.Errorf("%w: %w", catalog.ErrInvalid, err)
	}
	if err := req.need(ctx, int64(n)*RecordCost); err != nil {
		return decoded{}, err
	}
	rows, err := codec.SplitBulkRows(req.Body, ndjson)
	if err != nil {
		return decoded{}, fmt.Errorf("%w: %w", catalog.ErrInvalid, err)
	}
	d := decoded{recs: make([]hot.Record, 0, n), idx: make([]int, 0, n)}
	// Row values can be larger than their JSON (a decimal is 16 bytes):
	// charge what passes the body's size as it grows.
	var keyBytes int64
	charged, size := int64(len(req.Body)), int64(0)
	now := s.now()
	var retry []int // rows to convert again once the schema has evolved
	for i, row := range rows {
		value, key, err := t.conv.AppendConvertAt(nil, row, now)
		if err != nil {
			if t.evolves() {
				retry = append(retry, i)
				continue
			}
			d.bad = append(d.bad, codec.RecordErrorFor(i, err))
			continue
		}
		if size += int64(len(value)); size > charged {
			if err := req.need(ctx, size-charged+rowChargeStep); err != nil {
				return decoded{}, err
			}
			charged = size + rowChargeStep
		}
		d.recs = append(d.recs, hot.Record{Key: key, Value: value})
		d.idx = append(d.idx, i)
		keyBytes += int64(len(key))
	}
	if len(retry) > 0 {
		// One schema commit for the request's new fields, then the rows
		// that needed them. Their values are charged with the body's
		// slack (rowChargeStep).
		evolveRows := make([][]byte, len(retry))
		for j, i := range retry {
			evolveRows[j] = rows[i]
		}
		t2, err := s.evolve(ctx, t, evolveRows)
		if err != nil {
			return decoded{}, err
		}
		for _, i := range retry {
			value, key, err := t2.conv.AppendConvertAt(nil, rows[i], now)
			if err != nil {
				d.bad = append(d.bad, codec.RecordErrorFor(i, err))
				continue
			}
			d.recs = append(d.recs, hot.Record{Key: key, Value: value})
			d.idx = append(d.idx, i)
			keyBytes += int64(len(key))
		}
		slices.SortFunc(d.bad, func(a, b codec.RecordError) int { return a.Index - b.Index })
	}
	return d, req.need(ctx, 2*keyBytes)
}

// need adds n bytes to the request's charge, if it has one.
func (r *Request) need(ctx context.Context, n int64) error {
	if r.Charge == nil {
		return nil
	}
	return r.Charge.Need(ctx, n)
}

// MediaType is the media type of a Content-Type header, lower case,
// without parameters.
func MediaType(contentType string) string {
	if i := strings.IndexByte(contentType, ';'); i >= 0 {
		contentType = contentType[:i]
	}
	return strings.ToLower(strings.TrimSpace(contentType))
}
