package flusher

import (
	"context"
	"errors"
	"fmt"

	"github.com/zombi-db/zombi/catalog"
)

// resolve returns the catalog table whose UUID is key: the hinted
// identifier when it still names that table, else the one in the hot
// tier's label, else whichever table a walk of the whole catalog finds
// (after a rename). errTableGone means no table has the UUID any more.
func (f *Flusher) resolve(ctx context.Context, key string, hint catalog.Ident, hinted bool) (*catalog.Table, error) {
	try := func(id catalog.Ident) (*catalog.Table, bool, error) {
		t, err := f.cat.LoadTable(ctx, id)
		switch {
		case errors.Is(err, catalog.ErrNoSuchTable), errors.Is(err, catalog.ErrNoSuchNamespace):
			return nil, false, nil
		case err != nil:
			return nil, false, err
		}
		return t, t.Metadata.TableUUID().String() == key, nil
	}
	if hint.Name != "" {
		t, ok, err := try(hint)
		if err != nil || ok {
			return t, err
		}
		if hinted {
			f.log.Info("table moved; looking for it", "key", key, "was", hint.String())
		}
	}
	label, err := f.hot.Label(key)
	if err != nil {
		return nil, err
	}
	if id, ok := parseLabel(label); ok && id.String() != hint.String() {
		t, ok, err := try(id)
		if err != nil || ok {
			return t, err
		}
	}
	t, err := f.find(ctx, key, nil)
	if err != nil {
		return nil, err
	}
	if t == nil {
		return nil, fmt.Errorf("%w: no table has UUID %s", errTableGone, key)
	}
	if err := f.hot.SetLabel(key, Label(t.Ident)); err != nil {
		f.log.Warn("recording the table of hot events", "key", key, "err", err)
	}
	return t, nil
}

// find walks the namespaces under parent for the table with UUID key.
func (f *Flusher) find(ctx context.Context, key string, parent catalog.Namespace) (*catalog.Table, error) {
	if len(parent) > 0 {
		for token := ""; ; {
			page, err := f.cat.ListTables(ctx, parent, token, 1000)
			if err != nil {
				return nil, err
			}
			for _, id := range page.Items {
				t, err := f.cat.LoadTable(ctx, id)
				if errors.Is(err, catalog.ErrNoSuchTable) {
					continue
				}
				if err != nil {
					return nil, err
				}
				if t.Metadata.TableUUID().String() == key {
					return t, nil
				}
			}
			if token = page.Next; token == "" {
				break
			}
		}
	}
	for token := ""; ; {
		page, err := f.cat.ListNamespaces(ctx, parent, token, 1000)
		if err != nil {
			return nil, err
		}
		for _, ns := range page.Items {
			t, err := f.find(ctx, key, ns)
			if err != nil || t != nil {
				return t, err
			}
		}
		if token = page.Next; token == "" {
			return nil, nil
		}
	}
}
