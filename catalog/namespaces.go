package catalog

import (
	"context"
	"encoding/base64"
	"fmt"
	"maps"
	"slices"
)

// Page is one page of a listing. Next is the token for the following page,
// empty on the last one.
type Page[T any] struct {
	Items []T
	Next  string
}

// encodeToken and decodeToken turn the last name of a page into an opaque
// page token and back.
func encodeToken(after string) string { return base64.RawURLEncoding.EncodeToString([]byte(after)) }

func decodeToken(tok string) (string, error) {
	if tok == "" {
		return "", nil
	}
	b, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil {
		return "", fmt.Errorf("%w: malformed page token", ErrInvalid)
	}
	return string(b), nil
}

// maxPageSize caps a listing page whatever the client asks for.
const maxPageSize = 1000

func pageLimit(size int) int {
	if size <= 0 || size > maxPageSize {
		return maxPageSize
	}
	return size
}

// CreateNamespace creates ns with props. Its parent must exist.
func (s *Service) CreateNamespace(ctx context.Context, ns Namespace, props map[string]string, idem *Idempotency) (map[string]string, error) {
	if err := ValidateNamespace(ns); err != nil {
		return nil, err
	}
	if props == nil {
		props = map[string]string{}
	}
	err := s.update(ctx, idem, func(tx Tx) (any, error) {
		if len(ns) > 1 {
			if _, err := tx.LoadNamespace(ns[:len(ns)-1]); err != nil {
				return nil, fmt.Errorf("parent of %s: %w", ns, err)
			}
		}
		if err := tx.CreateNamespace(ns, props); err != nil {
			return nil, err
		}
		return props, nil
	})
	if err != nil {
		return nil, err
	}
	return props, nil
}

// LoadNamespace returns ns's properties.
func (s *Service) LoadNamespace(ctx context.Context, ns Namespace) (map[string]string, error) {
	if err := ValidateNamespace(ns); err != nil {
		return nil, err
	}
	var props map[string]string
	err := s.store.View(ctx, func(tx Tx) error {
		var err error
		props, err = tx.LoadNamespace(ns)
		return err
	})
	if err != nil {
		return nil, err
	}
	if _, ok := props[NamespaceLocationProperty]; !ok {
		props = maps.Clone(props)
		if props == nil {
			props = map[string]string{}
		}
		props[NamespaceLocationProperty] = s.namespaceLocation(ns)
	}
	return props, nil
}

// NamespaceLocationProperty is the namespace property that tells clients
// where the namespace's tables go. A namespace without one is answered
// with the directory the catalog puts its tables under
// (<warehouse>/<namespace levels>); nothing is stored. Trino needs it: for
// a namespace without a location it creates the table eagerly and then
// refuses it for having files (its own metadata) at its location.
const NamespaceLocationProperty = "location"

// ListNamespaces lists the direct children of parent (top-level namespaces
// for an empty parent). A non-empty parent must exist.
func (s *Service) ListNamespaces(ctx context.Context, parent Namespace, pageToken string, pageSize int) (Page[Namespace], error) {
	if len(parent) > 0 {
		if err := ValidateNamespace(parent); err != nil {
			return Page[Namespace]{}, err
		}
	}
	after, err := decodeToken(pageToken)
	if err != nil {
		return Page[Namespace]{}, err
	}
	limit := pageLimit(pageSize)
	var page Page[Namespace]
	err = s.store.View(ctx, func(tx Tx) error {
		if len(parent) > 0 {
			if _, err := tx.LoadNamespace(parent); err != nil {
				return err
			}
		}
		items, err := tx.ListNamespaces(parent, after, limit+1)
		if err != nil {
			return err
		}
		page = Page[Namespace]{Items: items}
		if len(items) > limit {
			page.Items = items[:limit]
			page.Next = encodeToken(items[limit-1].String())
		}
		return nil
	})
	return page, err
}

// PropertiesUpdate reports what UpdateNamespaceProperties did.
type PropertiesUpdate struct {
	Updated []string
	Removed []string
	// Missing are removals of keys that were not set.
	Missing []string
}

// UpdateNamespaceProperties removes and sets properties atomically. A key
// may not be both removed and set.
func (s *Service) UpdateNamespaceProperties(ctx context.Context, ns Namespace, removals []string, updates map[string]string, idem *Idempotency) (PropertiesUpdate, error) {
	if err := ValidateNamespace(ns); err != nil {
		return PropertiesUpdate{}, err
	}
	for _, k := range removals {
		if _, ok := updates[k]; ok {
			return PropertiesUpdate{}, fmt.Errorf("%w: property %q is both removed and updated", ErrUnprocessable, k)
		}
	}
	var res PropertiesUpdate
	err := s.update(ctx, idem, func(tx Tx) (any, error) {
		props, err := tx.LoadNamespace(ns)
		if err != nil {
			return nil, err
		}
		next := maps.Clone(props)
		res = PropertiesUpdate{Updated: []string{}, Removed: []string{}, Missing: []string{}}
		for _, k := range removals {
			if _, ok := next[k]; ok {
				delete(next, k)
				res.Removed = append(res.Removed, k)
			} else {
				res.Missing = append(res.Missing, k)
			}
		}
		for k, v := range updates {
			next[k] = v
			res.Updated = append(res.Updated, k)
		}
		slices.Sort(res.Updated)
		if err := tx.SetNamespaceProperties(ns, next); err != nil {
			return nil, err
		}
		return res, nil
	})
	return res, err
}

// DropNamespace removes an empty namespace.
func (s *Service) DropNamespace(ctx context.Context, ns Namespace, idem *Idempotency) error {
	if err := ValidateNamespace(ns); err != nil {
		return err
	}
	return s.update(ctx, idem, func(tx Tx) (any, error) { return nil, tx.DropNamespace(ns) })
}
