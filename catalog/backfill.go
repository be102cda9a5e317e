package catalog

import (
	"context"
	"errors"
	"fmt"
)

// Backfill gives every entry written before stores kept locations and
// UUIDs (Zombi 0.1's, and Postgres rows from before migration 0003) its
// location and UUID, read from its metadata file, so that the overlap and
// UUID checks see it. It returns how many entries it filled. An entry
// whose location cannot be given (its metadata is unreadable, or another
// entry already holds an overlapping location) is logged and left; it
// keeps working, but other entries are not checked against it.
func (s *Service) Backfill(ctx context.Context) (int, error) {
	filled := 0
	var walk func(parent Namespace) error
	walk = func(parent Namespace) error {
		var children []Namespace
		err := s.store.View(ctx, func(tx Tx) error {
			var err error
			children, err = tx.ListNamespaces(parent, "", 0)
			return err
		})
		if err != nil {
			return err
		}
		for _, ns := range children {
			for _, kind := range []Kind{KindTable, KindView} {
				n, err := s.backfillNamespace(ctx, kind, ns)
				filled += n
				if err != nil {
					return err
				}
			}
			if err := walk(ns); err != nil {
				return err
			}
		}
		return nil
	}
	return filled, walk(nil)
}

func (s *Service) backfillNamespace(ctx context.Context, kind Kind, ns Namespace) (int, error) {
	var stale []Owner
	err := s.store.View(ctx, func(tx Tx) error {
		ids, err := tx.List(kind, ns, "", 0)
		if err != nil {
			return err
		}
		for _, id := range ids {
			e, err := tx.Load(kind, id)
			if err != nil {
				return err
			}
			if e.Location == "" || e.UUID == "" {
				stale = append(stale, Owner{Ident: id, Entry: e})
			}
		}
		return nil
	})
	if errors.Is(err, ErrNoSuchNamespace) {
		return 0, nil // dropped meanwhile
	}
	if err != nil {
		return 0, err
	}
	filled := 0
	for _, o := range stale {
		next, err := s.filledEntry(ctx, o.Entry)
		if err == nil {
			err = s.store.Update(ctx, func(tx Tx) error { return tx.Swap(o.Ident, o.Entry.MetadataLocation, next) })
		}
		switch {
		case err == nil:
			filled++
		case errors.Is(err, ErrCommitFailed), errors.Is(err, ErrNoSuchTable), errors.Is(err, ErrNoSuchView):
			// Committed or dropped meanwhile: a commit fills it.
		case errors.Is(err, ErrUnavailable), ctx.Err() != nil:
			return filled, err
		default:
			s.log.Warn("cannot record the location of a "+o.Entry.Kind.String()+"; other tables are not checked against it",
				"name", o.Ident, "metadata", o.Entry.MetadataLocation, "err", err)
		}
	}
	return filled, nil
}

// filledEntry is e with the location and UUID of its metadata file.
func (s *Service) filledEntry(ctx context.Context, e Entry) (Entry, error) {
	var loc, uuid string
	switch e.Kind {
	case KindTable:
		m, err := s.readMetadata(ctx, e.MetadataLocation)
		if err != nil {
			return Entry{}, err
		}
		loc, uuid = m.meta.Location(), m.meta.TableUUID().String()
	case KindView:
		meta, _, err := s.readView(ctx, e.MetadataLocation)
		if err != nil {
			return Entry{}, err
		}
		loc, uuid = meta.Location(), meta.ViewUUID().String()
	default:
		return Entry{}, fmt.Errorf("%w: entry kind %d", ErrInvalid, e.Kind)
	}
	place, err := s.place(e.Kind.String()+" location", loc)
	if err != nil {
		return Entry{}, err
	}
	return entryOf(e.Kind, e.MetadataLocation, place, uuid), nil
}
