package compaction

import (
	"context"
	"errors"
	"maps"
	"slices"
	"time"

	icompaction "github.com/apache/iceberg-go/table/compaction"
	"github.com/zombi-db/zombi/catalog"
	"github.com/zombi-db/zombi/warehouse"
)

// loop is the scheduler: every CheckInterval it walks the catalog and, for
// each table whose policy is on, compacts when a partition has PropMinFiles
// small files (or two, once the last compaction is PropMaxAge old) and runs
// expiry and orphan cleanup every PropInterval.
func (c *Compactor) loop() {
	defer close(c.done)
	defer c.disown()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-c.stop
		cancel()
	}()
	started := c.opts.Now()
	t := time.NewTicker(c.opts.CheckInterval)
	defer t.Stop()
	for {
		select {
		case <-c.stop:
			return
		case <-t.C:
		}
		err := c.walk(ctx, nil, func(id catalog.Ident) {
			c.consider(ctx, id, started)
		})
		if err != nil && ctx.Err() == nil {
			c.log.Warn("listing tables for maintenance", "err", err)
		}
	}
}

// walk calls fn for every table under parent.
func (c *Compactor) walk(ctx context.Context, parent catalog.Namespace, fn func(catalog.Ident)) error {
	if len(parent) > 0 {
		for token := ""; ; {
			page, err := c.cat.ListTables(ctx, parent, token, 1000)
			if err != nil {
				return err
			}
			for _, id := range page.Items {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				fn(id)
			}
			if token = page.Next; token == "" {
				break
			}
		}
	}
	for token := ""; ; {
		page, err := c.cat.ListNamespaces(ctx, parent, token, 1000)
		if err != nil {
			return err
		}
		for _, ns := range page.Items {
			if err := c.walk(ctx, ns, fn); err != nil {
				return err
			}
		}
		if token = page.Next; token == "" {
			return nil
		}
	}
}

// consider runs what the table's policy asks for now.
func (c *Compactor) consider(ctx context.Context, id catalog.Ident, started time.Time) {
	t, err := c.cat.LoadTable(ctx, id)
	if err != nil {
		return
	}
	p := c.policy(t.Metadata.Properties())
	uuid := t.Metadata.TableUUID().String()
	if !p.enabled || !c.own(ctx, uuid) {
		return
	}
	c.mu.Lock()
	halted := c.halted[uuid]
	lastCompact, lastMaintain := c.last["compact/"+uuid], c.last["maintain/"+uuid]
	c.mu.Unlock()
	if !p.enabled || halted != nil || t.Metadata.CurrentSnapshot() == nil {
		return
	}
	if lastCompact.IsZero() {
		lastCompact = started
	}
	now := c.opts.Now()
	if c.needsCompaction(ctx, t, p, now.Sub(lastCompact) >= p.maxAge) {
		_, err := c.Compact(ctx, id)
		c.record("compact/"+uuid, now, err)
		if c.haltOn(uuid, id, err) {
			return
		}
	}
	if now.Sub(lastMaintain) >= p.interval {
		_, err := c.Maintain(ctx, id)
		c.record("maintain/"+uuid, now, err)
		c.haltOn(uuid, id, err)
	}
}

// haltOn stops the scheduler's work on the table until restart when err
// says its data or metadata is wrong, which retrying cannot fix: output
// that does not match its input, or metadata naming a file outside the
// table's location. It reports whether it halted the table.
func (c *Compactor) haltOn(uuid string, id catalog.Ident, err error) bool {
	if !errors.Is(err, ErrMismatch) && !errors.Is(err, warehouse.ErrOutsideTable) {
		return false
	}
	c.mu.Lock()
	c.halted[uuid] = err
	c.mu.Unlock()
	c.log.Error("maintenance halted for this table until restart", "table", id.String(), "err", err)
	return true
}

func (c *Compactor) record(key string, at time.Time, err error) {
	if err != nil && !errors.Is(err, ErrBusy) && !errors.Is(err, context.Canceled) {
		c.log.Warn("scheduled maintenance failed", "run", key, "err", err)
	}
	c.mu.Lock()
	c.last[key] = at
	c.mu.Unlock()
}

// needsCompaction reports whether a partition has p.minFiles small files,
// or (when aged) at least two.
func (c *Compactor) needsCompaction(ctx context.Context, t *catalog.Table, p policy, aged bool) bool {
	tasks, err := c.icebergTable(t).Scan().PlanFiles(ctx)
	if err != nil {
		return false
	}
	target := targetFileSize(t.Metadata.Properties())
	cfg := icompaction.DefaultConfig()
	cfg.TargetFileSizeBytes, cfg.MinFileSizeBytes, cfg.MaxFileSizeBytes = target, target*3/4, target*9/5
	cfg.MinInputFiles = 1
	plan, err := cfg.PlanCompaction(tasks)
	if err != nil {
		return false
	}
	want := p.minFiles
	if aged {
		want = 2
	}
	for _, g := range mergeByPartition(plan.Groups) {
		if len(g.Tasks) >= want {
			return true
		}
	}
	return false
}

// OwnerLease is the name of the lease whose holder's scheduler maintains
// the table with UUID tableUUID.
func OwnerLease(tableUUID string) string { return "owner/" + tableUUID }

// own reports whether this node's scheduler maintains the table: it holds
// or takes the table's owner lease, for three check intervals (at least
// LeaseTTL), renewed at every check. With several nodes, one of them
// compacts and maintains each table while it lives, so that their
// schedulers do not take turns; another takes over once its lease lapses.
// A run on request (Compact, Maintain) needs no ownership, only the
// table's lease for the run.
func (c *Compactor) own(ctx context.Context, uuid string) bool {
	ok, err := c.cat.AcquireLease(ctx, OwnerLease(uuid), c.node, max(3*c.opts.CheckInterval, c.opts.LeaseTTL))
	if err != nil {
		if ctx.Err() == nil {
			c.log.Warn("taking a table's owner lease", "table", uuid, "err", err)
		}
		return false
	}
	c.mu.Lock()
	if ok {
		c.owned[uuid] = true
	} else {
		delete(c.owned, uuid)
	}
	c.mu.Unlock()
	return ok
}

// disown releases the owner leases this node holds, at Close: another
// node's scheduler takes its tables over at its next check.
func (c *Compactor) disown() {
	c.mu.Lock()
	uuids := slices.Collect(maps.Keys(c.owned))
	c.owned = map[string]bool{}
	c.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, uuid := range uuids {
		if err := c.cat.ReleaseLease(ctx, OwnerLease(uuid), c.node); err != nil {
			c.log.Warn("releasing a table's owner lease", "table", uuid, "err", err)
		}
	}
}
