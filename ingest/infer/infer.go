// Package infer derives Iceberg types from JSON rows: the schema of a table
// created by its first write, and the columns a later row adds to it.
//
// The rules, which docs/ingest.md states for users:
//
//	JSON value                          Iceberg type
//	true, false                         boolean
//	integer (no fraction, no exponent)  long (an integer beyond long's range
//	                                    is refused: it would lose digits)
//	other number                        double
//	string                              string; timestamptz when it is an
//	                                    RFC 3339 date-time with an offset and
//	                                    timestamps are inferred for the field
//	object                              struct of its members
//	array                               list of its elements' type
//	null, []                            no type yet: the field gets a column
//	                                    once a value says which
//
// Every column is optional. Two rows that disagree merge as follows: long
// and double make double, timestamptz and string make string, structs
// merge member by member, lists element by element; any other pair (a
// number and a string, an object and an array) is a conflict, and the row
// that brings it is refused.
package infer

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/apache/iceberg-go"
)

// Kind is the kind of an inferred type.
type Kind uint8

// Kinds. Null is a value that says nothing about its type (null, or an
// array with no element that does).
const (
	Null Kind = iota
	Bool
	Long
	Double
	String
	Timestamp // timestamptz
	Struct
	List
)

var kindNames = [...]string{"null", "boolean", "long", "double", "string", "timestamptz", "struct", "list"}

func (k Kind) String() string { return kindNames[k] }

// Type is the inferred type of a JSON value.
type Type struct {
	Kind Kind
	// Wide is set for a Long with a value beyond int's range.
	Wide bool
	// Inexact is set for a number (Long or Double) with a value that a
	// float cannot hold exactly.
	Inexact bool
	// Digits and Scale are the most digits before and after the decimal
	// point of a number's values as written; Scale is -1 when one was
	// written with an exponent.
	Digits, Scale int
	// Fields are a struct's members, in the order first seen.
	Fields []Field
	// Elem is a list's element type.
	Elem *Type
}

// Field is a struct member.
type Field struct {
	Name string
	Type *Type
}

// field returns the member called name, or nil.
func (t *Type) field(name string) *Type {
	for _, f := range t.Fields {
		if f.Name == name {
			return f.Type
		}
	}
	return nil
}

// Options steer inference.
type Options struct {
	// Timestamps infers timestamptz for every string member that is an
	// RFC 3339 date-time with an offset.
	Timestamps bool
	// TimeFields are top-level members inferred as timestamptz when their
	// strings are such date-times, whatever Timestamps says.
	TimeFields []string
	// Reserved are top-level member names a row may not have (the columns
	// Zombi fills itself).
	Reserved []string
}

// ErrConflict is wrapped by the errors of values whose types disagree.
var ErrConflict = errors.New("conflicting types")

// Conflict is a value whose type disagrees with what was inferred or
// declared before for the same field.
type Conflict struct {
	Path      string
	Have, Got string
}

func (e *Conflict) Error() string {
	return fmt.Sprintf("%s: a %s value where the column is %s", e.Path, e.Got, e.Have)
}

// Unwrap makes a Conflict an ErrConflict.
func (e *Conflict) Unwrap() error { return ErrConflict }

// Row infers the type of one JSON row, which must be an object.
func Row(doc []byte, opts Options) (*Type, error) {
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("not JSON: %w", err)
	}
	if dec.More() {
		return nil, errors.New("more than one JSON value")
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("a row must be a JSON object, not %s", jsonKind(v))
	}
	// Members in document order: encoding/json maps lose it, so read the
	// keys again.
	order, err := memberOrder(doc)
	if err != nil {
		return nil, err
	}
	for _, name := range opts.Reserved {
		if _, ok := obj[name]; ok {
			return nil, fmt.Errorf("%s: Zombi fills this column itself; a row may not have it", name)
		}
	}
	t := &Type{Kind: Struct}
	for _, name := range order {
		if err := checkName(strconv.Quote(name), name); err != nil {
			return nil, err
		}
		ft, err := valueType(obj[name], name, opts.Timestamps || contains(opts.TimeFields, name))
		if err != nil {
			return nil, err
		}
		t.Fields = append(t.Fields, Field{Name: name, Type: ft})
	}
	return t, nil
}

// maxNameLen bounds the length of a field name, in bytes.
const maxNameLen = 255

// checkName refuses a member name that would make a poor column name: an
// empty one, one longer than maxNameLen bytes, one with a '.' (Iceberg
// paths join names with dots) or with a control or bidi-control
// character, or invalid UTF-8.
func checkName(path, name string) error {
	switch {
	case name == "":
		return fmt.Errorf("%s: an empty member name cannot name a column", path)
	case len(name) > maxNameLen:
		return fmt.Errorf("%s: a member name longer than %d bytes cannot name a column", path, maxNameLen)
	case !utf8.ValidString(name):
		return fmt.Errorf("%s: a member name that is not valid UTF-8 cannot name a column", path)
	case strings.Contains(name, "."):
		return fmt.Errorf("%s: a member name with a '.' cannot name a column", path)
	}
	for _, r := range name {
		if unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r) {
			return fmt.Errorf("%s: a member name with control characters cannot name a column", path)
		}
	}
	return nil
}

func contains(names []string, name string) bool {
	for _, n := range names {
		if n == name {
			return true
		}
	}
	return false
}

// Members returns the top-level member names of a JSON object in the
// order they appear, or an error for a document that is not an object.
func Members(doc []byte) ([]string, error) {
	if d := bytes.TrimLeft(doc, " \t\r\n"); len(d) == 0 || d[0] != '{' {
		return nil, errors.New("not a JSON object")
	}
	return memberOrder(doc)
}

// memberOrder returns the top-level member names of a JSON object in the
// order they appear (the first of repeated names).
func memberOrder(doc []byte) ([]string, error) {
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.UseNumber()
	if _, err := dec.Token(); err != nil { // {
		return nil, err
	}
	var names []string
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		name, _ := tok.(string)
		if !seen[name] {
			seen[name] = true
			names = append(names, name)
		}
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return nil, err
		}
	}
	return names, nil
}

// valueType infers the type of a decoded JSON value at path.
func valueType(v any, path string, timestamps bool) (*Type, error) {
	switch v := v.(type) {
	case nil:
		return &Type{Kind: Null}, nil
	case bool:
		return &Type{Kind: Bool}, nil
	case json.Number:
		s := v.String()
		digits, scale := numberDigits(s)
		if !strings.ContainsAny(s, ".eE") {
			n, err := strconv.ParseInt(s, 10, 64)
			if err != nil {
				return nil, fmt.Errorf("%s: an integer beyond long's range, which no inferred column holds without losing digits", path)
			}
			return &Type{Kind: Long, Wide: n < math.MinInt32 || n > math.MaxInt32,
				Inexact: int64(float32(n)) != n, Digits: digits, Scale: scale}, nil
		}
		f, err := v.Float64()
		if err != nil || math.IsInf(f, 0) {
			return nil, fmt.Errorf("%s: a number beyond double's range", path)
		}
		return &Type{Kind: Double, Inexact: float64(float32(f)) != f, Digits: digits, Scale: scale}, nil
	case string:
		if timestamps && isTimestamp(v) {
			return &Type{Kind: Timestamp}, nil
		}
		return &Type{Kind: String}, nil
	case map[string]any:
		// Nested members in a stable order: sorted (document order is
		// kept for the top level only).
		t := &Type{Kind: Struct}
		for _, name := range sortedKeys(v) {
			if err := checkName(path+"."+strconv.Quote(name), name); err != nil {
				return nil, err
			}
			ft, err := valueType(v[name], path+"."+name, timestamps)
			if err != nil {
				return nil, err
			}
			t.Fields = append(t.Fields, Field{Name: name, Type: ft})
		}
		return t, nil
	case []any:
		elem := &Type{Kind: Null}
		for i, e := range v {
			et, err := valueType(e, fmt.Sprintf("%s[%d]", path, i), timestamps)
			if err != nil {
				return nil, err
			}
			if elem, err = merge(elem, et, path+"[]"); err != nil {
				return nil, err
			}
		}
		return &Type{Kind: List, Elem: elem}, nil
	}
	return nil, fmt.Errorf("%s: unexpected JSON value %T", path, v)
}

// numberDigits counts the digits of a JSON number before and after its
// decimal point, leading zeros of the integer part left out; scale is -1
// for a number with an exponent.
func numberDigits(s string) (digits, scale int) {
	s = strings.TrimPrefix(s, "-")
	if strings.ContainsAny(s, "eE") {
		return len(s), -1
	}
	intPart, frac, _ := strings.Cut(s, ".")
	intPart = strings.TrimLeft(intPart, "0")
	return len(intPart), len(frac)
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	// A simple insertion sort: objects are small.
	for i := 1; i < len(keys); i++ {
		for j := i; j > 0 && keys[j] < keys[j-1]; j-- {
			keys[j], keys[j-1] = keys[j-1], keys[j]
		}
	}
	return keys
}

func isTimestamp(s string) bool {
	if len(s) < len("2006-01-02T15:04:05Z") || len(s) > 40 {
		return false
	}
	_, err := time.Parse(time.RFC3339Nano, s)
	return err == nil
}

func jsonKind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "a boolean"
	case json.Number:
		return "a number"
	case string:
		return "a string"
	case []any:
		return "an array"
	}
	return "an object"
}

// Merge returns the type that holds values of both a and b, or a
// *Conflict.
func Merge(a, b *Type) (*Type, error) { return merge(a, b, "") }

func merge(a, b *Type, path string) (*Type, error) {
	switch {
	case b.Kind == Null:
		return a, nil
	case a.Kind == Null:
		return b, nil
	case a.Kind == b.Kind && a.Kind == Struct:
		out := &Type{Kind: Struct, Fields: append([]Field(nil), a.Fields...)}
		for _, f := range b.Fields {
			i := fieldIndex(out.Fields, f.Name)
			if i < 0 {
				out.Fields = append(out.Fields, f)
				continue
			}
			m, err := merge(out.Fields[i].Type, f.Type, join(path, f.Name))
			if err != nil {
				return nil, err
			}
			out.Fields[i] = Field{Name: f.Name, Type: m}
		}
		return out, nil
	case a.Kind == b.Kind && a.Kind == List:
		e, err := merge(a.Elem, b.Elem, path+"[]")
		if err != nil {
			return nil, err
		}
		return &Type{Kind: List, Elem: e}, nil
	case a.Kind == b.Kind, a.Kind == Long && b.Kind == Double, a.Kind == Double && b.Kind == Long:
		k := a.Kind
		if a.Kind != b.Kind {
			k = Double
		}
		scale := max(a.Scale, b.Scale)
		if a.Scale < 0 || b.Scale < 0 {
			scale = -1
		}
		return &Type{Kind: k, Wide: a.Wide || b.Wide, Inexact: a.Inexact || b.Inexact,
			Digits: max(a.Digits, b.Digits), Scale: scale}, nil
	case a.Kind == Timestamp && b.Kind == String, a.Kind == String && b.Kind == Timestamp:
		return &Type{Kind: String}, nil
	}
	return nil, &Conflict{Path: path, Have: a.Kind.String(), Got: b.Kind.String()}
}

func fieldIndex(fs []Field, name string) int {
	for i, f := range fs {
		if f.Name == name {
			return i
		}
	}
	return -1
}

func join(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

// Known reports whether t says what type its values have: not null, and
// for a list, its elements not null.
func (t *Type) Known() bool {
	switch t.Kind {
	case Null:
		return false
	case List:
		return t.Elem.Known()
	case Struct:
		for _, f := range t.Fields {
			if f.Type.Known() {
				return true
			}
		}
		return false
	}
	return true
}

// IcebergType returns the Iceberg type of t, a known type (Known), with
// field IDs from next. Struct members whose type is not known are left
// out; every field is optional.
func IcebergType(t *Type, next func() int) iceberg.Type {
	switch t.Kind {
	case Bool:
		return iceberg.PrimitiveTypes.Bool
	case Long:
		return iceberg.PrimitiveTypes.Int64
	case Double:
		return iceberg.PrimitiveTypes.Float64
	case String:
		return iceberg.PrimitiveTypes.String
	case Timestamp:
		return iceberg.PrimitiveTypes.TimestampTz
	case List:
		id := next()
		return &iceberg.ListType{ElementID: id, Element: IcebergType(t.Elem, next), ElementRequired: false}
	case Struct:
		st := &iceberg.StructType{}
		for _, f := range t.Fields {
			if !f.Type.Known() {
				continue
			}
			id := next()
			st.FieldList = append(st.FieldList, iceberg.NestedField{ID: id, Name: f.Name, Type: IcebergType(f.Type, next)})
		}
		return st
	}
	panic(fmt.Sprintf("infer: no Iceberg type for %s", t.Kind))
}
