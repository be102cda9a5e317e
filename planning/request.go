package planning

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/apache/iceberg-go"
)

// Request is a scan to plan, with the fields of the REST spec's
// PlanTableScanRequest.
type Request struct {
	// SnapshotID names the snapshot of a point-in-time scan; nil: the
	// table's current snapshot.
	SnapshotID *int64
	// StartSnapshotID (exclusive) and EndSnapshotID (inclusive) make an
	// incremental scan of the data files appended between them. Both or
	// neither; not with SnapshotID.
	StartSnapshotID *int64
	EndSnapshotID   *int64
	// Select are the columns the client reads; they are checked against
	// the scan's schema (Iceberg's metadata columns such as _file and _pos
	// are accepted) and do not change the plan.
	Select []string
	// Filter is the row filter in the REST expression JSON; empty: none.
	Filter json.RawMessage
	// CaseSensitive is how Filter, Select and StatsFields name columns.
	CaseSensitive bool
	// UseSnapshotSchema binds names to the schema of the snapshot read
	// rather than the table's current schema (time travel).
	UseSnapshotSchema bool
	// StatsFields are the columns whose statistics the returned data files
	// carry; none: no column statistics.
	StatsFields []string
	// MinRowsRequested, when set, lets the plan stop once the files
	// returned surely hold that many rows.
	MinRowsRequested *int64
}

// incremental reports whether r is an incremental scan.
func (r *Request) incremental() bool { return r.StartSnapshotID != nil || r.EndSnapshotID != nil }

// check validates the fields that do not depend on the table.
func (r *Request) check() error {
	switch {
	case (r.StartSnapshotID == nil) != (r.EndSnapshotID == nil):
		return invalidf("start-snapshot-id and end-snapshot-id go together")
	case r.incremental() && r.SnapshotID != nil:
		return invalidf("snapshot-id cannot be combined with start-snapshot-id and end-snapshot-id")
	case r.MinRowsRequested != nil && *r.MinRowsRequested < 0:
		return invalidf("min-rows-requested must not be negative")
	case len(r.Filter) > MaxFilterBytes:
		return invalidf("filter is %d bytes; at most %d are planned", len(r.Filter), MaxFilterBytes)
	case len(r.Select) > maxNames || len(r.StatsFields) > maxNames:
		return invalidf("select and stats-fields name at most %d columns each", maxNames)
	}
	return nil
}

// Limits on what a request may ask of the planner. A filter is evaluated
// against every manifest and data file a plan reads, so its size bounds
// the work per file.
const (
	// MaxFilterBytes is the largest filter JSON planned.
	MaxFilterBytes = 1 << 20
	// MaxFilterNodes bounds the expressions, terms and literals of a
	// filter (an IN list of n values counts n+2).
	MaxFilterNodes = 100_000
	// MaxFilterDepth bounds the nesting of and/or/not.
	MaxFilterDepth = 128
	// maxNames bounds select and stats-fields.
	maxNames = 10_000
)

// parseFilter parses the request's filter against schema; nil when there
// is none. Names are resolved as caseSensitive says. The result is
// unbound; bind checks that it binds.
func parseFilter(raw json.RawMessage, schema *iceberg.Schema, caseSensitive bool) (iceberg.BooleanExpression, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return nil, nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var tree any
	if err := dec.Decode(&tree); err != nil {
		return nil, invalidf("filter is not JSON: %v", err)
	}
	w := walker{schema: schema, caseSensitive: caseSensitive}
	if err := w.expr(tree, 0); err != nil {
		return nil, err
	}
	if w.renamed {
		// Names were resolved case-insensitively: hand iceberg-go, whose
		// parser binds case-sensitively, the schema's spelling.
		var err error
		if raw, err = json.Marshal(tree); err != nil {
			return nil, err
		}
	}
	expr, err := iceberg.ParseExpr(raw, schema)
	if err != nil {
		return nil, invalidf("filter: %v", err)
	}
	if _, err := iceberg.BindExpr(schema, expr, caseSensitive); err != nil {
		return nil, invalidf("filter: %v", err)
	}
	return expr, nil
}

// walker checks a filter's size and shape before it is parsed, and with
// caseSensitive false rewrites the column names to the schema's spelling.
type walker struct {
	schema        *iceberg.Schema
	caseSensitive bool
	nodes         int
	renamed       bool
}

func (w *walker) count(n int) error {
	w.nodes += n
	if w.nodes > MaxFilterNodes {
		return invalidf("filter has more than %d nodes", MaxFilterNodes)
	}
	return nil
}

func (w *walker) expr(v any, depth int) error {
	if depth > MaxFilterDepth {
		return invalidf("filter nests deeper than %d", MaxFilterDepth)
	}
	if err := w.count(1); err != nil {
		return err
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return nil // a constant, or malformed: the parser says which
	}
	for _, k := range []string{"child", "left", "right"} {
		if c, ok := obj[k]; ok {
			if err := w.expr(c, depth+1); err != nil {
				return err
			}
		}
	}
	if vals, ok := obj["values"].([]any); ok {
		if err := w.count(len(vals)); err != nil {
			return err
		}
	}
	if t, ok := obj["term"]; ok {
		return w.term(obj, "term", t)
	}
	return nil
}

// term resolves a term: a column name, or an object whose "term" is one.
func (w *walker) term(parent map[string]any, key string, t any) error {
	if err := w.count(1); err != nil {
		return err
	}
	switch t := t.(type) {
	case string:
		if w.caseSensitive || w.schema == nil {
			return nil
		}
		f, ok := w.schema.FindFieldByNameCaseInsensitive(t)
		if !ok {
			return invalidf("filter: no column %q", t)
		}
		if name, ok := w.schema.FindColumnName(f.ID); ok && name != t {
			parent[key] = name
			w.renamed = true
		}
	case map[string]any:
		if inner, ok := t["term"]; ok {
			return w.term(t, "term", inner)
		}
	}
	return nil
}

// metadataColumns are the names of Iceberg's metadata columns, which
// engines put into select (Spark's row-level DELETE and MERGE read _file
// and _pos) but which are not in the table schema.
var metadataColumns = map[string]bool{
	"_file": true, "_pos": true, "_deleted": true, "_spec_id": true, "_partition": true,
	"_change_type": true, "_change_ordinal": true, "_commit_snapshot_id": true,
	"_row_id": true, "_last_updated_sequence_number": true,
}

// findField resolves a column name in schema.
func findField(schema *iceberg.Schema, name string, caseSensitive bool) (iceberg.NestedField, bool) {
	if caseSensitive {
		return schema.FindFieldByName(name)
	}
	return schema.FindFieldByNameCaseInsensitive(name)
}

// checkSelect checks that every selected name is a column of schema or a
// metadata column.
func checkSelect(schema *iceberg.Schema, names []string, caseSensitive bool) error {
	for _, n := range names {
		if _, ok := findField(schema, n, caseSensitive); ok {
			continue
		}
		first, _, _ := strings.Cut(n, ".")
		if metadataColumns[strings.ToLower(first)] {
			continue
		}
		return invalidf("select: no column %q in schema %d", n, schema.ID)
	}
	return nil
}

// statsIDs resolves stats-fields to the field IDs whose statistics the
// data files carry.
func statsIDs(schema *iceberg.Schema, names []string, caseSensitive bool) (map[int]bool, error) {
	if len(names) == 0 {
		return nil, nil
	}
	ids := make(map[int]bool, len(names))
	for _, n := range names {
		f, ok := findField(schema, n, caseSensitive)
		if !ok {
			return nil, invalidf("stats-fields: no column %q in schema %d", n, schema.ID)
		}
		ids[f.ID] = true
	}
	return ids, nil
}

// String names the request in logs.
func (r *Request) String() string {
	var b strings.Builder
	switch {
	case r.incremental():
		fmt.Fprintf(&b, "incremental (%d, %d]", *r.StartSnapshotID, *r.EndSnapshotID)
	case r.SnapshotID != nil:
		fmt.Fprintf(&b, "snapshot %d", *r.SnapshotID)
	default:
		b.WriteString("current snapshot")
	}
	if len(r.Filter) > 0 {
		fmt.Fprintf(&b, ", filter of %d bytes", len(r.Filter))
	}
	return b.String()
}
