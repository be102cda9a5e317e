package catalog

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/table"
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
	base    string // metadata location before the commit; "" for a create
	next    string // metadata location after; == base when nothing changed
	oldMeta table.Metadata
	res     *Table
}

// commit is the one commit path: load current metadata, validate
// requirements, apply updates, write the next metadata files, then swap all
// pointers in one store transaction. result picks what the idempotency
// receipt records.
func (s *Service) commit(ctx context.Context, changes []TableChange, idem *Idempotency, result func([]*Table) any) (_ []*Table, err error) {
	start := time.Now()
	defer func() { s.metrics.commits.WithLabelValues(commitOutcome(err)).Inc() }()

	seen := make(map[string]bool, len(changes))
	for _, ch := range changes {
		if err := ValidateIdent(ch.Ident); err != nil {
			return nil, err
		}
		key := ch.Ident.Namespace.String() + "\x00" + ch.Ident.Name
		if seen[key] {
			return nil, fmt.Errorf("%w: table %s appears twice in one commit", ErrInvalid, ch.Ident)
		}
		seen[key] = true
	}
	if err := s.replay(ctx, idem); err != nil {
		return nil, err
	}

	// Read every pointer from one consistent view.
	stages := make([]*staged, len(changes))
	err = s.store.View(ctx, func(tx Tx) error {
		for i, ch := range changes {
			loc, err := tx.LoadTable(ch.Ident)
			if errors.Is(err, ErrNoSuchTable) {
				if _, nsErr := tx.LoadNamespace(ch.Ident.Namespace); nsErr != nil {
					return nsErr
				}
				err = nil
			}
			if err != nil {
				return err
			}
			stages[i] = &staged{ch: ch, base: loc}
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
		if st.next != st.base {
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
			var err error
			switch {
			case st.base == "":
				err = tx.CreateTable(st.ch.Ident, st.next)
				if errors.Is(err, ErrTableExists) {
					err = fmt.Errorf("%w: table %s was created concurrently", ErrCommitFailed, st.ch.Ident)
				}
			default:
				// An unchanged table is swapped onto itself: the
				// requirements checked against base still hold only if
				// the pointer did not move.
				err = tx.SwapTable(st.ch.Ident, st.base, st.next)
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
	if err != nil {
		return nil, commitError(err)
	}
	s.metrics.commitDuration.Observe(time.Since(start).Seconds())
	for _, st := range stages {
		if st.next != st.base {
			s.changed(st.ch.Ident)
		}
		if st.next != st.base && st.oldMeta != nil {
			s.cleanupMetadata(ctx, st)
		}
	}
	return tables, nil
}

// stage validates st's requirements against its base metadata and applies
// its updates, naming the next metadata file.
func (s *Service) stage(ctx context.Context, st *staged) error {
	var base table.Metadata
	if st.base != "" {
		m, err := s.readMetadata(ctx, st.base)
		if err != nil {
			return err
		}
		base, st.oldMeta = m.meta, m.meta
		st.res = &Table{Ident: st.ch.Ident, MetadataLocation: st.base, Metadata: base, RawMetadata: m.raw, Config: s.wh.ClientConfig()}
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
			return fmt.Errorf("%w: %s: %w", ErrCommitFailed, st.ch.Ident, err)
		}
	}
	if base == nil && !creates {
		return fmt.Errorf("%w: %s", ErrNoSuchTable, st.ch.Ident)
	}
	if base != nil && len(st.ch.Updates) == 0 {
		st.next = st.base // st.res is the current state
		return nil
	}

	version := 0
	from := base
	if base == nil {
		// A create through commit (after a staged create) starts from
		// empty metadata; the updates carry schema, spec and location.
		var err error
		from, err = table.NewMetadata(iceberg.NewSchema(0), nil, table.UnsortedSortOrder, "", nil)
		if err != nil {
			return err
		}
	} else {
		version = metadataVersion(st.base) + 1
	}
	for _, u := range st.ch.Updates {
		if u == nil {
			return fmt.Errorf("%w: null update", ErrInvalid)
		}
	}
	updates := st.ch.Updates
	if base == nil && !setsLocation(updates) {
		updates = append(append([]table.Update{}, updates...), table.NewSetLocationUpdate(s.defaultLocation(st.ch.Ident)))
	}
	meta, err := table.UpdateTableMetadata(from, updates, st.base)
	if err != nil {
		return fmt.Errorf("%w: %s: %w", ErrInvalid, st.ch.Ident, err)
	}
	if err := s.checkLocations(meta); err != nil {
		return err
	}
	next, err := newMetadataLocation(meta, version)
	if err != nil {
		return err
	}
	if !inside(s.wh.Root(), next) {
		return fmt.Errorf("%w: metadata file %q would be outside the warehouse", ErrInvalid, next)
	}
	st.next = next
	st.res = &Table{Ident: st.ch.Ident, MetadataLocation: next, Metadata: meta, Config: s.wh.ClientConfig()}
	return nil
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
// when the table asks for it (write.metadata.delete-after-commit.enabled).
func (s *Service) cleanupMetadata(ctx context.Context, st *staged) {
	props := st.res.Metadata.Properties()
	if !props.GetBool(table.MetadataDeleteAfterCommitEnabledKey, table.MetadataDeleteAfterCommitEnabledDefault) {
		return
	}
	kept := map[string]bool{st.next: true}
	for e := range st.res.Metadata.PreviousFiles() {
		kept[e.MetadataFile] = true
	}
	var drop []string
	for e := range st.oldMeta.PreviousFiles() {
		if !kept[e.MetadataFile] && inside(s.wh.Root(), e.MetadataFile) {
			drop = append(drop, e.MetadataFile)
		}
	}
	if !kept[st.base] {
		drop = append(drop, st.base)
	}
	if len(drop) == 0 {
		return
	}
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
	for _, known := range []error{ErrCommitFailed, ErrNoSuchTable, ErrNoSuchNamespace, ErrTableExists, ErrInvalid, ErrUnprocessable, ErrUnavailable} {
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
	case errors.Is(err, ErrInvalid), errors.Is(err, ErrNoSuchTable), errors.Is(err, ErrNoSuchNamespace), errors.Is(err, ErrUnprocessable):
		return "invalid"
	case errors.Is(err, ErrCommitStateUnknown):
		return "unknown"
	}
	return "error"
}
