package warehouse

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"

	icebergio "github.com/apache/iceberg-go/io"
	"github.com/zombi-db/zombi/internal/location"
)

// ErrOutsideTable is the error, inside a *fs.PathError naming the file, of
// every operation of a [Confine]d FileIO on a file that is not inside the
// table's location. The message names the file and the table location,
// never anything read from a file.
var ErrOutsideTable = errors.New("not inside the table location")

// CheckInTable returns nil if file lies strictly inside tableLocation, and
// otherwise an error wrapping ErrOutsideTable that names both. Both are
// compared in their canonical spelling (see internal/location): a file the
// location package cannot read safely ("..", "%2e%2e", a query, ...) is
// inside nothing.
func CheckInTable(tableLocation, file string) error {
	c := newConfined(nil, tableLocation)
	_, err := c.check("check", file)
	return err
}

// Confine returns a FileIO that does what fsys does for the files strictly
// inside tableLocation and refuses, with ErrOutsideTable, every other path,
// checking each one when it is used: Open, ReadFile, Stat, Create,
// WriteFile, Remove, DeleteFiles and WalkDir's root. A WalkDir also fails
// (before fn sees anything more) when it meets a file outside the location
// or the metadata of another table nested in it (a "metadata" directory
// below the table's own holding a *.metadata.json or version-hint.text),
// so that orphan cleanup of a table whose location holds other tables
// deletes nothing. Removing a local file also resolves the symbolic links
// of its directory, so that a link cannot lead a deletion out of the table.
//
// The result implements exactly those of icebergio.ReadFileIO, WriteFileIO,
// ListableIO, BulkRemovableIO and StatIO that fsys implements: iceberg-go
// chooses its code paths by these type assertions (bulk deletes, listing,
// stat-before-open), and hiding or adding one would change what it does.
// RenameIO, RenameNoReplaceIO, RemoveAllIO and MkdirAllIO are not
// forwarded: iceberg-go v0.7 does not use them, and a recursive RemoveAll
// cannot be confined file by file. Files and writers are fsys's own (an
// AbortableWriter stays one).
func Confine(fsys icebergio.IO, tableLocation string) icebergio.IO {
	return expose(newConfined(fsys, tableLocation), capsOf(fsys))
}

// ConfineF is Confine for a FileIO factory such as [Warehouse.FS] or
// iceberg-go's table.FSysF, to which its result can be assigned.
func ConfineF(fsF func(context.Context) (icebergio.IO, error), tableLocation string) func(context.Context) (icebergio.IO, error) {
	return func(ctx context.Context) (icebergio.IO, error) {
		fsys, err := fsF(ctx)
		if err != nil {
			return nil, err
		}
		return Confine(fsys, tableLocation), nil
	}
}

// confined implements every method; expose hands out a value with only the
// ones the inner FileIO has.
type confined struct {
	fsys  icebergio.IO
	table location.Location
	err   error // why tableLocation cannot be read, if it cannot
}

func newConfined(fsys icebergio.IO, tableLocation string) *confined {
	c := &confined{fsys: fsys}
	c.table, c.err = location.Parse(tableLocation)
	return c
}

// outside is the error of op on name.
func (c *confined) outside(op, name, why string) error {
	var err error
	switch {
	case c.err != nil:
		err = fmt.Errorf("%w (%v)", ErrOutsideTable, c.err)
	case why != "":
		err = fmt.Errorf("%w %s: %s", ErrOutsideTable, c.table, why)
	default:
		err = fmt.Errorf("%w %s", ErrOutsideTable, c.table)
	}
	return &fs.PathError{Op: op, Path: name, Err: err}
}

// check returns the location of name if it lies strictly inside the table.
func (c *confined) check(op, name string) (location.Location, error) {
	if c.err != nil {
		return location.Location{}, c.outside(op, name, "")
	}
	f, err := location.Parse(name)
	if err != nil {
		return location.Location{}, c.outside(op, name, err.Error())
	}
	if !c.table.Below(f) {
		return location.Location{}, c.outside(op, name, "")
	}
	return f, nil
}

// checkRemove is check for a deletion: for a local file, the directory
// holding it must also be inside the table once symbolic links are
// resolved. A missing directory holds nothing to delete.
func (c *confined) checkRemove(name string) error {
	f, err := c.check("remove", name)
	if err != nil || !strings.HasPrefix(f.String(), "file://") {
		return err
	}
	dir, err := filepath.EvalSymlinks(filepath.Dir(filepath.FromSlash(f.Path())))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return &fs.PathError{Op: "remove", Path: name, Err: err}
	}
	root, err := filepath.EvalSymlinks(filepath.FromSlash(c.table.Path()))
	if err != nil {
		return &fs.PathError{Op: "remove", Path: name, Err: fmt.Errorf("resolving the table location %s: %w", c.table, err)}
	}
	r, rerr := location.Parse(filepath.ToSlash(root))
	d, derr := location.Parse(filepath.ToSlash(dir))
	if rerr != nil || derr != nil || !r.Contains(d) {
		return c.outside("remove", name, "it leaves the table through a symbolic link")
	}
	return nil
}

func (c *confined) Open(name string) (icebergio.File, error) {
	if _, err := c.check("open", name); err != nil {
		return nil, err
	}
	return c.fsys.Open(name)
}

func (c *confined) Remove(name string) error {
	if err := c.checkRemove(name); err != nil {
		return err
	}
	return c.fsys.Remove(name)
}

func (c *confined) ReadFile(name string) ([]byte, error) {
	if _, err := c.check("read", name); err != nil {
		return nil, err
	}
	return c.fsys.(icebergio.ReadFileIO).ReadFile(name)
}

func (c *confined) Stat(name string) (fs.FileInfo, error) {
	if _, err := c.check("stat", name); err != nil {
		return nil, err
	}
	return c.fsys.(icebergio.StatIO).Stat(name)
}

func (c *confined) Create(name string) (icebergio.FileWriter, error) {
	if _, err := c.check("create", name); err != nil {
		return nil, err
	}
	return c.fsys.(icebergio.WriteFileIO).Create(name)
}

func (c *confined) WriteFile(name string, p []byte) error {
	if _, err := c.check("write", name); err != nil {
		return err
	}
	return c.fsys.(icebergio.WriteFileIO).WriteFile(name, p)
}

// DeleteFiles deletes the paths inside the table with the inner FileIO's
// bulk delete and reports every other one as an error, as BulkRemovableIO
// reports the files it could not delete.
func (c *confined) DeleteFiles(ctx context.Context, paths []string) ([]string, error) {
	var errs []error
	inside := make([]string, 0, len(paths))
	for _, p := range paths {
		if err := c.checkRemove(p); err != nil {
			errs = append(errs, err)
			continue
		}
		inside = append(inside, p)
	}
	if len(inside) == 0 {
		return []string{}, errors.Join(errs...)
	}
	deleted, err := c.fsys.(icebergio.BulkRemovableIO).DeleteFiles(ctx, inside)
	return deleted, errors.Join(append(errs, err)...)
}

// WalkDir walks root, which must be the table location or inside it. It
// stops with an ErrOutsideTable error at the first entry outside the table
// or holding another table's metadata.
func (c *confined) WalkDir(root string, fn fs.WalkDirFunc) error {
	if c.err != nil {
		return c.outside("walk", root, "")
	}
	r, err := location.Parse(root)
	if err != nil {
		return c.outside("walk", root, err.Error())
	}
	if !c.table.Contains(r) {
		return c.outside("walk", root, "")
	}
	return c.fsys.(icebergio.ListableIO).WalkDir(root, func(name string, d fs.DirEntry, err error) error {
		p, perr := location.Parse(name)
		if perr != nil {
			return c.outside("walk", name, perr.Error())
		}
		if !c.table.Contains(p) {
			return c.outside("walk", name, "")
		}
		if d != nil && !d.IsDir() && c.nestedMetadata(p) {
			return c.outside("walk", name, "the metadata of another table lies inside this table's location")
		}
		return fn(name, d, err)
	})
}

// nestedMetadata reports whether f, inside the table, is a table or view
// metadata file below another directory than the table's own metadata
// directory: <table>/x/metadata/v1.metadata.json belongs to a table at
// <table>/x.
func (c *confined) nestedMetadata(f location.Location) bool {
	rel := strings.TrimPrefix(strings.TrimPrefix(f.Path(), c.table.Path()), "/")
	segs := strings.Split(rel, "/")
	if len(segs) < 3 || segs[len(segs)-2] != "metadata" {
		return false
	}
	name := segs[len(segs)-1]
	return strings.HasSuffix(name, ".metadata.json") || name == "version-hint.text"
}
