package hotrow

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// pathElem is one step into a value: a struct field or a member of a map
// entry (field), a key of a map given as a JSON object (key), or a list
// element or map entry (index).
type pathElem struct {
	field   string
	key     []byte
	index   int
	isKey   bool
	isIndex bool
}

// A Path is the location in a row of the value being worked on, rendered
// only for errors: "address.zip", "tags[3]", `attrs["k"]`, "pairs[2].key".
// PushField steps into a struct field or a member of a map entry, PushKey
// into a key of a map given as a JSON object, PushIndex into a list element
// or map entry; Pop steps back out.
type Path []pathElem

func (ps *Path) PushField(name string) { *ps = append(*ps, pathElem{field: name}) }
func (ps *Path) PushKey(key []byte)    { *ps = append(*ps, pathElem{key: key, isKey: true}) }
func (ps *Path) PushIndex(i int)       { *ps = append(*ps, pathElem{index: i, isIndex: true}) }
func (ps *Path) Pop()                  { *ps = (*ps)[:len(*ps)-1] }

func (ps Path) String() string {
	var b strings.Builder
	for i, e := range ps {
		switch {
		case e.isKey:
			b.WriteString("[" + strconv.Quote(string(e.key)) + "]")
		case e.isIndex:
			b.WriteString("[" + strconv.Itoa(e.index) + "]")
		default:
			if i > 0 {
				b.WriteByte('.')
			}
			b.WriteString(e.field)
		}
	}
	return b.String()
}

// errorf returns an error about the value at ps: "address.zip: reason".
func (ps Path) errorf(format string, args ...any) error {
	reason := fmt.Sprintf(format, args...)
	if path := ps.String(); path != "" {
		return errors.New(path + ": " + reason)
	}
	return errors.New(reason)
}
