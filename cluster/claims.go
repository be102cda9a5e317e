package cluster

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// ClaimState is what the cluster knows of an idempotency key.
type ClaimState int

const (
	// Claimed: this node stores the event. The key was free (or its claim
	// expired), or this node claimed it before: its hot tier remembers its
	// own keys and tells a duplicate itself.
	Claimed ClaimState = iota
	// Stored: a node stored the event; Claim.Offset is its offset.
	Stored
	// Pending: another node claimed the key and has not recorded an
	// offset yet.
	Pending
)

// Claim is the outcome of claiming one key.
type Claim struct {
	State  ClaimState
	Offset uint64 // Stored
	// Node holds a Pending claim; NodeAlive says whether its heartbeat is
	// fresh and it has not left.
	Node      string
	NodeAlive bool
}

// KeyLookup returns the sequence under which the node's hot tier stored
// an idempotency key of a table, if it did within the window.
type KeyLookup func(table, key string) (seq uint64, ok bool, err error)

// Claim claims distinct, non-empty idempotency keys of a table in one
// round trip and returns their states in order. A key whose claim is older
// than the window counts as free.
//
// The protocol: claim, store the events of the Claimed keys in the hot
// tier, then Record their offsets; Release the Claimed keys instead when
// the store fails. A retry that reaches another node meanwhile finds the
// key Pending, and once recorded Stored with the original offset. A
// Pending claim whose node dies stays until that node returns and settles
// it from its hot tier (Settle), or until it expires: the dead node's disk
// may hold the event, so no other node may store it again.
func (m *Member) Claim(ctx context.Context, table string, keys []string) ([]Claim, error) {
	// Count the keys in flight first, so that Settle never removes the
	// claim of a write between its claim and its record.
	m.mu.Lock()
	for _, k := range keys {
		m.inflight[claimKey{table, k}]++
	}
	m.mu.Unlock()
	claims, err := m.claim(ctx, table, keys)
	m.mu.Lock()
	for i, k := range keys {
		if err != nil || claims[i].State != Claimed {
			m.done(claimKey{table, k})
		}
	}
	m.mu.Unlock()
	return claims, err
}

// done counts a key of this process as no longer in flight. m.mu is held.
func (m *Member) done(k claimKey) {
	if n := m.inflight[k] - 1; n > 0 {
		m.inflight[k] = n
	} else {
		delete(m.inflight, k)
	}
}

// claimsInFlight is how many claim statements, and how many record
// statements, a node runs at once; concurrent writes queue behind them
// and share the next one (batcher).
const claimsInFlight = 2

const claimSQL = `WITH k AS (SELECT DISTINCT t, key FROM unnest($1::text[], $2::bytea[]) AS u(t, key)),
ins AS (
	INSERT INTO zombi_idempotency_claims AS c (table_uuid, key, node_id, claimed)
	SELECT t, key, $3, now() FROM k ORDER BY t, key
	ON CONFLICT (table_uuid, key) DO UPDATE
		SET node_id = excluded.node_id, "offset" = NULL, claimed = excluded.claimed
		WHERE c.claimed < now() - make_interval(secs => $4)
	RETURNING c.table_uuid, c.key)
SELECT k.t, k.key, ins.key IS NOT NULL, c.node_id, c."offset",
	n.left_at IS NULL AND n.heartbeat > now() - make_interval(secs => $5)
FROM k
LEFT JOIN ins ON ins.table_uuid = k.t AND ins.key = k.key
LEFT JOIN zombi_idempotency_claims c ON ins.key IS NULL AND c.table_uuid = k.t AND c.key = k.key
LEFT JOIN zombi_nodes n ON n.node_id = c.node_id`

// A claimReq is the keys of one write.
type claimReq struct {
	table string
	keys  []string
}

func (m *Member) claim(ctx context.Context, table string, keys []string) ([]Claim, error) {
	start := time.Now()
	claims, err := m.claims.run(ctx, claimReq{table: table, keys: keys})
	m.metrics.claimRounds.Observe(time.Since(start).Seconds())
	if err != nil {
		return nil, fmt.Errorf("cluster: claiming idempotency keys: %w", err)
	}
	for _, c := range claims {
		m.metrics.claims.WithLabelValues(stateLabels[c.State]).Inc()
	}
	return claims, nil
}

// claimAll claims the keys of several writes in one statement; keys are
// locked in order, so that concurrent statements never deadlock.
func (m *Member) claimAll(ctx context.Context, reqs []claimReq) ([][]Claim, error) {
	var (
		tables []string
		raw    [][]byte
	)
	for _, r := range reqs {
		for _, k := range r.keys {
			tables, raw = append(tables, r.table), append(raw, []byte(k))
		}
	}
	rows, err := m.pool.Query(ctx, claimSQL, tables, raw, m.node, m.window.Seconds(), m.expiry.Seconds())
	if err != nil {
		return nil, err
	}
	found := make(map[claimKey]Claim, len(raw))
	var (
		table    string
		key      []byte
		inserted bool
		node     *string
		offset   *int64
		alive    *bool
	)
	_, err = pgx.ForEachRow(rows, []any{&table, &key, &inserted, &node, &offset, &alive}, func() error {
		var c Claim
		switch {
		case inserted:
			c.State = Claimed
		case offset != nil:
			c.State, c.Offset = Stored, uint64(*offset)
		case node != nil && *node == m.node:
			c.State = Claimed
		case node != nil:
			c.State, c.Node, c.NodeAlive = Pending, *node, alive != nil && *alive
		default:
			// Claimed by a transaction that committed after this
			// statement's snapshot: as good as pending and alive.
			c.State, c.NodeAlive = Pending, true
		}
		found[claimKey{table, string(key)}] = c
		return nil
	})
	if err != nil {
		return nil, err
	}
	out := make([][]Claim, len(reqs))
	for i, r := range reqs {
		out[i] = make([]Claim, len(r.keys))
		for j, k := range r.keys {
			out[i][j] = found[claimKey{r.table, k}]
		}
	}
	return out, nil
}

var stateLabels = [...]string{Claimed: "claimed", Stored: "stored", Pending: "pending"}

// A recordReq is the offsets of one write's claimed keys.
type recordReq struct {
	table   string
	keys    []string
	offsets []uint64
}

// Record records the offsets of Claimed keys once their events are
// stored; concurrent writes share a round trip. A claim that is gone
// (settled or expired meanwhile) is written again.
func (m *Member) Record(ctx context.Context, table string, keys []string, offsets []uint64) error {
	defer m.finish(table, keys)
	if len(keys) == 0 {
		return nil
	}
	start := time.Now()
	_, err := m.records.run(ctx, recordReq{table: table, keys: keys, offsets: offsets})
	m.metrics.claimRounds.Observe(time.Since(start).Seconds())
	if err != nil {
		return fmt.Errorf("cluster: recording idempotency keys: %w", err)
	}
	return nil
}

// recordAll records the offsets of several writes in one statement, each
// key once, in order.
func (m *Member) recordAll(ctx context.Context, reqs []recordReq) ([]struct{}, error) {
	var (
		tables []string
		raw    [][]byte
		offs   []int64
		seen   = make(map[claimKey]bool)
	)
	for _, r := range reqs {
		for i, k := range r.keys {
			if ck := (claimKey{r.table, k}); !seen[ck] {
				seen[ck] = true
				tables, raw, offs = append(tables, r.table), append(raw, []byte(k)), append(offs, int64(r.offsets[i]))
			}
		}
	}
	_, err := m.pool.Exec(ctx, `INSERT INTO zombi_idempotency_claims AS c (table_uuid, key, node_id, "offset", claimed)
SELECT v.t, v.key, $4, v.off, now() FROM unnest($1::text[], $2::bytea[], $3::bigint[]) AS v(t, key, off)
ORDER BY v.t, v.key
ON CONFLICT (table_uuid, key) DO UPDATE SET "offset" = excluded."offset"
	WHERE c.node_id = excluded.node_id AND c."offset" IS NULL`, tables, raw, offs, m.node)
	return make([]struct{}, len(reqs)), err
}

// Release gives up Claimed keys whose events were not stored, so that a
// retry may store them on any node. Keys another write of this process
// still works on stay claimed.
func (m *Member) Release(ctx context.Context, table string, keys []string) error {
	m.mu.Lock()
	var free [][]byte
	for _, k := range keys {
		ck := claimKey{table, k}
		m.done(ck)
		if m.inflight[ck] == 0 {
			free = append(free, []byte(k))
		}
	}
	m.mu.Unlock()
	if len(free) == 0 {
		return nil
	}
	_, err := m.pool.Exec(ctx, `DELETE FROM zombi_idempotency_claims
WHERE table_uuid = $1 AND key = ANY($2::bytea[]) AND node_id = $3 AND "offset" IS NULL`, table, free, m.node)
	if err != nil {
		return fmt.Errorf("cluster: releasing idempotency keys: %w", err)
	}
	return nil
}

func (m *Member) finish(table string, keys []string) {
	m.mu.Lock()
	for _, k := range keys {
		m.done(claimKey{table, k})
	}
	m.mu.Unlock()
}

// settleBatch is how many pending claims one Settle pass handles.
const settleBatch = 1000

// Settle resolves this node's pending claims that no write of this
// process works on: those left by a process that died between its claim
// and its record, or whose record failed. lookup says whether the hot
// tier stored the key: if so the claim gets its offset, if not it is
// removed and a retry may store the event anywhere. It returns how many
// claims it settled.
func (m *Member) Settle(ctx context.Context, lookup KeyLookup) (int, error) {
	rows, err := m.pool.Query(ctx, `SELECT table_uuid, key FROM zombi_idempotency_claims
WHERE node_id = $1 AND "offset" IS NULL LIMIT $2`, m.node, settleBatch)
	if err != nil {
		return 0, fmt.Errorf("cluster: settling idempotency claims: %w", err)
	}
	type pending struct {
		table string
		key   []byte
	}
	found, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (pending, error) {
		var p pending
		return p, row.Scan(&p.table, &p.key)
	})
	if err != nil || len(found) == 0 {
		return 0, err
	}
	// Hold m.mu throughout: a write claims its keys in m.inflight first,
	// so none can start on a key between its lookup here and the update.
	m.mu.Lock()
	defer m.mu.Unlock()
	var (
		tables, gone   []string
		keys, goneKeys [][]byte
		offsets        []int64
	)
	for _, p := range found {
		if m.inflight[claimKey{p.table, string(p.key)}] > 0 {
			continue
		}
		seq, ok, err := lookup(p.table, string(p.key))
		switch {
		case err != nil:
			return 0, fmt.Errorf("cluster: settling idempotency claims: %w", err)
		case ok:
			tables, keys, offsets = append(tables, p.table), append(keys, p.key), append(offsets, int64(seq))
		default:
			gone, goneKeys = append(gone, p.table), append(goneKeys, p.key)
		}
	}
	b := &pgx.Batch{}
	b.Queue(`UPDATE zombi_idempotency_claims c SET "offset" = v.off
FROM unnest($1::text[], $2::bytea[], $3::bigint[]) AS v(t, key, off)
WHERE c.table_uuid = v.t AND c.key = v.key AND c.node_id = $4 AND c."offset" IS NULL`, tables, keys, offsets, m.node)
	b.Queue(`DELETE FROM zombi_idempotency_claims c USING unnest($1::text[], $2::bytea[]) AS v(t, key)
WHERE c.table_uuid = v.t AND c.key = v.key AND c.node_id = $3 AND c."offset" IS NULL`, gone, goneKeys, m.node)
	br := m.pool.SendBatch(ctx, b)
	_, err1 := br.Exec()
	_, err2 := br.Exec()
	if err := errors.Join(err1, err2, br.Close()); err != nil {
		return 0, fmt.Errorf("cluster: settling idempotency claims: %w", err)
	}
	if n := len(keys) + len(goneKeys); n > 0 {
		m.log.Info("settled idempotency claims", "recorded", len(keys), "released", len(goneKeys))
	}
	return len(keys) + len(goneKeys), nil
}

// expireBatch is how many claims one expiry statement deletes.
const expireBatch = 10000

// ExpireClaims deletes the claims older than the window and returns how
// many.
func (m *Member) ExpireClaims(ctx context.Context) (int64, error) {
	var total int64
	for {
		tag, err := m.pool.Exec(ctx, `DELETE FROM zombi_idempotency_claims WHERE ctid IN (
	SELECT ctid FROM zombi_idempotency_claims WHERE claimed < now() - make_interval(secs => $1) LIMIT $2)`,
			m.window.Seconds(), expireBatch)
		if err != nil {
			return total, fmt.Errorf("cluster: expiring idempotency claims: %w", err)
		}
		total += tag.RowsAffected()
		if tag.RowsAffected() < expireBatch {
			return total, nil
		}
	}
}
