package catalog

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"strings"

	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/table"
	"github.com/apache/iceberg-go/view"
	"github.com/google/uuid"
	"github.com/zombi-db/zombi/internal/location"
	"github.com/zombi-db/zombi/warehouse"
)

// Views share the commit discipline of tables: metadata files written to
// the view's location, a pointer in the store swapped only from the
// metadata location the change was computed on, names shared with tables
// (a name is a table or a view), and the same location rules.

// View is a view's current state as the REST API hands it out.
type View struct {
	Ident            Ident
	MetadataLocation string
	Metadata         view.Metadata
	// RawMetadata is Metadata as JSON, the metadata file's content.
	RawMetadata []byte
	Config      map[string]string
}

// CreateViewRequest describes a new view.
type CreateViewRequest struct {
	Ident Ident
	// Location may be empty: the catalog picks one under the warehouse.
	Location   string
	Schema     *iceberg.Schema
	Version    *view.Version
	Properties map[string]string
}

// ViewChange is a view's commit: requirements that must hold on its
// current metadata and updates to apply.
type ViewChange struct {
	Ident        Ident
	Requirements []view.Requirement
	Updates      []view.Update
}

// gcEnabledKey = "false" keeps a dropped view's metadata file.
const gcEnabledKey = "gc.enabled"

// sameNameExists is the error for creating a kind entry named id where
// err says a name is taken: the reference catalog's words when the name
// is the other kind's.
func sameNameExists(kind Kind, id Ident, err error) error {
	switch {
	case kind == KindTable && errors.Is(err, ErrViewExists):
		return errorf(ErrViewExists, "View with same name already exists: %s", id)
	case kind == KindView && errors.Is(err, ErrTableExists):
		return errorf(ErrTableExists, "Table with same name already exists: %s", id)
	}
	return err
}

// checkFreeFor is checkFree worded for creating a kind entry.
func (s *Service) checkFreeFor(ctx context.Context, kind Kind, id Ident) error {
	return sameNameExists(kind, id, s.checkFree(ctx, id))
}

// renameError words a rename refused because the target name is taken.
func renameError(from, to Ident, err error) error {
	switch {
	case errors.Is(err, ErrTableExists):
		return errorf(ErrTableExists, "Cannot rename %s to %s. Table already exists", from, to)
	case errors.Is(err, ErrViewExists):
		return errorf(ErrViewExists, "Cannot rename %s to %s. View already exists", from, to)
	}
	return err
}

// readView returns the parsed view metadata file at loc and its JSON.
func (s *Service) readView(ctx context.Context, loc string) (view.Metadata, []byte, error) {
	if e, ok := s.cache.get(loc); ok && e.view != nil {
		return e.view, e.raw, nil
	}
	raw, err := readFile(s.wh.IO(), loc)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, missingFile(loc)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("%w: reading view metadata %s: %w", ErrUnavailable, loc, err)
	}
	if raw, err = decompress(loc, raw); err != nil {
		return nil, nil, fmt.Errorf("view metadata file %s: %w", loc, err)
	}
	meta, err := view.ParseMetadataBytes(raw)
	if err != nil {
		return nil, nil, fmt.Errorf("view metadata file %s: %w", loc, err)
	}
	s.cache.put(loc, cachedMetadata{raw: raw, view: meta})
	return meta, raw, nil
}

// writeView writes meta to loc and returns its JSON.
func (s *Service) writeView(ctx context.Context, loc string, meta view.Metadata) ([]byte, error) {
	raw, err := encodeJSON(meta)
	if err != nil {
		return nil, err
	}
	if err := s.writeFile(loc, raw); err != nil {
		return nil, err
	}
	s.cache.put(loc, cachedMetadata{raw: raw, view: meta})
	return raw, nil
}

// viewMetadataLocation names version v's metadata file of meta: in its
// write.metadata.path, or the metadata directory of its location.
func viewMetadataLocation(meta view.Metadata, v int) string {
	dir := strings.TrimSuffix(meta.Location(), "/") + "/metadata"
	if p := meta.Properties()[table.WriteMetadataPathKey]; p != "" {
		dir = strings.TrimSuffix(p, "/")
	}
	return fmt.Sprintf("%s/%05d-%s.metadata.json", dir, v, uuid.NewString())
}

// placeView checks a view's location and that its metadata file lies
// inside it.
func (s *Service) placeView(meta view.Metadata, metaLoc string) (location.Location, error) {
	place, err := s.place("view location", meta.Location())
	if err != nil {
		return location.Location{}, err
	}
	if !location.Within(meta.Location(), metaLoc) {
		return location.Location{}, fmt.Errorf("%w: view metadata file %q is not inside the view location %s", ErrInvalid, metaLoc, meta.Location())
	}
	return place, nil
}

func (s *Service) viewAt(ctx context.Context, id Ident, loc string) (*View, error) {
	if err := s.checkFile(loc); err != nil {
		return nil, err
	}
	meta, raw, err := s.readView(ctx, loc)
	if err != nil {
		return nil, err
	}
	return &View{Ident: id, MetadataLocation: loc, Metadata: meta, RawMetadata: raw, Config: map[string]string{}}, nil
}

// LoadView returns the view's current metadata.
func (s *Service) LoadView(ctx context.Context, id Ident) (*View, error) {
	if err := ValidateIdent(id); err != nil {
		return nil, err
	}
	e, err := s.loadEntry(ctx, KindView, id)
	if err != nil {
		return nil, err
	}
	return s.viewAt(ctx, id, e.MetadataLocation)
}

// ViewExists reports whether id names a view.
func (s *Service) ViewExists(ctx context.Context, id Ident) error {
	if err := ValidateIdent(id); err != nil {
		return err
	}
	_, err := s.loadEntry(ctx, KindView, id)
	return err
}

// ListViews lists the views of ns.
func (s *Service) ListViews(ctx context.Context, ns Namespace, pageToken string, pageSize int) (Page[Ident], error) {
	return s.list(ctx, KindView, ns, pageToken, pageSize)
}

// CreateView creates a view whose current version is req.Version over
// req.Schema.
func (s *Service) CreateView(ctx context.Context, req CreateViewRequest, idem *Idempotency) (*View, error) {
	if err := ValidateIdent(req.Ident); err != nil {
		return nil, err
	}
	if req.Schema == nil || req.Version == nil {
		return nil, fmt.Errorf("%w: a view needs a schema and a view-version", ErrInvalid)
	}
	if err := s.replay(ctx, idem); err != nil {
		return nil, err
	}
	if err := s.checkFreeFor(ctx, KindView, req.Ident); err != nil {
		return nil, err
	}
	loc := strings.TrimSuffix(req.Location, "/")
	if loc == "" {
		loc = s.defaultLocation(req.Ident)
	}
	b, err := view.NewMetadataBuilder()
	if err != nil {
		return nil, err
	}
	b.SetLoc(loc).SetProperties(iceberg.Properties(maps.Clone(req.Properties))).SetCurrentVersion(req.Version, req.Schema)
	built, err := b.Build()
	if err != nil {
		return nil, errorf(ErrIllegalArgument, "%s", err)
	}
	meta := built.Metadata
	metaLoc := viewMetadataLocation(meta, 0)
	place, err := s.placeView(meta, metaLoc)
	if err != nil {
		return nil, err
	}
	raw, err := s.writeView(ctx, metaLoc, meta)
	if err != nil {
		return nil, err
	}
	res := &View{Ident: req.Ident, MetadataLocation: metaLoc, Metadata: meta, RawMetadata: raw, Config: map[string]string{}}
	if err := s.createEntry(ctx, idem, req.Ident, place, entryOf(KindView, metaLoc, place, meta.ViewUUID().String()), true, res); err != nil {
		return nil, err
	}
	return res, nil
}

// ReplaceView commits requirements and updates to a view.
func (s *Service) ReplaceView(ctx context.Context, ch ViewChange, idem *Idempotency) (_ *View, err error) {
	defer func() { s.metrics.commits.WithLabelValues(commitOutcome(err)).Inc() }()
	if err := ValidateIdent(ch.Ident); err != nil {
		return nil, err
	}
	if err := s.replay(ctx, idem); err != nil {
		return nil, err
	}
	base, err := s.loadEntry(ctx, KindView, ch.Ident)
	if err != nil {
		return nil, err
	}
	cur, curRaw, err := s.readView(ctx, base.MetadataLocation)
	if err != nil {
		return nil, err
	}
	for _, r := range ch.Requirements {
		if r == nil {
			return nil, fmt.Errorf("%w: null requirement", ErrInvalid)
		}
		if err := r.Validate(cur); err != nil {
			return nil, requirementFailed(r.GetType(), err)
		}
	}
	if len(ch.Updates) == 0 {
		return &View{Ident: ch.Ident, MetadataLocation: base.MetadataLocation, Metadata: cur, RawMetadata: curRaw, Config: map[string]string{}}, nil
	}
	b, err := view.MetadataBuilderFromBase(cur)
	if err != nil {
		return nil, err
	}
	for _, u := range ch.Updates {
		if u == nil {
			return nil, fmt.Errorf("%w: null update", ErrInvalid)
		}
		if err := u.Apply(b); err != nil {
			return nil, errorf(ErrIllegalArgument, "%s", err)
		}
	}
	built, err := b.Build()
	if err != nil {
		return nil, errorf(ErrIllegalArgument, "%s", err)
	}
	meta := built.Metadata
	next := viewMetadataLocation(meta, metadataVersion(base.MetadataLocation)+1)
	place, err := s.placeView(meta, next)
	if err != nil {
		return nil, err
	}
	raw, err := s.writeView(ctx, next, meta)
	if err != nil {
		return nil, err
	}
	res := &View{Ident: ch.Ident, MetadataLocation: next, Metadata: meta, RawMetadata: raw, Config: map[string]string{}}
	entry := entryOf(KindView, next, place, meta.ViewUUID().String())
	err = s.update(ctx, idem, func(tx Tx) (any, error) {
		if entry.Location != base.Location {
			if err := s.checkNotNamespaceDir(tx, place); err != nil {
				return nil, err
			}
		}
		return res, tx.Swap(ch.Ident, base.MetadataLocation, entry)
	})
	if err != nil {
		err = commitError(err)
		s.discard(ctx, []string{next}, err)
		return nil, err
	}
	s.changed(ch.Ident)
	return res, nil
}

// DropView removes a view and, unless its gc.enabled property is false,
// its current metadata file.
func (s *Service) DropView(ctx context.Context, id Ident, idem *Idempotency) error {
	if err := ValidateIdent(id); err != nil {
		return err
	}
	var dropped Entry
	err := s.update(ctx, idem, func(tx Tx) (any, error) {
		var err error
		dropped, err = tx.Drop(KindView, id)
		return nil, err
	})
	if err != nil {
		return err
	}
	s.changed(id)
	meta, _, err := s.readView(ctx, dropped.MetadataLocation)
	if err != nil {
		s.log.Warn("dropped view: cannot read its metadata to delete it", "view", id, "err", err)
		return nil
	}
	if !meta.Properties().GetBool(gcEnabledKey, true) || warehouse.CheckInTable(meta.Location(), dropped.MetadataLocation) != nil {
		return nil
	}
	s.forget(dropped.MetadataLocation)
	if err := s.wh.Delete(context.WithoutCancel(ctx), []string{dropped.MetadataLocation}); err != nil {
		s.log.Warn("dropped view: cannot delete its metadata file", "view", id, "file", dropped.MetadataLocation, "err", err)
	}
	return nil
}

// RenameView moves a view to a new identifier.
func (s *Service) RenameView(ctx context.Context, from, to Ident, idem *Idempotency) error {
	return s.rename(ctx, KindView, from, to, idem)
}

// RegisterView creates a view pointing at an existing view metadata file,
// which must lie inside its view location; the location and UUID must be
// free, as for a created view.
func (s *Service) RegisterView(ctx context.Context, id Ident, metadataLocation string, idem *Idempotency) (*View, error) {
	if err := ValidateIdent(id); err != nil {
		return nil, err
	}
	if !s.inRoots(metadataLocation) {
		return nil, fmt.Errorf("%w: metadata location %q is not inside the warehouse %s or an allowed location", ErrInvalid, metadataLocation, s.wh.Root())
	}
	if err := s.replay(ctx, idem); err != nil {
		return nil, err
	}
	if err := s.checkFreeFor(ctx, KindView, id); err != nil {
		return nil, err
	}
	meta, raw, err := s.readView(ctx, metadataLocation)
	if err != nil {
		if errors.Is(err, ErrUnavailable) {
			return nil, err
		}
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	place, err := s.placeView(meta, metadataLocation)
	if err != nil {
		return nil, err
	}
	res := &View{Ident: id, MetadataLocation: metadataLocation, Metadata: meta, RawMetadata: raw, Config: map[string]string{}}
	if err := s.createEntry(ctx, idem, id, place, entryOf(KindView, metadataLocation, place, meta.ViewUUID().String()), false, res); err != nil {
		return nil, err
	}
	return res, nil
}
