package hotrow

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/decimal128"
	"github.com/apache/arrow-go/v18/arrow/extensions"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/table"
)

// ArrowBuilder builds an Arrow record of hot values in a table's current
// schema. Format 1 values (raw events) fill the event schema's columns by
// field ID; format 2 values (typed rows) fill columns by field ID, with
// Iceberg's type promotions: columns added after a row was written are
// null, columns dropped since are ignored. A value that does not fit (a
// required column without a value, a type that cannot be promoted) is an
// error, and nothing of it is appended. An ArrowBuilder is not safe for
// concurrent use.
type ArrowBuilder struct {
	table  string
	root   *Node
	rb     *array.RecordBuilder
	events eventColumns
	fields []fieldValue // scratch
	path   Path         // where in the row, for errors
	// offsetID is the field ID of the top-level long column that holds
	// each typed row's sequence (WithOffsetColumn), or 0; seq is the
	// sequence of the row being appended.
	offsetID int
	seq      uint64
	// maxSchemaID is one more than the highest schema ID a row may have
	// been converted with, or 0 for any.
	maxSchemaID int
}

// ErrNewerSchema is returned by Append for a typed row converted with a
// schema newer than any the builder knows (WithKnownSchemas): the table
// changed after its metadata was read. Reading the table again helps.
var ErrNewerSchema = errors.New("the row was written with a schema newer than the table's metadata at hand")

// BuilderOption configures an ArrowBuilder.
type BuilderOption func(*ArrowBuilder)

// WithOffsetColumn fills the top-level long column with field ID id with
// each typed row's sequence, whatever the row holds for it. A column that
// is not a top-level long is left as the rows have it.
func WithOffsetColumn(id int) BuilderOption {
	return func(b *ArrowBuilder) { b.offsetID = id }
}

// WithKnownSchemas makes Append refuse, with ErrNewerSchema, typed rows
// converted with a schema whose ID is above maxID, the highest schema ID
// of the table's metadata: such a row may hold columns the builder's
// schema lacks, which would be lost.
func WithKnownSchemas(maxID int) BuilderOption {
	return func(b *ArrowBuilder) { b.maxSchemaID = maxID + 1 }
}

// NewArrowBuilder returns a builder for records of schema, the table's
// current schema, with field IDs in the Arrow fields' metadata
// (PARQUET:field_id) as iceberg-go's table.SchemaToArrowSchema sets them.
// table is the table's name, the value of the table column of raw events.
// Release the builder when done.
func NewArrowBuilder(mem memory.Allocator, schema *iceberg.Schema, table string, opts ...BuilderOption) (*ArrowBuilder, error) {
	root, err := SchemaNode(schema)
	if err != nil {
		return nil, err
	}
	as, err := tableArrowSchema(schema)
	if err != nil {
		return nil, err
	}
	b := &ArrowBuilder{
		table:  validUTF8(table),
		root:   root,
		rb:     array.NewRecordBuilder(mem, as),
		events: eventColumnsOf(root),
	}
	for _, o := range opts {
		o(b)
	}
	if b.offsetID != 0 {
		i := slices.IndexFunc(root.Fields, func(f *Node) bool { return f.ID == b.offsetID })
		if i < 0 || root.Fields[i].Kind != KindLong {
			b.offsetID = 0
		}
	}
	return b, nil
}

func tableArrowSchema(schema *iceberg.Schema) (*arrow.Schema, error) {
	return table.SchemaToArrowSchema(schema, nil, true, false)
}

// Schema returns the Arrow schema of the records.
func (b *ArrowBuilder) Schema() *arrow.Schema { return b.rb.Schema() }

// Release releases the builder's memory.
func (b *ArrowBuilder) Release() { b.rb.Release() }

// Len returns the number of rows appended since the last NewRecord.
func (b *ArrowBuilder) Len() int {
	if len(b.rb.Fields()) == 0 {
		return 0
	}
	return b.rb.Field(0).Len()
}

// NewRecord returns the rows appended so far as a record and resets the
// builder. Release the record when done.
func (b *ArrowBuilder) NewRecord() arrow.RecordBatch { return b.rb.NewRecordBatch() }

// Append appends the hot value of event seq as a row.
func (b *ArrowBuilder) Append(seq uint64, value []byte) error {
	if len(value) == 0 {
		return fmt.Errorf("%w: empty", errValue)
	}
	switch value[0] {
	case FormatEvent:
		return b.appendEvent(seq, value)
	case FormatRow:
	default:
		return fmt.Errorf("%w: unknown format %d", errValue, value[0])
	}
	r := valueReader{b: value}
	id := rowHeader(&r)
	if r.err == nil && b.maxSchemaID > 0 && id >= b.maxSchemaID {
		return fmt.Errorf("%w (schema %d)", ErrNewerSchema, id)
	}
	fields := structFields(&r, 0, b.fields[:0])
	b.fields = fields[:0]
	if r.err == nil && len(r.b) != 0 {
		r.fail("%d bytes after the row", len(r.b))
	}
	if r.err != nil {
		return r.err
	}
	// Check everything, then append: a failure leaves no partial row.
	b.seq = seq
	b.path = b.path[:0]
	if err := b.appendFields(nil, b.root, fields); err != nil {
		return err
	}
	return b.appendFields(b.rb.Fields(), b.root, fields)
}

// appendFields appends the fields of a struct to its children's builders,
// or with builders nil only checks them.
func (b *ArrowBuilder) appendFields(builders []array.Builder, n *Node, fields []fieldValue) error {
	for i, f := range n.Fields {
		var fb array.Builder
		if builders != nil {
			fb = builders[i]
		}
		b.path.PushField(f.Name)
		if n == b.root && f.ID == b.offsetID && b.offsetID != 0 {
			if fb != nil {
				fb.(*array.Int64Builder).Append(int64(b.seq))
			}
			b.path.Pop()
			continue
		}
		fv, ok := findField(fields, f.ID)
		if !ok {
			if f.Required {
				return b.path.errorf("required column has no value (the row was written before it was added?)")
			}
			if fb != nil {
				fb.AppendNull()
			}
		} else if err := b.appendValue(fb, f, fv.tag, fv.body); err != nil {
			return err
		}
		b.path.Pop()
	}
	return nil
}

// appendValue appends a non-null value of node n to bld, or with bld nil
// only checks it.
func (b *ArrowBuilder) appendValue(bld array.Builder, n *Node, tag byte, body []byte) error {
	if !n.Kind.accepts(tag) {
		return b.path.errorf("stored %s value does not fit column type %s", tagNames[tag], n.Type)
	}
	switch n.Kind {
	case KindStruct:
		r := valueReader{b: body}
		fields := structFields(&r, 0, nil)
		if r.err != nil {
			return r.err
		}
		var children []array.Builder
		if bld != nil {
			sb := bld.(*array.StructBuilder)
			sb.Append(true)
			children = make([]array.Builder, sb.NumField())
			for i := range children {
				children[i] = sb.FieldBuilder(i)
			}
		}
		return b.appendFields(children, n, fields)
	case KindList:
		r := valueReader{b: body}
		count := r.length()
		var vb array.Builder
		if bld != nil {
			lb := bld.(*array.ListBuilder)
			lb.Append(true)
			vb = lb.ValueBuilder()
		}
		for i := 0; i < count; i++ {
			tag := r.byte1()
			body := checkValue(&r, tag, 0)
			if r.err != nil {
				return r.err
			}
			b.path.PushIndex(i)
			if err := b.appendElement(vb, n.Elem, tag, body); err != nil {
				return err
			}
			b.path.Pop()
		}
		return nil
	case KindMap:
		r := valueReader{b: body}
		count := r.length()
		var kb, ib array.Builder
		if bld != nil {
			mb := bld.(*array.MapBuilder)
			mb.Append(true)
			kb, ib = mb.KeyBuilder(), mb.ItemBuilder()
		}
		for i := 0; i < count; i++ {
			ktag := r.byte1()
			kbody := checkValue(&r, ktag, 0)
			vtag := r.byte1()
			vbody := checkValue(&r, vtag, 0)
			if r.err != nil {
				return r.err
			}
			b.path.PushIndex(i)
			b.path.PushField("key")
			if err := b.appendValue(kb, n.Key, ktag, kbody); err != nil {
				return err
			}
			b.path.Pop()
			b.path.PushField("value")
			if err := b.appendElement(ib, n.Value, vtag, vbody); err != nil {
				return err
			}
			b.path.Pop()
			b.path.Pop()
		}
		return nil
	case KindUnknown, KindUnsupported:
		return b.path.errorf("stored %s value for a column of type %s", tagNames[tag], n.Type)
	}
	v, err := readScalar(n, tag, body)
	if err != nil {
		return b.path.errorf("%v", err)
	}
	if bld == nil {
		return nil
	}
	switch n.Kind {
	case KindBool:
		bld.(*array.BooleanBuilder).Append(v.i == 1)
	case KindInt:
		bld.(*array.Int32Builder).Append(int32(v.i))
	case KindLong:
		bld.(*array.Int64Builder).Append(v.i)
	case KindFloat:
		bld.(*array.Float32Builder).Append(float32(v.f))
	case KindDouble:
		bld.(*array.Float64Builder).Append(v.f)
	case KindDecimal:
		x := decimalFromBytes(v.b)
		bld.(*array.Decimal128Builder).Append(decimal128.New(int64(x.hi), x.lo))
	case KindDate:
		bld.(*array.Date32Builder).Append(arrow.Date32(v.i))
	case KindTime:
		bld.(*array.Time64Builder).Append(arrow.Time64(v.i))
	case KindTimestamp, KindTimestampTz, KindTimestampNs, KindTimestampTzNs:
		bld.(*array.TimestampBuilder).Append(arrow.Timestamp(v.i))
	case KindString:
		bld.(*array.StringBuilder).BinaryBuilder.Append(v.b)
	case KindUUID:
		bld.(*extensions.UUIDBuilder).AppendBytes([16]byte(v.b))
	case KindFixed:
		bld.(*array.FixedSizeBinaryBuilder).Append(v.b)
	case KindBinary:
		bld.(*array.BinaryBuilder).Append(v.b)
	}
	return nil
}

// appendElement appends a list element or map value, which may be null.
func (b *ArrowBuilder) appendElement(bld array.Builder, n *Node, tag byte, body []byte) error {
	if tag != tagNull {
		return b.appendValue(bld, n, tag, body)
	}
	if n.Required {
		return b.path.errorf("null %s, which the column requires", n.Name)
	}
	if bld != nil {
		bld.AppendNull()
	}
	return nil
}

// eventColumns says how raw events fill a schema's top-level columns.
type eventColumns struct {
	// field is, by column, the event field (EventField*) that fills it,
	// or 0 for none (null).
	field []int
	// err is why raw events cannot be read into the schema, if they cannot.
	err error
	// requiredKey names the idempotency key column when it is required.
	requiredKey string
}

func eventColumnsOf(root *Node) eventColumns {
	ec := eventColumns{field: make([]int, len(root.Fields))}
	for i, f := range root.Fields {
		var ok bool
		switch f.ID {
		case EventFieldSequence:
			ok = f.Kind == KindLong
		case EventFieldTable, EventFieldIdempotencyKey:
			ok = f.Kind == KindString
		case EventFieldPartition:
			ok = f.Kind == KindInt || f.Kind == KindLong
		case EventFieldPayload:
			ok = f.Kind == KindBinary
		case EventFieldEventTime, EventFieldIngestTime:
			ok = f.Kind == KindTimestampTz
		default:
			if f.Required && ec.err == nil {
				ec.err = fmt.Errorf("required column %s is not in raw events", f.Name)
			}
			continue
		}
		if !ok {
			if ec.err == nil {
				want := EventSchema().Field(f.ID - 1).Type
				ec.err = fmt.Errorf("column %s (field ID %d) is %s; raw events have %s", f.Name, f.ID, f.Type, want)
			}
			continue
		}
		ec.field[i] = f.ID
		if f.ID == EventFieldIdempotencyKey && f.Required {
			ec.requiredKey = f.Name
		}
	}
	return ec
}

func (b *ArrowBuilder) appendEvent(seq uint64, value []byte) error {
	if b.events.err != nil {
		return b.events.err
	}
	ev, err := DecodeEventValue(value)
	if err != nil {
		return err
	}
	if seq > math.MaxInt64 {
		return fmt.Errorf("sequence %d out of range", seq)
	}
	if b.events.requiredKey != "" && ev.IdempotencyKey == "" {
		return fmt.Errorf("required column %s has no value: the event has no idempotency key", b.events.requiredKey)
	}
	for i, bld := range b.rb.Fields() {
		switch b.events.field[i] {
		case EventFieldSequence:
			bld.(*array.Int64Builder).Append(int64(seq))
		case EventFieldTable:
			bld.(*array.StringBuilder).Append(b.table)
		case EventFieldPartition:
			if ib, ok := bld.(*array.Int32Builder); ok {
				ib.Append(ev.Partition)
			} else {
				bld.(*array.Int64Builder).Append(int64(ev.Partition))
			}
		case EventFieldPayload:
			bld.(*array.BinaryBuilder).Append(ev.Payload)
		case EventFieldEventTime:
			bld.(*array.TimestampBuilder).Append(arrow.Timestamp(ev.EventTime.UnixMicro()))
		case EventFieldIngestTime:
			bld.(*array.TimestampBuilder).Append(arrow.Timestamp(ev.IngestTime.UnixMicro()))
		case EventFieldIdempotencyKey:
			if ev.IdempotencyKey == "" {
				bld.AppendNull()
			} else {
				bld.(*array.StringBuilder).Append(validUTF8(ev.IdempotencyKey))
			}
		default:
			bld.AppendNull()
		}
	}
	return nil
}

// validUTF8 returns s with invalid UTF-8 replaced by U+FFFD. Keys reach the
// hot tier from HTTP headers too, which may hold any bytes; Arrow strings
// and JSON must be UTF-8.
func validUTF8(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}
