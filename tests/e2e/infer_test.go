package e2e

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/iceberg-go/table"
	"github.com/zombi-db/zombi/ingest"
	"github.com/zombi-db/zombi/internal/zombitest"
)

// tableSchema is a table's current schema as "name: type" lines (nested
// fields indented), its partition spec and its properties, from loadTable.
func tableSchema(t testing.TB, base, ns, name string) (fields map[string]string, spec string, props map[string]string) {
	t.Helper()
	var lt struct {
		Metadata struct {
			CurrentSchemaID int `json:"current-schema-id"`
			Schemas         []struct {
				ID     int               `json:"schema-id"`
				Fields []json.RawMessage `json:"fields"`
			} `json:"schemas"`
			Specs []struct {
				Fields []struct {
					Name      string `json:"name"`
					Transform string `json:"transform"`
				} `json:"fields"`
			} `json:"partition-specs"`
			Props map[string]string `json:"properties"`
		} `json:"metadata"`
	}
	if err := json.Unmarshal(mustCall(t, 200, "GET", fmt.Sprintf("%s/v1/namespaces/%s/tables/%s", base, ns, name), ""), &lt); err != nil {
		t.Fatal(err)
	}
	fields = map[string]string{}
	for _, s := range lt.Metadata.Schemas {
		if s.ID != lt.Metadata.CurrentSchemaID {
			continue
		}
		for _, raw := range s.Fields {
			var f struct {
				Name string          `json:"name"`
				Type json.RawMessage `json:"type"`
			}
			if err := json.Unmarshal(raw, &f); err != nil {
				t.Fatal(err)
			}
			fields[f.Name] = strings.Trim(string(f.Type), `"`)
		}
	}
	for _, f := range lt.Metadata.Specs[len(lt.Metadata.Specs)-1].Fields {
		spec += f.Name + "=" + f.Transform + " "
	}
	return fields, strings.TrimSpace(spec), lt.Metadata.Props
}

// scanRows reads a table through iceberg-go's REST client and returns its
// rows as JSON objects (Arrow's JSON of each row), ordered by
// _zombi_offset.
func scanRows(t testing.TB, inst *zombitest.Instance, ns, name string) []map[string]any {
	t.Helper()
	ctx := context.Background()
	tbl, err := restCatalog(t, inst).LoadTable(ctx, table.Identifier{ns, name})
	if err != nil {
		t.Fatalf("loading %s.%s: %v", ns, name, err)
	}
	at, err := tbl.Scan().ToArrowTable(ctx)
	if err != nil {
		t.Fatalf("scanning %s.%s: %v", ns, name, err)
	}
	defer at.Release()
	tr := array.NewTableReader(at, 0)
	defer tr.Release()
	var out []map[string]any
	for tr.Next() {
		out = append(out, recordRows(t, tr.RecordBatch())...)
	}
	sort.Slice(out, func(i, j int) bool { return out[i]["_zombi_offset"].(float64) < out[j]["_zombi_offset"].(float64) })
	return out
}

func recordRows(t testing.TB, rec arrow.RecordBatch) []map[string]any {
	t.Helper()
	var b strings.Builder
	if err := array.RecordToJSON(rec, &b); err != nil {
		t.Fatal(err)
	}
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(b.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatal(err)
		}
		out = append(out, m)
	}
	return out
}

// TestIngestSchemaFromData: plain JSON objects to a new table make a typed
// table with columns from the data and Zombi's own; new fields add
// columns (one schema commit per request); values of another type are
// refused; an envelope still makes an event table.
func TestIngestSchemaFromData(t *testing.T) {
	inst := startHot(t)
	base := inst.URL

	first := `[
		{"user":1,"action":"click","price":2.5,"ok":true,"tags":["a"],"ctx":{"ip":"1.2.3.4"},"note":null},
		{"user":2,"action":"view","price":3,"ctx":{"ua":"curl"}}
	]`
	b := mustCall(t, 202, "POST", base+"/tables/shop.clicks/bulk", first)
	var bulk struct {
		Offsets []float64 `json:"offsets"`
	}
	if err := json.Unmarshal(b, &bulk); err != nil {
		t.Fatal(err)
	}
	fields, spec, props := tableSchema(t, base, "shop", "clicks")
	want := map[string]string{
		"_zombi_offset": "long", "_zombi_ingest_time": "timestamptz",
		"user": "long", "action": "string", "price": "double", "ok": "boolean",
	}
	for k, v := range want {
		if fields[k] != v {
			t.Errorf("column %s is %q, want %q (schema %v)", k, fields[k], v, fields)
		}
	}
	if !strings.Contains(fields["tags"], `"element":"string"`) || !strings.Contains(fields["ctx"], `"name":"ip"`) || !strings.Contains(fields["ctx"], `"name":"ua"`) {
		t.Errorf("nested columns: tags %s, ctx %s", fields["tags"], fields["ctx"])
	}
	if _, ok := fields["note"]; ok {
		t.Errorf("a field only ever null got a column: %v", fields)
	}
	if spec != "_zombi_ingest_time_hour=hour" {
		t.Errorf("partition spec %q", spec)
	}
	if props["zombi.ingest.unknown-fields"] != "evolve" || props["zombi.ingest.format"] != "rows" {
		t.Errorf("properties %v", props)
	}
	if got := metric(t, base, `zombi_ingest_schema_changes_total{change="created"}`); got != 1 {
		t.Errorf("tables created from data: %v", got)
	}

	// New fields, top-level and nested, in two rows of one request: one
	// schema commit.
	postEvent(t, base, "shop.clicks", `{"user":3,"action":"buy","coupon":"X"}`)
	b = mustCall(t, 202, "POST", base+"/tables/shop.clicks/bulk", `[{"user":4,"ctx":{"geo":"de"}},{"user":5,"referrer":"ad","score":1}]`)
	fields, _, _ = tableSchema(t, base, "shop", "clicks")
	if fields["coupon"] != "string" || fields["referrer"] != "string" || fields["score"] != "long" || !strings.Contains(fields["ctx"], `"name":"geo"`) {
		t.Errorf("columns after new fields: %v", fields)
	}
	if got := metric(t, base, `zombi_ingest_schema_changes_total{change="evolved"}`); got != 2 {
		t.Errorf("schema commits for new fields: %v, want 2 (one per request)", got)
	}

	// Another type for a column is refused, whole or as one record.
	status, _, body := call(t, "POST", base+"/tables/shop.clicks", `{"user":"bob"}`)
	if status != 400 || !strings.Contains(string(body), "user") {
		t.Errorf("a string for a long column: %d %s", status, body)
	}
	partial := `[{"user":6},{"user":1.5},{"user":7,"price":"cheap"}]`
	status, _, body = call(t, "POST", base+"/tables/shop.clicks/bulk?partial=true", partial)
	if status != 207 || strings.Count(string(body), `"error"`) != 2 ||
		!strings.Contains(string(body), `"dead_letters":2,"dead_letter_table":"shop.clicks__dlq"`) {
		t.Errorf("a partial bulk with two bad records: %d %s", status, body)
	}
	// A Zombi column may not be written.
	if status, _, body = call(t, "POST", base+"/tables/shop.clicks", `{"user":8,"_zombi_offset":1}`); status != 400 || !strings.Contains(string(body), "_zombi_offset") {
		t.Errorf("a row with _zombi_offset: %d %s", status, body)
	}

	flushTable(t, base, "shop.clicks")
	rows := scanRows(t, inst, "shop", "clicks")
	var users []string
	for i, r := range rows {
		users = append(users, fmt.Sprint(r["user"]))
		if r["_zombi_ingest_time"] == nil {
			t.Errorf("row %d has no ingest time: %v", i, r)
		}
		if i > 0 && r["_zombi_offset"].(float64) <= rows[i-1]["_zombi_offset"].(float64) {
			t.Errorf("offsets not increasing: %v", rows)
		}
	}
	if got := strings.Join(users, ","); got != "1,2,3,4,5,6" {
		t.Errorf("users read back %s, want 1,2,3,4,5,6", got)
	}
	if rows[0]["_zombi_offset"].(float64) != bulk.Offsets[0] || rows[1]["_zombi_offset"].(float64) != bulk.Offsets[1] {
		t.Errorf("_zombi_offset %v, %v; the write answered %v", rows[0]["_zombi_offset"], rows[1]["_zombi_offset"], bulk.Offsets)
	}
	if rows[2]["coupon"] != "X" || rows[0]["coupon"] != nil || rows[4]["score"] != float64(1) || rows[1]["price"] != float64(3) {
		t.Errorf("values read back: %v", rows)
	}
	if ctx, _ := rows[3]["ctx"].(map[string]any); ctx["geo"] != "de" {
		t.Errorf("nested value read back: %v", rows[3])
	}

	// The refused records of the partial write are in the dead-letter
	// table, committed by the flusher.
	flushTable(t, base, "shop.clicks__dlq")
	dead := scanRows(t, inst, "shop", "clicks__dlq")
	if len(dead) != 2 {
		t.Fatalf("dead letters: %v", dead)
	}
	var sent []json.RawMessage
	if err := json.Unmarshal([]byte(partial), &sent); err != nil {
		t.Fatal(err)
	}
	for i, want := range []struct {
		index int
		field string
	}{{1, "user"}, {2, "price"}} {
		d := dead[i]
		raw, _ := base64.StdEncoding.DecodeString(fmt.Sprint(d["raw"]))
		if d["error_code"] != "field" || d["field"] != want.field || d["record_index"] != float64(want.index) ||
			string(raw) != string(sent[want.index]) || d["received_at"] == nil || d["message"] == nil || d["message"] == "" {
			t.Errorf("dead letter %d: %v (raw %q)", i, d, raw)
		}
	}
	if got := metric(t, base, `zombi_ingest_dead_letters_total{table="shop.clicks"}`); got != 2 {
		t.Errorf("dead letters counted: %v", got)
	}

	// An event table keeps its bad envelopes too, once per idempotency key.
	for range 2 {
		status, _, body = call(t, "POST", base+"/tables/shop.events/bulk?partial=true", `[{"payload":"ok"},{"payload_base64":"%%%","idempotency_key":"k1"}]`)
		if status != 207 || !strings.Contains(string(body), `"dead_letter_table":"shop.events__dlq"`) {
			t.Fatalf("a partial bulk with a bad envelope: %d %s", status, body)
		}
	}
	evs := hotEvents(t, base, "shop.events__dlq")
	if len(evs) != 1 || evs[0]["idempotency_key"] != "k1" || evs[0]["field"] != "payload_base64" {
		t.Errorf("dead letters of the event table: %v", evs)
	}

	// Envelopes still make event tables.
	if _, _, props := tableSchema(t, base, "shop", "events"); props["zombi.ingest.format"] != "events" {
		t.Errorf("an envelope made %v", props)
	}
}

// TestIngestEvolveWidensAndTimeField: an int column of a table with
// unknown-fields=evolve becomes long for a value beyond int; with
// --infer-time-field the table is partitioned by that field's hour.
func TestIngestEvolveWidensAndTimeField(t *testing.T) {
	inst := startHot(t, "--infer-time-field", "at")
	base := inst.URL
	mustCall(t, 200, "POST", base+"/v1/namespaces", `{"namespace":["w"]}`)
	mustCall(t, 200, "POST", base+"/v1/namespaces/w/tables", `{"name":"n","schema":{"type":"struct","fields":[
		{"id":1,"name":"n","type":"int","required":false},
		{"id":2,"name":"f","type":"float","required":false},
		{"id":3,"name":"d","type":"decimal(5, 2)","required":false}]},"properties":{"zombi.ingest.unknown-fields":"evolve"}}`)
	postEvent(t, base, "w.n", `{"n":1,"f":0.5,"d":1.5}`)
	postEvent(t, base, "w.n", `{"n":3000000000,"f":0.1,"d":1234567.8}`)
	if fields, _, _ := tableSchema(t, base, "w", "n"); fields["n"] != "long" || fields["f"] != "double" || fields["d"] != "decimal(9, 2)" {
		t.Errorf("columns after values beyond int, float and decimal(5, 2): %v", fields)
	}
	evs := hotEvents(t, base, "w.n")
	if len(evs) != 2 || evs[1]["n"] != float64(3000000000) || evs[1]["f"] != 0.1 || evs[1]["d"] != "1234567.80" || evs[0]["f"] != 0.5 {
		t.Errorf("rows read back: %v", evs)
	}
	// A scale beyond the column's is not widened: refused, never rounded.
	if status, _, body := call(t, "POST", base+"/tables/w.n", `{"d":1.234}`); status != 400 || !strings.Contains(string(body), "d") {
		t.Errorf("a decimal with more fraction digits: %d %s", status, body)
	}

	postEvent(t, base, "w.timed", `{"at":"2026-03-02T10:15:00Z","v":1}`)
	fields, spec, _ := tableSchema(t, base, "w", "timed")
	if fields["at"] != "timestamptz" || spec != "at_hour=hour" {
		t.Errorf("time field: column %q, spec %q", fields["at"], spec)
	}
}

// TestDeadLetterReplay: a record refused for a column the table lacks is
// kept; a replay before the fix keeps it again, one after the column was
// added stores it, once, and a further replay stores nothing.
func TestDeadLetterReplay(t *testing.T) {
	inst := startHot(t)
	base := inst.URL
	mustCall(t, 200, "POST", base+"/v1/namespaces", `{"namespace":["r"]}`)
	mustCall(t, 200, "POST", base+"/v1/namespaces/r/tables", `{"name":"orders","schema":{"type":"struct","fields":[{"id":1,"name":"user","type":"long","required":false}]}}`)
	status, _, body := call(t, "POST", base+"/tables/r.orders/bulk?partial=true", `[{"user":1},{"user":2,"coupon":"X"}]`)
	if status != 207 || !strings.Contains(string(body), `"dead_letters":1`) {
		t.Fatalf("partial write: %d %s", status, body)
	}
	type replay struct {
		Replayed, Duplicates, Failed, Skipped int
		Through                               int64
		More                                  bool
	}
	doReplay := func() replay {
		t.Helper()
		var r replay
		if err := json.Unmarshal(mustCall(t, 200, "POST", base+"/tables/r.orders/dlq/replay", ""), &r); err != nil {
			t.Fatal(err)
		}
		return r
	}
	if r := doReplay(); r.Failed != 1 || r.Replayed != 0 || r.Through == 0 {
		t.Fatalf("replay before the fix: %+v", r)
	}
	commitUpdates(t, base, "r", "orders", `[{"action":"add-schema","schema":{"type":"struct","schema-id":1,"fields":[{"id":1,"name":"user","type":"long","required":false},{"id":2,"name":"coupon","type":"string","required":false}]},"last-column-id":2},{"action":"set-current-schema","schema-id":-1}]`)
	if r := doReplay(); r.Replayed != 1 || r.Failed != 0 {
		t.Fatalf("replay after the fix: %+v", r)
	}
	if r := doReplay(); r.Replayed+r.Failed+r.Duplicates != 0 {
		t.Fatalf("a replay with nothing new: %+v", r)
	}
	evs := hotEvents(t, base, "r.orders")
	if len(evs) != 2 || evs[1]["user"] != float64(2) || evs[1]["coupon"] != "X" {
		t.Fatalf("rows after the replays: %v", evs)
	}
	// Two dead letters in all: the first, and the one the failed replay
	// kept; the table's status counts them, before and after a commit.
	dlqStatus := func() string {
		var w struct {
			DeadLetters     int64  `json:"dead_letters"`
			DeadLetterTable string `json:"dead_letter_table"`
		}
		if err := json.Unmarshal(mustCall(t, 200, "GET", base+"/tables/r.orders/watermark", ""), &w); err != nil {
			t.Fatal(err)
		}
		return fmt.Sprintf("%d in %s", w.DeadLetters, w.DeadLetterTable)
	}
	if got := dlqStatus(); got != "2 in r.orders__dlq" {
		t.Errorf("status before the commit: %s", got)
	}
	flushTable(t, base, "r.orders__dlq")
	if dead := scanRows(t, inst, "r", "orders__dlq"); len(dead) != 2 {
		t.Fatalf("dead letters: %v", dead)
	}
	if got := dlqStatus(); got != "2 in r.orders__dlq" {
		t.Errorf("status after the commit: %s", got)
	}
}

// TestInferredFieldsBounded: neither a first write nor new fields may give
// a table from data more than ingest.MaxInferredFields fields.
func TestInferredFieldsBounded(t *testing.T) {
	inst := startHot(t)
	base := inst.URL
	wide := func(prefix string, n int) string {
		var b strings.Builder
		b.WriteString(`{"k":1`)
		for i := range n {
			fmt.Fprintf(&b, `,"%s%d":1`, prefix, i)
		}
		b.WriteString("}")
		return b.String()
	}
	if status, _, body := call(t, "POST", base+"/tables/b.wide", wide("c", ingest.MaxInferredFields)); status != 400 || !strings.Contains(string(body), "at most") {
		t.Errorf("a first write of %d fields: %d %s", ingest.MaxInferredFields+3, status, body)
	}
	if status, _, _ := call(t, "HEAD", base+"/v1/namespaces/b/tables/wide", ""); status != 404 {
		t.Errorf("the refused first write created the table: HEAD %d", status)
	}
	postEvent(t, base, "b.grow", wide("c", 500))
	postEvent(t, base, "b.grow", wide("d", 400))
	if status, _, body := call(t, "POST", base+"/tables/b.grow", wide("e", 200)); status != 400 || !strings.Contains(string(body), "at most") {
		t.Errorf("new fields past the bound: %d %s", status, body)
	}
	if fields, _, _ := tableSchema(t, base, "b", "grow"); len(fields) != 2+1+500+400 {
		t.Errorf("the table has %d columns, want %d", len(fields), 2+1+500+400)
	}
}
