package catalog

import (
	"encoding/json"
	"io"
)

// newJSONEncoder writes JSON without HTML escaping: metadata carries
// property values and docs that are not HTML.
func newJSONEncoder(w io.Writer) *json.Encoder {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return enc
}
