package catalog

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strings"

	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/table"
	"github.com/zombi-db/zombi/internal/location"
)

// Table is a table's current state as the REST API hands it out.
type Table struct {
	Ident Ident
	// MetadataLocation is empty for a staged (not yet committed) create.
	MetadataLocation string
	Metadata         table.Metadata
	// RawMetadata is Metadata as JSON, the metadata file's content.
	RawMetadata []byte
	// Config is what a client needs to read and write the table's files.
	Config map[string]string
}

// CreateTableRequest describes a new table.
type CreateTableRequest struct {
	Ident  Ident
	Schema *iceberg.Schema
	// Spec and SortOrder may be nil: unpartitioned, unsorted.
	Spec      *iceberg.PartitionSpec
	SortOrder *table.SortOrder
	// Location may be empty: the catalog picks one under the warehouse.
	Location   string
	Properties map[string]string
	// Stage returns the table's metadata without creating it; the client
	// creates it later with a commit that asserts it does not exist.
	Stage bool
}

// loadEntry returns the entry of kind named id. A missing entry is
// ErrNoSuchTable or ErrNoSuchView even when its namespace is missing too:
// the REST spec answers loadTable and dropTable of such a table with
// NoSuchTableException, and Iceberg's Java client relies on it — Spark
// resolves the metadata table db.t.snapshots by first loading table
// "snapshots" in namespace db.t and falling back only on NoSuchTable.
func (s *Service) loadEntry(ctx context.Context, kind Kind, id Ident) (Entry, error) {
	if l, ok := s.store.(EntryLoader); ok {
		return l.LoadEntry(ctx, kind, id)
	}
	var e Entry
	err := s.store.View(ctx, func(tx Tx) error {
		var err error
		e, err = tx.Load(kind, id)
		return err
	})
	return e, err
}

// LoadTable returns the table's current metadata.
func (s *Service) LoadTable(ctx context.Context, id Ident) (*Table, error) {
	if err := ValidateIdent(id); err != nil {
		return nil, err
	}
	e, err := s.loadEntry(ctx, KindTable, id)
	if err != nil {
		return nil, err
	}
	return s.tableAt(ctx, id, e.MetadataLocation)
}

// TableLocation returns the table's current metadata location after
// checking the file is still there; it is how a client's cached copy is
// checked without reading metadata.
func (s *Service) TableLocation(ctx context.Context, id Ident) (string, error) {
	if err := ValidateIdent(id); err != nil {
		return "", err
	}
	e, err := s.loadEntry(ctx, KindTable, id)
	if err != nil {
		return "", err
	}
	return e.MetadataLocation, s.checkFile(e.MetadataLocation)
}

// TableRoot returns the table's location, below which all its files
// lie, in canonical form (internal/location).
func (s *Service) TableRoot(ctx context.Context, id Ident) (string, error) {
	if err := ValidateIdent(id); err != nil {
		return "", err
	}
	e, err := s.loadEntry(ctx, KindTable, id)
	if err != nil {
		return "", err
	}
	if e.Location != "" {
		return e.Location, nil
	}
	t, err := s.tableAt(ctx, id, e.MetadataLocation)
	if err != nil {
		return "", err
	}
	return t.Metadata.Location(), nil
}

// TableExists reports whether id names a table.
func (s *Service) TableExists(ctx context.Context, id Ident) error {
	if err := ValidateIdent(id); err != nil {
		return err
	}
	_, err := s.loadEntry(ctx, KindTable, id)
	return err
}

func (s *Service) tableAt(ctx context.Context, id Ident, loc string) (*Table, error) {
	// Only a file parsed before needs the check that it is still there:
	// reading one that is not finds a missing file as well, and saves a
	// request to an object store (another node's commit, a first load).
	if _, cached := s.cache.get(loc); cached {
		if err := s.checkFile(loc); err != nil {
			return nil, err
		}
	}
	m, err := s.readMetadata(ctx, loc)
	if err != nil {
		return nil, err
	}
	return &Table{Ident: id, MetadataLocation: loc, Metadata: m.meta, RawMetadata: m.raw, Config: s.wh.ClientConfig()}, nil
}

// ListTables lists the tables of ns.
func (s *Service) ListTables(ctx context.Context, ns Namespace, pageToken string, pageSize int) (Page[Ident], error) {
	return s.list(ctx, KindTable, ns, pageToken, pageSize)
}

func (s *Service) list(ctx context.Context, kind Kind, ns Namespace, pageToken string, pageSize int) (Page[Ident], error) {
	if err := ValidateNamespace(ns); err != nil {
		return Page[Ident]{}, err
	}
	after, err := decodeToken(pageToken)
	if err != nil {
		return Page[Ident]{}, err
	}
	limit := pageLimit(pageSize)
	var items []Ident
	if l, ok := s.store.(EntryLister); ok {
		items, err = l.ListEntries(ctx, kind, ns, after, limit+1)
	} else {
		err = s.store.View(ctx, func(tx Tx) error {
			var err error
			items, err = tx.List(kind, ns, after, limit+1)
			return err
		})
	}
	if err != nil {
		return Page[Ident]{}, err
	}
	page := Page[Ident]{Items: items}
	if len(items) > limit {
		page.Items = items[:limit]
		page.Next = encodeToken(items[limit-1].Name)
	}
	return page, nil
}

// entryOf is the store entry of a table with metadata meta at metaLoc.
func entryOf(kind Kind, metaLoc string, loc location.Location, uuid string) Entry {
	return Entry{Kind: kind, MetadataLocation: metaLoc, Location: loc.String(), UUID: uuid}
}

// CreateTable creates a table (or, with Stage, only builds its metadata).
func (s *Service) CreateTable(ctx context.Context, req CreateTableRequest, idem *Idempotency) (*Table, error) {
	if err := ValidateIdent(req.Ident); err != nil {
		return nil, err
	}
	if req.Schema == nil {
		return nil, fmt.Errorf("%w: schema is required", ErrInvalid)
	}
	if err := s.replay(ctx, idem); err != nil {
		return nil, err
	}
	// Refuse the common failures before writing any file.
	if err := s.checkFreeFor(ctx, KindTable, req.Ident); err != nil {
		return nil, err
	}
	loc := strings.TrimSuffix(req.Location, "/")
	if loc == "" {
		loc = s.defaultLocation(req.Ident)
	}
	sortOrder := table.UnsortedSortOrder
	if req.SortOrder != nil {
		sortOrder = *req.SortOrder
	}
	meta, err := table.NewMetadata(req.Schema, req.Spec, sortOrder, loc, iceberg.Properties(maps.Clone(req.Properties)))
	if err != nil {
		return nil, errorf(ErrIllegalArgument, "%s", err)
	}
	place, err := s.place("table location", meta.Location())
	if err != nil {
		return nil, err
	}
	if err := confine(meta, nil, ""); err != nil {
		return nil, err
	}
	if req.Stage {
		raw, err := encodeJSON(meta)
		if err != nil {
			return nil, err
		}
		return &Table{Ident: req.Ident, Metadata: meta, RawMetadata: raw, Config: s.wh.ClientConfig()}, nil
	}
	metaLoc, err := newMetadataLocation(meta, 0)
	if err != nil {
		return nil, err
	}
	raw, err := s.writeMetadata(ctx, metaLoc, meta)
	if err != nil {
		return nil, err
	}
	res := &Table{Ident: req.Ident, MetadataLocation: metaLoc, Metadata: meta, RawMetadata: raw, Config: s.wh.ClientConfig()}
	if err := s.createEntry(ctx, idem, req.Ident, place, entryOf(KindTable, metaLoc, place, meta.TableUUID().String()), true, res); err != nil {
		return nil, err
	}
	return res, nil
}

// createEntry makes id name e, at place, in one store transaction with
// idem's receipt (res), and words a taken name as the reference catalog
// does. With written, e's metadata file was written for this create and is
// deleted if the create fails.
func (s *Service) createEntry(ctx context.Context, idem *Idempotency, id Ident, place location.Location, e Entry, written bool, res any) error {
	err := s.update(ctx, idem, func(tx Tx) (any, error) {
		if err := s.checkNotNamespaceDir(tx, place); err != nil {
			return nil, err
		}
		return res, tx.Create(id, e)
	})
	if err != nil {
		if written {
			s.discard(ctx, []string{e.MetadataLocation}, err)
		}
		return sameNameExists(e.Kind, id, err)
	}
	s.changed(id)
	return nil
}

// checkFree returns nil if id's namespace exists and id names nothing;
// otherwise ErrNoSuchNamespace, ErrTableExists or ErrViewExists.
func (s *Service) checkFree(ctx context.Context, id Ident) error {
	return s.store.View(ctx, func(tx Tx) error {
		if _, err := tx.LoadNamespace(id.Namespace); err != nil {
			return err
		}
		if _, err := tx.Load(KindTable, id); err == nil {
			return fmt.Errorf("%w: %s", ErrTableExists, id)
		} else if !errors.Is(err, ErrNoSuchTable) {
			return err
		}
		if _, err := tx.Load(KindView, id); err == nil {
			return fmt.Errorf("%w: %s", ErrViewExists, id)
		} else if !errors.Is(err, ErrNoSuchView) {
			return err
		}
		return nil
	})
}

// newMetadataLocation names the metadata file of version v of meta; it
// lies inside the table location (write.metadata.path is confined there).
func newMetadataLocation(meta table.Metadata, v int) (string, error) {
	lp, err := table.LoadLocationProvider(meta.Location(), meta.Properties())
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	loc, err := lp.NewTableMetadataFileLocation(v)
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	if !location.Within(meta.Location(), loc) {
		return "", fmt.Errorf("%w: metadata file %q would be outside the table location %s", ErrInvalid, loc, meta.Location())
	}
	return loc, nil
}

// discard deletes files written for a change that was not committed. When
// the commit's outcome is unknown the files stay: the change may be live.
func (s *Service) discard(ctx context.Context, locs []string, cause error) {
	if errors.Is(cause, ErrCommitStateUnknown) || len(locs) == 0 {
		return
	}
	s.forget(locs...)
	if err := s.wh.Delete(context.WithoutCancel(ctx), locs); err != nil {
		s.log.Warn("could not delete metadata files of a failed commit", "files", locs, "err", err)
	}
}

// RegisterTable creates a table pointing at an existing metadata file. With
// overwrite, an existing table's pointer is replaced. The metadata file and
// everything it names must lie inside its table location, which, like a
// created table's, must be free: a table may not be registered onto
// another table's files or UUID.
func (s *Service) RegisterTable(ctx context.Context, id Ident, metadataLocation string, overwrite bool, idem *Idempotency) (*Table, error) {
	if err := ValidateIdent(id); err != nil {
		return nil, err
	}
	if !s.inRoots(metadataLocation) {
		return nil, fmt.Errorf("%w: metadata location %q is not inside the warehouse %s or an allowed location", ErrInvalid, metadataLocation, s.wh.Root())
	}
	if err := s.replay(ctx, idem); err != nil {
		return nil, err
	}
	if err := s.checkFile(metadataLocation); err != nil {
		if errors.Is(err, ErrNotFound) {
			return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
		}
		return nil, err
	}
	m, err := s.readMetadata(ctx, metadataLocation)
	if err != nil {
		if !errors.Is(err, ErrUnavailable) {
			return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
		}
		return nil, err
	}
	place, err := s.place("table location", m.meta.Location())
	if err != nil {
		return nil, err
	}
	if !location.Within(m.meta.Location(), metadataLocation) {
		return nil, fmt.Errorf("%w: metadata file %q is not inside its table location %s", ErrInvalid, metadataLocation, m.meta.Location())
	}
	if err := confine(m.meta, nil, ""); err != nil {
		return nil, err
	}
	e := entryOf(KindTable, metadataLocation, place, m.meta.TableUUID().String())
	res := &Table{Ident: id, MetadataLocation: metadataLocation, Metadata: m.meta, RawMetadata: m.raw, Config: s.wh.ClientConfig()}
	err = s.update(ctx, idem, func(tx Tx) (any, error) {
		if err := s.checkNotNamespaceDir(tx, place); err != nil {
			return nil, err
		}
		cur, err := tx.Load(KindTable, id)
		switch {
		case err == nil && overwrite:
			return res, tx.Swap(id, cur.MetadataLocation, e)
		case err == nil:
			return nil, fmt.Errorf("%w: %s", ErrTableExists, id)
		case errors.Is(err, ErrNoSuchTable):
			return res, tx.Create(id, e)
		}
		return nil, err
	})
	if err != nil {
		return nil, sameNameExists(KindTable, id, err)
	}
	s.changed(id)
	return res, nil
}

// RenameTable moves a table to a new identifier; its files stay where they
// are.
func (s *Service) RenameTable(ctx context.Context, from, to Ident, idem *Idempotency) error {
	return s.rename(ctx, KindTable, from, to, idem)
}

func (s *Service) rename(ctx context.Context, kind Kind, from, to Ident, idem *Idempotency) error {
	if err := ValidateIdent(from); err != nil {
		return err
	}
	if err := ValidateIdent(to); err != nil {
		return err
	}
	err := s.update(ctx, idem, func(tx Tx) (any, error) { return nil, tx.Rename(kind, from, to) })
	if err != nil {
		return renameError(from, to, err)
	}
	s.changed(from, to)
	return nil
}

// DropTable removes a table. With purge, the files its metadata references
// (and, for a location the catalog chose, everything under it) are listed
// before the pointer is removed — a table whose files cannot be listed is
// not dropped — and deleted after. A file that cannot be deleted then is
// logged and left for orphan cleanup: the table is already gone.
func (s *Service) DropTable(ctx context.Context, id Ident, purge bool, idem *Idempotency) error {
	if err := ValidateIdent(id); err != nil {
		return err
	}
	var plan *purgePlan
	if purge {
		if err := s.replay(ctx, idem); err != nil {
			return err
		}
		e, err := s.loadEntry(ctx, KindTable, id)
		if err != nil {
			return err
		}
		if plan, err = s.planPurge(ctx, e.MetadataLocation); err != nil {
			return err
		}
	}
	err := s.update(ctx, idem, func(tx Tx) (any, error) {
		e, err := tx.Drop(KindTable, id)
		if err == nil && plan != nil && e.MetadataLocation != plan.metadata {
			// The table moved since it was listed; list again.
			err = fmt.Errorf("%w: table %s changed while being dropped", ErrCommitFailed, id)
		}
		return nil, err
	})
	if err != nil {
		return err
	}
	s.changed(id)
	if plan != nil {
		s.purge(ctx, plan)
	}
	return nil
}
