package ingesttable

import (
	"testing"

	"github.com/apache/iceberg-go"
)

func TestIs(t *testing.T) {
	tests := []struct {
		name  string
		props iceberg.Properties
		want  bool
	}{
		{"none", nil, false},
		{"other zombi properties", iceberg.Properties{"zombi.read.planning": "server", "zombi.maintenance.enabled": "true"}, false},
		{"event table", iceberg.Properties{PropFormat: "events"}, true},
		{"flushed to", iceberg.Properties{PropWatermarkPrefix + "node-1": "42"}, true},
		{"empty format", iceberg.Properties{PropFormat: ""}, false},
	}
	for _, tc := range tests {
		if got := Is(tc.props); got != tc.want {
			t.Errorf("%s: Is(%v) = %v, want %v", tc.name, tc.props, got, tc.want)
		}
	}
}
