package e2e

import (
	"context"
	"testing"

	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/catalog"
	_ "github.com/apache/iceberg-go/catalog/rest" // registers the rest catalog type
	"github.com/zombi-db/zombi/internal/zombitest"
	_ "github.com/zombi-db/zombi/warehouse" // registers the s3 scheme for data files
)

// shape is one way to run Zombi.
type shape struct {
	name  string
	start func(t testing.TB, extra ...string) *zombitest.Instance
}

// shapes are the deployments every end-to-end test runs against: the
// zero-dependency default, and the production shape with Postgres and an
// S3-compatible server whose settings clients get from the catalog.
var shapes = func() []shape {
	var s []shape
	for _, z := range zombitest.Shapes {
		s = append(s, shape{name: z.Name, start: z.Start})
	}
	return s
}()

// restCatalog connects iceberg-go's REST client to inst, configured with
// nothing but the URI.
func restCatalog(t testing.TB, inst *zombitest.Instance, props ...string) catalog.Catalog {
	t.Helper()
	p := iceberg.Properties{"type": "rest", "uri": inst.URL}
	for i := 0; i+1 < len(props); i += 2 {
		p[props[i]] = props[i+1]
	}
	cat, err := catalog.Load(context.Background(), "zombi", p)
	if err != nil {
		t.Fatalf("connecting iceberg-go to zombi: %v", err)
	}
	return cat
}
