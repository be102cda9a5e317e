package pebblefmt

import (
	"strings"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
)

func TestCheck(t *testing.T) {
	open := func(t *testing.T) *pebble.DB {
		db, err := pebble.Open("", &pebble.Options{FS: vfs.NewMem()})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return db
	}
	key := []byte("\x00format")
	tests := []struct {
		name    string
		prepare func(db *pebble.DB)
		want    string // "" = accepted
	}{
		{"empty database is stamped", func(*pebble.DB) {}, ""},
		{"same version", func(db *pebble.DB) { _ = db.Set(key, []byte("1"), nil) }, ""},
		{"other version", func(db *pebble.DB) { _ = db.Set(key, []byte("2"), nil) }, `unsupported thing format "2"`},
		{"foreign data", func(db *pebble.DB) { _ = db.Set([]byte("x"), []byte("y"), nil) }, "not a thing"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			db := open(t)
			tc.prepare(db)
			err := Check(db, key, []byte("1"), "thing")
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				v, closer, err := db.Get(key)
				if err != nil || string(v) != "1" {
					t.Fatalf("after Check the version is %q, %v", v, err)
				}
				closer.Close()
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want one containing %q", err, tc.want)
			}
		})
	}
}
