package compaction

import (
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"sync"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/iceberg-go"
	icebergio "github.com/apache/iceberg-go/io"
	"github.com/apache/iceberg-go/table"
)

// A rewrite is verified before its replace snapshot is committed:
//
//   - rows: the rows handed to the writer, the record counts the writer
//     took from the footers it wrote, and the row counts in the footers of
//     the files as stored all agree;
//   - columns: for each top-level primitive column, the null and value
//     counts the Parquet encoder computed from the values it encoded (the
//     data files' metrics) agree with those of the rows handed to it;
//   - bytes: each file as stored, read back in full, has the length and
//     CRC-32C of the bytes the writer produced, so a short, truncated or
//     corrupted upload is caught;
//   - content: the rows read and the rows decoded from the files as
//     stored have the same content checksum (content.go): the sum of a
//     hash of each row's values in the top-level columns Parquet stores
//     as Arrow holds them. The stored files are decoded at the Parquet
//     level, without building Arrow arrays.

// castagnoli is the CRC-32C table (hardware-accelerated on amd64 and arm64).
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// tally counts the rows handed to the writer and, by field ID, the nulls
// of each top-level primitive column.
type tally struct {
	rows  int64
	nulls map[int]int64
	ids   []int // field ID of each column of the batches; -1: not counted
}

// newTally returns a tally of batches of schema sc, read from a table of
// schema schema.
func newTally(schema *iceberg.Schema, sc *arrow.Schema) *tally {
	t := &tally{nulls: map[int]int64{}, ids: make([]int, sc.NumFields())}
	for i, f := range sc.Fields() {
		t.ids[i] = -1
		for _, field := range schema.Fields() {
			if _, prim := field.Type.(iceberg.PrimitiveType); prim && field.Name == f.Name {
				t.ids[i] = field.ID
				t.nulls[field.ID] = 0
			}
		}
	}
	return t
}

func (t *tally) add(rec arrow.RecordBatch) {
	t.rows += rec.NumRows()
	for i, col := range rec.Columns() {
		if i < len(t.ids) && t.ids[i] >= 0 {
			t.nulls[t.ids[i]] += int64(col.NullN())
		}
	}
}

// check compares the tally with the metrics of the data files written
// from its rows. A column without metrics (metrics mode none) is not
// compared.
func (t *tally) check(files []iceberg.DataFile) error {
	var rows int64
	for _, df := range files {
		rows += df.Count()
	}
	if rows != t.rows {
		return fmt.Errorf("%d rows read, the files written hold %d", t.rows, rows)
	}
	for id, want := range t.nulls {
		var nulls, values int64
		for _, df := range files {
			n, okN := df.NullValueCounts()[id]
			v, okV := df.ValueCounts()[id]
			if !okN || !okV {
				nulls, values = -1, -1
				break
			}
			nulls += n
			values += v
		}
		if nulls < 0 {
			continue
		}
		if nulls != want || values != t.rows {
			return fmt.Errorf("field %d: %d rows with %d nulls read, the files written hold %d values with %d nulls",
				id, t.rows, want, values, nulls)
		}
	}
	return nil
}

// fileSum is the length and CRC-32C of a file's bytes.
type fileSum struct {
	size int64
	crc  uint32
}

// written records the fileSum of every file written through the FileIO
// that fs returns, as the writer produced it, by path.
type written struct {
	mu    sync.Mutex
	files map[string]fileSum
}

func (w *written) fs(inner table.FSysF) table.FSysF {
	return func(ctx context.Context) (icebergio.IO, error) {
		fsys, err := inner(ctx)
		if err != nil {
			return nil, err
		}
		wfs, ok := fsys.(icebergio.WriteFileIO)
		if !ok {
			return nil, errors.New("the warehouse's FileIO cannot write files")
		}
		return summingIO{wfs, w}, nil
	}
}

func (w *written) add(path string, s fileSum) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.files == nil {
		w.files = map[string]fileSum{}
	}
	w.files[path] = s
}

func (w *written) sum(path string) (fileSum, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	s, ok := w.files[path]
	return s, ok
}

// summingIO is a FileIO whose writers record what they wrote in files.
type summingIO struct {
	icebergio.WriteFileIO
	files *written
}

func (s summingIO) Create(name string) (icebergio.FileWriter, error) {
	fw, err := s.WriteFileIO.Create(name)
	if err != nil {
		return nil, err
	}
	return &summingWriter{fw: fw, name: name, files: s.files}, nil
}

func (s summingIO) WriteFile(name string, p []byte) error {
	if err := s.WriteFileIO.WriteFile(name, p); err != nil {
		return err
	}
	s.files.add(name, fileSum{size: int64(len(p)), crc: crc32.Checksum(p, castagnoli)})
	return nil
}

type summingWriter struct {
	fw    icebergio.FileWriter
	name  string
	files *written
	sum   fileSum
}

func (w *summingWriter) Write(p []byte) (int, error) {
	n, err := w.fw.Write(p)
	w.sum.crc = crc32.Update(w.sum.crc, castagnoli, p[:n])
	w.sum.size += int64(n)
	return n, err
}

func (w *summingWriter) ReadFrom(r io.Reader) (int64, error) {
	return io.Copy(struct{ io.Writer }{w}, r)
}

// Close closes the file; only a file closed without error is recorded.
func (w *summingWriter) Close() error {
	if err := w.fw.Close(); err != nil {
		return err
	}
	w.files.add(w.name, w.sum)
	return nil
}

// errStored: a file as stored differs from what was written.
var errStored = errors.New("stored file differs from what was written")

// verifyStored reads df back from fsys: it must have the length and
// CRC-32C of want, which must be df's size, and its Parquet footer must
// count df's rows. It returns the content checksum of the file's rows
// (h). A difference, or a file that does not decode, is errStored; an
// error reading is returned as it is.
func verifyStored(fsys icebergio.IO, df iceberg.DataFile, want fileSum, h *rowHasher) (contentSum, error) {
	path := df.FilePath()
	if want.size != df.FileSizeBytes() {
		return contentSum{}, fmt.Errorf("%w: %s: %d bytes written, the data file says %d", errStored, path, want.size, df.FileSizeBytes())
	}
	f, err := fsys.Open(path)
	if err != nil {
		return contentSum{}, err
	}
	defer f.Close()
	crc := crc32.New(castagnoli)
	n, err := io.Copy(crc, f)
	if err != nil {
		return contentSum{}, fmt.Errorf("reading %s back: %w", path, err)
	}
	if n != want.size || crc.Sum32() != want.crc {
		return contentSum{}, fmt.Errorf("%w: %s: %d bytes written (CRC-32C %08x), %d stored (CRC-32C %08x)",
			errStored, path, want.size, want.crc, n, crc.Sum32())
	}
	pf, err := file.NewParquetReader(f)
	if err != nil {
		return contentSum{}, fmt.Errorf("%w: %s: %w", errStored, path, err)
	}
	var rows int64
	for i := range pf.NumRowGroups() {
		rows += pf.MetaData().RowGroup(i).NumRows()
	}
	if pf.NumRows() != df.Count() || rows != df.Count() {
		return contentSum{}, fmt.Errorf("%w: %s: its footer counts %d rows (%d in its row groups), the data file %d",
			errStored, path, pf.NumRows(), rows, df.Count())
	}
	content, err := h.file(pf)
	if err != nil {
		return contentSum{}, fmt.Errorf("%w: %s: %w", errStored, path, err)
	}
	return content, nil
}
