package e2e

import (
	"testing"

	"github.com/apache/iceberg-go/catalog"
	"github.com/apache/iceberg-go/catalog/catalogtest"
)

// TestCatalogConformance runs iceberg-go's catalog conformance suite against
// a running zombi in each shape.
func TestCatalogConformance(t *testing.T) {
	for _, sh := range shapes {
		t.Run(sh.name, func(t *testing.T) {
			inst := sh.start(t)
			catalogtest.RunCatalogTests(t, catalogtest.Config{
				SupportsNamespaceProperties: true,
				NewCatalog:                  func(t *testing.T) catalog.Catalog { return restCatalog(t, inst) },
			})
		})
	}
}
