package flusher

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/apache/iceberg-go"
	"github.com/zombi-db/zombi/catalog"
	"github.com/zombi-db/zombi/internal/ingesttable"
)

// Table properties the flusher reads and writes.
const (
	// PropWatermarkPrefix + node ID is the highest hot-tier sequence of
	// that node whose event is in the table. The flusher sets it in the
	// same commit that adds the events (and in the snapshot's summary), so
	// the table itself says which events it holds.
	PropWatermarkPrefix = ingesttable.PropWatermarkPrefix
	// PropInterval overrides the flush interval of a table, in
	// milliseconds.
	PropInterval = "zombi.flush.interval-ms"
)

// WatermarkProperty is the property holding node's watermark.
func WatermarkProperty(node string) string { return PropWatermarkPrefix + node }

// Watermark returns node's watermark in props, 0 if it has none.
func Watermark(props iceberg.Properties, node string) (uint64, error) {
	v, ok := props[WatermarkProperty(node)]
	if !ok {
		return 0, nil
	}
	w, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("property %s=%q is not a sequence number", WatermarkProperty(node), v)
	}
	return w, nil
}

// interval returns the table's flush interval: PropInterval, or def when
// it is absent or not a positive number of milliseconds.
func interval(props iceberg.Properties, def time.Duration) time.Duration {
	v, ok := props[PropInterval]
	if !ok {
		return def
	}
	ms, err := strconv.ParseInt(v, 10, 64)
	if err != nil || ms <= 0 || ms > int64(24*time.Hour/time.Millisecond) {
		return def
	}
	return time.Duration(ms) * time.Millisecond
}

// Label is how a table identifier is recorded with its events in the hot
// tier (hot.DB.SetLabel), so that a restarted flusher finds the table.
func Label(id catalog.Ident) string { return id.Namespace.String() + "\x00" + id.Name }

// parseLabel reverses Label.
func parseLabel(l string) (catalog.Ident, bool) {
	ns, name, ok := strings.Cut(l, "\x00")
	if !ok || ns == "" || name == "" {
		return catalog.Ident{}, false
	}
	return catalog.Ident{Namespace: catalog.Namespace(strings.Split(ns, "\x1f")), Name: name}, true
}
