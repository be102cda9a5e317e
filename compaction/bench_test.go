package compaction_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
	"github.com/apache/iceberg-go"
	icebergio "github.com/apache/iceberg-go/io"
	"github.com/apache/iceberg-go/table"
	"github.com/zombi-db/zombi/catalog"
)

// BenchmarkCompact measures compaction throughput: an event table with
// 100-byte random payloads written by 50 flushes of 20,000 events (all in
// one hour partition) is compacted into files of the default target size.
// It reports input MB per second of wall time and per second of the
// process's CPU time (MB/s per core: the machine's other work does not
// count against it), and the memory the compaction took (see
// compactMeasured).
//
//	go test ./compaction -run '^$' -bench '^BenchmarkCompact$' -benchtime 1x -count 5
func BenchmarkCompact(b *testing.B) {
	for range b.N {
		b.StopTimer()
		e, id := smallFiles(b)
		compactMeasured(b, e, id)
	}
}

// smallFiles is BenchmarkCompact's table: 50 flushes of 20,000 events
// with 100-byte random payloads, all in one hour partition.
func smallFiles(b *testing.B) (*env, catalog.Ident) {
	e := newEnv(b, nil)
	id := ident("bench")
	at := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC).UnixMilli()
	raw := make([]byte, 50)
	for range 50 {
		var sb strings.Builder
		for range 20000 {
			rand.Read(raw)
			fmt.Fprintf(&sb, "{\"payload\":%q,\"timestamp_ms\":%d}\n", hex.EncodeToString(raw), at)
		}
		e.writeBulk("bench", sb.String())
		e.flush(id)
	}
	return e, id
}

// BenchmarkParquetRewrite is the floor under BenchmarkCompact: the same
// 50 files read with arrow-go's Parquet reader and written into one file
// by its Parquet writer, with the table's codec, level, page size and
// per-column dictionary settings, the compactor's batches of 32,768 rows
// and row groups of 32 MiB, and nothing of Iceberg around them: no scan
// planning, deletes, schema projection, partitioning, sorting,
// verification or commit. What a compactor built on arrow-go does per
// core cannot exceed this by much; BENCHMARKS.md compares the two.
//
//	go test ./compaction -run '^$' -bench '^BenchmarkParquetRewrite$' -benchtime 1x -count 5
func BenchmarkParquetRewrite(b *testing.B) {
	for range b.N {
		b.StopTimer()
		e, id := smallFiles(b)
		ctx := context.Background()
		tbl := e.load(id)
		tasks, err := tbl.Scan().PlanFiles(ctx)
		if err != nil {
			b.Fatal(err)
		}
		fsys, err := tbl.FS(ctx)
		if err != nil {
			b.Fatal(err)
		}
		props := rewriteProps(b, tbl.Properties())
		out := filepath.Join(b.TempDir(), "out.parquet")
		measured(b, func() (work, error) {
			did := work{filesIn: len(tasks), filesOut: 1}
			var want int64
			for _, t := range tasks {
				did.in += t.File.FileSizeBytes()
				want += t.File.Count()
			}
			rows, err := rewriteFiles(ctx, fsys, tasks, out, props)
			if err == nil && rows != want {
				err = fmt.Errorf("rewrote %d rows of %d", rows, want)
			}
			return did, err
		})
	}
}

// rewriteFiles reads tasks' files with arrow-go's Parquet reader, in
// batches of the compactor's largest size, and writes every batch into
// one file at path, in row groups of the compactor's 32 MiB. It returns
// the rows the written file's footer counts.
func rewriteFiles(ctx context.Context, fsys icebergio.IO, tasks []table.FileScanTask, path string, props *parquet.WriterProperties) (int64, error) {
	out, err := os.Create(path)
	if err != nil {
		return 0, err
	}
	defer out.Close()
	var fw *pqarrow.FileWriter
	read := func(task table.FileScanTask) error {
		f, err := fsys.Open(task.File.FilePath())
		if err != nil {
			return err
		}
		defer f.Close()
		pf, err := file.NewParquetReader(f.(parquet.ReaderAtSeeker))
		if err != nil {
			return err
		}
		fr, err := pqarrow.NewFileReader(pf, pqarrow.ArrowReadProperties{BatchSize: 32 << 10}, memory.DefaultAllocator)
		if err != nil {
			return err
		}
		rr, err := fr.GetRecordReader(ctx, nil, nil)
		if err != nil {
			return err
		}
		defer rr.Release()
		for rr.Next() {
			rec := rr.RecordBatch()
			if fw == nil {
				if fw, err = pqarrow.NewFileWriter(rec.Schema(), out, props, pqarrow.NewArrowWriterProperties(pqarrow.WithStoreSchema())); err != nil {
					return err
				}
			}
			if fw.RowGroupTotalBytesWritten() >= 32<<20 {
				fw.NewBufferedRowGroup()
			}
			if err := fw.WriteBuffered(rec); err != nil {
				return err
			}
		}
		return rr.Err()
	}
	for _, task := range tasks {
		if err := read(task); err != nil {
			return 0, err
		}
	}
	if fw == nil {
		return 0, nil
	}
	if err := fw.Close(); err != nil {
		return 0, err
	}
	md, err := fw.FileMetadata()
	if err != nil {
		return 0, err
	}
	return md.NumRows, nil
}

// rewriteProps are the Parquet writer settings iceberg-go derives from
// an event table's properties, as far as the table sets them: codec and
// level, page size, and dictionary encoding per column.
func rewriteProps(b *testing.B, props iceberg.Properties) *parquet.WriterProperties {
	codec := map[string]compress.Compression{"zstd": compress.Codecs.Zstd, "snappy": compress.Codecs.Snappy,
		"gzip": compress.Codecs.Gzip, "uncompressed": compress.Codecs.Uncompressed}
	c, ok := codec[props.Get(table.ParquetCompressionKey, "zstd")]
	if !ok {
		b.Fatalf("codec %q", props.Get(table.ParquetCompressionKey, ""))
	}
	opts := []parquet.WriterProperty{
		parquet.WithCompression(c),
		parquet.WithCompressionLevel(props.GetInt(table.ParquetCompressionLevelKey, compress.DefaultCompressionLevel)),
		parquet.WithDataPageVersion(parquet.DataPageV2),
		parquet.WithDataPageSize(int64(props.GetInt(table.ParquetPageSizeBytesKey, 1<<20))),
		parquet.WithMaxRowGroupLength(int64(props.GetInt(table.ParquetRowGroupLimitKey, 1<<20))),
	}
	const dictPrefix = "write.parquet.dict-encoding-enabled.column."
	for k, v := range props {
		if col, ok := strings.CutPrefix(k, dictPrefix); ok {
			opts = append(opts, parquet.WithDictionaryFor(col, strings.EqualFold(v, "true")))
		}
	}
	return parquet.NewWriterProperties(opts...)
}

// profile writes a CPU profile of the compaction alone (not the setup) to
// $ZOMBI_COMPACT_PROFILE when that is set.
func profile(b *testing.B) (stop func()) {
	path := os.Getenv("ZOMBI_COMPACT_PROFILE")
	if path == "" {
		return func() {}
	}
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		b.Fatal(err)
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}
}

// cpuTime is the CPU time the process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
