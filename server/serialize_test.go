package server

import (
	"encoding/json"
	"net/http/httptest"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"
	"github.com/zombi-db/zombi/openapi"
)

func jsonKeys(t reflect.Type) []string {
	var keys []string
	for f := range t.Fields() {
		keys = append(keys, strings.Split(f.Tag.Get("json"), ",")[0])
	}
	slices.Sort(keys)
	return keys
}

// TestSplitMetadataFields: the answers written around their metadata
// document have every field of the openapi types but metadata.
func TestSplitMetadataFields(t *testing.T) {
	for _, v := range []any{openapi.LoadTableResult{}, openapi.CommitTableResponse{}, openapi.LoadViewResult{}} {
		_, rest, ok := splitMetadata(v)
		if !ok {
			t.Fatalf("%T is not split", v)
		}
		want := slices.DeleteFunc(jsonKeys(reflect.TypeOf(v)), func(k string) bool { return k == "metadata" })
		if got := jsonKeys(reflect.TypeOf(rest)); !slices.Equal(got, want) {
			t.Errorf("%T: fields %v, want %v", v, got, want)
		}
	}
}

// TestSerializeWithMetadata: an answer written around its metadata
// document decodes to what encoding/json makes of it whole.
func TestSerializeWithMetadata(t *testing.T) {
	loc := "file:///w/t/metadata/00001-x.metadata.json"
	cfg := openapi.Properties{"a": "<b>&"}
	meta := openapi.RawJSON(`{"format-version": 2, "doc": "<x>"}`)
	for _, v := range []any{
		openapi.LoadTableResult{Metadata: meta, MetadataLocation: &loc, Config: &cfg},
		openapi.LoadTableResult{Metadata: meta},
		openapi.LoadTableResult{},
		openapi.CommitTableResponse{Metadata: meta, MetadataLocation: loc},
		openapi.LoadViewResult{Metadata: meta, MetadataLocation: loc, Config: &cfg},
	} {
		e := echo.New()
		rec := httptest.NewRecorder()
		c := e.NewContext(httptest.NewRequest("GET", "/", nil), rec)
		if err := (jsonSerializer{}).Serialize(c, v, ""); err != nil {
			t.Fatal(err)
		}
		body := rec.Body.String()
		if !strings.HasSuffix(body, "}\n") {
			t.Errorf("%T: body %q does not end in }\\n", v, body)
		}
		whole, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		var got, want any
		if err := json.Unmarshal([]byte(body), &got); err != nil {
			t.Fatalf("%T: %q: %v", v, body, err)
		}
		if err := json.Unmarshal(whole, &want); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%T: wrote %s, want %s", v, body, whole)
		}
	}
}
