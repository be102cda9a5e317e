package e2e

import (
	"testing"

	"github.com/apache/iceberg-go/catalog"
	"github.com/apache/iceberg-go/catalog/catalogtest"
)

// TestCatalogConformance runs iceberg-go's catalog conformance suite against
// a running zombi in each shape, through the default catalog view and
// through the live one (warehouse=live), which must behave the same for
// everything but scan plans.
func TestCatalogConformance(t *testing.T) {
	for _, sh := range shapes {
		t.Run(sh.name, func(t *testing.T) {
			inst := sh.start(t)
			for _, view := range []string{"default", "live"} {
				t.Run(view, func(t *testing.T) {
					var props []string
					if view == "live" {
						props = []string{"warehouse", "live"}
					}
					catalogtest.RunCatalogTests(t, catalogtest.Config{
						SupportsNamespaceProperties: true,
						NewCatalog:                  func(t *testing.T) catalog.Catalog { return restCatalog(t, inst, props...) },
					})
				})
			}
		})
	}
}
