package ingest

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// MaxTableSeries is how many tables get their own ingest series; the
// others share the table label OtherTables. Clients create tables by
// writing to them, and a metric must not grow with what clients send.
const MaxTableSeries = 1000

// OtherTables is the table label of the tables past MaxTableSeries. No
// table is named so: table names start with a letter.
const OtherTables = "_other"

// Metrics are the ingest API's Prometheus metrics.
type Metrics struct {
	events   *prometheus.CounterVec
	bytes    *prometheus.CounterVec
	ack      prometheus.Histogram
	rejected *prometheus.CounterVec
	inflight prometheus.GaugeFunc
	// schema: tables created from data (created) and schema commits that
	// added or widened columns for new data (evolved).
	schema *prometheus.CounterVec
	// deadLetters: refused records kept in dead-letter tables.
	deadLetters *prometheus.CounterVec

	mu        sync.Mutex
	tables    map[string]bool // the tables with their own series
	maxTables int
}

// NewMetrics registers the ingest metrics with r (nil: not registered).
// inFlight, when not nil, is exported as the in-flight bytes gauge.
func NewMetrics(r prometheus.Registerer, inFlight ...*InFlight) *Metrics {
	m := &Metrics{
		tables:    map[string]bool{},
		maxTables: MaxTableSeries,
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "zombi", Subsystem: "ingest", Name: "events_total",
			Help: "Events by table (" + OtherTables + ": the tables past the first 1000) and outcome: accepted, duplicate (idempotent retry), rejected (invalid).",
		}, []string{"table", "outcome"}),
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "zombi", Subsystem: "ingest", Name: "bytes_total",
			Help: "Request body bytes by table (" + OtherTables + ": the tables past the first 1000) and outcome (accepted or rejected).",
		}, []string{"table", "outcome"}),
		ack: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "zombi", Subsystem: "ingest", Name: "ack_seconds",
			Help:    "Time from a write request's decoded body to its durable acknowledgement.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16),
		}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "zombi", Subsystem: "ingest", Name: "requests_rejected_total",
			Help: "Write requests refused whole, by reason: invalid, too_large, overloaded (429), backlog_full (503), no_table.",
		}, []string{"reason"}),
		schema: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "zombi", Subsystem: "ingest", Name: "schema_changes_total",
			Help: "Schema work ingest did for plain JSON rows: created (a table inferred from its first write), evolved (a schema commit that added or widened columns for new fields).",
		}, []string{"change"}),
		deadLetters: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "zombi", Subsystem: "ingest", Name: "dead_letters_total",
			Help: "Records of partial bulk writes refused and kept in the table's dead-letter table (<table>__dlq), by table (" + OtherTables + ": the tables past the first 1000).",
		}, []string{"table"}),
	}
	// The reasons and changes exist from the start, at 0, so that the
	// first refusal is an increase that rate() and alerts see.
	for _, r := range []string{"invalid", "too_large", "overloaded", "backlog_full", "no_table"} {
		m.rejected.WithLabelValues(r)
	}
	for _, c := range []string{"created", "evolved"} {
		m.schema.WithLabelValues(c)
	}
	cs := []prometheus.Collector{m.events, m.bytes, m.ack, m.rejected, m.schema, m.deadLetters}
	if len(inFlight) > 0 && inFlight[0] != nil {
		l := inFlight[0]
		m.inflight = prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: "zombi", Subsystem: "ingest", Name: "inflight_bytes",
			Help: "Bytes charged now to the write requests being handled (bodies and records; --max-inflight-bytes caps it).",
		}, func() float64 { return float64(l.Bytes()) })
		cs = append(cs, m.inflight)
	}
	if r != nil {
		r.MustRegister(cs...)
	}
	return m
}

// Rejected counts a request refused whole for reason.
func (m *Metrics) Rejected(reason string) { m.rejected.WithLabelValues(reason).Inc() }

// tableMetrics are one table's ingest series, looked up once per table
// instead of once per request.
type tableMetrics struct {
	accepted, duplicate, rejected prometheus.Counter
	bytesAccepted, bytesRejected  prometheus.Counter
	deadLetters                   prometheus.Counter
}

func (m *Metrics) forTable(name string) *tableMetrics {
	m.mu.Lock()
	if !m.tables[name] {
		if len(m.tables) < m.maxTables {
			m.tables[name] = true
		} else {
			name = OtherTables
		}
	}
	m.mu.Unlock()
	return &tableMetrics{
		accepted:      m.events.WithLabelValues(name, "accepted"),
		duplicate:     m.events.WithLabelValues(name, "duplicate"),
		rejected:      m.events.WithLabelValues(name, "rejected"),
		bytesAccepted: m.bytes.WithLabelValues(name, "accepted"),
		bytesRejected: m.bytes.WithLabelValues(name, "rejected"),
		deadLetters:   m.deadLetters.WithLabelValues(name),
	}
}

// TableCounts are a table's ingest counters since the process started.
type TableCounts struct {
	// Accepted, Duplicate and Rejected count events: made durable, answered
	// as idempotent retries, refused as invalid.
	Accepted, Duplicate, Rejected int64
	// DeadLetters counts refused records kept in the dead-letter table.
	DeadLetters int64
}

// Counts reads the ingest counters of table name. ok is false when the
// table has no series of its own (none written yet on this node, or past
// MaxTableSeries).
func (m *Metrics) Counts(name string) (c TableCounts, ok bool) {
	m.mu.Lock()
	ok = m.tables[name]
	m.mu.Unlock()
	if !ok {
		return TableCounts{}, false
	}
	read := func(c prometheus.Counter) int64 {
		var d dto.Metric
		if c.Write(&d) != nil || d.Counter == nil {
			return 0
		}
		return int64(d.Counter.GetValue())
	}
	return TableCounts{
		Accepted:    read(m.events.WithLabelValues(name, "accepted")),
		Duplicate:   read(m.events.WithLabelValues(name, "duplicate")),
		Rejected:    read(m.events.WithLabelValues(name, "rejected")),
		DeadLetters: read(m.deadLetters.WithLabelValues(name)),
	}, true
}
