// Package pebblefmt stamps a Pebble database with the version of the key
// layout written into it, so that a store opened on a directory of another
// kind or layout refuses it instead of misreading its keys.
package pebblefmt

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble/v2"
)

// Check stores version under key in an empty database, and in a non-empty
// one requires the value at key to be version. what names the kind of
// store in errors ("hot tier", "catalog store").
func Check(db *pebble.DB, key, version []byte, what string) error {
	v, closer, err := db.Get(key)
	switch {
	case errors.Is(err, pebble.ErrNotFound):
		it, err := db.NewIter(nil)
		if err != nil {
			return err
		}
		empty := !it.First()
		if err := errors.Join(it.Error(), it.Close()); err != nil {
			return err
		}
		if !empty {
			return fmt.Errorf("not a %s: no format version", what)
		}
		return db.Set(key, version, pebble.Sync)
	case err != nil:
		return err
	}
	defer closer.Close()
	if !bytes.Equal(v, version) {
		return fmt.Errorf("unsupported %s format %q (want %q)", what, v, version)
	}
	return nil
}
