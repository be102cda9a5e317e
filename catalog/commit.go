package catalog

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/apache/iceberg-go/table"
	"github.com/zombi-db/zombi/internal/location"
	"github.com/zombi-db/zombi/warehouse"
)

// TableChange is one table's part of a commit: requirements that must hold
// on the current metadata and updates to apply to it.
type TableChange struct {
	Ident        Ident
	Requirements []table.Requirement
	Updates      []table.Update
}

// CommitTable applies one table's change through the commit path and
// returns the new state.
func (s *Service) CommitTable(ctx context.Context, ch TableChange, idem *Idempotency) (*Table, error) {
	res, err := s.commit(ctx, []TableChange{ch}, idem, func(t []*Table) any { return t[0] })
	if err != nil {
		return nil, err
	}
	return res[0], nil
}

// CommitTransaction applies changes to several tables atomically: all of
// them move or none does.
func (s *Service) CommitTransaction(ctx context.Context, changes []TableChange, idem *Idempotency) error {
	if len(changes) == 0 {
		return fmt.Errorf("%w: a transaction needs at least one table change", ErrInvalid)
	}
	_, err := s.commit(ctx, changes, idem, func([]*Table) any { return nil })
	return err
}

// staged is one table of a commit between applying updates and the swap.
type staged struct {
	ch      TableChange
	base    Entry  // the entry before the commit; zero for a create
	next    string // metadata location after; == base's when nothing changed
	entry   Entry  // the entry after
	oldMeta table.Metadata
	res     *Table
	// place is the table location when the commit creates the table or
	// moves it, for the namespace directory check; zero otherwise.
	place location.Location
}

func (st *staged) creates() bool { return st.base.MetadataLocation == "" }

// commit is the one commit path: load current metadata, validate
// requirements, apply updates, write the next metadata files, then swap all
// pointers in one store transaction. result picks what the idempotency
// receipt records.
func (s *Service) commit(ctx context.Context, changes []TableChange, idem *Idempotency, result func([]*Table) any) (_ []*Table, err error) {
	start := time.Now()
	defer func() { s.metrics.commits.WithLabelValues(commitOutcome(err)).Inc() }()

	seen := make(map[string]bool, len(changes))
	keys := make([]string, 0, len(changes))
	for _, ch := range changes {
		if err := ValidateIdent(ch.Ident); err != nil {
			return nil, err
		}
		key := ch.Ident.Namespace.String() + "\x00" + ch.Ident.Name
		if seen[key] {
			return nil, fmt.Errorf("%w: table %s appears twice in one commit", ErrInvalid, ch.Ident)
		}
		seen[key] = true
		keys = append(keys, key)
	}
	if err := s.replay(ctx, idem); err != nil {
		return nil, err
	}
	// From reading the pointers to swapping them, no other commit of these
	// tables runs in this process (see commitLocks).
	unlock, err := s.locks.lock(ctx, keys)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	defer unlock()

	// Read every pointer from one consistent view.
	stages := make([]*staged, len(changes))
	err = s.store.View(ctx, func(tx Tx) error {
		for i, ch := range changes {
			e, err := tx.Load(KindTable, ch.Ident)
			if errors.Is(err, ErrNoSuchTable) {
				if _, nsErr := tx.LoadNamespace(ch.Ident.Namespace); nsErr != nil {
					return nsErr
				}
				err = nil
			}
			if err != nil {
				return err
			}
			stages[i] = &staged{ch: ch, base: e}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}

	var written []string
	defer func() {
		if err != nil {
			s.discard(ctx, written, err)
		}
	}()
	for _, st := range stages {
		if err := s.stage(ctx, st); err != nil {
			return nil, err
		}
		if st.next != st.base.MetadataLocation {
			raw, err := s.writeMetadata(ctx, st.next, st.res.Metadata)
			if err != nil {
				return nil, err
			}
			st.res.RawMetadata = raw
			written = append(written, st.next)
		}
	}

	tables := make([]*Table, len(stages))
	for i, st := range stages {
		tables[i] = st.res
	}
	err = s.store.Update(ctx, func(tx Tx) error {
		if err := s.checkReceipt(tx, idem); err != nil {
			return err
		}
		for _, st := range stages {
			if !st.place.IsZero() {
				if err := s.checkNotNamespaceDir(tx, st.place); err != nil {
					return err
				}
			}
			var err error
			switch {
			case st.creates():
				err = tx.Create(st.ch.Ident, st.entry)
				switch {
				case errors.Is(err, ErrTableExists):
					err = requirementFailed("assert-create", err)
				case errors.Is(err, ErrViewExists):
					err = sameNameExists(KindTable, st.ch.Ident, err)
				}
			default:
				// An unchanged table is swapped onto itself: the
				// requirements checked against base still hold only if
				// the pointer did not move.
				err = tx.Swap(st.ch.Ident, st.base.MetadataLocation, st.entry)
				if errors.Is(err, ErrNoSuchTable) {
					err = fmt.Errorf("%w: table %s was dropped concurrently", ErrCommitFailed, st.ch.Ident)
				}
			}
			if err != nil {
				return err
			}
		}
		return s.putReceipt(tx, idem, result(tables))
	})
	unlock()
	if err != nil {
		return nil, commitError(err)
	}
	s.metrics.commitDuration.Observe(time.Since(start).Seconds())
	for _, st := range stages {
		if st.next != st.base.MetadataLocation {
			s.changed(st.ch.Ident)
		}
		if st.next != st.base.MetadataLocation && st.oldMeta != nil {
			s.cleanupMetadata(ctx, st)
		}
	}
	return tables, nil
}

// stage validates st's requirements against its base metadata and applies
// its updates, naming the next metadata file.
func (s *Service) stage(ctx context.Context, st *staged) error {
	var base table.Metadata
	if !st.creates() {
		m, err := s.readMetadata(ctx, st.base.MetadataLocation)
		if err != nil {
			return err
		}
		base, st.oldMeta = m.meta, m.meta
		st.res = &Table{Ident: st.ch.Ident, MetadataLocation: st.base.MetadataLocation, Metadata: base, RawMetadata: m.raw, Config: s.wh.ClientConfig()}
	}
	creates := false
	for _, r := range st.ch.Requirements {
		if r == nil {
			return fmt.Errorf("%w: null requirement", ErrInvalid)
		}
		if r.GetType() == "assert-create" {
			creates = true
		}
		if err := r.Validate(base); err != nil {
			return requirementFailed(r.GetType(), err)
		}
	}
	if base == nil && !creates {
		return fmt.Errorf("%w: %s", ErrNoSuchTable, st.ch.Ident)
	}
	for _, u := range st.ch.Updates {
		if u == nil {
			return fmt.Errorf("%w: null update", ErrInvalid)
		}
	}
	if base != nil && len(st.ch.Updates) == 0 {
		st.next, st.entry = st.base.MetadataLocation, st.base // st.res is the current state
		return nil
	}

	var (
		meta    table.Metadata
		version int
		err     error
	)
	if base == nil {
		meta, err = s.buildCreate(st.ch.Ident, st.ch.Updates)
	} else {
		version = metadataVersion(st.base.MetadataLocation) + 1
		meta, err = table.UpdateTableMetadata(base, st.ch.Updates, st.base.MetadataLocation)
	}
	if err != nil {
		return errorf(ErrIllegalArgument, "%s", err)
	}
	place, err := s.place("table location", meta.Location())
	if err != nil {
		return err
	}
	if err := confine(meta, base, st.base.MetadataLocation); err != nil {
		return err
	}
	next, err := newMetadataLocation(meta, version)
	if err != nil {
		return err
	}
	st.next = next
	st.entry = entryOf(KindTable, next, place, meta.TableUUID().String())
	if st.creates() || st.entry.Location != st.base.Location {
		st.place = place
	}
	st.res = &Table{Ident: st.ch.Ident, MetadataLocation: next, Metadata: meta, Config: s.wh.ClientConfig()}
	return nil
}

// buildCreate builds the metadata of a table created by a commit (the
// second half of a staged create, or any create transaction) from the
// client's updates alone: schema, spec and sort order IDs and the format
// version stay as the client assigned them. The format version is the one
// the client's upgrade-format-version names, 2 without one.
func (s *Service) buildCreate(id Ident, updates []table.Update) (table.Metadata, error) {
	version := 2
	for _, u := range updates {
		if u.Action() != table.UpdateUpgradeFormatVersion {
			continue
		}
		raw, err := json.Marshal(u)
		if err != nil {
			return nil, err
		}
		var v struct {
			FormatVersion int `json:"format-version"`
		}
		if err := json.Unmarshal(raw, &v); err != nil {
			return nil, err
		}
		version = v.FormatVersion
		break
	}
	b, err := table.NewMetadataBuilder(version)
	if err != nil {
		return nil, err
	}
	for _, u := range updates {
		if err := u.Apply(b); err != nil {
			return nil, err
		}
	}
	if !setsLocation(updates) {
		if err := b.SetLoc(s.defaultLocation(id)); err != nil {
			return nil, err
		}
	}
	return b.Build()
}

// requirementPhrases are the reference catalog's words for each failed
// requirement; Iceberg's clients and the conformance kit match on them.
var requirementPhrases = map[string]string{
	"assert-create":                     "table already exists",
	"assert-table-uuid":                 "UUID does not match",
	"assert-current-schema-id":          "current schema changed",
	"assert-last-assigned-field-id":     "last assigned field id changed",
	"assert-last-assigned-partition-id": "last assigned partition id changed",
	"assert-default-spec-id":            "default partition spec changed",
	"assert-default-sort-order-id":      "default sort order changed",
	"assert-view-uuid":                  "view UUID does not match",
}

// requirementFailed is the ErrCommitFailed for a requirement of type typ
// that did not hold: "Requirement failed: <phrase>", then iceberg-go's
// detail (expected and found values).
func requirementFailed(typ string, cause error) error {
	detail := cause.Error()
	if i := strings.Index(strings.ToLower(detail), "requirement failed: "); i >= 0 {
		detail = detail[i+len("requirement failed: "):]
	}
	phrase, ok := requirementPhrases[typ]
	switch {
	case !ok:
		// assert-ref-snapshot-id: iceberg-go's words are the reference's.
		return errorf(ErrCommitFailed, "Requirement failed: %s", detail)
	case typ == "assert-create":
		return errorf(ErrCommitFailed, "Requirement failed: %s", phrase)
	}
	return errorf(ErrCommitFailed, "Requirement failed: %s: %s", phrase, detail)
}

func setsLocation(updates []table.Update) bool {
	for _, u := range updates {
		if u.Action() == table.UpdateSetLocation {
			return true
		}
	}
	return false
}

// metadataVersion parses the version from an NNNNN-uuid.metadata.json or
// vN.metadata.json file name; -1 when it has neither form.
func metadataVersion(loc string) int {
	name := loc[strings.LastIndex(loc, "/")+1:]
	var v int
	if i := strings.IndexByte(name, '-'); i > 0 {
		if _, err := fmt.Sscanf(name[:i], "%d", &v); err == nil {
			return v
		}
	}
	if _, err := fmt.Sscanf(name, "v%d.", &v); err == nil {
		return v
	}
	return -1
}

// cleanupMetadata deletes metadata files that fell out of the metadata log
// when the table asks for it (write.metadata.delete-after-commit.enabled),
// each only if it lies inside the table's location.
func (s *Service) cleanupMetadata(ctx context.Context, st *staged) {
	props := st.res.Metadata.Properties()
	if !props.GetBool(table.MetadataDeleteAfterCommitEnabledKey, table.MetadataDeleteAfterCommitEnabledDefault) {
		return
	}
	loc := st.res.Metadata.Location()
	kept := map[string]bool{st.next: true}
	for e := range st.res.Metadata.PreviousFiles() {
		kept[e.MetadataFile] = true
	}
	var drop []string
	for e := range st.oldMeta.PreviousFiles() {
		if !kept[e.MetadataFile] && warehouse.CheckInTable(loc, e.MetadataFile) == nil {
			drop = append(drop, e.MetadataFile)
		}
	}
	if !kept[st.base.MetadataLocation] && warehouse.CheckInTable(loc, st.base.MetadataLocation) == nil {
		drop = append(drop, st.base.MetadataLocation)
	}
	if len(drop) == 0 {
		return
	}
	s.forget(drop...)
	if err := s.wh.Delete(context.WithoutCancel(ctx), drop); err != nil {
		s.log.Warn("could not delete old metadata files", "table", st.ch.Ident, "files", drop, "err", err)
		return
	}
	s.metrics.purgedFiles.Add(float64(len(drop)))
}

// commitError keeps errors that prove nothing was committed and turns any
// other failure of the swap transaction into ErrCommitStateUnknown.
func commitError(err error) error {
	var replay *ReplayError
	for _, known := range []error{ErrCommitFailed, ErrNoSuchTable, ErrNoSuchNamespace, ErrTableExists, ErrNoSuchView, ErrViewExists, ErrLocationInUse, ErrInvalid, ErrUnprocessable, ErrUnavailable, ErrNotFound} {
		if errors.Is(err, known) {
			return err
		}
	}
	if errors.As(err, &replay) {
		return err
	}
	return fmt.Errorf("%w: %w", ErrCommitStateUnknown, err)
}

func commitOutcome(err error) string {
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, ErrCommitFailed):
		return "conflict"
	case errors.Is(err, ErrInvalid), errors.Is(err, ErrNoSuchTable), errors.Is(err, ErrNoSuchNamespace), errors.Is(err, ErrUnprocessable),
		errors.Is(err, ErrLocationInUse), errors.Is(err, ErrViewExists), errors.Is(err, ErrNoSuchView):
		return "invalid"
	case errors.Is(err, ErrCommitStateUnknown):
		return "unknown"
	}
	return "error"
}
