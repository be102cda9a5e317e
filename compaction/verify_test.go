package compaction

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
	"github.com/apache/iceberg-go"
	icebergio "github.com/apache/iceberg-go/io"
)

// dataFile describes a Parquet file of rows rows and size bytes, with
// value and null counts for field 1 when values >= 0.
func dataFile(t *testing.T, path string, rows, size, values, nulls int64) iceberg.DataFile {
	t.Helper()
	b, err := iceberg.NewDataFileBuilder(*iceberg.UnpartitionedSpec, iceberg.EntryContentData, path, iceberg.ParquetFile, nil, nil, nil, rows, size)
	if err != nil {
		t.Fatal(err)
	}
	if values >= 0 {
		b.ValueCounts(map[int]int64{1: values}).NullValueCounts(map[int]int64{1: nulls})
	}
	return b.Build()
}

// writeParquet writes rows rows of one nullable int64 column (every
// third null) through a summingIO and returns the file's path, its fileSum
// and the record written.
func writeParquet(t *testing.T, rows int) (string, fileSum, arrow.RecordBatch) {
	t.Helper()
	sc := arrow.NewSchema([]arrow.Field{{Name: "n", Type: arrow.PrimitiveTypes.Int64, Nullable: true}}, nil)
	b := array.NewRecordBuilder(memory.DefaultAllocator, sc)
	defer b.Release()
	for i := range rows {
		if i%3 == 0 {
			b.Field(0).AppendNull()
		} else {
			b.Field(0).(*array.Int64Builder).Append(int64(i))
		}
	}
	rec := b.NewRecordBatch()
	t.Cleanup(rec.Release)

	var sums written
	fsF := sums.fs(func(context.Context) (icebergio.IO, error) { return icebergio.LocalFS{}, nil })
	fsys, err := fsF(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "out.parquet")
	fw, err := fsys.(icebergio.WriteFileIO).Create(path)
	if err != nil {
		t.Fatal(err)
	}
	pw, err := pqarrow.NewFileWriter(sc, fw, nil, pqarrow.DefaultWriterProps())
	if err != nil {
		t.Fatal(err)
	}
	if err := pw.Write(rec); err != nil {
		t.Fatal(err)
	}
	if err := pw.Close(); err != nil { // closes fw
		t.Fatal(err)
	}
	sum, ok := sums.sum(path)
	if !ok {
		t.Fatal("the summing FileIO did not record the file it wrote")
	}
	return path, sum, rec
}

func TestVerifyStored(t *testing.T) {
	tests := []struct {
		name string
		// change the file on storage, the recorded sum or the data file.
		damage func(t *testing.T, path string, sum *fileSum, rows, size *int64)
		ok     bool
	}{
		{"intact", func(*testing.T, string, *fileSum, *int64, *int64) {}, true},
		{"flipped byte on storage", func(t *testing.T, path string, _ *fileSum, _, _ *int64) {
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			b[len(b)/3] ^= 0x20
			if err := os.WriteFile(path, b, 0o644); err != nil {
				t.Fatal(err)
			}
		}, false},
		{"short on storage", func(t *testing.T, path string, sum *fileSum, _, _ *int64) {
			if err := os.Truncate(path, sum.size-10); err != nil {
				t.Fatal(err)
			}
		}, false},
		{"longer on storage", func(t *testing.T, path string, _ *fileSum, _, _ *int64) {
			f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if _, err := f.Write([]byte("PAR1")); err != nil {
				t.Fatal(err)
			}
		}, false},
		{"data file says another size", func(_ *testing.T, _ string, _ *fileSum, _, size *int64) { *size++ }, false},
		{"footer counts other rows than the data file", func(_ *testing.T, _ string, _ *fileSum, rows, _ *int64) { *rows-- }, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path, sum, rec := writeParquet(t, 1000)
			rows, size := rec.NumRows(), sum.size
			tc.damage(t, path, &sum, &rows, &size)
			_, err := verifyStored(icebergio.LocalFS{}, dataFile(t, path, rows, size, -1, 0), sum, &rowHasher{})
			if tc.ok && err != nil {
				t.Errorf("verifyStored: %v, want nil", err)
			}
			if !tc.ok && !errors.Is(err, errStored) {
				t.Errorf("verifyStored: %v, want errStored", err)
			}
		})
	}
}

func TestVerifyStoredMissingFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "gone.parquet")
	_, err := verifyStored(icebergio.LocalFS{}, dataFile(t, path, 1, 10, -1, 0), fileSum{size: 10}, &rowHasher{})
	if err == nil || errors.Is(err, errStored) {
		t.Errorf("verifyStored of a missing file: %v, want a read error that is not errStored", err)
	}
}

func TestTallyCheck(t *testing.T) {
	schema := iceberg.NewSchema(0,
		iceberg.NestedField{ID: 1, Name: "n", Type: iceberg.PrimitiveTypes.Int64},
		iceberg.NestedField{ID: 2, Name: "s", Type: &iceberg.StructType{FieldList: []iceberg.NestedField{
			{ID: 3, Name: "x", Type: iceberg.PrimitiveTypes.Int32},
		}}},
	)
	_, _, rec := writeParquet(t, 300) // 300 rows, 100 of them null
	in := newTally(schema, rec.Schema())
	in.add(rec)
	if in.rows != 300 || in.nulls[1] != 100 {
		t.Fatalf("tally: %d rows, %v nulls, want 300 rows and 100 nulls in field 1", in.rows, in.nulls)
	}

	tests := []struct {
		name  string
		files []iceberg.DataFile
		ok    bool
	}{
		{"same", []iceberg.DataFile{dataFile(t, "a", 200, 1, 200, 60), dataFile(t, "b", 100, 1, 100, 40)}, true},
		{"no metrics for the column", []iceberg.DataFile{dataFile(t, "a", 200, 1, 200, 60), dataFile(t, "b", 100, 1, -1, 0)}, true},
		{"a row missing", []iceberg.DataFile{dataFile(t, "a", 200, 1, 200, 60), dataFile(t, "b", 99, 1, 99, 40)}, false},
		{"a row too many", []iceberg.DataFile{dataFile(t, "a", 301, 1, 301, 100)}, false},
		{"a value became null", []iceberg.DataFile{dataFile(t, "a", 300, 1, 300, 101)}, false},
		{"a value missing from the column", []iceberg.DataFile{dataFile(t, "a", 300, 1, 299, 100)}, false},
	}
	for _, tc := range tests {
		if err := in.check(tc.files); (err == nil) != tc.ok {
			t.Errorf("%s: check: %v, want ok %v", tc.name, err, tc.ok)
		}
	}
}
