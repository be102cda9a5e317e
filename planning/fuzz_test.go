package planning

import (
	"testing"

	"github.com/apache/iceberg-go"
)

// FuzzParseFilter feeds the filter parser what a hostile client might
// send: it must never panic, and a filter it accepts binds.
func FuzzParseFilter(f *testing.F) {
	for _, seed := range []string{
		`true`, `false`, `null`, ``, `{}`, `[]`, `1`,
		`{"type":"eq","term":"id","value":1}`,
		`{"type":"in","term":"category","values":["a","b"]}`,
		`{"type":"and","left":{"type":"is-null","term":"value"},"right":{"type":"not","child":{"type":"lt","term":"ID","value":3}}}`,
		`{"type":"eq","term":{"type":"transform","transform":"bucket[4]","term":"id"},"value":1}`,
		`{"type":"starts-with","term":"category","value":"x"}`,
		`{"type":"literal","value":true}`,
		`{"type":"gt","term":"value","value":1e400}`,
		`{"type":"not","child":{"type":"not","child":{"type":"not","child":true}}}`,
	} {
		f.Add([]byte(seed), true)
		f.Add([]byte(seed), false)
	}
	f.Fuzz(func(t *testing.T, raw []byte, caseSensitive bool) {
		if len(raw) > MaxFilterBytes {
			return
		}
		expr, err := parseFilter(raw, testSchema, caseSensitive)
		if err != nil || expr == nil {
			return
		}
		if _, err := iceberg.BindExpr(testSchema, expr, caseSensitive); err != nil {
			t.Fatalf("accepted filter %q does not bind: %v", raw, err)
		}
	})
}
