package ingest

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/table"
	"github.com/zombi-db/zombi/catalog"
	"github.com/zombi-db/zombi/ingest/codec"
	"github.com/zombi-db/zombi/ingest/infer"
	"github.com/zombi-db/zombi/internal/ingesttable"
)

// Tables from data: a write of plain JSON objects to a table that does not
// exist creates a typed table whose columns come from the rows
// (package infer), and with PropUnknownFields = "evolve" a row with new
// members adds columns to its table through the catalog's commit path.

// Properties of tables inferred from data.
const (
	// PropInferTimestamps = "true" infers timestamptz for RFC 3339
	// strings of new members (InferOptions.Timestamps).
	PropInferTimestamps = "zombi.ingest.infer.timestamps"
	// PropInferTimeField names the top-level member whose date-times
	// partition the table (InferOptions.TimeField).
	PropInferTimeField = "zombi.ingest.infer.time-field"

	formatRows = "rows"
	evolve     = "evolve"

	// The columns Zombi fills in a table inferred from data.
	offsetColumn     = "_zombi_offset"
	ingestTimeColumn = "_zombi_ingest_time"

	// maxEvolveAttempts bounds the retries of a schema commit that loses
	// to concurrent commits.
	maxEvolveAttempts = 8

	// MaxInferredFields bounds the fields (columns, nested fields, list
	// elements) a table gets from data, at creation or by evolution: a
	// producer must not be able to grow a schema without end.
	MaxInferredFields = 1000
)

// schemaFields counts the fields of schema as fieldCount does.
func schemaFields(schema *iceberg.Schema) int {
	st := schema.AsStruct()
	return fieldCount(&st)
}

// fieldCount counts the fields of t: columns, nested fields, and the
// element, key and value fields of lists and maps.
func fieldCount(t iceberg.Type) int {
	switch t := t.(type) {
	case *iceberg.StructType:
		n := 0
		for _, f := range t.FieldList {
			n += 1 + fieldCount(f.Type)
		}
		return n
	case *iceberg.ListType:
		return 1 + fieldCount(t.Element)
	case *iceberg.MapType:
		return 2 + fieldCount(t.KeyType) + fieldCount(t.ValueType)
	}
	return 0
}

// InferOptions configure tables inferred from data; they become the new
// table's properties, which steer its evolution later.
type InferOptions struct {
	// Disabled turns plain JSON writes to missing tables away as before:
	// the body must be an event envelope.
	Disabled bool
	// Timestamps infers timestamptz for every string member that is an
	// RFC 3339 date-time with an offset; otherwise only TimeField's.
	Timestamps bool
	// TimeField names a top-level member holding RFC 3339 date-times: the
	// table is partitioned by its hour. Without it (or when the first rows
	// have no such date-time in it) the table is partitioned by the hour
	// Zombi accepted each row.
	TimeField string
}

// inferOptions are the inference settings of a table's properties.
func inferOptions(props iceberg.Properties) infer.Options {
	o := infer.Options{Timestamps: props[PropInferTimestamps] == "true", Reserved: reservedColumns(props)}
	if f := props[PropInferTimeField]; f != "" {
		o.TimeFields = []string{f}
	}
	return o
}

func reservedColumns(props iceberg.Properties) []string {
	var out []string
	for _, k := range []string{ingesttable.PropOffsetColumn, ingesttable.PropIngestTimeColumn} {
		if c := props[k]; c != "" {
			out = append(out, c)
		}
	}
	return out
}

// plainRows returns the rows of a write body if they are plain JSON
// objects rather than event envelopes: the first row is an object with a
// member that is not an envelope's and no payload member. It returns nil
// for an envelope (even a bad one: {"partition": 1} lacks a payload) or a
// body that is not JSON rows, which the event path then answers.
func plainRows(req Request, bulk bool) [][]byte {
	var rows [][]byte
	switch {
	case req.MediaType != "" && req.MediaType != MediaJSON && req.MediaType != MediaNDJSON:
		return nil
	case bulk:
		var err error
		if rows, err = codec.SplitBulkRows(req.Body, req.MediaType == MediaNDJSON); err != nil || len(rows) == 0 {
			return nil
		}
	case req.MediaType == MediaNDJSON:
		return nil
	default:
		rows = [][]byte{req.Body}
	}
	names, err := infer.Members(rows[0])
	if err != nil {
		return nil
	}
	plain := false
	for _, name := range names {
		switch name {
		case "payload", "payload_base64":
			return nil
		case "partition", "timestamp_ms", "idempotency_key":
		default:
			plain = true
		}
	}
	if !plain {
		return nil
	}
	return rows
}

// plainRowsToInfer is plainRows, unless inference is off: then a write
// to a missing table is an event table's, and its body is not split.
func (s *Service) plainRowsToInfer(req Request, bulk bool) [][]byte {
	if s.infer.Disabled {
		return nil
	}
	return plainRows(req, bulk)
}

// inferredTable is the table request for id, with columns from rows.
// Rows that conflict with the others are left out of the inference; the
// write then refuses them as it would for any table.
func (s *Service) inferredTable(id catalog.Ident, rows [][]byte) (catalog.CreateTableRequest, error) {
	props := iceberg.Properties{
		PropFormat:                       formatRows,
		PropUnknownFields:                evolve,
		ingesttable.PropOffsetColumn:     offsetColumn,
		ingesttable.PropIngestTimeColumn: ingestTimeColumn,
		propCompressionLevel:             "1",
		PropInferTimestamps:              strconv.FormatBool(s.infer.Timestamps),
		PropInferTimeField:               s.infer.TimeField,
	}
	if s.infer.TimeField == "" {
		delete(props, PropInferTimeField)
	}
	opts := inferOptions(props)
	merged := &infer.Type{Kind: infer.Struct}
	for _, r := range rows {
		t, err := infer.Row(r, opts)
		if err != nil {
			continue
		}
		if m, err := infer.Merge(merged, t); err == nil {
			merged = m
		}
	}
	id1 := 2
	next := func() int { id1++; return id1 }
	st := infer.IcebergType(merged, next).(*iceberg.StructType)
	fields := append([]iceberg.NestedField{
		{ID: 1, Name: offsetColumn, Type: iceberg.PrimitiveTypes.Int64, Doc: "the row's sequence in the table, set by Zombi"},
		{ID: 2, Name: ingestTimeColumn, Type: iceberg.PrimitiveTypes.TimestampTz, Doc: "when Zombi accepted the row"},
	}, st.FieldList...)
	schema := iceberg.NewSchema(0, fields...)
	if n := schemaFields(schema); n > MaxInferredFields {
		return catalog.CreateTableRequest{}, fmt.Errorf("%w: the records would make a table of %d fields; a table from data has at most %d",
			catalog.ErrInvalid, n, MaxInferredFields)
	}
	timeID := 2
	if f, ok := schema.FindFieldByName(s.infer.TimeField); ok && s.infer.TimeField != "" && f.Type.Equals(iceberg.PrimitiveTypes.TimestampTz) {
		timeID = f.ID
	}
	timeField, _ := schema.FindFieldByID(timeID)
	fieldID := 1000
	spec, err := iceberg.NewPartitionSpecOpts(iceberg.AddPartitionFieldBySourceID(timeID, timeField.Name+"_hour", iceberg.HourTransform{}, schema, &fieldID))
	if err != nil {
		return catalog.CreateTableRequest{}, err
	}
	order, err := table.NewSortOrder(1, []table.SortField{
		{SourceIDs: []int{timeID}, Transform: iceberg.IdentityTransform{}, Direction: table.SortASC, NullOrder: table.NullsFirst},
		{SourceIDs: []int{1}, Transform: iceberg.IdentityTransform{}, Direction: table.SortASC, NullOrder: table.NullsFirst},
	})
	if err != nil {
		return catalog.CreateTableRequest{}, err
	}
	return catalog.CreateTableRequest{Ident: id, Schema: schema, Spec: &spec, SortOrder: &order, Properties: props}, nil
}

// evolve adds to t's table the columns that rows (which t's converter
// refused) need, in one schema commit, and returns the table's state
// after it. Rows that conflict with the table's columns, or that are not
// JSON objects, are left for the converter to refuse again. A table
// without PropUnknownFields = "evolve" is returned as it is.
func (s *Service) evolve(ctx context.Context, t *tableState, rows [][]byte) (*tableState, error) {
	if t.events || t.props[PropUnknownFields] != evolve || len(rows) == 0 {
		return t, nil
	}
	needed := func(t *tableState) (*infer.Type, bool) {
		opts := inferOptions(t.props)
		merged := &infer.Type{Kind: infer.Struct}
		found := false
		for _, r := range rows {
			rt, err := infer.Row(r, opts)
			if err != nil {
				continue
			}
			ch, err := infer.Changes(t.schema, rt)
			if err != nil || len(ch) == 0 {
				continue
			}
			if m, err := infer.Merge(merged, rt); err == nil {
				merged, found = m, true
			}
		}
		return merged, found
	}
	if _, ok := needed(t); !ok {
		return t, nil
	}
	mu, _ := s.evolving.LoadOrStore(cacheKey(t.ident), &sync.Mutex{})
	mu.(*sync.Mutex).Lock()
	defer mu.(*sync.Mutex).Unlock()
	for attempt := 1; ; attempt++ {
		// Another writer may have added the columns meanwhile.
		s.cache.forget(t.ident)
		fresh, err := s.load(ctx, t.ident)
		if err != nil {
			return nil, err
		}
		merged, ok := needed(fresh)
		if !ok {
			return fresh, nil
		}
		changes, err := infer.Changes(fresh.schema, merged)
		if err != nil || len(changes) == 0 {
			return fresh, nil
		}
		n := schemaFields(fresh.schema)
		for _, c := range changes {
			if c.Add != nil {
				n += 1 + fieldCount(c.Add)
			}
		}
		if n > MaxInferredFields {
			return nil, fmt.Errorf("%w: the records' new fields would give %s %d fields; a table evolves with its data to at most %d",
				catalog.ErrInvalid, fresh.name, n, MaxInferredFields)
		}
		err = s.commitChanges(ctx, fresh, changes)
		if err == nil {
			s.metrics.schema.WithLabelValues("evolved").Inc()
			s.log.Info("schema evolved with the data", "table", fresh.name, "changes", changeList(changes))
			s.cache.forget(t.ident)
			return s.load(ctx, t.ident)
		}
		if !errors.Is(err, catalog.ErrCommitFailed) || attempt == maxEvolveAttempts {
			return nil, fmt.Errorf("evolving the schema of %s (%s): %w", fresh.name, changeList(changes), err)
		}
	}
}

func changeList(changes []infer.Change) string {
	parts := make([]string, len(changes))
	for i, c := range changes {
		parts[i] = c.String()
	}
	return strings.Join(parts, ", ")
}

// commitChanges commits changes to t's schema, asserting that its current
// schema is still t's.
func (s *Service) commitChanges(ctx context.Context, t *tableState, changes []infer.Change) error {
	tbl, err := s.catalog.LoadTable(ctx, t.ident)
	if err != nil {
		return err
	}
	if tbl.Metadata.CurrentSchema().ID != t.schema.ID {
		return fmt.Errorf("%w: the schema changed", catalog.ErrCommitFailed)
	}
	id := append(append(table.Identifier{}, t.ident.Namespace...), t.ident.Name)
	tx := table.New(id, tbl.Metadata, tbl.MetadataLocation, nil, nil).NewTransaction()
	us := tx.UpdateSchema(true, false)
	for _, c := range changes {
		if c.Add != nil {
			us.AddColumn(c.Path, c.Add, "", false, nil)
		} else {
			us.UpdateColumn(c.Path, table.ColumnUpdate{FieldType: iceberg.Optional[iceberg.Type]{Val: c.Widen, Valid: true}})
		}
	}
	if err := us.Commit(); err != nil {
		return fmt.Errorf("%w: %w", catalog.ErrInvalid, err)
	}
	tc, err := tx.TableCommit()
	if err != nil {
		return fmt.Errorf("%w: %w", catalog.ErrInvalid, err)
	}
	_, err = s.catalog.CommitTable(ctx, catalog.TableChange{Ident: t.ident, Requirements: tc.Requirements, Updates: tc.Updates}, nil)
	return err
}
