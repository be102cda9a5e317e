package hotrow_test

// The tests are in package hotrow_test, not hotrow: they write typed rows
// with package codec's Converter, which imports hotrow. They dot-import
// hotrow to read as if inside it, and export_test.go names the internals
// they check.

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/apache/iceberg-go"

	. "github.com/zombi-db/zombi/hotrow"
	"github.com/zombi-db/zombi/hotrow/hotrowtest"
	"github.com/zombi-db/zombi/ingest/codec"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s differs (go test -update rewrites it):\ngot:\n%s\nwant:\n%s", path, got, want)
	}
}

// convert converts a JSON row of schema into its hot value with a
// codec.Converter.
func convert(t testing.TB, schema *iceberg.Schema, row string) []byte {
	t.Helper()
	c, err := codec.NewConverter(schema, codec.ConverterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	value, _, err := c.Convert([]byte(row))
	if err != nil {
		t.Fatal(err)
	}
	return value
}

// TestConvertAllTypes pins format 2 and its JSON rendering with a golden
// file: hot values outlive releases, so a change of encoding must be
// deliberate (and come with a new format byte).
func TestConvertAllTypes(t *testing.T) {
	schema := hotrowtest.AllTypesSchema()
	c, err := codec.NewConverter(schema, codec.ConverterOptions{IdempotencyColumn: "key"})
	if err != nil {
		t.Fatal(err)
	}
	value, key, err := c.Convert([]byte(hotrowtest.AllTypesRow))
	if err != nil {
		t.Fatal(err)
	}
	if key != "row-1" {
		t.Errorf("idempotency key %q, want row-1", key)
	}
	rendered, err := ValueJSON(schema, "t", 1, value)
	if err != nil {
		t.Fatal(err)
	}
	var indented bytes.Buffer
	if err := json.Indent(&indented, rendered, "", "  "); err != nil {
		t.Fatalf("ValueJSON is not JSON: %v\n%s", err, rendered)
	}
	var out bytes.Buffer
	out.WriteString("# Convert(allTypesRow) in format 2, hex:\n")
	h := hex.EncodeToString(value)
	for len(h) > 64 {
		out.WriteString(h[:64] + "\n")
		h = h[64:]
	}
	out.WriteString(h + "\n# ValueJSON of it:\n")
	out.Write(indented.Bytes())
	out.WriteString("\n")
	golden(t, "all_types.golden", out.Bytes())

	again, _, err := c.Convert(rendered)
	if err != nil {
		t.Fatalf("converting the rendered row: %v", err)
	}
	if !bytes.Equal(again, value) {
		t.Fatalf("rendered row converts to\n%x, want\n%x", again, value)
	}
}

func TestDateBounds(t *testing.T) {
	if want := time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC).Unix(); MinUnixSec != want {
		t.Errorf("MinUnixSec = %d, want %d", MinUnixSec, want)
	}
	if want := time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC).Unix(); MaxUnixSec != want {
		t.Errorf("MaxUnixSec = %d, want %d", MaxUnixSec, want)
	}
}
