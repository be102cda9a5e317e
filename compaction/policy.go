package compaction

import (
	"strconv"
	"time"

	"github.com/apache/iceberg-go"
	"github.com/zombi-db/zombi/internal/ingesttable"
)

// Table properties that steer maintenance. Iceberg's own
// history.expire.max-snapshot-age-ms, history.expire.min-snapshots-to-keep
// and write.target-file-size-bytes are honoured too.
const (
	// PropEnabled = "true" opts a table into scheduled maintenance; "false"
	// opts a Zombi ingest table out.
	PropEnabled = "zombi.maintenance.enabled"
	// PropMinFiles: compact a partition once it has this many small files.
	PropMinFiles = "zombi.compaction.min-files"
	// PropMaxAge: compact any partition with two or more small files once
	// the table's last compaction is this old (milliseconds).
	PropMaxAge = "zombi.compaction.max-age-ms"
	// PropInterval: run snapshot expiry and orphan cleanup this often
	// (milliseconds).
	PropInterval = "zombi.maintenance.interval-ms"
	// PropOrphanAge: only files older than this (milliseconds) can be
	// orphans; younger ones may belong to a commit in flight.
	PropOrphanAge = "zombi.maintenance.orphan-age-ms"
)

// policy is what maintenance does for one table.
type policy struct {
	enabled     bool
	minFiles    int
	maxAge      time.Duration
	interval    time.Duration
	snapshotAge time.Duration
	keepLast    int
	orphanAge   time.Duration
}

// policyOf returns the table's policy. Ingest tables get a snapshot per
// flush interval, and every commit rewrites the metadata file that lists
// them all (about 0.5 KB each): they keep 15 minutes of snapshots (at
// least 10), expired every 5 minutes, so their metadata stays under about
// a megabyte at one flush a second. Other tables keep Iceberg's defaults
// (5 days, at least 1) and a 3-day orphan window.
func policyOf(props iceberg.Properties) policy {
	ingest := ingesttable.Is(props)
	p := policy{
		enabled:     ingest,
		minFiles:    20,
		maxAge:      time.Hour,
		interval:    10 * time.Minute,
		snapshotAge: 5 * 24 * time.Hour,
		keepLast:    1,
		orphanAge:   3 * 24 * time.Hour,
	}
	if ingest {
		p.snapshotAge, p.keepLast, p.interval, p.orphanAge = 15*time.Minute, 10, 5*time.Minute, time.Hour
	}
	switch props[PropEnabled] {
	case "true":
		p.enabled = true
	case "false":
		p.enabled = false
	}
	if n := propInt(props, PropMinFiles); n >= 2 {
		p.minFiles = int(n)
	}
	ms := func(key string, d *time.Duration) {
		if n := propInt(props, key); n > 0 {
			*d = time.Duration(n) * time.Millisecond
		}
	}
	ms(PropMaxAge, &p.maxAge)
	ms(PropInterval, &p.interval)
	ms("history.expire.max-snapshot-age-ms", &p.snapshotAge)
	ms(PropOrphanAge, &p.orphanAge)
	if n := propInt(props, "history.expire.min-snapshots-to-keep"); n >= 1 {
		p.keepLast = int(n)
	}
	return p
}

// policy is the table's policy under the server's floors, which no table
// property lowers.
func (c *Compactor) policy(props iceberg.Properties) policy {
	p := policyOf(props)
	p.orphanAge = max(p.orphanAge, c.minOrphanAge)
	p.snapshotAge = max(p.snapshotAge, c.minSnapshotAge)
	return p
}

func propInt(props iceberg.Properties, key string) int64 {
	n, err := strconv.ParseInt(props[key], 10, 64)
	if err != nil {
		return 0
	}
	return n
}
