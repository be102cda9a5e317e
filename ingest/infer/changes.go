package infer

import (
	"strings"

	"github.com/apache/iceberg-go"
)

// Change is what a schema needs to hold a row: a column added, or one
// widened as Iceberg allows (int to long).
type Change struct {
	// Path names the column: its parents' names and its own. A list's
	// name stands for its element struct.
	Path []string
	// Add is the type of an added column (field IDs are placeholders:
	// the schema update assigns fresh ones).
	Add iceberg.Type
	// Widen is the new type of a widened column.
	Widen iceberg.Type
}

// String names the change, for logs and errors.
func (c Change) String() string {
	if c.Add != nil {
		return "add " + strings.Join(c.Path, ".") + " " + c.Add.String()
	}
	return "widen " + strings.Join(c.Path, ".") + " to " + c.Widen.String()
}

// Changes returns what schema needs to hold rows of type row, a struct:
// columns for members it lacks (whose type is known), int columns widened
// to long for values beyond int's range. A member whose values the
// column cannot take is a *Conflict. Columns are matched by name, exactly.
func Changes(schema *iceberg.Schema, row *Type) ([]Change, error) {
	var out []Change
	err := structChanges(schema.AsStruct(), row, nil, &out)
	return out, err
}

func structChanges(st iceberg.StructType, row *Type, path []string, out *[]Change) error {
	for _, f := range row.Fields {
		p := append(append([]string(nil), path...), f.Name)
		col, ok := fieldByName(st, f.Name)
		if !ok {
			if f.Type.Known() {
				id := 0
				next := func() int { id++; return id }
				*out = append(*out, Change{Path: p, Add: IcebergType(f.Type, next)})
			}
			continue
		}
		if err := typeChanges(col.Type, f.Type, p, out); err != nil {
			return err
		}
	}
	return nil
}

func fieldByName(st iceberg.StructType, name string) (iceberg.NestedField, bool) {
	for _, f := range st.FieldList {
		if f.Name == name {
			return f, true
		}
	}
	return iceberg.NestedField{}, false
}

// typeChanges compares a column of type have with values of type got.
func typeChanges(have iceberg.Type, got *Type, path []string, out *[]Change) error {
	if got.Kind == Null {
		return nil
	}
	conflict := func() error {
		return &Conflict{Path: strings.Join(path, "."), Have: have.String(), Got: got.Kind.String()}
	}
	switch h := have.(type) {
	case *iceberg.StructType:
		if got.Kind != Struct {
			return conflict()
		}
		return structChanges(*h, got, path, out)
	case *iceberg.ListType:
		if got.Kind != List {
			return conflict()
		}
		return typeChanges(h.Element, got.Elem, path, out)
	case *iceberg.MapType:
		// An object or an array of entries; the converter checks them.
		if got.Kind != Struct && got.Kind != List {
			return conflict()
		}
		return nil
	}
	switch have.(type) {
	case iceberg.BooleanType:
		if got.Kind == Bool {
			return nil
		}
	case iceberg.Int32Type:
		if got.Kind == Long && got.Wide {
			*out = append(*out, Change{Path: path, Widen: iceberg.PrimitiveTypes.Int64})
			return nil
		}
		if got.Kind == Long {
			return nil
		}
	case iceberg.Int64Type:
		if got.Kind == Long {
			return nil
		}
	case iceberg.Float32Type:
		if got.Kind == Long || got.Kind == Double {
			if got.Inexact {
				*out = append(*out, Change{Path: path, Widen: iceberg.PrimitiveTypes.Float64})
			}
			return nil
		}
	case iceberg.Float64Type:
		if got.Kind == Long || got.Kind == Double {
			return nil
		}
	case iceberg.DecimalType:
		if got.Kind == Long || got.Kind == Double {
			// More digits before the point than the column holds: a wider
			// precision at the same scale, up to 38. More after it cannot
			// be widened, and the converter refuses the value.
			h := have.(iceberg.DecimalType)
			if p := got.Digits + h.Scale(); got.Scale >= 0 && got.Scale <= h.Scale() && p > h.Precision() && p <= 38 {
				*out = append(*out, Change{Path: path, Widen: iceberg.DecimalTypeOf(p, h.Scale())})
			}
			return nil
		}
	case iceberg.StringType, iceberg.UUIDType, iceberg.BinaryType, iceberg.FixedType, iceberg.TimeType:
		if got.Kind == String || got.Kind == Timestamp {
			return nil
		}
	case iceberg.DateType, iceberg.TimestampType, iceberg.TimestampTzType, iceberg.TimestampNsType, iceberg.TimestampTzNsType:
		if got.Kind == String || got.Kind == Timestamp || got.Kind == Long {
			return nil
		}
	}
	return conflict()
}
