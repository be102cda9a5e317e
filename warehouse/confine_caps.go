package warehouse

import (
	"context"
	"fmt"
	"io/fs"

	icebergio "github.com/apache/iceberg-go/io"
)

// The optional FileIO interfaces a confined FileIO may expose, as method
// sets without icebergio.IO so that they can be embedded side by side.
type (
	readFiler interface {
		ReadFile(name string) ([]byte, error)
	}
	fileWriter interface {
		Create(name string) (icebergio.FileWriter, error)
		WriteFile(name string, p []byte) error
	}
	walker interface {
		WalkDir(root string, fn fs.WalkDirFunc) error
	}
	bulkRemover interface {
		DeleteFiles(ctx context.Context, paths []string) ([]string, error)
	}
	stater interface {
		Stat(name string) (fs.FileInfo, error)
	}
	fullIO interface {
		icebergio.IO
		readFiler
		fileWriter
		walker
		bulkRemover
		stater
	}
)

const (
	capReadFile = 1 << iota
	capWriteFile
	capListable
	capBulkRemovable
	capStat
)

// capsOf returns the optional interfaces fsys implements.
func capsOf(fsys icebergio.IO) int {
	var mask int
	if _, ok := fsys.(icebergio.ReadFileIO); ok {
		mask |= capReadFile
	}
	if _, ok := fsys.(icebergio.WriteFileIO); ok {
		mask |= capWriteFile
	}
	if _, ok := fsys.(icebergio.ListableIO); ok {
		mask |= capListable
	}
	if _, ok := fsys.(icebergio.BulkRemovableIO); ok {
		mask |= capBulkRemovable
	}
	if _, ok := fsys.(icebergio.StatIO); ok {
		mask |= capStat
	}
	return mask
}

// expose returns c as a value whose method set is icebergio.IO plus the
// interfaces in mask: one struct type per combination, since a method set
// is fixed at compile time.
func expose[T fullIO](c T, mask int) icebergio.IO {
	switch mask {
	case 0:
		return struct{ icebergio.IO }{c}
	case 1:
		return struct {
			icebergio.IO
			readFiler
		}{c, c}
	case 2:
		return struct {
			icebergio.IO
			fileWriter
		}{c, c}
	case 3:
		return struct {
			icebergio.IO
			readFiler
			fileWriter
		}{c, c, c}
	case 4:
		return struct {
			icebergio.IO
			walker
		}{c, c}
	case 5:
		return struct {
			icebergio.IO
			readFiler
			walker
		}{c, c, c}
	case 6:
		return struct {
			icebergio.IO
			fileWriter
			walker
		}{c, c, c}
	case 7:
		return struct {
			icebergio.IO
			readFiler
			fileWriter
			walker
		}{c, c, c, c}
	case 8:
		return struct {
			icebergio.IO
			bulkRemover
		}{c, c}
	case 9:
		return struct {
			icebergio.IO
			readFiler
			bulkRemover
		}{c, c, c}
	case 10:
		return struct {
			icebergio.IO
			fileWriter
			bulkRemover
		}{c, c, c}
	case 11:
		return struct {
			icebergio.IO
			readFiler
			fileWriter
			bulkRemover
		}{c, c, c, c}
	case 12:
		return struct {
			icebergio.IO
			walker
			bulkRemover
		}{c, c, c}
	case 13:
		return struct {
			icebergio.IO
			readFiler
			walker
			bulkRemover
		}{c, c, c, c}
	case 14:
		return struct {
			icebergio.IO
			fileWriter
			walker
			bulkRemover
		}{c, c, c, c}
	case 15:
		return struct {
			icebergio.IO
			readFiler
			fileWriter
			walker
			bulkRemover
		}{c, c, c, c, c}
	case 16:
		return struct {
			icebergio.IO
			stater
		}{c, c}
	case 17:
		return struct {
			icebergio.IO
			readFiler
			stater
		}{c, c, c}
	case 18:
		return struct {
			icebergio.IO
			fileWriter
			stater
		}{c, c, c}
	case 19:
		return struct {
			icebergio.IO
			readFiler
			fileWriter
			stater
		}{c, c, c, c}
	case 20:
		return struct {
			icebergio.IO
			walker
			stater
		}{c, c, c}
	case 21:
		return struct {
			icebergio.IO
			readFiler
			walker
			stater
		}{c, c, c, c}
	case 22:
		return struct {
			icebergio.IO
			fileWriter
			walker
			stater
		}{c, c, c, c}
	case 23:
		return struct {
			icebergio.IO
			readFiler
			fileWriter
			walker
			stater
		}{c, c, c, c, c}
	case 24:
		return struct {
			icebergio.IO
			bulkRemover
			stater
		}{c, c, c}
	case 25:
		return struct {
			icebergio.IO
			readFiler
			bulkRemover
			stater
		}{c, c, c, c}
	case 26:
		return struct {
			icebergio.IO
			fileWriter
			bulkRemover
			stater
		}{c, c, c, c}
	case 27:
		return struct {
			icebergio.IO
			readFiler
			fileWriter
			bulkRemover
			stater
		}{c, c, c, c, c}
	case 28:
		return struct {
			icebergio.IO
			walker
			bulkRemover
			stater
		}{c, c, c, c}
	case 29:
		return struct {
			icebergio.IO
			readFiler
			walker
			bulkRemover
			stater
		}{c, c, c, c, c}
	case 30:
		return struct {
			icebergio.IO
			fileWriter
			walker
			bulkRemover
			stater
		}{c, c, c, c, c}
	case 31:
		return struct {
			icebergio.IO
			readFiler
			fileWriter
			walker
			bulkRemover
			stater
		}{c, c, c, c, c, c}
	}
	panic(fmt.Sprintf("warehouse: no FileIO with capabilities %#x", mask))
}
