package codec

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/zombi-db/zombi/hotrow"
)

func ms(v int64) time.Time { return time.UnixMilli(v).UTC() }

func TestDecodeEnvelopeJSON(t *testing.T) {
	for _, tc := range []struct {
		name string
		body string
		want Envelope
	}{
		{"string payload", `{"payload":"hello"}`, Envelope{Payload: []byte("hello")}},
		{"empty string payload", `{"payload":""}`, Envelope{Payload: []byte{}}},
		{"escaped string payload", `{"payload":"a\"b\\c\/d\n\u00e9\ud83d\ude00"}`, Envelope{Payload: []byte("a\"b\\c/d\né😀")}},
		{"utf8 payload", `{"payload":"héllo 😀"}`, Envelope{Payload: []byte("héllo 😀")}},
		{"object payload compacted", "{\"payload\": { \"a\" : [1, 2.50, \"x y\"] ,\n\t\"b\":null } }", Envelope{Payload: []byte(`{"a":[1,2.50,"x y"],"b":null}`)}},
		{"object payload kept as written", `{"payload":{"b":1,"a":"\u00e9"}}`, Envelope{Payload: []byte(`{"b":1,"a":"\u00e9"}`)}},
		{"array payload", `{"payload":[true,false]}`, Envelope{Payload: []byte(`[true,false]`)}},
		{"number payload", `{"payload":-1.5e3}`, Envelope{Payload: []byte(`-1.5e3`)}},
		{"bool payload", `{"payload":true}`, Envelope{Payload: []byte(`true`)}},
		{"base64 payload", `{"payload_base64":"AAEC/w=="}`, Envelope{Payload: []byte{0, 1, 2, 0xff}}},
		{"base64 with escaped slash", `{"payload_base64":"AAEC\/w=="}`, Envelope{Payload: []byte{0, 1, 2, 0xff}}},
		{"empty base64", `{"payload_base64":""}`, Envelope{Payload: []byte{}}},
		{"null payload with base64", `{"payload":null,"payload_base64":"eA=="}`, Envelope{Payload: []byte("x")}},
		{"all fields", `{"payload":"p","partition":7,"timestamp_ms":1700000000123,"idempotency_key":"k-1"}`,
			Envelope{Payload: []byte("p"), Partition: 7, EventTime: ms(1700000000123), IdempotencyKey: "k-1"}},
		{"nulls are absent", `{"payload":"p","partition":null,"timestamp_ms":null,"idempotency_key":null}`, Envelope{Payload: []byte("p")}},
		{"max partition", `{"payload":"p","partition":2147483647}`, Envelope{Payload: []byte("p"), Partition: 2147483647}},
		{"minus zero partition", `{"payload":"p","partition":-0}`, Envelope{Payload: []byte("p")}},
		{"epoch", `{"payload":"p","timestamp_ms":0}`, Envelope{Payload: []byte("p"), EventTime: ms(0)}},
		{"max timestamp", `{"payload":"p","timestamp_ms":253402300799999}`, Envelope{Payload: []byte("p"), EventTime: time.Date(9999, 12, 31, 23, 59, 59, 999e6, time.UTC)}},
		{"empty key is none", `{"payload":"p","idempotency_key":""}`, Envelope{Payload: []byte("p")}},
		{"256 byte key", `{"payload":"p","idempotency_key":"` + strings.Repeat("k", 256) + `"}`, Envelope{Payload: []byte("p"), IdempotencyKey: strings.Repeat("k", 256)}},
		{"whitespace around", " \r\n\t{\"payload\":\"p\"} \r\n", Envelope{Payload: []byte("p")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := DecodeEnvelopeJSON([]byte(tc.body))
			if err != nil {
				t.Fatalf("DecodeEnvelopeJSON(%s): %v", tc.body, err)
			}
			if !envelopeEqual(got, tc.want) {
				t.Fatalf("DecodeEnvelopeJSON(%s) =\n%s, want\n%s", tc.body, fmtEnvelope(got), fmtEnvelope(tc.want))
			}
		})
	}
}

func envelopeEqual(a, b Envelope) bool {
	return bytes.Equal(a.Payload, b.Payload) && a.Partition == b.Partition &&
		a.EventTime.Equal(b.EventTime) && a.EventTime.IsZero() == b.EventTime.IsZero() &&
		a.IdempotencyKey == b.IdempotencyKey
}

func fmtEnvelope(e Envelope) string {
	return fmt.Sprintf("{Payload: %q, Partition: %d, EventTime: %v, IdempotencyKey: %q}", e.Payload, e.Partition, e.EventTime, e.IdempotencyKey)
}

func TestDecodeEnvelopeJSONPayloadAliasesBody(t *testing.T) {
	body := []byte(`{"payload":"abc"}`)
	env, err := DecodeEnvelopeJSON(body)
	if err != nil {
		t.Fatal(err)
	}
	body[12] = 'X'
	if string(env.Payload) != "Xbc" {
		t.Fatalf("payload %q does not alias the body", env.Payload)
	}
}

// envelopeErrors are bodies DecodeEnvelopeJSON rejects with a *FieldError:
// each validation of an envelope member.
var envelopeErrors = []struct {
	name, body, path, reason string
}{
	{"no payload", `{}`, "payload", "required"},
	{"null payload only", `{"payload":null}`, "payload", "required"},
	{"both payloads", `{"payload":"a","payload_base64":"YQ=="}`, "payload_base64", "not both"},
	{"unknown field", `{"payload":"a","topic":"t"}`, "topic", "unknown field"},
	{"unknown odd field", `{"payload":"a","a.b c":1}`, `"a.b c"`, "unknown field"},
	{"repeated field", `{"payload":"a","payload":"b"}`, "payload", "repeated field"},
	{"repeated null field", `{"partition":null,"partition":1,"payload":"a"}`, "partition", "repeated field"},
	{"base64 not a string", `{"payload_base64":5}`, "payload_base64", "must be a base64 string, not a number"},
	{"bad base64", `{"payload_base64":"***"}`, "payload_base64", "invalid base64"},
	{"unpadded base64", `{"payload_base64":"YQ"}`, "payload_base64", "invalid base64"},
	{"url base64", `{"payload_base64":"-_8="}`, "payload_base64", "invalid base64"},
	{"partition string", `{"payload":"a","partition":"1"}`, "partition", "must be an integer in 0..2147483647, not a string"},
	{"partition float", `{"payload":"a","partition":1.5}`, "partition", "not 1.5"},
	{"partition float integer", `{"payload":"a","partition":1.0}`, "partition", "not 1.0"},
	{"partition exponent", `{"payload":"a","partition":1e2}`, "partition", "not 1e2"},
	{"partition negative", `{"payload":"a","partition":-1}`, "partition", "-1 is out of range 0..2147483647"},
	{"partition too big", `{"payload":"a","partition":2147483648}`, "partition", "out of range"},
	{"partition huge", `{"payload":"a","partition":99999999999999999999999}`, "partition", "out of range"},
	{"partition bool", `{"payload":"a","partition":true}`, "partition", "not a boolean"},
	{"timestamp string", `{"payload":"a","timestamp_ms":"1700000000000"}`, "timestamp_ms", "must be an integer in 0..253402300799999, not a string"},
	{"timestamp float", `{"payload":"a","timestamp_ms":1700000000000.5}`, "timestamp_ms", "must be an integer"},
	{"timestamp negative", `{"payload":"a","timestamp_ms":-1}`, "timestamp_ms", "out of range"},
	{"timestamp after 9999", `{"payload":"a","timestamp_ms":253402300800000}`, "timestamp_ms", "out of range"},
	{"timestamp object", `{"payload":"a","timestamp_ms":{}}`, "timestamp_ms", "not an object"},
	{"key not a string", `{"payload":"a","idempotency_key":12}`, "idempotency_key", "must be a string, not a number"},
	{"key too long", `{"payload":"a","idempotency_key":"` + strings.Repeat("k", 257) + `"}`, "idempotency_key", "longer than 256 bytes"},
	{"key too long escaped", `{"payload":"a","idempotency_key":"` + strings.Repeat(`\u00e9`, 129) + `"}`, "idempotency_key", "longer than 256 bytes"},
	{"not an object", `["payload"]`, "", "must be a JSON object, not an array"},
	{"string body", `"x"`, "", "must be a JSON object, not a string"},
	{"null body", `null`, "", "must be a JSON object, not null"},
	{"first error wins", `{"partition":-1,"timestamp_ms":-1}`, "partition", "out of range"},
}

func TestDecodeEnvelopeJSONErrors(t *testing.T) {
	for _, tc := range envelopeErrors {
		t.Run(tc.name, func(t *testing.T) {
			_, err := DecodeEnvelopeJSON([]byte(tc.body))
			fe, ok := errors.AsType[*FieldError](err)
			if !ok {
				t.Fatalf("DecodeEnvelopeJSON(%s) = %v, want a *FieldError", tc.body, err)
			}
			if fe.Path != tc.path || !strings.Contains(fe.Reason, tc.reason) {
				t.Fatalf("DecodeEnvelopeJSON(%s) = %q, want path %q, reason containing %q", tc.body, err, tc.path, tc.reason)
			}
		})
	}
}

// syntaxErrors are bodies that are not JSON, with the offset and message
// of the error.
var syntaxErrors = []struct {
	body   string
	offset int
	msg    string
}{
	{``, 0, "unexpected end of input, expected a JSON object"},
	{`   `, 3, "unexpected end of input"},
	{`{`, 1, "unexpected end of input, expected a string (object key)"},
	{`{"payload"`, 10, "expected ':'"},
	{`{"payload":`, 11, "unexpected end of input, expected a JSON value"},
	{`{"payload":"a"`, 14, "expected ',' or '}'"},
	{`{"payload":"a",}`, 15, `unexpected '}', expected a string (object key)`},
	{`{"payload":"a"}}`, 15, `unexpected '}' after the JSON value`},
	{`{"payload":"a"} x`, 16, `unexpected 'x' after the JSON value`},
	{`{"payload":'a'}`, 11, `unexpected '\'', expected a JSON value`},
	{`{payload:"a"}`, 1, "expected a string (object key)"},
	{`{"payload":"a` + "\n" + `"}`, 13, "control character"},
	{`{"payload":"a` + "\xff" + `"}`, 13, "invalid UTF-8"},
	{`{"payload":"\x"}`, 12, `invalid escape "\\x"`},
	{`{"payload":"abc`, 15, "unexpected end of input in a string"},
	{`{"payload":"abc\`, 15, "unexpected end of input in a string"},
	{`{"payload":"\u12"}`, 12, `invalid \u escape`},
	{`{"payload":"\ud800"}`, 12, "lone surrogate"},
	{`{"payload":"\udc00"}`, 12, "lone surrogate"},
	{`{"payload":"\ud800\u0041"}`, 12, "lone surrogate"},
	{`{"payload":01}`, 12, `unexpected '1', expected ',' or '}'`},
	{`{"payload":1.}`, 13, "expected a digit after the decimal point"},
	{`{"payload":1e}`, 13, "expected a digit in the exponent"},
	{`{"payload":-}`, 12, "expected a digit"},
	{`{"payload":+1}`, 11, "expected a JSON value"},
	{`{"payload":tru}`, 11, "expected a JSON value"},
	{`{"payload":nul}`, 11, "expected a JSON value"},
	{`{"payload":[1,]}`, 14, "expected a JSON value"},
	{`{"payload":[1 2]}`, 14, "expected ',' or ']'"},
	{`{"payload":NaN}`, 11, "expected a JSON value"},
	{`{"payload":"a", "partition": 1 2}`, 31, "expected ',' or '}'"},
	{`{"payload":` + strings.Repeat("[", 1001) + strings.Repeat("]", 1001) + `}`, 1011, "nested deeper than 1000 levels"},
	{`{"partition":-1,"x"` + "\x00", 19, "expected ':'"},
}

func TestDecodeEnvelopeJSONSyntaxErrors(t *testing.T) {
	for _, tc := range syntaxErrors {
		_, err := DecodeEnvelopeJSON([]byte(tc.body))
		se, ok := errors.AsType[*SyntaxError](err)
		if !ok {
			t.Errorf("DecodeEnvelopeJSON(%q) = %v, want a *SyntaxError", tc.body, err)
			continue
		}
		if se.Offset != tc.offset || !strings.Contains(se.Msg, tc.msg) {
			t.Errorf("DecodeEnvelopeJSON(%q) = %q at %d, want %q at %d", tc.body, se.Msg, se.Offset, tc.msg, tc.offset)
		}
	}
}

func TestDecodeEnvelopeJSONNestingLimit(t *testing.T) {
	body := `{"payload":` + strings.Repeat("[", 1000) + strings.Repeat("]", 1000) + `}`
	env, err := DecodeEnvelopeJSON([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	if len(env.Payload) != 2000 {
		t.Fatalf("payload of %d bytes, want 2000", len(env.Payload))
	}
}

func TestDecodeBulkJSON(t *testing.T) {
	body := `{"records": [
		{"payload": "a", "partition": 1},
		{"payload": "b", "partition": -1},
		5,
		{"payload_base64": "Yw==", "timestamp_ms": 1000, "idempotency_key": "k"},
		{"nope": 1}
	]}`
	envs, errs, err := DecodeBulkJSON([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	want := []Envelope{
		{Payload: []byte("a"), Partition: 1},
		{},
		{},
		{Payload: []byte("c"), EventTime: ms(1000), IdempotencyKey: "k"},
		{},
	}
	if len(envs) != len(want) {
		t.Fatalf("%d envelopes, want %d", len(envs), len(want))
	}
	for i := range want {
		if !envelopeEqual(envs[i], want[i]) {
			t.Errorf("envelope %d = %s, want %s", i, fmtEnvelope(envs[i]), fmtEnvelope(want[i]))
		}
	}
	wantErrs := []RecordError{
		{Index: 1, Field: "partition", Reason: "-1 is out of range 0..2147483647"},
		{Index: 2, Reason: "an event must be a JSON object, not a number"},
		{Index: 4, Field: "nope", Reason: "unknown field (an event has payload, payload_base64, partition, timestamp_ms, idempotency_key)"},
	}
	if !reflect.DeepEqual(errs, wantErrs) {
		t.Fatalf("errors = %+v, want %+v", errs, wantErrs)
	}
	if got := errs[0].Error(); got != "partition: -1 is out of range 0..2147483647" {
		t.Errorf("Error() = %q", got)
	}
	if got := errs[1].Error(); got != "an event must be a JSON object, not a number" {
		t.Errorf("Error() = %q", got)
	}
}

func TestDecodeBulkJSONShapes(t *testing.T) {
	for _, tc := range []struct {
		body string
		n    int
	}{
		{`{"records":[]}`, 0},
		{`[]`, 0},
		{` [ {"payload":"a"} , {"payload":"b"} ] `, 2},
		{`{"records":[{"payload":"a"}]}`, 1},
	} {
		envs, errs, err := DecodeBulkJSON([]byte(tc.body))
		if err != nil || len(errs) != 0 || len(envs) != tc.n {
			t.Errorf("DecodeBulkJSON(%s) = %d envelopes, %v, %v; want %d", tc.body, len(envs), errs, err, tc.n)
		}
	}
}

func TestDecodeBulkJSONBodyErrors(t *testing.T) {
	for _, tc := range []struct {
		body string
		want string
	}{
		{``, "unexpected end of input"},
		{`{}`, `records: required`},
		{`{"records":{}}`, "records: must be an array, not an object"},
		{`{"records":null}`, "records: must be an array, not null"},
		{`{"data":[]}`, "data: unknown field"},
		{`{"records":[],"x":1}`, "x: unknown field"},
		{`{"records":[],"records":[]}`, "records: repeated field"},
		{`"records"`, "must be a JSON object"},
		{`{"records":[{"payload":"a"},]}`, "expected a JSON value"},
		{`{"records":[{"payload":"a"}`, "expected ',' or ']'"},
		{`{"records":[{"payload":"a"]}`, "expected ',' or '}'"},
		{`{"records":[{"payload":"a"}]} {}`, "after the JSON value"},
		{`{"records":[{"payload":"a", "partition": 1.5e}]}`, "exponent"},
	} {
		_, _, err := DecodeBulkJSON([]byte(tc.body))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("DecodeBulkJSON(%s) = %v, want an error containing %q", tc.body, err, tc.want)
		}
	}
}

func TestDecodeBulkTooManyRecords(t *testing.T) {
	one := `{"payload":"a"}`
	build := func(n int, sep string) []byte {
		var b bytes.Buffer
		for i := 0; i < n; i++ {
			if i > 0 {
				b.WriteString(sep)
			}
			b.WriteString(one)
		}
		return b.Bytes()
	}
	atMax := build(MaxBulkRecords, ",")
	over := build(MaxBulkRecords+1, ",")
	json := func(records []byte) []byte { return append(append([]byte(`{"records":[`), records...), "]}"...) }

	if envs, _, err := DecodeBulkJSON(json(atMax)); err != nil || len(envs) != MaxBulkRecords {
		t.Errorf("DecodeBulkJSON with %d records: %d, %v", MaxBulkRecords, len(envs), err)
	}
	if _, _, err := DecodeBulkJSON(json(over)); !errors.Is(err, ErrTooManyRecords) {
		t.Errorf("DecodeBulkJSON with %d records: %v, want ErrTooManyRecords", MaxBulkRecords+1, err)
	}
	if envs, _, err := DecodeBulkNDJSON(build(MaxBulkRecords, "\n\n")); err != nil || len(envs) != MaxBulkRecords {
		t.Errorf("DecodeBulkNDJSON with %d records: %d, %v", MaxBulkRecords, len(envs), err)
	}
	if _, _, err := DecodeBulkNDJSON(build(MaxBulkRecords+1, "\n")); !errors.Is(err, ErrTooManyRecords) {
		t.Errorf("DecodeBulkNDJSON with %d records: %v, want ErrTooManyRecords", MaxBulkRecords+1, err)
	}
	if rows, err := SplitBulkRows(json(atMax), false); err != nil || len(rows) != MaxBulkRecords {
		t.Errorf("SplitBulkRows with %d rows: %d, %v", MaxBulkRecords, len(rows), err)
	}
	if _, err := SplitBulkRows(json(over), false); !errors.Is(err, ErrTooManyRecords) {
		t.Errorf("SplitBulkRows with %d rows: %v, want ErrTooManyRecords", MaxBulkRecords+1, err)
	}
	if _, err := SplitBulkRows(build(MaxBulkRecords+1, "\r\n"), true); !errors.Is(err, ErrTooManyRecords) {
		t.Errorf("SplitBulkRows NDJSON with %d rows: %v, want ErrTooManyRecords", MaxBulkRecords+1, err)
	}
}

func TestDecodeBulkNDJSON(t *testing.T) {
	body := "{\"payload\":\"a\"}\r\n" +
		"\n" +
		"   \t\r\n" +
		"{\"payload\":\"b\",\"partition\":2}\n" +
		"{\"payload\":\n" +
		"{\"payload\":\"c\"} {}\n" +
		"{\"partition\":1}\n" +
		"{\"payload\":\"d\",\"timestamp_ms\":5}"
	envs, errs, err := DecodeBulkNDJSON([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	want := []Envelope{
		{Payload: []byte("a")},
		{Payload: []byte("b"), Partition: 2},
		{},
		{},
		{},
		{Payload: []byte("d"), EventTime: ms(5)},
	}
	if len(envs) != len(want) {
		t.Fatalf("%d envelopes, want %d", len(envs), len(want))
	}
	for i := range want {
		if !envelopeEqual(envs[i], want[i]) {
			t.Errorf("envelope %d = %s, want %s", i, fmtEnvelope(envs[i]), fmtEnvelope(want[i]))
		}
	}
	wantErrs := []RecordError{
		{Index: 2, Reason: "invalid JSON at offset 11: unexpected end of input, expected a JSON value"},
		{Index: 3, Reason: `invalid JSON at offset 16: unexpected '{' after the JSON value`},
		{Index: 4, Field: "payload", Reason: "required: give payload or payload_base64"},
	}
	if !reflect.DeepEqual(errs, wantErrs) {
		t.Fatalf("errors = %+v, want %+v", errs, wantErrs)
	}
}

func TestDecodeBulkNDJSONEmpty(t *testing.T) {
	for _, body := range []string{"", "\n", "\r\n\r\n", " \n\t\n"} {
		envs, errs, err := DecodeBulkNDJSON([]byte(body))
		if len(envs) != 0 || len(errs) != 0 || err != nil {
			t.Errorf("DecodeBulkNDJSON(%q) = %v, %v, %v; want nothing", body, envs, errs, err)
		}
	}
}

func TestRecordErrorFor(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want RecordError
	}{
		{&FieldError{Path: "a.b", Reason: "bad"}, RecordError{Index: 3, Field: "a.b", Reason: "bad"}},
		{fmt.Errorf("wrapped: %w", &FieldError{Path: "x", Reason: "r"}), RecordError{Index: 3, Field: "x", Reason: "r"}},
		{&SyntaxError{Offset: 4, Msg: "m"}, RecordError{Index: 3, Reason: "invalid JSON at offset 4: m"}},
		{errors.New("other"), RecordError{Index: 3, Reason: "other"}},
	} {
		if got := RecordErrorFor(3, tc.err); got != tc.want {
			t.Errorf("RecordErrorFor(3, %v) = %+v, want %+v", tc.err, got, tc.want)
		}
	}
}

func TestCountBulk(t *testing.T) {
	deep := strings.Repeat("[", maxDepth) + strings.Repeat("]", maxDepth)
	tests := []struct {
		name   string
		body   string
		ndjson bool
		want   int
		err    bool
	}{
		{"array", `[{"payload":"a"},{"payload":"b"},5]`, false, 3, false},
		{"records", `{"records":[{"payload":"a"}]}`, false, 1, false},
		{"empty", `{"records":[]}`, false, 0, false},
		{"not JSON", `{"records":[{"payload":"a"}`, false, 0, true},
		{"unterminated string", `[{"payload":"a}]`, false, 0, true},
		{"mismatched bracket", `[{"payload":"a"}}`, false, 0, true},
		{"not a bulk body", `"records"`, false, 0, true},
		{"brackets and commas in strings", `[{"payload":"a,\"],[{\\"},{"payload":"\\\\","idempotency_key":"}"}]`, false, 2, false},
		{"nested records", `[{"payload":{"a":[1,2,{"b":[3]}]}},[[1,2],3]]`, false, 2, false},
		{"a payload as deep as decoding takes", `[{"payload":` + deep + `}]`, false, 1, false},
		{"ndjson", "{\"payload\":\"a\"}\n\n  \r\nnot json\n{}", true, 3, false},
		{"too many", "[" + strings.Repeat("1,", MaxBulkRecords) + "1]", false, 0, true},
		{"too many lines", strings.Repeat("1\n", MaxBulkRecords+1), true, 0, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n, err := CountBulk([]byte(tc.body), tc.ndjson)
			if (err != nil) != tc.err || n != tc.want {
				t.Fatalf("CountBulk = %d, %v; want %d, error %v", n, err, tc.want, tc.err)
			}
			if tc.err {
				return
			}
			decode := DecodeBulkJSON
			if tc.ndjson {
				decode = DecodeBulkNDJSON
			}
			if envs, _, err := decode([]byte(tc.body)); err != nil || len(envs) != n {
				t.Fatalf("decoding: %d records, %v; counted %d", len(envs), err, n)
			}
		})
	}
}

func TestCheckIdempotencyKey(t *testing.T) {
	for _, tc := range []struct {
		key, want string
	}{
		{"", ""},
		{strings.Repeat("é", 128), ""},
		{strings.Repeat("k", 257), "Idempotency-Key: longer than 256 bytes"},
		{"a\xff", "Idempotency-Key: not valid UTF-8"},
	} {
		err := CheckIdempotencyKey("Idempotency-Key", tc.key)
		if got := fmt.Sprint(err); tc.want == "" && err != nil || tc.want != "" && got != tc.want {
			t.Errorf("CheckIdempotencyKey(%q) = %v, want %q", tc.key, err, tc.want)
		}
	}
}

func TestEnvelopeEvent(t *testing.T) {
	env := Envelope{Payload: []byte("p"), Partition: 3, EventTime: ms(1700000000123), IdempotencyKey: "k"}
	at := time.Unix(1700000001, 0)
	want := hotrow.Event{Partition: 3, EventTime: env.EventTime, IngestTime: at, IdempotencyKey: "k", Payload: env.Payload}
	if got := env.Event(at); !reflect.DeepEqual(got, want) {
		t.Errorf("Event = %+v, want %+v", got, want)
	}
}
