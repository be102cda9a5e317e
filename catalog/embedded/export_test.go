package embedded

import (
	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// SetFormat overwrites the layout version of the store in dir.
func SetFormat(fs vfs.FS, dir, version string) error {
	db, err := pebble.Open(dir, &pebble.Options{FS: fs, FormatMajorVersion: pebble.FormatNewest})
	if err != nil {
		return err
	}
	if err := db.Set(formatKey, []byte(version), pebble.Sync); err != nil {
		db.Close()
		return err
	}
	return db.Close()
}
