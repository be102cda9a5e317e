package codec

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/zombi-db/zombi/hotrow"
	"github.com/zombi-db/zombi/hotrow/hotrowtest"
)

// The fuzz targets check properties, not only the absence of panics. Seed
// inputs come from f.Add below and from testdata/fuzz/<FuzzName>/.
// Run one with, for example:
//
//	go test ./ingest/codec -run '^$' -fuzz '^FuzzDecodeEnvelopeJSON$' -fuzztime 20s

// appendJSONString appends s, valid UTF-8, as a JSON string.
func appendJSONString[T string | []byte](dst []byte, s T) []byte {
	b, err := json.Marshal(string(s))
	if err != nil {
		panic(err)
	}
	return append(dst, b...)
}

// encodeEnvelopeJSON writes env as a JSON envelope, with the payload as a
// JSON string when asString is set (and the payload is UTF-8), else in
// base64.
func encodeEnvelopeJSON(env Envelope, asString bool) []byte {
	b := []byte(`{`)
	if asString && utf8.Valid(env.Payload) {
		b = append(b, `"payload":`...)
		b = appendJSONString(b, env.Payload)
	} else {
		b = append(b, `"payload_base64":"`...)
		b = base64.StdEncoding.AppendEncode(b, env.Payload)
		b = append(b, '"')
	}
	b = append(b, `,"partition":`...)
	b = strconv.AppendInt(b, int64(env.Partition), 10)
	if !env.EventTime.IsZero() {
		b = append(b, `,"timestamp_ms":`...)
		b = strconv.AppendInt(b, env.EventTime.UnixMilli(), 10)
	}
	if env.IdempotencyKey != "" {
		b = append(b, `,"idempotency_key":`...)
		b = appendJSONString(b, env.IdempotencyKey)
	}
	return append(b, '}')
}

// stricterThanEncodingJSON reports whether a syntax error is one that
// encoding/json does not make.
func stricterThanEncodingJSON(err error) bool {
	se, ok := errors.AsType[*SyntaxError](err)
	return ok && (strings.Contains(se.Msg, "UTF-8") || strings.Contains(se.Msg, "surrogate") || strings.Contains(se.Msg, "nested deeper"))
}

func addEnvelopeSeeds(f *testing.F) {
	f.Add([]byte(`{"payload":"hello","partition":3,"timestamp_ms":1700000000000,"idempotency_key":"k"}`))
	f.Add([]byte(`{"payload": {"a": [1, 2.5e3, "x y"], "b": null}}`))
	f.Add([]byte(`{"payload_base64":"AAEC/w=="}`))
	f.Add([]byte(`{"payload":"\u00e9\ud83d\ude00\"\\\/\b\f\n\r\t"}`))
	for _, tc := range envelopeErrors {
		f.Add([]byte(tc.body))
	}
	for _, tc := range syntaxErrors {
		f.Add([]byte(tc.body))
	}
}

func FuzzDecodeEnvelopeJSON(f *testing.F) {
	addEnvelopeSeeds(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		env, err := DecodeEnvelopeJSON(body)
		valid := json.Valid(body)
		if err != nil {
			_, isSyntax := errors.AsType[*SyntaxError](err)
			if isSyntax == valid && !stricterThanEncodingJSON(err) {
				t.Fatalf("DecodeEnvelopeJSON(%q): %v, but json.Valid = %v", body, err, valid)
			}
			return
		}
		if !valid {
			t.Fatalf("DecodeEnvelopeJSON accepted %q, which json.Valid rejects", body)
		}
		if env.Partition < 0 || len(env.IdempotencyKey) > MaxIdempotencyKeyLen || env.Payload == nil ||
			!env.EventTime.IsZero() && (env.EventTime.UnixMilli() < 0 || env.EventTime.UnixMilli() > MaxTimestampMs) {
			t.Fatalf("DecodeEnvelopeJSON(%q) = %s, out of bounds", body, fmtEnvelope(env))
		}
		// A non-string payload is stored as compact JSON.
		var m map[string]json.RawMessage
		if err := json.Unmarshal(body, &m); err != nil {
			t.Fatalf("encoding/json: %v", err)
		}
		if raw := bytes.TrimSpace(m["payload"]); len(raw) > 0 && raw[0] != '"' && raw[0] != 'n' {
			var compact bytes.Buffer
			if err := json.Compact(&compact, raw); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(compact.Bytes(), env.Payload) {
				t.Fatalf("payload %q, want the compact JSON %q", env.Payload, compact.Bytes())
			}
		}
		// What was accepted encodes back to the same envelope.
		for _, asString := range []bool{false, true} {
			again, err := DecodeEnvelopeJSON(encodeEnvelopeJSON(env, asString))
			if err != nil || !envelopeEqual(again, env) {
				t.Fatalf("re-encoded %s: %s, %v", fmtEnvelope(env), fmtEnvelope(again), err)
			}
		}
	})
}

// checkBulkResult checks the shape of a bulk decoder's result.
func checkBulkResult(t *testing.T, envs []Envelope, errs []RecordError) {
	t.Helper()
	prev := -1
	for _, e := range errs {
		if e.Index <= prev || e.Index >= len(envs) || e.Reason == "" {
			t.Fatalf("bad record errors %+v for %d records", errs, len(envs))
		}
		if !envelopeEqual(envs[e.Index], Envelope{}) {
			t.Fatalf("invalid record %d has an envelope %s", e.Index, fmtEnvelope(envs[e.Index]))
		}
		prev = e.Index
	}
}

func FuzzDecodeBulkJSON(f *testing.F) {
	f.Add([]byte(`{"records":[{"payload":"a"},{"payload":"b","partition":-1},5,{"payload_base64":"Yw==","timestamp_ms":1000}]}`))
	f.Add([]byte(`[{"payload":{"x":1}}, {"nope":1}]`))
	f.Add([]byte(`{"records":[],"x":1}`))
	f.Add([]byte(`{"records":[{"payload":"a"},]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		envs, errs, err := DecodeBulkJSON(body)
		// CountBulk counts the records of every body of the right shape.
		if n, cErr := CountBulk(body, false); err == nil && (cErr != nil || n != len(envs)) {
			t.Fatalf("CountBulk(%q) = %d, %v; DecodeBulkJSON decoded %d", body, n, cErr, len(envs))
		}
		if err != nil {
			if _, isSyntax := errors.AsType[*SyntaxError](err); isSyntax && json.Valid(body) && !stricterThanEncodingJSON(err) {
				t.Fatalf("DecodeBulkJSON(%q): %v, but json.Valid", body, err)
			}
			return
		}
		if !json.Valid(body) {
			t.Fatalf("DecodeBulkJSON accepted %q, which json.Valid rejects", body)
		}
		checkBulkResult(t, envs, errs)
		// Each record decodes alone as it did in the bulk.
		var records []json.RawMessage
		if err := json.Unmarshal(body, &records); err != nil {
			var obj struct{ Records []json.RawMessage }
			if err := json.Unmarshal(body, &obj); err != nil {
				t.Fatalf("encoding/json: %v", err)
			}
			records = obj.Records
		}
		if len(records) != len(envs) {
			t.Fatalf("%d envelopes for %d records", len(envs), len(records))
		}
		bad := map[int]RecordError{}
		for _, e := range errs {
			bad[e.Index] = e
		}
		var valid [][]byte
		for i, rec := range records {
			env, err := DecodeEnvelopeJSON(rec)
			if e, isBad := bad[i]; isBad {
				if err == nil || RecordErrorFor(i, err) != e {
					t.Fatalf("record %d: bulk error %+v, alone %v", i, e, err)
				}
				continue
			}
			if err != nil || !envelopeEqual(env, envs[i]) {
				t.Fatalf("record %d: bulk %s, alone %s, %v", i, fmtEnvelope(envs[i]), fmtEnvelope(env), err)
			}
			valid = append(valid, encodeEnvelopeJSON(env, i%2 == 0))
		}
		// The valid records encode back to the same envelopes.
		again, errs, err := DecodeBulkJSON([]byte(`{"records":[` + string(bytes.Join(valid, []byte(","))) + `]}`))
		if err != nil || len(errs) != 0 || len(again) != len(valid) {
			t.Fatalf("re-encoded bulk: %d envelopes, %v, %v", len(again), errs, err)
		}
		j := 0
		for i := range envs {
			if _, isBad := bad[i]; !isBad {
				if !envelopeEqual(again[j], envs[i]) {
					t.Fatalf("re-encoded record %d: %s, want %s", i, fmtEnvelope(again[j]), fmtEnvelope(envs[i]))
				}
				j++
			}
		}
	})
}

func FuzzDecodeBulkNDJSON(f *testing.F) {
	f.Add([]byte("{\"payload\":\"a\"}\r\n\n{\"payload\":\"b\",\"partition\":2}\n{bad\n{\"payload\":\"c\"} {}\n"))
	f.Add([]byte("\n \t\r\n"))
	f.Add([]byte(`{"payload":{"a":[1,2]},"timestamp_ms":5}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		envs, errs, err := DecodeBulkNDJSON(body)
		if err != nil {
			t.Fatalf("DecodeBulkNDJSON(%q): %v", body, err) // only too many records, impossible here
		}
		if n, err := CountBulk(body, true); err != nil || n != len(envs) {
			t.Fatalf("CountBulk(%q, ndjson) = %d, %v; DecodeBulkNDJSON decoded %d", body, n, err, len(envs))
		}
		checkBulkResult(t, envs, errs)
		// Every non-blank line is a record that decodes alone as it did
		// in the bulk.
		bad := map[int]RecordError{}
		for _, e := range errs {
			bad[e.Index] = e
		}
		i := 0
		for _, line := range bytes.Split(body, []byte("\n")) {
			if len(bytes.Trim(line, " \t\r\n")) == 0 {
				continue
			}
			if i >= len(envs) {
				t.Fatalf("more lines than %d records", len(envs))
			}
			env, err := DecodeEnvelopeJSON(line)
			if e, isBad := bad[i]; isBad {
				if err == nil || RecordErrorFor(i, err) != e {
					t.Fatalf("line %d: bulk error %+v, alone %v", i, e, err)
				}
			} else if err != nil || !envelopeEqual(env, envs[i]) {
				t.Fatalf("line %d: bulk %s, alone %s, %v", i, fmtEnvelope(envs[i]), fmtEnvelope(env), err)
			}
			i++
		}
		if i != len(envs) {
			t.Fatalf("%d lines, %d records", i, len(envs))
		}
	})
}

func FuzzDecodeProto(f *testing.F) {
	for _, seed := range protoSeeds(f) {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		checkProtoAgrees(t, body)
	})
}

func FuzzConvert(f *testing.F) {
	f.Add([]byte(hotrowtest.AllTypesRow))
	f.Add([]byte(`{"id":1}`))
	f.Add([]byte(`{"id":"-1","dec":1.5e1,"big":"-0.0000000001","tstz":1700000000000,"attrs":[{"key":"k","value":null}]}`))
	f.Add([]byte(`{"id":1,"by_day":[{"key":-719528,"value":[{"n":-1},null]}],"scores":[-0.0,1e-320,"Infinity"]}`))
	f.Add([]byte(`{"id":1,"time":"00:00:00.000001","ts_ns":-9223372036854,"date":2932896,"u":"aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"}`))
	for _, tc := range convertValueCases {
		f.Add([]byte(`{"id":1,"` + tc.col + `":` + tc.in + `}`))
	}
	for _, tc := range convertErrorCases {
		f.Add([]byte(`{"id":1,"` + tc.col + `":` + tc.in + `}`))
	}
	schema := hotrowtest.AllTypesSchema()
	c, err := NewConverter(schema, ConverterOptions{IdempotencyColumn: "key"})
	if err != nil {
		f.Fatal(err)
	}
	mem := memory.NewGoAllocator()
	f.Fuzz(func(t *testing.T, obj []byte) {
		value, key, err := c.Convert(obj)
		if err != nil {
			var fe *FieldError
			var se *SyntaxError
			if !errors.As(err, &fe) && !errors.As(err, &se) {
				t.Fatalf("Convert(%q): %T %v", obj, err, err)
			}
			if se != nil && json.Valid(obj) && !stricterThanEncodingJSON(err) {
				t.Fatalf("Convert(%q): %v, but json.Valid", obj, err)
			}
			return
		}
		if !json.Valid(obj) {
			t.Fatalf("Convert accepted %q, which json.Valid rejects", obj)
		}
		// The row reads back, renders as JSON that converts to the same
		// value, and fills an Arrow record.
		rendered, err := hotrow.ValueJSON(schema, "t", 0, value)
		if err != nil {
			t.Fatalf("ValueJSON of Convert(%q): %v", obj, err)
		}
		if !json.Valid(rendered) {
			t.Fatalf("ValueJSON rendered invalid JSON %q", rendered)
		}
		again, key2, err := c.Convert(rendered)
		if err != nil || !bytes.Equal(again, value) || key2 != key {
			t.Fatalf("Convert(%q) = %x\nrendered %s\nconverts to %x, %v", obj, value, rendered, again, err)
		}
		b, err := hotrow.NewArrowBuilder(mem, schema, "t")
		if err != nil {
			t.Fatal(err)
		}
		defer b.Release()
		if err := b.Append(0, value); err != nil {
			t.Fatalf("Append of Convert(%q): %v", obj, err)
		}
		rec := b.NewRecord()
		hotrowtest.Validate(t, rec)
		rec.Release()
	})
}
