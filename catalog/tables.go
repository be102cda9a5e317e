package catalog

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strings"

	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/table"
	"github.com/google/uuid"
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

// tableLocation returns the pointer of id (its metadata location). A
// missing table is ErrNoSuchTable even when its namespace is missing too:
// the REST spec answers loadTable and dropTable of such a table with
// NoSuchTableException, and Iceberg's Java client relies on it — Spark
// resolves the metadata table db.t.snapshots by first loading table
// "snapshots" in namespace db.t and falling back only on NoSuchTable.
func (s *Service) tableLocation(ctx context.Context, id Ident) (string, error) {
	loc, err := s.tableOrNamespace(ctx, id)
	if errors.Is(err, ErrNoSuchNamespace) {
		return "", fmt.Errorf("%w: %s (namespace %s does not exist)", ErrNoSuchTable, id, strings.Join(id.Namespace, "."))
	}
	return loc, err
}

// tableOrNamespace is tableLocation, except that a missing namespace is
// ErrNoSuchNamespace: what createTable answers.
func (s *Service) tableOrNamespace(ctx context.Context, id Ident) (string, error) {
	var loc string
	err := s.store.View(ctx, func(tx Tx) error {
		var err error
		loc, err = tx.LoadTable(id)
		if errors.Is(err, ErrNoSuchTable) {
			if _, nsErr := tx.LoadNamespace(id.Namespace); nsErr != nil {
				return nsErr
			}
		}
		return err
	})
	return loc, err
}

// LoadTable returns the table's current metadata.
func (s *Service) LoadTable(ctx context.Context, id Ident) (*Table, error) {
	if err := ValidateIdent(id); err != nil {
		return nil, err
	}
	loc, err := s.tableLocation(ctx, id)
	if err != nil {
		return nil, err
	}
	return s.tableAt(ctx, id, loc)
}

// TableLocation returns the table's current metadata location only; it is
// how a client's cached copy is checked without reading metadata.
func (s *Service) TableLocation(ctx context.Context, id Ident) (string, error) {
	if err := ValidateIdent(id); err != nil {
		return "", err
	}
	return s.tableLocation(ctx, id)
}

func (s *Service) tableAt(ctx context.Context, id Ident, loc string) (*Table, error) {
	m, err := s.readMetadata(ctx, loc)
	if err != nil {
		return nil, err
	}
	return &Table{Ident: id, MetadataLocation: loc, Metadata: m.meta, RawMetadata: m.raw, Config: s.wh.ClientConfig()}, nil
}

// ListTables lists the tables of ns.
func (s *Service) ListTables(ctx context.Context, ns Namespace, pageToken string, pageSize int) (Page[Ident], error) {
	if err := ValidateNamespace(ns); err != nil {
		return Page[Ident]{}, err
	}
	after, err := decodeToken(pageToken)
	if err != nil {
		return Page[Ident]{}, err
	}
	limit := pageLimit(pageSize)
	var page Page[Ident]
	err = s.store.View(ctx, func(tx Tx) error {
		items, err := tx.ListTables(ns, after, limit+1)
		if err != nil {
			return err
		}
		page = Page[Ident]{Items: items}
		if len(items) > limit {
			page.Items = items[:limit]
			page.Next = encodeToken(items[limit-1].Name)
		}
		return nil
	})
	return page, err
}

// defaultLocation is where a new table lives when the client names no
// location: under the warehouse, by namespace, with a random suffix so a
// table created after another was dropped or renamed away never shares its
// files. Names are folded to location-safe characters (see pathSegment):
// engines disagree on whether a location is percent-decoded, so a location
// must mean the same path to all of them.
func (s *Service) defaultLocation(id Ident) string {
	return s.namespaceLocation(id.Namespace) + "/" + pathSegment(id.Name) + "-" + strings.ReplaceAll(uuid.NewString(), "-", "")
}

// namespaceLocation is the directory under which the catalog puts the
// tables of ns: <warehouse>/<namespace levels>.
func (s *Service) namespaceLocation(ns Namespace) string {
	parts := []string{strings.TrimSuffix(s.wh.Root(), "/")}
	for _, level := range ns {
		parts = append(parts, pathSegment(level))
	}
	return strings.Join(parts, "/")
}

// pathSegment keeps ASCII letters, digits, '.', '_' and '-' of a name and
// replaces every other byte with '_'. A segment made only of dots becomes
// underscores too.
func pathSegment(name string) string {
	b := []byte(name)
	dots := true
	for i, c := range b {
		if !safeSegmentByte(c) {
			b[i] = '_'
		}
		dots = dots && b[i] == '.'
	}
	if dots {
		return strings.Repeat("_", len(b))
	}
	return string(b)
}

func safeSegmentByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-'
}

// plainLocation reports whether a location's path is made of characters
// every engine reads the same way: no percent escapes, spaces, '?', '#' or
// other bytes that URL parsers treat differently.
func plainLocation(loc string) bool {
	for i := 0; i < len(loc); i++ {
		c := loc[i]
		if !safeSegmentByte(c) && !strings.ContainsRune("/:=+,@~", rune(c)) {
			return false
		}
	}
	return true
}

// checkLocations refuses table, data and metadata locations outside the
// warehouse, or with characters engines would read differently: a client
// never makes the server read or write elsewhere.
func (s *Service) checkLocations(meta table.Metadata) error {
	root := s.wh.Root()
	locs := []struct{ what, loc string }{{"table location", meta.Location()}}
	for _, key := range []string{table.WriteDataPathKey, table.WriteMetadataPathKey} {
		if p, ok := meta.Properties()[key]; ok {
			locs = append(locs, struct{ what, loc string }{key, p})
		}
	}
	for _, l := range locs {
		if !plainLocation(l.loc) {
			return fmt.Errorf("%w: %s %q may only contain ASCII letters, digits and . _ - / : = + , @ ~", ErrInvalid, l.what, l.loc)
		}
		if !inside(root, l.loc) || strings.TrimSuffix(l.loc, "/") == strings.TrimSuffix(root, "/") {
			return fmt.Errorf("%w: %s %q is not inside the warehouse %s", ErrInvalid, l.what, l.loc, root)
		}
	}
	return nil
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
	if _, err := s.tableOrNamespace(ctx, req.Ident); err == nil {
		return nil, fmt.Errorf("%w: %s", ErrTableExists, req.Ident)
	} else if !errors.Is(err, ErrNoSuchTable) {
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
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	if err := s.checkLocations(meta); err != nil {
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
	err = s.update(ctx, idem, func(tx Tx) (any, error) {
		return res, tx.CreateTable(req.Ident, metaLoc)
	})
	if err != nil {
		s.discard(ctx, []string{metaLoc}, err)
		return nil, err
	}
	s.changed(req.Ident)
	return res, nil
}

// newMetadataLocation names the metadata file of version v of meta.
func newMetadataLocation(meta table.Metadata, v int) (string, error) {
	lp, err := table.LoadLocationProvider(meta.Location(), meta.Properties())
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	loc, err := lp.NewTableMetadataFileLocation(v)
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	return loc, nil
}

// discard deletes files written for a change that was not committed. When
// the commit's outcome is unknown the files stay: the change may be live.
func (s *Service) discard(ctx context.Context, locs []string, cause error) {
	if errors.Is(cause, ErrCommitStateUnknown) || len(locs) == 0 {
		return
	}
	if err := s.wh.Delete(context.WithoutCancel(ctx), locs); err != nil {
		s.log.Warn("could not delete metadata files of a failed commit", "files", locs, "err", err)
	}
}

// RegisterTable creates a table pointing at an existing metadata file. With
// overwrite, an existing table's pointer is replaced.
func (s *Service) RegisterTable(ctx context.Context, id Ident, metadataLocation string, overwrite bool, idem *Idempotency) (*Table, error) {
	if err := ValidateIdent(id); err != nil {
		return nil, err
	}
	if !inside(s.wh.Root(), metadataLocation) {
		return nil, fmt.Errorf("%w: metadata location %q is not inside the warehouse %s", ErrInvalid, metadataLocation, s.wh.Root())
	}
	if err := s.replay(ctx, idem); err != nil {
		return nil, err
	}
	m, err := s.readMetadata(ctx, metadataLocation)
	if err != nil {
		if !errors.Is(err, ErrUnavailable) {
			return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
		}
		return nil, err
	}
	if err := s.checkLocations(m.meta); err != nil {
		return nil, err
	}
	res := &Table{Ident: id, MetadataLocation: metadataLocation, Metadata: m.meta, RawMetadata: m.raw, Config: s.wh.ClientConfig()}
	err = s.update(ctx, idem, func(tx Tx) (any, error) {
		cur, err := tx.LoadTable(id)
		switch {
		case err == nil && overwrite:
			return res, tx.SwapTable(id, cur, metadataLocation)
		case err == nil:
			return nil, fmt.Errorf("%w: %s", ErrTableExists, id)
		case errors.Is(err, ErrNoSuchTable):
			return res, tx.CreateTable(id, metadataLocation)
		}
		return nil, err
	})
	if err != nil {
		return nil, err
	}
	s.changed(id)
	return res, nil
}

// RenameTable moves a table to a new identifier; its files stay where they
// are.
func (s *Service) RenameTable(ctx context.Context, from, to Ident, idem *Idempotency) error {
	if err := ValidateIdent(from); err != nil {
		return err
	}
	if err := ValidateIdent(to); err != nil {
		return err
	}
	err := s.update(ctx, idem, func(tx Tx) (any, error) { return nil, tx.RenameTable(from, to) })
	if err == nil {
		s.changed(from, to)
	}
	return err
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
		loc, err := s.tableLocation(ctx, id)
		if err != nil {
			return err
		}
		if plan, err = s.planPurge(ctx, loc); err != nil {
			return err
		}
	}
	err := s.update(ctx, idem, func(tx Tx) (any, error) {
		loc, err := tx.DropTable(id)
		if err == nil && plan != nil && loc != plan.metadata {
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
