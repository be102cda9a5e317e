package hotrow_test

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	. "github.com/zombi-db/zombi/hotrow"
)

func TestValueJSONEvents(t *testing.T) {
	ingest := time.Date(2024, 5, 6, 7, 8, 9, 123456789, time.UTC)
	var out bytes.Buffer
	for i, ev := range []Event{
		{Payload: []byte(`{"user":"u1","n":1}`), Partition: 2, EventTime: ms(1700000000123), IdempotencyKey: "k1"},
		{Payload: []byte{0xff, 0x00, 'a'}},                                    // binary: payload_base64 only
		{Payload: []byte("line\n\"quoted\"\t\x01 é"), IdempotencyKey: "ké\""}, // escapes
		{Payload: []byte{}, EventTime: ms(0)},
	} {
		ev.IngestTime = ingest
		rendered, err := ValueJSON(EventSchema(), `ns.t"1`, uint64(100+i), AppendEventValue(nil, ev))
		if err != nil {
			t.Fatal(err)
		}
		if !json.Valid(rendered) {
			t.Fatalf("not JSON: %s", rendered)
		}
		var back struct {
			Payload       *string `json:"payload"`
			PayloadBase64 []byte  `json:"payload_base64"`
		}
		if err := json.Unmarshal(rendered, &back); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(back.PayloadBase64, ev.Payload) {
			t.Errorf("payload_base64 %q, want %q", back.PayloadBase64, ev.Payload)
		}
		if back.Payload != nil && *back.Payload != string(ev.Payload) {
			t.Errorf("payload %q, want %q", *back.Payload, ev.Payload)
		}
		out.Write(rendered)
		out.WriteByte('\n')
	}
	golden(t, "events.golden", out.Bytes())
}

func TestAppendFloatJSON(t *testing.T) {
	for _, tc := range []struct {
		f    float64
		bits int
		want string
	}{
		{0, 64, "0"},
		{1e-7, 64, "1e-7"},
		{1.5e-300, 64, "1.5e-300"},
		{1e21, 64, "1e+21"},
		{123456.789, 64, "123456.789"},
		{float64(float32(0.1)), 32, "0.1"},
		{float64(float32(1e-7)), 32, "1e-7"},
		{float64(float32(3e38)), 32, "3e+38"},
	} {
		if got := string(AppendFloatJSON(nil, tc.f, tc.bits)); got != tc.want {
			t.Errorf("appendFloatJSON(%v, %d) = %s, want %s", tc.f, tc.bits, got, tc.want)
		}
	}
}
