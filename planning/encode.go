package planning

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/catalog/rest"
	"github.com/apache/iceberg-go/table"
	"github.com/google/uuid"
)

// encoder turns planned tasks into the REST wire form, as Iceberg's Java
// ContentFileParser writes it: the reference client is the strictest
// reader (a float must look like one, binary is upper-case hex, a
// partition is an array even when empty).
type encoder struct {
	meta table.Metadata
	// schema is the schema the plan bound names to; renames, when it is
	// not the current one (see residual).
	schema, current *iceberg.Schema
	// stats are the field IDs whose column statistics data files carry.
	stats map[int]bool
	// fallback is the residual of a task iceberg-go left without one: the
	// whole bound filter, or true.
	fallback json.RawMessage
	// partition fields and result types by spec ID.
	types map[int]*partType
}

// newEncoder encodes tasks of a table with metadata meta, planned with
// schema and filter bound (nil: none).
func newEncoder(meta table.Metadata, schema *iceberg.Schema, stats map[int]bool, bound iceberg.BooleanExpression) (*encoder, error) {
	e := &encoder{meta: meta, schema: schema, current: meta.CurrentSchema(), stats: stats, types: map[int]*partType{}}
	e.fallback = json.RawMessage("true")
	if bound != nil {
		b, err := e.residual(bound)
		if err != nil {
			return nil, fmt.Errorf("encoding the filter as a residual: %w", err)
		}
		e.fallback = b
	}
	return e, nil
}

// residual encodes a bound residual. A scan of an older snapshot (time
// travel) names columns as that snapshot's schema does, while Iceberg's
// Java client binds a task's residual to both the table's current schema
// (to evaluate it per partition) and the scan's (to filter row groups):
// a residual that names a column the two schemas call differently, or
// that only one has, binds in neither everywhere and fails the read. Such
// a residual is sent as true. That only loses a row-group skip: every
// client filters the rows it reads with its own filter as well.
func (e *encoder) residual(expr iceberg.BooleanExpression) (json.RawMessage, error) {
	b, err := json.Marshal(expr)
	if err != nil || e.schema.ID == e.current.ID {
		return b, err
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var tree any
	if err := dec.Decode(&tree); err != nil {
		return nil, err
	}
	if !e.sameNames(tree) {
		return json.RawMessage("true"), nil
	}
	return b, nil
}

// sameNames reports whether every column an expression tree names has
// that name, for the same field, in the current schema too.
func (e *encoder) sameNames(v any) bool {
	obj, ok := v.(map[string]any)
	if !ok {
		return true
	}
	for _, k := range []string{"child", "left", "right"} {
		if c, ok := obj[k]; ok && !e.sameNames(c) {
			return false
		}
	}
	t, ok := obj["term"]
	if !ok {
		return true
	}
	if inner, ok := t.(map[string]any); ok {
		return e.sameNames(inner)
	}
	name, ok := t.(string)
	if !ok {
		return true
	}
	f, ok := e.schema.FindFieldByName(name)
	if !ok {
		return false
	}
	now, ok := e.current.FindColumnName(f.ID)
	return ok && now == name
}

// page encodes the tasks of one page. A file split into several tasks is
// sent once (the REST task has no byte range); delete files are listed
// once per page and referenced by index.
func (e *encoder) page(tasks []table.FileScanTask) (rest.ScanTasks, error) {
	out := rest.ScanTasks{FileScanTasks: make([]rest.RESTFileScanTask, 0, len(tasks))}
	deletes := map[string]int{}
	seen := make(map[string]bool, len(tasks))
	for _, t := range tasks {
		path := t.File.FilePath()
		if seen[path] {
			continue
		}
		seen[path] = true
		df, err := e.dataFile(t.File)
		if err != nil {
			return rest.ScanTasks{}, err
		}
		task := rest.RESTFileScanTask{DataFile: df, ResidualFilter: e.fallback}
		if t.Residual != nil {
			if task.ResidualFilter, err = e.residual(t.Residual); err != nil {
				return rest.ScanTasks{}, fmt.Errorf("encoding the residual of %s: %w", path, err)
			}
		}
		for _, group := range [][]iceberg.DataFile{t.DeleteFiles, t.EqualityDeleteFiles, t.DeletionVectorFiles} {
			for _, d := range group {
				key := d.FilePath()
				if ref := d.ReferencedDataFile(); ref != nil {
					// One Puffin file holds the vectors of many data files:
					// each is its own delete file on the wire.
					key += "\x00" + *ref
				}
				if off := d.ContentOffset(); off != nil {
					key += "\x00" + strconv.FormatInt(*off, 10)
				}
				i, ok := deletes[key]
				if !ok {
					del, err := e.deleteFile(d)
					if err != nil {
						return rest.ScanTasks{}, err
					}
					i = len(out.DeleteFiles)
					deletes[key] = i
					out.DeleteFiles = append(out.DeleteFiles, del)
				}
				if !slices.Contains(task.DeleteFileReferences, i) {
					task.DeleteFileReferences = append(task.DeleteFileReferences, i)
				}
			}
		}
		out.FileScanTasks = append(out.FileScanTasks, task)
	}
	return out, nil
}

func (e *encoder) content(f iceberg.DataFile) (rest.RESTContentFile, error) {
	c := rest.RESTContentFile{
		SpecID:          int(f.SpecID()),
		FilePath:        f.FilePath(),
		FileFormat:      strings.ToLower(string(f.FileFormat())),
		FileSizeInBytes: f.FileSizeBytes(),
		RecordCount:     f.Count(),
		SplitOffsets:    f.SplitOffsets(),
		SortOrderID:     f.SortOrderID(),
	}
	switch f.ContentType() {
	case iceberg.EntryContentData:
		c.Content = "data"
	case iceberg.EntryContentPosDeletes:
		c.Content = "position-deletes"
	case iceberg.EntryContentEqDeletes:
		c.Content = "equality-deletes"
	default:
		return c, fmt.Errorf("file %s has unknown content %v", f.FilePath(), f.ContentType())
	}
	if k := f.KeyMetadata(); k != nil {
		s := upperHex(k)
		c.KeyMetadata = &s
	}
	var err error
	if c.Partition, err = e.partition(f); err != nil {
		return c, fmt.Errorf("partition of %s: %w", f.FilePath(), err)
	}
	return c, nil
}

func (e *encoder) dataFile(f iceberg.DataFile) (*rest.RESTDataFile, error) {
	c, err := e.content(f)
	if err != nil {
		return nil, err
	}
	df := &rest.RESTDataFile{RESTContentFile: c, FirstRowID: f.FirstRowID()}
	if len(e.stats) > 0 {
		df.ColumnSizes = e.counts(f.ColumnSizes())
		df.ValueCounts = e.counts(f.ValueCounts())
		df.NullValueCounts = e.counts(f.NullValueCounts())
		df.NaNValueCounts = e.counts(f.NaNValueCounts())
		df.LowerBounds = e.bounds(f.LowerBoundValues())
		df.UpperBounds = e.bounds(f.UpperBoundValues())
	}
	return df, nil
}

func (e *encoder) deleteFile(f iceberg.DataFile) (rest.RESTDeleteFile, error) {
	c, err := e.content(f)
	if err != nil {
		return rest.RESTDeleteFile{}, err
	}
	return rest.RESTDeleteFile{
		RESTContentFile:    c,
		EqualityIDs:        f.EqualityFieldIDs(),
		ReferencedDataFile: f.ReferencedDataFile(),
		ContentOffset:      f.ContentOffset(),
		ContentSizeInBytes: f.ContentSizeInBytes(),
	}, nil
}

// counts keeps the requested columns of a count map, in field ID order.
func (e *encoder) counts(m map[int]int64) *rest.RESTCountMap {
	keys := keep(e.stats, m)
	if keys == nil {
		return nil
	}
	out := &rest.RESTCountMap{Keys: keys, Values: make([]int64, len(keys))}
	for i, k := range keys {
		out.Values[i] = m[k]
	}
	return out
}

// bounds keeps the requested columns of a bound map, values as upper-case
// hex of Iceberg's single-value binary form.
func (e *encoder) bounds(m map[int][]byte) *rest.RESTValueMap {
	keys := keep(e.stats, m)
	if keys == nil {
		return nil
	}
	out := &rest.RESTValueMap{Keys: keys, Values: make([]string, len(keys))}
	for i, k := range keys {
		out.Values[i] = upperHex(m[k])
	}
	return out
}

// keep is the keys of m that stats names, in order.
func keep[V any](stats map[int]bool, m map[int]V) []int {
	var keys []int
	for k := range m {
		if stats[k] {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	return keys
}

func upperHex(b []byte) string { return strings.ToUpper(hex.EncodeToString(b)) }

// partition is f's partition tuple as a JSON array in spec field order.
func (e *encoder) partition(f iceberg.DataFile) ([]json.RawMessage, error) {
	pt, err := e.partitionType(int(f.SpecID()))
	if err != nil {
		return nil, err
	}
	out := make([]json.RawMessage, len(pt.ids))
	if len(out) == 0 {
		return out, nil
	}
	values := f.Partition()
	for i, id := range pt.ids {
		if out[i], err = partitionValue(values[id], pt.types[i]); err != nil {
			return nil, fmt.Errorf("field %s: %w", pt.names[i], err)
		}
	}
	return out, nil
}

// partType is a partition spec's fields as the encoder needs them.
type partType struct {
	ids   []int
	names []string
	types []iceberg.Type
}

// partitionType is spec specID's fields with their result types. A source
// column dropped from the current schema is looked up in the older ones.
func (e *encoder) partitionType(specID int) (*partType, error) {
	if t, ok := e.types[specID]; ok {
		return t, nil
	}
	spec := e.meta.PartitionSpecByID(specID)
	if spec == nil {
		return nil, fmt.Errorf("unknown partition spec %d", specID)
	}
	pt := &partType{}
	for _, field := range spec.Fields() {
		src, ok := sourceType(e.meta, field.SourceID())
		if !ok {
			return nil, fmt.Errorf("partition field %s: no schema has its source column %d", field.Name, field.SourceID())
		}
		pt.ids = append(pt.ids, field.FieldID)
		pt.names = append(pt.names, field.Name)
		pt.types = append(pt.types, field.Transform.ResultType(src))
	}
	e.types[specID] = pt
	return pt, nil
}

func sourceType(meta table.Metadata, id int) (iceberg.Type, bool) {
	if t, ok := meta.CurrentSchema().FindTypeByID(id); ok {
		return t, true
	}
	for _, s := range meta.Schemas() {
		if t, ok := s.FindTypeByID(id); ok {
			return t, true
		}
	}
	return nil, false
}

// partitionValue encodes one partition value of type typ as Iceberg's
// single-value JSON: numbers for integers and floats (a float always with
// a fraction or exponent), ISO-8601 text for dates and times, upper-case
// hex for binary, plain text for decimals and UUIDs.
func partitionValue(v any, typ iceberg.Type) (json.RawMessage, error) {
	if v == nil {
		return json.RawMessage("null"), nil
	}
	var s any
	switch typ.(type) {
	case iceberg.BooleanType:
		b, ok := v.(bool)
		if !ok {
			return nil, badValue(v, typ)
		}
		s = b
	case iceberg.Int32Type, iceberg.Int64Type:
		n, ok := integer(v)
		if !ok {
			return nil, badValue(v, typ)
		}
		return strconv.AppendInt(nil, n, 10), nil
	case iceberg.Float32Type, iceberg.Float64Type:
		switch x := v.(type) {
		case float32:
			return floatJSON(float64(x), 32)
		case float64:
			return floatJSON(x, 64)
		}
		return nil, badValue(v, typ)
	case iceberg.DateType:
		switch x := v.(type) {
		case iceberg.Date:
			s = x.ToTime().Format(time.DateOnly)
		case time.Time:
			s = x.UTC().Format(time.DateOnly)
		default:
			n, ok := integer(v)
			if !ok {
				return nil, badValue(v, typ)
			}
			s = iceberg.Date(n).ToTime().Format(time.DateOnly)
		}
	case iceberg.TimeType:
		n, ok := integer(v)
		if t, isTime := v.(iceberg.Time); isTime {
			n, ok = int64(t), true
		}
		if !ok {
			return nil, badValue(v, typ)
		}
		s = time.UnixMicro(n).UTC().Format("15:04:05.000000")
	case iceberg.TimestampType, iceberg.TimestampTzType:
		var us int64
		switch x := v.(type) {
		case iceberg.Timestamp:
			us = int64(x)
		case time.Time:
			us = x.UnixMicro()
		default:
			n, ok := integer(v)
			if !ok {
				return nil, badValue(v, typ)
			}
			us = n
		}
		s = timestamp(time.UnixMicro(us).UTC(), "2006-01-02T15:04:05.000000", typ)
	case iceberg.TimestampNsType, iceberg.TimestampTzNsType:
		var ns int64
		switch x := v.(type) {
		case iceberg.TimestampNano:
			ns = int64(x)
		case time.Time:
			ns = x.UnixNano()
		default:
			n, ok := integer(v)
			if !ok {
				return nil, badValue(v, typ)
			}
			ns = n
		}
		s = timestamp(time.Unix(0, ns).UTC(), "2006-01-02T15:04:05.000000000", typ)
	case iceberg.StringType:
		str, ok := v.(string)
		if !ok {
			return nil, badValue(v, typ)
		}
		s = str
	case iceberg.UUIDType:
		switch x := v.(type) {
		case uuid.UUID:
			s = x.String()
		case [16]byte:
			s = uuid.UUID(x).String()
		case []byte:
			u, err := uuid.FromBytes(x)
			if err != nil {
				return nil, badValue(v, typ)
			}
			s = u.String()
		case string:
			s = x
		default:
			return nil, badValue(v, typ)
		}
	case iceberg.BinaryType, iceberg.FixedType:
		switch x := v.(type) {
		case []byte:
			s = upperHex(x)
		case string:
			s = upperHex([]byte(x))
		default:
			return nil, badValue(v, typ)
		}
	case iceberg.DecimalType:
		switch x := v.(type) {
		case iceberg.Decimal:
			s = x.String()
		case iceberg.DecimalLiteral:
			s = x.String()
		default:
			return nil, badValue(v, typ)
		}
	default:
		return nil, fmt.Errorf("partition values of type %s are not supported", typ)
	}
	if str, ok := s.(string); ok && plain(str) {
		// Dates, times and most strings need no escaping.
		return append(append(append(make([]byte, 0, len(str)+2), '"'), str...), '"'), nil
	}
	return json.Marshal(s)
}

// plain reports whether s is printable ASCII that JSON quotes as it is.
func plain(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			return false
		}
	}
	return true
}

func timestamp(t time.Time, layout string, typ iceberg.Type) string {
	switch typ.(type) {
	case iceberg.TimestampTzType, iceberg.TimestampTzNsType:
		return t.Format(layout) + "+00:00"
	}
	return t.Format(layout)
}

func integer(v any) (int64, bool) {
	switch x := v.(type) {
	case int32:
		return int64(x), true
	case int64:
		return x, true
	case int:
		return int64(x), true
	case iceberg.Date:
		return int64(x), true
	}
	return 0, false
}

// floatJSON writes f so that JSON readers see a floating-point number:
// Iceberg's Java parser refuses 1 where it wants a double, so it is 1.0.
func floatJSON(f float64, bits int) (json.RawMessage, error) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return nil, fmt.Errorf("%v has no JSON form", f)
	}
	s := strconv.FormatFloat(f, 'g', -1, bits)
	if !strings.ContainsAny(s, ".eE") {
		s += ".0"
	}
	return json.RawMessage(s), nil
}

func badValue(v any, typ iceberg.Type) error {
	return fmt.Errorf("value %v (%T) is not a %s", v, v, typ)
}
