package ingest

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/zombi-db/zombi/catalog"
)

// namePart is the rule for every part of an ingest table reference: it
// keeps names safe as hot-tier keys, object-store paths and SQL
// identifiers (seed BUG-6).
var namePart = regexp.MustCompile(`^[a-zA-Z][a-zA-Z0-9_-]{0,127}$`)

// ParseTableRef turns the {table} of an ingest path into an identifier:
// "name" is in defaultNamespace, "a.b.name" is table name in namespace a.b.
func ParseTableRef(ref, defaultNamespace string) (catalog.Ident, error) {
	parts := strings.Split(ref, ".")
	for _, p := range parts {
		if !namePart.MatchString(p) {
			return catalog.Ident{}, fmt.Errorf("%w: table %q: each dot-separated part must match %s", catalog.ErrInvalid, ref, namePart)
		}
	}
	if len(parts) == 1 {
		return catalog.Ident{Namespace: catalog.Namespace{defaultNamespace}, Name: parts[0]}, nil
	}
	return catalog.Ident{Namespace: catalog.Namespace(parts[:len(parts)-1]), Name: parts[len(parts)-1]}, nil
}
