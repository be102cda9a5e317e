package e2e

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/zombi-db/zombi/ingest/ingestpb"
	"github.com/zombi-db/zombi/internal/zombitest"
	"google.golang.org/protobuf/proto"
)

// hotEvents reads every event of table from the hot tier as JSON objects.
// hotOnly are server flags for tests of the hot tier itself: no flush
// runs while they do (only the final one at a graceful stop), and flushed
// events stay readable in the hot tier.
var hotOnly = []string{"--flush-interval", "1h", "--hot-retention", "1h"}

// startHot starts a server with hotOnly and args.
func startHot(t testing.TB, args ...string) *zombitest.Instance {
	t.Helper()
	return zombitest.Start(t, append(append([]string{}, hotOnly...), args...)...)
}

func hotEvents(t testing.TB, base, table string) []map[string]any {
	t.Helper()
	var all []map[string]any
	offset := 0
	for {
		var page struct {
			Events     []map[string]any `json:"events"`
			NextOffset int              `json:"next_offset"`
		}
		b := mustCall(t, 200, "GET", fmt.Sprintf("%s/tables/%s?offset=%d&limit=10000", base, table, offset), "")
		if err := json.Unmarshal(b, &page); err != nil {
			t.Fatal(err)
		}
		all = append(all, page.Events...)
		if len(page.Events) == 0 || page.NextOffset == offset {
			return all
		}
		offset = page.NextOffset
	}
}

type writeResult struct {
	Offset    int64  `json:"offset"`
	Partition int    `json:"partition"`
	Table     string `json:"table"`
	Duplicate bool   `json:"duplicate"`
}

func postEvent(t testing.TB, base, table, body string, headers ...string) writeResult {
	t.Helper()
	b := mustCall(t, 202, "POST", base+"/tables/"+table, body, headers...)
	var r writeResult
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatalf("write response %s: %v", b, err)
	}
	return r
}

func payloadOf(t testing.TB, ev map[string]any) []byte {
	t.Helper()
	s, ok := ev["payload_base64"].(string)
	if !ok {
		t.Fatalf("event without payload_base64: %v", ev)
	}
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestIngestJSON covers the JSON single and bulk formats on an auto-created
// event table, reads them back and checks the table the catalog holds.
func TestIngestJSON(t *testing.T) {
	inst := startHot(t)
	base := inst.URL

	r1 := postEvent(t, base, "clicks", `{"payload":"hello","partition":3,"timestamp_ms":1700000000000}`)
	if r1.Offset != 1 || r1.Partition != 3 || r1.Table != "default.clicks" || r1.Duplicate {
		t.Fatalf("first write: %+v", r1)
	}
	r2 := postEvent(t, base, "clicks", `{"payload":{"user":42,"path":"/a"}}`)
	r3 := postEvent(t, base, "clicks", `{"payload_base64":"AAEC/w=="}`)
	if r2.Offset != 2 || r3.Offset != 3 {
		t.Fatalf("offsets %d %d, want 2 3", r2.Offset, r3.Offset)
	}
	var bulk struct {
		Offsets []int64 `json:"offsets"`
		Count   int     `json:"count"`
	}
	b := mustCall(t, 202, "POST", base+"/tables/clicks/bulk", `{"records":[{"payload":"a"},{"payload":"b","partition":1},{"payload":"c"}]}`)
	if err := json.Unmarshal(b, &bulk); err != nil || bulk.Count != 3 || fmt.Sprint(bulk.Offsets) != "[4 5 6]" {
		t.Fatalf("bulk: %s %v", b, err)
	}
	b = mustCall(t, 202, "POST", base+"/tables/clicks/bulk", "{\"payload\":\"d\"}\n{\"payload\":\"e\"}\r\n\n{\"payload\":\"f\"}", "Content-Type", "application/x-ndjson")
	if err := json.Unmarshal(b, &bulk); err != nil || fmt.Sprint(bulk.Offsets) != "[7 8 9]" {
		t.Fatalf("ndjson: %s %v", b, err)
	}

	evs := hotEvents(t, base, "clicks")
	want := []string{"hello", `{"user":42,"path":"/a"}`, "\x00\x01\x02\xff", "a", "b", "c", "d", "e", "f"}
	if len(evs) != len(want) {
		t.Fatalf("read %d events, want %d: %v", len(evs), len(want), evs)
	}
	for i, ev := range evs {
		if got := string(payloadOf(t, ev)); got != want[i] {
			t.Errorf("event %d payload %q, want %q", i+1, got, want[i])
		}
		if seq, _ := ev["sequence"].(float64); int(seq) != i+1 {
			t.Errorf("event %d has sequence %v", i+1, ev["sequence"])
		}
	}
	if evs[0]["event_time"] != "2023-11-14T22:13:20Z" || evs[0]["partition"] != float64(3) {
		t.Errorf("first event: %v", evs[0])
	}

	var wm struct {
		Committed int64 `json:"committed"`
		High      int64 `json:"high"`
	}
	if err := json.Unmarshal(mustCall(t, 200, "GET", base+"/tables/clicks/watermark", ""), &wm); err != nil || wm.High != 9 || wm.Committed != 0 {
		t.Fatalf("watermark %+v %v", wm, err)
	}

	// The auto-created table is an Iceberg table with the event schema,
	// partitioned by hour of event time.
	var tbl struct {
		Metadata struct {
			Props map[string]string `json:"properties"`
			Specs []struct {
				Fields []struct {
					Transform string `json:"transform"`
				} `json:"fields"`
			} `json:"partition-specs"`
			Schemas []struct {
				Fields []struct {
					Name string `json:"name"`
				} `json:"fields"`
			} `json:"schemas"`
		} `json:"metadata"`
	}
	if err := json.Unmarshal(mustCall(t, 200, "GET", base+"/v1/namespaces/default/tables/clicks", ""), &tbl); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range tbl.Metadata.Schemas[0].Fields {
		names = append(names, f.Name)
	}
	if fmt.Sprint(names) != "[sequence table partition payload event_time idempotency_key ingest_time]" ||
		tbl.Metadata.Specs[0].Fields[0].Transform != "hour" || tbl.Metadata.Props["zombi.ingest.format"] != "events" ||
		tbl.Metadata.Props["write.parquet.dict-encoding-enabled.column.payload"] != "false" ||
		tbl.Metadata.Props["write.parquet.dict-encoding-enabled.column.sequence"] != "false" ||
		tbl.Metadata.Props["write.parquet.dict-encoding-enabled.column.event_time"] != "false" ||
		tbl.Metadata.Props["write.parquet.dict-encoding-enabled.column.ingest_time"] != "false" ||
		tbl.Metadata.Props["write.parquet.compression-level"] != "1" {
		t.Fatalf("auto-created table: %+v", tbl.Metadata)
	}

	// Namespaced tables, nested namespaces.
	if r := postEvent(t, base, "shop.orders", `{"payload":"x"}`); r.Table != "shop.orders" || r.Offset != 1 {
		t.Fatalf("namespaced write: %+v", r)
	}
	if r := postEvent(t, base, "a.b.c", `{"payload":"x"}`); r.Table != "a.b.c" {
		t.Fatalf("nested namespace write: %+v", r)
	}
	mustCall(t, 200, "GET", base+"/v1/namespaces/a%1Fb/tables/c", "")
}

// TestIngestValidation sends bad requests; each is refused with a clear
// Iceberg error and stores nothing.
func TestIngestValidation(t *testing.T) {
	inst := startHot(t, "--max-event-bytes", "1KiB", "--max-bulk-bytes", "4KiB")
	base := inst.URL
	postEvent(t, base, "v", `{"payload":"seed"}`)

	tests := []struct {
		name, method, path, body string
		headers                  []string
		status                   int
		typ, mention             string
	}{
		{"name with colon", "POST", "/tables/a:b", `{"payload":"x"}`, nil, 400, "BadRequestException", "a:b"},
		{"name starting with digit", "POST", "/tables/1abc", `{"payload":"x"}`, nil, 400, "BadRequestException", "1abc"},
		{"name with dot-dot", "POST", "/tables/a..b", `{"payload":"x"}`, nil, 400, "BadRequestException", "a..b"},
		{"name too long", "POST", "/tables/" + strings.Repeat("a", 129), `{"payload":"x"}`, nil, 400, "BadRequestException", "must match"},
		{"not JSON", "POST", "/tables/v", `payload=x`, nil, 400, "BadRequestException", ""},
		{"no payload", "POST", "/tables/v", `{"partition":1}`, nil, 400, "BadRequestException", "payload"},
		{"both payloads", "POST", "/tables/v", `{"payload":"x","payload_base64":"eA=="}`, nil, 400, "BadRequestException", "payload"},
		{"bad base64", "POST", "/tables/v", `{"payload_base64":"%%%"}`, nil, 400, "BadRequestException", "payload_base64"},
		{"negative partition", "POST", "/tables/v", `{"payload":"x","partition":-1}`, nil, 400, "BadRequestException", "partition"},
		{"partition too big", "POST", "/tables/v", `{"payload":"x","partition":2147483648}`, nil, 400, "BadRequestException", "partition"},
		{"timestamp as string", "POST", "/tables/v", `{"payload":"x","timestamp_ms":"now"}`, nil, 400, "BadRequestException", "timestamp_ms"},
		{"fractional timestamp", "POST", "/tables/v", `{"payload":"x","timestamp_ms":1.5}`, nil, 400, "BadRequestException", "timestamp_ms"},
		{"unknown field", "POST", "/tables/v", `{"payload":"x","colour":"red"}`, nil, 400, "BadRequestException", "colour"},
		{"idempotency key mismatch", "POST", "/tables/v", `{"payload":"x","idempotency_key":"a"}`, []string{"Idempotency-Key", "b"}, 400, "BadRequestException", "differ"},
		{"wrong content type", "POST", "/tables/v", `<x/>`, []string{"Content-Type", "text/xml"}, 415, "UnsupportedMediaTypeException", "text/xml"},
		{"wrong content type, unknown table", "POST", "/tables/fresh", `<x/>`, []string{"Content-Type", "text/xml"}, 415, "UnsupportedMediaTypeException", "application/x-protobuf, not text/xml"},
		{"wrong bulk content type, unknown table", "POST", "/tables/fresh/bulk", `a,b`, []string{"Content-Type", "text/csv"}, 415, "UnsupportedMediaTypeException", "application/x-ndjson"},
		{"NDJSON single event, unknown table", "POST", "/tables/fresh", `{"payload":"x"}`, []string{"Content-Type", "application/x-ndjson"}, 415, "UnsupportedMediaTypeException", "does not exist"},
		{"bad JSON, unknown table", "POST", "/tables/fresh", `{"payload":`, nil, 400, "BadRequestException", ""},
		{"no payload, unknown table", "POST", "/tables/fresh", `{"partition":1}`, nil, 400, "BadRequestException", "payload"},
		{"bad bulk record, unknown table", "POST", "/tables/fresh/bulk", `{"records":[{"payload":"ok"},{"partition":1}]}`, nil, 400, "BadRequestException", "record 1"},
		{"empty body", "POST", "/tables/v", ``, nil, 400, "BadRequestException", "empty"},
		{"event too large", "POST", "/tables/v", `{"payload":"` + strings.Repeat("x", 2000) + `"}`, nil, 413, "RequestEntityTooLargeException", "1024"},
		{"bulk too large", "POST", "/tables/v/bulk", `{"records":[{"payload":"` + strings.Repeat("x", 5000) + `"}]}`, nil, 413, "RequestEntityTooLargeException", "4096"},
		{"bulk without records", "POST", "/tables/v/bulk", `{"rows":[]}`, nil, 400, "BadRequestException", "records"},
		{"bad offset", "GET", "/tables/v?offset=-1", ``, nil, 400, "BadRequestException", ""},
		{"bad limit", "GET", "/tables/v?limit=0", ``, nil, 400, "BadRequestException", ""},
		{"limit too big", "GET", "/tables/v?limit=10001", ``, nil, 400, "BadRequestException", ""},
		{"bad since", "GET", "/tables/v?since=yesterday", ``, nil, 400, "BadRequestException", "since"},
		{"read unknown table", "GET", "/tables/nothing", ``, nil, 404, "NoSuchTableException", ""},
		{"watermark of unknown table", "GET", "/tables/nothing/watermark", ``, nil, 404, "NoSuchTableException", ""},
		{"wrong method", "DELETE", "/tables/v", ``, nil, 405, "MethodNotAllowedException", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			status, _, body := call(t, tc.method, base+tc.path, tc.body, tc.headers...)
			if status != tc.status {
				t.Fatalf("status %d, want %d: %.300s", status, tc.status, body)
			}
			e := decodeError(t, body)
			if e.Error.Type != tc.typ || !strings.Contains(e.Error.Message, tc.mention) {
				t.Fatalf("error %+v, want type %s mentioning %q", e.Error, tc.typ, tc.mention)
			}
		})
	}

	// A body no event table takes, or one an event table would refuse,
	// did not auto-create one.
	mustCall(t, 404, "HEAD", base+"/v1/namespaces/default/tables/fresh", "")
	// Nor did a partial bulk request without a good record, though it is
	// answered as an existing table would answer it.
	status, _, body := call(t, "POST", base+"/tables/fresh/bulk?partial=true", `{"records":[{"partition":1}]}`)
	if status != 207 || !bytes.Contains(body, []byte(`"rejected":1`)) || !bytes.Contains(body, []byte(`"index":0,"status":400`)) {
		t.Fatalf("partial bulk without a good record to an unknown table: %d %s", status, body)
	}
	mustCall(t, 404, "HEAD", base+"/v1/namespaces/default/tables/fresh", "")
	// A partial bulk request with a good record does create it.
	if status, _, body := call(t, "POST", base+"/tables/fresh/bulk?partial=true", `{"records":[{"partition":1},{"payload":"ok"}]}`); status != 207 {
		t.Fatalf("partial bulk with a good record to an unknown table: %d %s", status, body)
	}
	mustCall(t, 204, "HEAD", base+"/v1/namespaces/default/tables/fresh", "")

	// A bulk request with bad records is refused whole, listing each.
	status, _, body = call(t, "POST", base+"/tables/v/bulk", `{"records":[{"payload":"ok"},{"partition":1},{"payload":"ok"},{"payload":1,"extra":true}]}`)
	if status != 400 {
		t.Fatalf("bulk with bad records: %d %s", status, body)
	}
	var bad struct {
		Error struct {
			Records []struct {
				Index  int    `json:"index"`
				Field  string `json:"field"`
				Reason string `json:"reason"`
			} `json:"records"`
		} `json:"error"`
	}
	if err := json.Unmarshal(body, &bad); err != nil || len(bad.Error.Records) != 2 || bad.Error.Records[0].Index != 1 || bad.Error.Records[1].Index != 3 || bad.Error.Records[0].Reason == "" {
		t.Fatalf("bulk errors %s", body)
	}
	// Nothing from the refused requests was stored.
	if evs := hotEvents(t, base, "v"); len(evs) != 1 {
		t.Fatalf("hot tier holds %d events after refused writes, want 1", len(evs))
	}

	// partial=true writes the good ones and reports each record.
	status, _, body = call(t, "POST", base+"/tables/v/bulk?partial=true", `{"records":[{"payload":"ok1"},{"partition":1},{"payload":"ok2"}]}`)
	var partial struct {
		Accepted int `json:"accepted"`
		Rejected int `json:"rejected"`
		Results  []struct {
			Index  int    `json:"index"`
			Status int    `json:"status"`
			Offset int64  `json:"offset"`
			Error  string `json:"error"`
		} `json:"results"`
	}
	if err := json.Unmarshal(body, &partial); status != 207 || err != nil || partial.Accepted != 2 || partial.Rejected != 1 ||
		partial.Results[0].Status != 202 || partial.Results[0].Offset != 2 || partial.Results[1].Status != 400 || partial.Results[1].Error == "" || partial.Results[2].Offset != 3 {
		t.Fatalf("partial bulk: %d %s", status, body)
	}
	if evs := hotEvents(t, base, "v"); len(evs) != 3 {
		t.Fatalf("hot tier holds %d events after a partial write, want 3", len(evs))
	}

	// With auto-create off an unknown table is 404 and nothing is created.
	off := startHot(t, "--auto-create=false")
	status, _, body = call(t, "POST", off.URL+"/tables/nope", `{"payload":"x"}`)
	if status != 404 || decodeError(t, body).Error.Type != "NoSuchTableException" {
		t.Fatalf("write to unknown table without auto-create: %d %s", status, body)
	}
	mustCall(t, 404, "HEAD", off.URL+"/v1/namespaces/default/tables/nope", "")
}

// TestIngestProtobuf writes protobuf events, single and bulk, and reads
// them back byte for byte.
func TestIngestProtobuf(t *testing.T) {
	inst := startHot(t)
	base := inst.URL
	one, err := proto.Marshal(&ingestpb.Event{Payload: []byte{0, 1, 2, 0xff}, TimestampMs: 1700000000000, IdempotencyKey: "pb-1"})
	if err != nil {
		t.Fatal(err)
	}
	r := postEvent(t, base, "pb", string(one), "Content-Type", "application/x-protobuf", "X-Partition", "7")
	if r.Offset != 1 || r.Partition != 7 {
		t.Fatalf("protobuf single: %+v", r)
	}
	if d := postEvent(t, base, "pb", string(one), "Content-Type", "application/x-protobuf", "X-Partition", "7"); !d.Duplicate || d.Offset != 1 {
		t.Fatalf("protobuf retry: %+v", d)
	}
	bulk, err := proto.Marshal(&ingestpb.BulkWriteRequest{Records: []*ingestpb.BulkEvent{
		{Payload: []byte("a"), Partition: 1},
		{Payload: []byte("b"), Partition: 2, TimestampMs: 1700000001000},
	}})
	if err != nil {
		t.Fatal(err)
	}
	b := mustCall(t, 202, "POST", base+"/tables/pb/bulk", string(bulk), "Content-Type", "application/x-protobuf")
	if !strings.Contains(string(b), `"offsets":[2,3]`) {
		t.Fatalf("protobuf bulk: %s", b)
	}
	status, _, body := call(t, "POST", base+"/tables/pb", "\xff\xff\xff", "Content-Type", "application/x-protobuf")
	if status != 400 {
		t.Fatalf("malformed protobuf: %d %s", status, body)
	}
	if status, _, _ := call(t, "POST", base+"/tables/pb", string(one), "Content-Type", "application/x-protobuf", "X-Partition", "-1"); status != 400 {
		t.Fatalf("bad X-Partition: %d", status)
	}
	evs := hotEvents(t, base, "pb")
	if len(evs) != 3 || string(payloadOf(t, evs[0])) != "\x00\x01\x02\xff" || evs[0]["partition"] != float64(7) ||
		evs[0]["idempotency_key"] != "pb-1" || string(payloadOf(t, evs[2])) != "b" || evs[2]["partition"] != float64(2) {
		t.Fatalf("protobuf events read back as %v", evs)
	}

	// The Arrow IPC stream carries the same events in the table's schema.
	status, hdr, body := call(t, "GET", base+"/tables/pb?limit=10", "", "Accept", "application/vnd.apache.arrow.stream")
	if status != 200 || hdr.Get("X-Next-Offset") != "4" {
		t.Fatalf("arrow read: %d %v", status, hdr)
	}
	rdr, err := ipc.NewReader(bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer rdr.Release()
	rows := 0
	for rdr.Next() {
		rec := rdr.RecordBatch()
		rows += int(rec.NumRows())
		if rec.Schema().Field(3).Name != "payload" {
			t.Fatalf("arrow schema %v", rec.Schema())
		}
		if got := rec.Column(3).(*array.Binary).Value(0); !bytes.Equal(got, []byte{0, 1, 2, 0xff}) {
			t.Fatalf("arrow payload %x", got)
		}
	}
	if rows != 3 {
		t.Fatalf("arrow stream has %d rows, want 3", rows)
	}
}
