package codec

import (
	"errors"
	"fmt"
	"strconv"
)

// ErrTooManyRecords rejects a bulk body with more than MaxBulkRecords
// records. Errors returned for it wrap this value.
var ErrTooManyRecords = fmt.Errorf("more than %d records in one bulk request", MaxBulkRecords)

// FieldError is a value that does not fit the field it is given for: a bad
// envelope field, or a row value that does not convert to its column.
type FieldError struct {
	// Path names the field: "partition", "address.zip", "tags[3]",
	// `attrs["k"]`, "pairs[2].key". Empty for the document as a whole.
	Path string
	// Reason says what is wrong, and for a type mismatch what was expected.
	Reason string
}

func (e *FieldError) Error() string {
	if e.Path == "" {
		return e.Reason
	}
	return e.Path + ": " + e.Reason
}

// SyntaxError is a body that is not well-formed JSON.
type SyntaxError struct {
	// Offset is the byte offset of the problem in the decoded JSON text
	// (for NDJSON, in the line).
	Offset int
	Msg    string
}

func (e *SyntaxError) Error() string {
	return "invalid JSON at offset " + strconv.Itoa(e.Offset) + ": " + e.Msg
}

// RecordError is one invalid record of a bulk request.
type RecordError struct {
	// Index is the record's position among the request's records, from 0.
	// For NDJSON, blank lines are not records.
	Index int
	// Field names the offending field (see FieldError.Path); empty when
	// the record as a whole is bad.
	Field  string
	Reason string
}

// Error describes the problem without the index, which the caller reports
// separately.
func (e RecordError) Error() string {
	if e.Field == "" {
		return e.Reason
	}
	return e.Field + ": " + e.Reason
}

// RecordErrorFor turns the error of decoding or converting record index
// into a RecordError, keeping the field of a *FieldError.
func RecordErrorFor(index int, err error) RecordError {
	if fe, ok := errors.AsType[*FieldError](err); ok {
		return RecordError{Index: index, Field: fe.Path, Reason: fe.Reason}
	}
	return RecordError{Index: index, Reason: err.Error()}
}

func fieldErr(path, reason string) *FieldError {
	return &FieldError{Path: path, Reason: reason}
}

// keyName renders an object key taken from a request for use in an error
// path: as it is when it is a plain identifier, quoted otherwise, and cut
// to a readable length.
func keyName(key []byte) string {
	const maxLen = 64
	plain := len(key) > 0 && len(key) <= maxLen
	for _, c := range key {
		if !(c == '_' || c == '-' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			plain = false
			break
		}
	}
	if plain {
		return string(key)
	}
	if len(key) > maxLen {
		return strconv.Quote(string(key[:maxLen])) + "..."
	}
	return strconv.Quote(string(key))
}
