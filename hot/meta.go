package hot

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

// nodeIDPattern is what a node ID may look like: it becomes part of table
// property keys (the flusher's per-node watermark).
var nodeIDPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)

var nodeIDKey = []byte{kindFormat, 'n', 'o', 'd', 'e'}

// loadNodeID returns the node ID recorded in the DB, recording want (or a
// new random ID when want is empty) on first use. A want that differs from
// the recorded ID is an error: the ID names the flusher's watermarks in
// the tables, and events under a changed ID would be flushed a second time.
func (db *DB) loadNodeID(want string) (string, error) {
	if want != "" && !nodeIDPattern.MatchString(want) {
		return "", fmt.Errorf("node ID %q must match %s", want, nodeIDPattern)
	}
	v, closer, err := db.pdb.Get(nodeIDKey)
	switch {
	case err == nil:
		have := string(v)
		if cerr := closer.Close(); cerr != nil {
			return "", cerr
		}
		if want != "" && want != have {
			return "", fmt.Errorf("node ID %q was asked for, but this hot tier belongs to node %q", want, have)
		}
		return have, nil
	case !errors.Is(err, pebble.ErrNotFound):
		return "", err
	}
	id := want
	if id == "" {
		var b [6]byte
		if _, err := rand.Read(b[:]); err != nil {
			return "", err
		}
		id = "n" + hex.EncodeToString(b[:])
	}
	if err := db.pdb.Set(nodeIDKey, []byte(id), pebble.Sync); err != nil {
		return "", err
	}
	return id, nil
}

// NodeID identifies this hot tier, and so the node that flushes it, for
// as long as its directory lives. It is fixed when the directory is
// created (Options.NodeID, or a random ID).
func (db *DB) NodeID() string { return db.nodeID }

// SetLabel records label with table, durably; Label returns it. The hot
// tier knows tables only by their key, and a flusher that restarts needs to
// find the catalog table a key belongs to. Setting the label a table
// already has writes nothing.
func (db *DB) SetLabel(table, label string) error {
	if !db.enter() {
		return ErrClosed
	}
	defer db.closeMu.RUnlock()
	k := tableKey(kindLabel, table)
	v, closer, err := db.pdb.Get(k)
	if err == nil {
		same := string(v) == label
		if cerr := closer.Close(); cerr != nil {
			return cerr
		}
		if same {
			return nil
		}
	} else if !errors.Is(err, pebble.ErrNotFound) {
		return fmt.Errorf("hot: label %s: %w", table, err)
	}
	if err := db.pdb.Set(k, []byte(label), pebble.Sync); err != nil {
		return fmt.Errorf("hot: label %s: %w", table, err)
	}
	return nil
}

// Label returns the label of table, "" if it has none.
func (db *DB) Label(table string) (string, error) {
	if !db.enter() {
		return "", ErrClosed
	}
	defer db.closeMu.RUnlock()
	v, closer, err := db.pdb.Get(tableKey(kindLabel, table))
	if errors.Is(err, pebble.ErrNotFound) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("hot: label %s: %w", table, err)
	}
	label := string(v)
	return label, closer.Close()
}

// AdvanceTo makes sure the table hands out only sequences above seq from
// now on. A flusher's watermark lives in the table, not here: if this
// directory was lost but the node kept its ID, new events must not get
// sequences the table already counts as committed.
func (db *DB) AdvanceTo(table string, seq uint64) error {
	if !db.enter() {
		return ErrClosed
	}
	defer db.closeMu.RUnlock()
	t := db.tableFor(table)
	t.mu.Lock()
	defer t.mu.Unlock()
	for t.next <= seq {
		if t.extending {
			t.leaseCond.Wait()
			continue
		}
		if seq <= t.leased {
			t.next = seq + 1
			return nil
		}
		if err := db.leaseTo(t, seq+leaseBlock); err != nil {
			return err
		}
	}
	return nil
}

// OldestAfter returns the append time of the table's first visible event
// with a sequence above seq, zero if there is none.
func (db *DB) OldestAfter(table string, seq uint64) (time.Time, error) {
	if !db.enter() {
		return time.Time{}, ErrClosed
	}
	defer db.closeMu.RUnlock()
	t := db.lookup(table)
	if t == nil {
		return time.Time{}, nil
	}
	at, err := db.firstEventTime(t, seq+1, t.hwm.Load())
	if err != nil {
		return time.Time{}, fmt.Errorf("hot: oldest %s: %w", table, err)
	}
	return at, nil
}

// Streams.
//
// A cluster's nodes write the same tables, each from its own hot tier, and
// a table's offsets must not repeat across them. Each node has a stream
// number, unique in the cluster and fixed for the life of its directory,
// and hands out the sequences of every table from its stream's range:
// above stream<<StreamBits, below (stream+1)<<StreamBits. Stream 0 is the
// range a single node has always used, so its offsets are unchanged.
const (
	// StreamBits is how many low bits of a sequence count within its
	// stream: 2^44 events per table and node.
	StreamBits = 44
	// MaxStreams bounds the streams, so that every sequence stays below
	// 2^53 and survives JSON readers that parse numbers as doubles.
	MaxStreams = 1 << (53 - StreamBits)
)

// StreamOf returns the stream of a sequence.
func StreamOf(seq uint64) uint32 { return uint32(seq >> StreamBits) }

// ErrStreamFull: the table has handed out every sequence of this node's
// stream. Nothing more can be written to it through this node.
var ErrStreamFull = errors.New("hot: the table has used every sequence of this node's stream")

// StreamRequest is what Open knows when it asks Options.Stream for the
// node's stream.
type StreamRequest struct {
	NodeID string
	// Recorded is the stream the directory records, if HasRecorded. The
	// answer must be the same.
	Recorded    uint32
	HasRecorded bool
	// Legacy reports a directory that holds tables but records no stream:
	// it was written before streams, and its sequences are stream 0's.
	Legacy bool
}

var streamKey = []byte{kindFormat, 's', 't', 'r', 'e', 'a', 'm'}

// loadStream finds the node's stream (recorded, or from ask) and records
// it on first use.
func (db *DB) loadStream(ask func(StreamRequest) (uint32, error)) (uint32, error) {
	req := StreamRequest{NodeID: db.nodeID}
	v, closer, err := db.pdb.Get(streamKey)
	switch {
	case err == nil:
		if len(v) != 4 {
			return 0, errors.Join(fmt.Errorf("malformed stream %q", v), closer.Close())
		}
		req.Recorded, req.HasRecorded = binary.BigEndian.Uint32(v), true
		if err := closer.Close(); err != nil {
			return 0, err
		}
	case !errors.Is(err, pebble.ErrNotFound):
		return 0, err
	}
	req.Legacy = !req.HasRecorded && len(db.tables) > 0
	if ask == nil {
		// Without an assigner the directory keeps what it has, and a new
		// one stays unrecorded on stream 0, as before streams.
		return req.Recorded, nil
	}
	s, err := ask(req)
	switch {
	case err != nil:
		return 0, fmt.Errorf("stream of node %s: %w", db.nodeID, err)
	case s >= MaxStreams:
		return 0, fmt.Errorf("stream %d of node %s: streams are below %d", s, db.nodeID, MaxStreams)
	case req.HasRecorded && s != req.Recorded:
		return 0, fmt.Errorf("node %s was given stream %d, but its hot tier holds stream %d: "+
			"a directory keeps its stream for life", db.nodeID, s, req.Recorded)
	case req.HasRecorded:
		return s, nil
	}
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], s)
	if err := db.pdb.Set(streamKey, b[:], pebble.Sync); err != nil {
		return 0, err
	}
	return s, nil
}

// Stream is the node's stream: every sequence this hot tier hands out
// lies in it (see StreamBits).
func (db *DB) Stream() uint32 { return db.stream }
