package codec

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/zombi-db/zombi/ingest/ingestpb"
)

func marshal(t testing.TB, m proto.Message) []byte {
	t.Helper()
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestDecodeEnvelopeProto(t *testing.T) {
	for _, tc := range []struct {
		name   string
		msg    *ingestpb.Event
		header string
		want   Envelope
	}{
		{"empty", &ingestpb.Event{}, "", Envelope{Payload: []byte{}}},
		{"payload", &ingestpb.Event{Payload: []byte{0, 0xff, 'a'}}, "", Envelope{Payload: []byte{0, 0xff, 'a'}}},
		{"all", &ingestpb.Event{Payload: []byte("p"), TimestampMs: 1700000000123, IdempotencyKey: "k", Headers: map[string]string{"a": "b", "c": ""}}, "12",
			Envelope{Payload: []byte("p"), Partition: 12, EventTime: ms(1700000000123), IdempotencyKey: "k"}},
		{"max partition", &ingestpb.Event{Payload: []byte("p")}, "2147483647", Envelope{Payload: []byte("p"), Partition: 2147483647}},
		{"zero partition", &ingestpb.Event{Payload: []byte("p")}, "0", Envelope{Payload: []byte("p")}},
		{"max timestamp", &ingestpb.Event{TimestampMs: MaxTimestampMs}, "", Envelope{Payload: []byte{}, EventTime: ms(MaxTimestampMs)}},
		{"max key", &ingestpb.Event{IdempotencyKey: strings.Repeat("é", 128)}, "", Envelope{Payload: []byte{}, IdempotencyKey: strings.Repeat("é", 128)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := DecodeEnvelopeProto(marshal(t, tc.msg), tc.header)
			if err != nil {
				t.Fatal(err)
			}
			if !envelopeEqual(got, tc.want) {
				t.Fatalf("got %s, want %s", fmtEnvelope(got), fmtEnvelope(tc.want))
			}
		})
	}
}

// rawField appends a field with any wire type, for bodies proto.Marshal
// would not write.
func rawBytesField(b []byte, num protowire.Number, v []byte) []byte {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendBytes(b, v)
}

func rawVarintField(b []byte, num protowire.Number, v uint64) []byte {
	b = protowire.AppendTag(b, num, protowire.VarintType)
	return protowire.AppendVarint(b, v)
}

func TestDecodeEnvelopeProtoErrors(t *testing.T) {
	valid := marshal(t, &ingestpb.Event{Payload: []byte("p")})
	headerEntry := func(k, v string) []byte {
		return rawBytesField(rawBytesField(nil, 1, []byte(k)), 2, []byte(v))
	}
	for _, tc := range []struct {
		name, header string
		body         []byte
		path, reason string
	}{
		{"negative header", "-1", valid, "X-Partition", `must be an integer in 0..2147483647, not "-1"`},
		{"plus header", "+1", valid, "X-Partition", "must be an integer"},
		{"spaced header", " 1", valid, "X-Partition", "must be an integer"},
		{"word header", "abc", valid, "X-Partition", "must be an integer"},
		{"big header", "2147483648", valid, "X-Partition", "2147483648 is out of range 0..2147483647"},
		{"huge header", "99999999999", valid, "X-Partition", "must be an integer"},
		{"negative timestamp", "", marshal(t, &ingestpb.Event{TimestampMs: -1}), "timestamp_ms", "-1 is out of range 0..253402300799999"},
		{"late timestamp", "", marshal(t, &ingestpb.Event{TimestampMs: MaxTimestampMs + 1}), "timestamp_ms", "out of range"},
		{"long key", "", marshal(t, &ingestpb.Event{IdempotencyKey: strings.Repeat("k", 257)}), "idempotency_key", "longer than 256 bytes"},
		{"truncated", "", valid[:len(valid)-1], "", "invalid Protobuf message"},
		{"bad varint", "", []byte{0x10, 0xff}, "", "invalid Protobuf message"},
		{"field zero", "", []byte{0x00, 0x01}, "", "invalid Protobuf message"},
		{"end group", "", []byte{0x0c}, "", "invalid Protobuf message"},
		{"wire type 6", "", []byte{0x0e}, "", "invalid Protobuf message"},
		{"key not utf8", "", rawBytesField(nil, 3, []byte{0xff}), "", "idempotency_key is not valid UTF-8"},
		{"header key not utf8", "", rawBytesField(nil, 4, headerEntry("\xff", "v")), "", "a header is not valid UTF-8"},
		{"header value not utf8", "", rawBytesField(nil, 4, headerEntry("k", "\xc3")), "", "a header is not valid UTF-8"},
		{"bad header entry", "", rawBytesField(nil, 4, []byte{0x0a, 0x05}), "", "invalid Protobuf message"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := DecodeEnvelopeProto(tc.body, tc.header)
			fe, ok := errors.AsType[*FieldError](err)
			if !ok {
				t.Fatalf("got %v, want a *FieldError", err)
			}
			if fe.Path != tc.path || !strings.Contains(fe.Reason, tc.reason) {
				t.Fatalf("got %q, want path %q, reason containing %q", err, tc.path, tc.reason)
			}
		})
	}
}

// TestDecodeProtoSkipsLikeProtoUnmarshal checks bodies that are valid for
// proto.Unmarshal although not what proto.Marshal writes.
func TestDecodeProtoSkipsLikeProtoUnmarshal(t *testing.T) {
	var b []byte
	b = rawVarintField(b, 1, 5)               // payload with the wrong wire type: unknown
	b = rawBytesField(b, 1, []byte("first"))  // payload
	b = rawBytesField(b, 1, []byte("second")) // last one wins
	b = rawVarintField(b, 2, 1000)            // timestamp
	b = rawBytesField(b, 2, []byte("x"))      // wrong wire type: unknown
	b = rawVarintField(b, 99, 1)              // unknown field
	b = protowire.AppendTag(b, 100, protowire.StartGroupType)
	b = rawVarintField(b, 1, 1)
	b = protowire.AppendTag(b, 100, protowire.EndGroupType) // unknown group
	b = protowire.AppendTag(b, 101, protowire.Fixed32Type)
	b = protowire.AppendFixed32(b, 7)
	b = rawBytesField(b, 4, rawVarintField(nil, 3, 1)) // header entry with an unknown field
	env, err := DecodeEnvelopeProto(b, "")
	if err != nil {
		t.Fatal(err)
	}
	want := Envelope{Payload: []byte("second"), EventTime: ms(1000)}
	if !envelopeEqual(env, want) {
		t.Fatalf("got %s, want %s", fmtEnvelope(env), fmtEnvelope(want))
	}
	var ref ingestpb.Event
	if err := proto.Unmarshal(b, &ref); err != nil {
		t.Fatalf("proto.Unmarshal: %v", err)
	}
	if string(ref.Payload) != "second" || ref.TimestampMs != 1000 {
		t.Fatalf("proto.Unmarshal disagrees: %v", &ref)
	}
}

func TestDecodeBulkProto(t *testing.T) {
	req := &ingestpb.BulkWriteRequest{Records: []*ingestpb.BulkEvent{
		{Payload: []byte("a"), Partition: 3, TimestampMs: 5, IdempotencyKey: "k", Headers: map[string]string{"h": "v"}},
		{Payload: []byte("b"), Partition: -2},
		{},
		{TimestampMs: -5},
		{IdempotencyKey: strings.Repeat("x", 300)},
	}}
	envs, errs, err := DecodeBulkProto(marshal(t, req))
	if err != nil {
		t.Fatal(err)
	}
	want := []Envelope{
		{Payload: []byte("a"), Partition: 3, EventTime: ms(5), IdempotencyKey: "k"},
		{},
		{Payload: []byte{}},
		{},
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
		{Index: 1, Field: "partition", Reason: "-2 is out of range 0..2147483647"},
		{Index: 3, Field: "timestamp_ms", Reason: "-5 is out of range 0..253402300799999"},
		{Index: 4, Field: "idempotency_key", Reason: "longer than 256 bytes"},
	}
	if !reflect.DeepEqual(errs, wantErrs) {
		t.Fatalf("errors = %+v, want %+v", errs, wantErrs)
	}
}

func TestDecodeBulkProtoErrors(t *testing.T) {
	good := marshal(t, &ingestpb.BulkWriteRequest{Records: []*ingestpb.BulkEvent{{Payload: []byte("a")}}})
	for _, tc := range []struct {
		name string
		body []byte
		want string
	}{
		{"truncated", good[:len(good)-1], "invalid Protobuf message"},
		{"bad record", rawBytesField(nil, 1, []byte{0x0a, 0x09}), "record 0: invalid Protobuf message"},
		{"record key not utf8", append(good, rawBytesField(nil, 1, rawBytesField(nil, 4, []byte{0xc3}))...), "record 1: idempotency_key is not valid UTF-8"},
	} {
		_, _, err := DecodeBulkProto(tc.body)
		if fe, ok := errors.AsType[*FieldError](err); !ok || fe.Reason != tc.want {
			t.Errorf("%s: got %v, want %q", tc.name, err, tc.want)
		}
	}

	var many []byte
	for range MaxBulkRecords + 1 {
		many = rawBytesField(many, 1, nil)
	}
	if _, _, err := DecodeBulkProto(many); !errors.Is(err, ErrTooManyRecords) {
		t.Errorf("%d records: %v, want ErrTooManyRecords", MaxBulkRecords+1, err)
	}
	envs, _, err := DecodeBulkProto(many[:len(many)-2])
	if err != nil || len(envs) != MaxBulkRecords {
		t.Errorf("%d records: %d, %v", MaxBulkRecords, len(envs), err)
	}
	envs, errs, err := DecodeBulkProto(nil)
	if err != nil || len(envs) != 0 || len(errs) != 0 {
		t.Errorf("empty body: %v, %v, %v", envs, errs, err)
	}
}

// referenceBulkProto decodes a bulk body with the generated code: the
// behavior DecodeBulkProto must match.
func referenceBulkProto(body []byte) ([]*ingestpb.BulkEvent, error) {
	var req ingestpb.BulkWriteRequest
	if err := proto.Unmarshal(body, &req); err != nil {
		return nil, err
	}
	return req.Records, nil
}

// checkProtoAgrees fails unless DecodeBulkProto and DecodeEnvelopeProto
// accept exactly what proto.Unmarshal accepts, with the same fields.
func checkProtoAgrees(t *testing.T, body []byte) {
	t.Helper()
	ref, refErr := referenceBulkProto(body)
	envs, errs, err := DecodeBulkProto(body)
	if (refErr == nil) != (err == nil) && !errors.Is(err, ErrTooManyRecords) {
		t.Fatalf("DecodeBulkProto(%x): %v; proto.Unmarshal: %v", body, err, refErr)
	}
	if err == nil {
		if len(envs) != len(ref) {
			t.Fatalf("DecodeBulkProto(%x): %d records, proto.Unmarshal %d", body, len(envs), len(ref))
		}
		if n, err := CountBulkProto(body); err != nil || n != len(envs) {
			t.Fatalf("CountBulkProto(%x) = %d, %v; DecodeBulkProto decoded %d", body, n, err, len(envs))
		}
		bad := map[int]bool{}
		for _, e := range errs {
			bad[e.Index] = true
		}
		for i, r := range ref {
			valid := r.Partition >= 0 && r.TimestampMs >= 0 && r.TimestampMs <= MaxTimestampMs && len(r.IdempotencyKey) <= MaxIdempotencyKeyLen
			if valid == bad[i] {
				t.Fatalf("DecodeBulkProto(%x): record %d valid=%v, errors %v", body, i, valid, errs)
			}
			if valid {
				want := Envelope{Payload: r.Payload, Partition: r.Partition, IdempotencyKey: r.IdempotencyKey}
				if r.TimestampMs > 0 {
					want.EventTime = ms(r.TimestampMs)
				}
				if !envelopeEqual(envs[i], want) {
					t.Fatalf("DecodeBulkProto(%x): record %d = %s, proto.Unmarshal %s", body, i, fmtEnvelope(envs[i]), fmtEnvelope(want))
				}
			}
		}
	}

	var refEvent ingestpb.Event
	refErr = proto.Unmarshal(body, &refEvent)
	env, err := DecodeEnvelopeProto(body, "")
	if refErr != nil {
		if err == nil {
			t.Fatalf("DecodeEnvelopeProto(%x) accepted what proto.Unmarshal rejects: %v", body, refErr)
		}
		return
	}
	valid := refEvent.TimestampMs >= 0 && refEvent.TimestampMs <= MaxTimestampMs && len(refEvent.IdempotencyKey) <= MaxIdempotencyKeyLen
	if valid != (err == nil) {
		t.Fatalf("DecodeEnvelopeProto(%x): %v, want valid=%v", body, err, valid)
	}
	if valid && (string(env.Payload) != string(refEvent.Payload) || env.IdempotencyKey != refEvent.IdempotencyKey ||
		(refEvent.TimestampMs > 0) != !env.EventTime.IsZero() || refEvent.TimestampMs > 0 && env.EventTime.UnixMilli() != refEvent.TimestampMs) {
		t.Fatalf("DecodeEnvelopeProto(%x) = %s, proto.Unmarshal %v", body, fmtEnvelope(env), &refEvent)
	}
}

func TestDecodeProtoAgreesWithGeneratedCode(t *testing.T) {
	for _, body := range protoSeeds(t) {
		checkProtoAgrees(t, body)
	}
}

// protoSeeds are bodies for TestDecodeProtoAgreesWithGeneratedCode and
// the seed corpus of FuzzDecodeProto.
func protoSeeds(t testing.TB) [][]byte {
	bulk := marshal(t, &ingestpb.BulkWriteRequest{Records: []*ingestpb.BulkEvent{
		{Payload: []byte("a"), Partition: 3, TimestampMs: 5, IdempotencyKey: "k", Headers: map[string]string{"h": "v"}},
		{Payload: []byte{0xff}, Partition: -2},
		{},
	}})
	event := marshal(t, &ingestpb.Event{Payload: []byte("x"), TimestampMs: 1700000000000, IdempotencyKey: "key", Headers: map[string]string{"a": "b"}})
	group := protowire.AppendTag(nil, 7, protowire.StartGroupType)
	group = rawVarintField(group, 1, 1)
	group = protowire.AppendTag(group, 7, protowire.EndGroupType)
	return [][]byte{
		nil,
		bulk,
		event,
		bulk[:len(bulk)-1],
		append(bulk, group...),
		append(event, group...),
		group[:len(group)-1],
		rawBytesField(nil, 1, rawVarintField(nil, 2, 1<<40)), // partition truncated to int32
		rawBytesField(nil, 1, rawBytesField(nil, 5, rawBytesField(nil, 1, []byte{0xff}))),
		rawBytesField(nil, 1, rawBytesField(nil, 5, rawVarintField(nil, 1, 1))),
		rawVarintField(nil, 1, 1),
		{0x08, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01},
		{0x08, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x02},
		{0xf8, 0xff, 0xff, 0xff, 0x0f, 0x00},
		{0xf8, 0xff, 0xff, 0xff, 0x1f, 0x00},
	}
}
