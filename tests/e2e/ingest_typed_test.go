package e2e

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

const typedSchema = `{"type":"struct","schema-id":0,"fields":[
	{"id":1,"name":"id","type":"long","required":true},
	{"id":2,"name":"name","type":"string","required":true},
	{"id":3,"name":"price","type":"decimal(10, 2)","required":false},
	{"id":4,"name":"ts","type":"timestamptz","required":false},
	{"id":5,"name":"day","type":"date","required":false},
	{"id":6,"name":"tags","type":{"type":"list","element-id":10,"element":"string","element-required":false},"required":false},
	{"id":7,"name":"attrs","type":{"type":"map","key-id":11,"key":"string","value-id":12,"value":"string","value-required":false},"required":false},
	{"id":8,"name":"address","type":{"type":"struct","fields":[
		{"id":13,"name":"zip","type":"string","required":true},
		{"id":14,"name":"city","type":"string","required":false}]},"required":false},
	{"id":9,"name":"active","type":"boolean","required":false}]}`

// commitUpdates posts updates to a table with no requirements.
func commitUpdates(t testing.TB, base, ns, name, updates string) {
	t.Helper()
	mustCall(t, 200, "POST", fmt.Sprintf("%s/v1/namespaces/%s/tables/%s", base, ns, name), `{"requirements":[],"updates":`+updates+`}`)
}

// TestIngestTypedTable writes rows to a table created through the catalog
// with its own schema: conversions, errors naming the field, unknown
// fields, an idempotency column, and a schema change applied to the next
// request without a restart.
func TestIngestTypedTable(t *testing.T) {
	inst := startHot(t)
	base := inst.URL
	mustCall(t, 200, "POST", base+"/v1/namespaces", `{"namespace":["shop"]}`)
	mustCall(t, 200, "POST", base+"/v1/namespaces/shop/tables", `{"name":"orders","schema":`+typedSchema+`}`)

	row := `{"id":1,"name":"first","price":"19.99","ts":"2024-05-01T12:30:00Z","day":"2024-05-01","tags":["a","b"],"attrs":{"k":"v"},"address":{"zip":"10115","city":"Berlin"},"active":true}`
	if r := postEvent(t, base, "shop.orders", row); r.Offset != 1 || r.Table != "shop.orders" {
		t.Fatalf("typed write: %+v", r)
	}
	postEvent(t, base, "shop.orders", `{"id":2,"name":"epoch millis","ts":1714566600000,"price":5}`)
	b := mustCall(t, 202, "POST", base+"/tables/shop.orders/bulk", `[{"id":3,"name":"bulk a"},{"id":4,"name":"bulk b","tags":[]}]`)
	if !strings.Contains(string(b), `"count":2`) {
		t.Fatalf("typed bulk: %s", b)
	}
	mustCall(t, 202, "POST", base+"/tables/shop.orders/bulk", "{\"id\":5,\"name\":\"nd\"}\n{\"id\":6,\"name\":\"nd\"}\n", "Content-Type", "application/x-ndjson")

	tests := []struct{ name, row, field string }{
		{"missing required", `{"name":"x"}`, "id"},
		{"null required", `{"id":null,"name":"x"}`, "id"},
		{"string for long", `{"id":"seven","name":"x"}`, "id"},
		{"fraction for long", `{"id":1.5,"name":"x"}`, "id"},
		{"too many decimal places", `{"id":1,"name":"x","price":"1.234"}`, "price"},
		{"decimal too wide", `{"id":1,"name":"x","price":"123456789.00"}`, "price"},
		{"bad timestamp", `{"id":1,"name":"x","ts":"yesterday"}`, "ts"},
		{"bad date", `{"id":1,"name":"x","day":"2024-13-45"}`, "day"},
		{"nested required missing", `{"id":1,"name":"x","address":{"city":"Paris"}}`, "address.zip"},
		{"list element type", `{"id":1,"name":"x","tags":["a",7]}`, "tags"},
		{"boolean as string", `{"id":1,"name":"x","active":"yes"}`, "active"},
		{"unknown field", `{"id":1,"name":"x","colour":"red"}`, "colour"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			status, _, body := call(t, "POST", base+"/tables/shop.orders", tc.row)
			if status != 400 {
				t.Fatalf("status %d, want 400: %s", status, body)
			}
			if e := decodeError(t, body); !strings.Contains(e.Error.Message, tc.field) {
				t.Fatalf("error %q does not name %q", e.Error.Message, tc.field)
			}
		})
	}
	// Protobuf is for event tables only.
	if status, _, _ := call(t, "POST", base+"/tables/shop.orders", "\x0a\x01x", "Content-Type", "application/x-protobuf"); status != 415 {
		t.Fatalf("protobuf to a typed table: %d, want 415", status)
	}

	evs := hotEvents(t, base, "shop.orders")
	if len(evs) != 6 {
		t.Fatalf("%d rows in the hot tier, want 6", len(evs))
	}
	if evs[0]["name"] != "first" || evs[0]["price"] != "19.99" || evs[0]["day"] != "2024-05-01" ||
		fmt.Sprint(evs[0]["tags"]) != "[a b]" || fmt.Sprint(evs[0]["address"]) != "map[city:Berlin zip:10115]" {
		t.Errorf("first row read back as %v", evs[0])
	}

	// Unknown fields may be dropped instead, by table property.
	commitUpdates(t, base, "shop", "orders", `[{"action":"set-properties","updates":{"zombi.ingest.unknown-fields":"drop","zombi.ingest.idempotency-column":"name"}}]`)
	postEvent(t, base, "shop.orders", `{"id":7,"name":"dropped-extra","colour":"red"}`)
	if d := postEvent(t, base, "shop.orders", `{"id":8,"name":"dropped-extra"}`); !d.Duplicate {
		t.Fatalf("the idempotency column did not dedupe: %+v", d)
	}

	// A column added through the catalog is accepted by the next request.
	// The new schema is the current one (with the IDs the catalog
	// assigned) plus a column.
	var cur struct {
		Metadata struct {
			LastColumnID int `json:"last-column-id"`
			Schemas      []struct {
				Fields []json.RawMessage `json:"fields"`
			} `json:"schemas"`
		} `json:"metadata"`
	}
	if err := json.Unmarshal(mustCall(t, 200, "GET", base+"/v1/namespaces/shop/tables/orders", ""), &cur); err != nil {
		t.Fatal(err)
	}
	next := cur.Metadata.LastColumnID + 1
	fields := append(cur.Metadata.Schemas[0].Fields, json.RawMessage(fmt.Sprintf(`{"id":%d,"name":"note","type":"string","required":false}`, next)))
	newSchema, _ := json.Marshal(map[string]any{"type": "struct", "schema-id": 1, "fields": fields})
	commitUpdates(t, base, "shop", "orders", fmt.Sprintf(`[{"action":"add-schema","schema":%s,"last-column-id":%d},{"action":"set-current-schema","schema-id":-1}]`, newSchema, next))
	postEvent(t, base, "shop.orders", `{"id":9,"name":"with note","note":"hello"}`)
	evs = hotEvents(t, base, "shop.orders")
	last := evs[len(evs)-1]
	if last["note"] != "hello" || last["id"] != float64(9) {
		t.Fatalf("row with the new column read back as %v", last)
	}
	if evs[0]["note"] != nil {
		t.Fatalf("a row written before the column existed has note=%v", evs[0]["note"])
	}
}
