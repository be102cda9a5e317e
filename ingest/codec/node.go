package codec

import (
	"fmt"
	"slices"

	"github.com/apache/iceberg-go"
)

// kind is an Iceberg type as the codec handles it.
type kind uint8

const (
	// kindUnsupported types (variant, geometry, geography) have no values
	// here: rows cannot be converted for them and they read as null.
	kindUnsupported kind = iota
	kindUnknown          // Iceberg v3 "unknown": always null
	kindBool
	kindInt
	kindLong
	kindFloat
	kindDouble
	kindDecimal
	kindDate
	kindTime
	kindTimestamp
	kindTimestampTz
	kindTimestampNs
	kindTimestampTzNs
	kindString
	kindUUID
	kindFixed
	kindBinary
	kindStruct
	kindList
	kindMap
)

// node is a field or type of a schema, prepared for converting and
// reading values.
type node struct {
	kind kind
	typ  iceberg.Type
	// id, name and required describe the field holding the value (for list
	// elements and map keys and values: the element, key, value field).
	id       int
	name     string
	required bool

	precision, scale int // decimal
	length           int // fixed

	// Struct: fields in schema order, their indexes by ascending field ID,
	// and their indexes by name.
	fields []*node
	byID   []int
	names  map[string]int

	elem       *node // list
	key, value *node // map
}

// schemaNode prepares the top-level struct of schema.
func schemaNode(schema *iceberg.Schema) (*node, error) {
	st := schema.AsStruct()
	return structNode(&st)
}

func fieldNode(f iceberg.NestedField) (*node, error) {
	n, err := typeNode(f.Type)
	if err != nil {
		return nil, fmt.Errorf("field %s: %w", f.Name, err)
	}
	n.id, n.name, n.required = f.ID, f.Name, f.Required
	return n, nil
}

func typeNode(t iceberg.Type) (*node, error) {
	n := &node{typ: t}
	switch t := t.(type) {
	case iceberg.BooleanType:
		n.kind = kindBool
	case iceberg.Int32Type:
		n.kind = kindInt
	case iceberg.Int64Type:
		n.kind = kindLong
	case iceberg.Float32Type:
		n.kind = kindFloat
	case iceberg.Float64Type:
		n.kind = kindDouble
	case iceberg.DecimalType:
		n.kind, n.precision, n.scale = kindDecimal, t.Precision(), t.Scale()
		if n.precision < 1 || n.precision > maxDecimalDigits || n.scale < 0 || n.scale > n.precision {
			return nil, fmt.Errorf("unsupported %s", t)
		}
	case iceberg.DateType:
		n.kind = kindDate
	case iceberg.TimeType:
		n.kind = kindTime
	case iceberg.TimestampType:
		n.kind = kindTimestamp
	case iceberg.TimestampTzType:
		n.kind = kindTimestampTz
	case iceberg.TimestampNsType:
		n.kind = kindTimestampNs
	case iceberg.TimestampTzNsType:
		n.kind = kindTimestampTzNs
	case iceberg.StringType:
		n.kind = kindString
	case iceberg.UUIDType:
		n.kind = kindUUID
	case iceberg.FixedType:
		n.kind, n.length = kindFixed, t.Len()
	case iceberg.BinaryType:
		n.kind = kindBinary
	case iceberg.UnknownType:
		n.kind = kindUnknown
	case *iceberg.StructType:
		return structNode(t)
	case *iceberg.ListType:
		n.kind = kindList
		elem, err := fieldNode(t.ElementField())
		if err != nil {
			return nil, err
		}
		n.elem = elem
	case *iceberg.MapType:
		n.kind = kindMap
		key, err := fieldNode(t.KeyField())
		if err != nil {
			return nil, err
		}
		value, err := fieldNode(t.ValueField())
		if err != nil {
			return nil, err
		}
		n.key, n.value = key, value
	default:
		n.kind = kindUnsupported
	}
	return n, nil
}

func structNode(t *iceberg.StructType) (*node, error) {
	n := &node{kind: kindStruct, typ: t, names: make(map[string]int, len(t.FieldList))}
	for i, f := range t.FieldList {
		c, err := fieldNode(f)
		if err != nil {
			return nil, err
		}
		if _, dup := n.names[f.Name]; dup {
			return nil, fmt.Errorf("two fields named %q", f.Name)
		}
		n.names[f.Name] = i
		n.fields = append(n.fields, c)
		n.byID = append(n.byID, i)
	}
	// Field IDs are unique in a schema: iceberg.NewSchema checks.
	slices.SortFunc(n.byID, func(a, b int) int { return n.fields[a].id - n.fields[b].id })
	return n, nil
}

// unsupported returns n or the first type within it that has no codec
// (kindUnsupported), or nil.
func (n *node) unsupported() *node {
	switch n.kind {
	case kindUnsupported:
		return n
	case kindStruct:
		for _, f := range n.fields {
			if u := f.unsupported(); u != nil {
				return u
			}
		}
	case kindList:
		return n.elem.unsupported()
	case kindMap:
		if u := n.key.unsupported(); u != nil {
			return u
		}
		return n.value.unsupported()
	}
	return nil
}
