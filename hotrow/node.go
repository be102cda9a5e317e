package hotrow

import (
	"fmt"
	"slices"

	"github.com/apache/iceberg-go"
)

// Kind is an Iceberg type as format 2 handles it.
type Kind uint8

const (
	// KindUnsupported types (variant, geometry, geography) have no values
	// here: rows cannot be converted for them and they read as null.
	KindUnsupported Kind = iota
	KindUnknown          // Iceberg v3 "unknown": always null
	KindBool
	KindInt
	KindLong
	KindFloat
	KindDouble
	KindDecimal
	KindDate
	KindTime
	KindTimestamp
	KindTimestampTz
	KindTimestampNs
	KindTimestampTzNs
	KindString
	KindUUID
	KindFixed
	KindBinary
	KindStruct
	KindList
	KindMap
)

// A Node is a field or type of a schema, prepared for writing and reading
// values.
type Node struct {
	Kind Kind
	Type iceberg.Type
	// ID, Name and Required describe the field holding the value (for list
	// elements and map keys and values: the element, key, value field).
	ID       int
	Name     string
	Required bool

	Precision, Scale int // decimal
	Length           int // fixed

	// Struct: fields in schema order, their indexes by ascending field ID,
	// and their indexes by name.
	Fields []*Node
	ByID   []int
	Names  map[string]int

	Elem       *Node // list
	Key, Value *Node // map
}

// SchemaNode prepares the top-level struct of schema.
func SchemaNode(schema *iceberg.Schema) (*Node, error) {
	st := schema.AsStruct()
	return structNode(&st)
}

func fieldNode(f iceberg.NestedField) (*Node, error) {
	n, err := typeNode(f.Type)
	if err != nil {
		return nil, fmt.Errorf("field %s: %w", f.Name, err)
	}
	n.ID, n.Name, n.Required = f.ID, f.Name, f.Required
	return n, nil
}

func typeNode(t iceberg.Type) (*Node, error) {
	n := &Node{Type: t}
	switch t := t.(type) {
	case iceberg.BooleanType:
		n.Kind = KindBool
	case iceberg.Int32Type:
		n.Kind = KindInt
	case iceberg.Int64Type:
		n.Kind = KindLong
	case iceberg.Float32Type:
		n.Kind = KindFloat
	case iceberg.Float64Type:
		n.Kind = KindDouble
	case iceberg.DecimalType:
		n.Kind, n.Precision, n.Scale = KindDecimal, t.Precision(), t.Scale()
		if n.Precision < 1 || n.Precision > maxDecimalDigits || n.Scale < 0 || n.Scale > n.Precision {
			return nil, fmt.Errorf("unsupported %s", t)
		}
	case iceberg.DateType:
		n.Kind = KindDate
	case iceberg.TimeType:
		n.Kind = KindTime
	case iceberg.TimestampType:
		n.Kind = KindTimestamp
	case iceberg.TimestampTzType:
		n.Kind = KindTimestampTz
	case iceberg.TimestampNsType:
		n.Kind = KindTimestampNs
	case iceberg.TimestampTzNsType:
		n.Kind = KindTimestampTzNs
	case iceberg.StringType:
		n.Kind = KindString
	case iceberg.UUIDType:
		n.Kind = KindUUID
	case iceberg.FixedType:
		n.Kind, n.Length = KindFixed, t.Len()
	case iceberg.BinaryType:
		n.Kind = KindBinary
	case iceberg.UnknownType:
		n.Kind = KindUnknown
	case *iceberg.StructType:
		return structNode(t)
	case *iceberg.ListType:
		n.Kind = KindList
		elem, err := fieldNode(t.ElementField())
		if err != nil {
			return nil, err
		}
		n.Elem = elem
	case *iceberg.MapType:
		n.Kind = KindMap
		key, err := fieldNode(t.KeyField())
		if err != nil {
			return nil, err
		}
		value, err := fieldNode(t.ValueField())
		if err != nil {
			return nil, err
		}
		n.Key, n.Value = key, value
	default:
		n.Kind = KindUnsupported
	}
	return n, nil
}

func structNode(t *iceberg.StructType) (*Node, error) {
	n := &Node{Kind: KindStruct, Type: t, Names: make(map[string]int, len(t.FieldList))}
	for i, f := range t.FieldList {
		c, err := fieldNode(f)
		if err != nil {
			return nil, err
		}
		if _, dup := n.Names[f.Name]; dup {
			return nil, fmt.Errorf("two fields named %q", f.Name)
		}
		n.Names[f.Name] = i
		n.Fields = append(n.Fields, c)
		n.ByID = append(n.ByID, i)
	}
	// Field IDs are unique in a schema: iceberg.NewSchema checks.
	slices.SortFunc(n.ByID, func(a, b int) int { return n.Fields[a].ID - n.Fields[b].ID })
	return n, nil
}

// Unsupported returns n or the first type within it that has no values
// (KindUnsupported), or nil.
func (n *Node) Unsupported() *Node {
	switch n.Kind {
	case KindUnsupported:
		return n
	case KindStruct:
		for _, f := range n.Fields {
			if u := f.Unsupported(); u != nil {
				return u
			}
		}
	case KindList:
		return n.Elem.Unsupported()
	case KindMap:
		if u := n.Key.Unsupported(); u != nil {
			return u
		}
		return n.Value.Unsupported()
	}
	return nil
}
