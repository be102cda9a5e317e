package compaction_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"math/rand/v2"
	"os"
	"runtime"
	"runtime/metrics"
	"runtime/pprof"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/table"
	"github.com/zombi-db/zombi/catalog"
	"github.com/zombi-db/zombi/compaction"
	"github.com/zombi-db/zombi/hotrow"
)

// eventFiles adds files data files of perFile events each to the event
// table id (created if need be), all in one hour partition, as the
// flusher writes them: one record per file through table.WriteRecords,
// with payloads of size bytes of base64 of random bytes (zombi-bench's
// are 100). It returns the bytes added.
func eventFiles(e *env, name string, files, perFile, size int) int64 {
	e.t.Helper()
	ctx := context.Background()
	id := ident(name)
	if _, err := e.cat.LoadTable(ctx, id); err != nil {
		e.writeBulk(name, "{\"payload\":\"seed\"}\n") // creates the table
		e.flush(id)
	}
	at := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	rng := rand.New(rand.NewPCG(uint64(files), uint64(perFile)))
	payload := make([]byte, size)
	raw := make([]byte, base64.RawStdEncoding.DecodedLen(size))
	var value []byte
	var added int64
	seq := uint64(1 << 32)
	for range files {
		t := e.load(id)
		b, err := hotrow.NewArrowBuilder(memory.DefaultAllocator, t.Schema(), id.String())
		if err != nil {
			e.t.Fatal(err)
		}
		for range perFile {
			for i := range raw {
				raw[i] = byte(rng.Uint32())
			}
			base64.RawStdEncoding.Encode(payload, raw)
			value = hotrow.AppendEventValue(value[:0], hotrow.Event{EventTime: at, IngestTime: at, Payload: payload})
			seq++
			if err := b.Append(seq, value); err != nil {
				e.t.Fatal(err)
			}
		}
		rec := b.NewRecord()
		b.Release()
		// In slices of at most 8 MiB of payloads: the writer ends a page
		// only between the slices it is handed, and a reader refuses
		// pages over 64 MiB.
		step := int64(max(1, (8<<20)/size))
		slices := func(yield func(arrow.RecordBatch, error) bool) {
			defer rec.Release()
			for i := int64(0); i < rec.NumRows(); i += step {
				if !yield(rec.NewSlice(i, min(i+step, rec.NumRows())), nil) {
					return
				}
			}
		}
		var dfs []iceberg.DataFile
		for df, err := range table.WriteRecords(ctx, t, rec.Schema(), slices) {
			if err != nil {
				e.t.Fatal(err)
			}
			dfs = append(dfs, df)
			added += df.FileSizeBytes()
		}
		e.commitTx(id, func(tx *table.Transaction) error {
			return tx.AddDataFiles(ctx, dfs, nil, table.WithoutDuplicateCheck(), table.WithoutAutoNameMapping())
		})
	}
	return added
}

// memWatch samples the Go heap while a piece of work runs and measures
// the process's peak resident set over it.
type memWatch struct {
	stop chan struct{}
	done sync.WaitGroup
	// peakHeap is the most bytes of heap objects (live or not yet swept
	// garbage: MemStats.HeapAlloc) seen in a sample; peakLive the most
	// bytes found live by a GC that ended meanwhile.
	peakHeap, peakLive uint64
	hwmOK              bool
}

// watchMemory starts sampling the heap every millisecond and resets the
// process's peak RSS (VmHWM), where Linux lets it.
func watchMemory() *memWatch {
	w := &memWatch{stop: make(chan struct{})}
	w.hwmOK = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) == nil
	samples := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}, {Name: "/gc/heap/live:bytes"}}
	w.done.Add(1)
	go func() {
		defer w.done.Done()
		t := time.NewTicker(time.Millisecond)
		defer t.Stop()
		for {
			metrics.Read(samples)
			w.peakHeap = max(w.peakHeap, samples[0].Value.Uint64())
			if live := samples[1].Value.Uint64(); live > w.peakLive {
				w.peakLive = live
				heapProfile()
			}
			select {
			case <-w.stop:
				return
			case <-t.C:
			}
		}
	}()
	return w
}

// heapProfile writes a heap profile to $ZOMBI_COMPACT_HEAPPROFILE when
// that is set. The watch calls it whenever a GC finds more live heap than
// any before, so that the file ends with the live heap at its peak.
func heapProfile() {
	path := os.Getenv("ZOMBI_COMPACT_HEAPPROFILE")
	if path == "" {
		return
	}
	f, err := os.Create(path)
	if err != nil {
		return
	}
	defer f.Close()
	pprof.WriteHeapProfile(f)
}

// end stops sampling. hwm is the peak RSS since watchMemory (0 where
// it could not be reset or read).
func (w *memWatch) end() (peakHeap, peakLive, hwm uint64) {
	close(w.stop)
	w.done.Wait()
	if w.hwmOK {
		hwm = vmHWM()
	}
	return w.peakHeap, w.peakLive, hwm
}

// vmHWM is the process's peak resident set in bytes, from /proc.
func vmHWM() uint64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := bytes.CutPrefix(sc.Bytes(), []byte("VmHWM:")); ok {
			n, _ := strconv.ParseUint(string(bytes.TrimSuffix(bytes.TrimSpace(v), []byte(" kB"))), 10, 64)
			return n << 10
		}
	}
	return 0
}

// envInt is the integer in environment variable name, or def.
func envInt(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil && n > 0 {
		return n
	}
	return def
}

// BenchmarkCompactLarge measures the memory a large compaction takes: a
// partition of $ZOMBI_COMPACT_FILES (default 16) files of
// $ZOMBI_COMPACT_ROWS (default 379,147: one full flush cycle of 64 MiB)
// 100-byte events each, about 25 MB apiece, rewritten at the default
// 512 MiB target. Besides MB/s and MB/s per core (as BenchmarkCompact) it
// reports the peak Go heap (heap objects, sampled every millisecond), the
// peak live heap (as the GCs found it) and the process's peak RSS
// (VmHWM, reset before the compaction), in MB.
//
//	go test ./compaction -run '^$' -bench CompactLarge -benchtime 1x -count 3
func BenchmarkCompactLarge(b *testing.B) {
	files := envInt("ZOMBI_COMPACT_FILES", 16)
	rows := envInt("ZOMBI_COMPACT_ROWS", 379147)
	for range b.N {
		b.StopTimer()
		e := newEnv(b, nil)
		eventFiles(e, "large", files, rows, 100)
		compactMeasured(b, e, ident("large"))
	}
}

// compactMeasured compacts id and reports its throughput and memory
// (measured).
func compactMeasured(b *testing.B, e *env, id catalog.Ident) {
	measured(b, func() (work, error) {
		res, err := e.comp.Compact(context.Background(), id)
		return work{in: res.BytesBefore, filesIn: res.RewrittenFiles, filesOut: res.NewFiles}, err
	})
}

// work is what a measured piece of work did: input bytes and files read,
// files written.
type work struct {
	in                int64
	filesIn, filesOut int
}

// measured runs fn on the benchmark's clock and reports its throughput
// and memory: MB/s and MB/s/core (input bytes per second of wall and of
// the process's CPU time), the files in and out, and, in MB, the peak Go
// heap (heap_MB), the most a GC found live (live_MB) and the process's
// peak RSS (hwm_MB), all over fn alone. The setup's garbage is collected
// before the clock starts, not on fn's CPU time.
func measured(b *testing.B, fn func() (work, error)) {
	runtime.GC()
	stopProfile := profile(b)
	w := watchMemory()
	cpu0 := cpuTime()
	start := time.Now()
	b.StartTimer()
	did, err := fn()
	b.StopTimer()
	wall, cpu := time.Since(start), cpuTime()-cpu0
	peakHeap, peakLive, hwm := w.end()
	stopProfile()
	if err != nil {
		b.Fatal(err)
	}
	mb := float64(did.in) / 1e6
	b.ReportMetric(mb/wall.Seconds(), "MB/s")
	b.ReportMetric(mb/cpu.Seconds(), "MB/s/core")
	b.ReportMetric(float64(did.filesIn), "files_in")
	b.ReportMetric(float64(did.filesOut), "files_out")
	b.ReportMetric(mb, "MB_in")
	b.ReportMetric(float64(peakHeap)/1e6, "heap_MB")
	b.ReportMetric(float64(peakLive)/1e6, "live_MB")
	b.ReportMetric(float64(hwm)/1e6, "hwm_MB")
}

// compactMemory compacts the event table name after runtime.GC and
// returns what it did and the most heap a GC found live meanwhile.
func compactMemory(e *env, name string) (compaction.Result, uint64) {
	e.t.Helper()
	runtime.GC()
	w := watchMemory()
	res, err := e.comp.Compact(context.Background(), ident(name))
	_, live, _ := w.end()
	if err != nil {
		e.t.Fatal(err)
	}
	return res, live
}

// checkRowGroups fails unless every row group of the table's data files
// is under max bytes as stored.
func checkRowGroups(e *env, name string, max int64) {
	e.t.Helper()
	ctx := context.Background()
	tbl := e.load(ident(name))
	tasks, err := tbl.Scan().PlanFiles(ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	fsys, err := tbl.FS(ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	for _, task := range tasks {
		f, err := fsys.Open(task.File.FilePath())
		if err != nil {
			e.t.Fatal(err)
		}
		pf, err := file.NewParquetReader(f)
		if err != nil {
			e.t.Fatal(err)
		}
		for i := range pf.NumRowGroups() {
			if n := pf.MetaData().RowGroup(i).TotalCompressedSize(); n > max {
				e.t.Errorf("%s: row group %d holds %d bytes, more than %d", task.File.FilePath(), i, n, max)
			}
		}
		f.Close()
	}
}

// liveBound is the most live heap the compactions of the tests below may
// take: about one and a half times what they measured (230–255 MB and
// 275–320 MB), a half or less of what they took before the bounds.
const liveBound = 450e6

// TestCompactMemoryBounded: a partition of 8 files of 379,147 events (one
// full flush cycle each, 240 MB of Parquet) compacts into one file with
// at most liveBound of live heap. The compactor reads one file at a time in
// batches of at most 32,768 rows (about 5 MB of these events), 2 of them
// queued for the writer, and writes row groups of at most 32 MiB, which
// the writer holds until they are complete (in buffers that grow by
// doubling); the input's column chunks of a row group are read whole.
// That measured 210–255 MB for 4 to 32 such files (BENCHMARKS.md); before
// the bounds this group took 777 MB and one of 16 files 1.06 GB.
// The live heap (as the GCs find it) is measured, not the heap with its
// garbage, which the GC's pacing doubles. The compactor's row-group size
// is not set on the table; the output's row groups have it (and at most
// a batch more).
func TestCompactMemoryBounded(t *testing.T) {
	e := newEnv(t, nil, noFloors)
	in := eventFiles(e, "mem", 8, 379147, 100)
	res, live := compactMemory(e, "mem")
	t.Logf("%d files, %.1f MB → %d file(s): %.1f MB live at most", res.RewrittenFiles, float64(in)/1e6, res.NewFiles, float64(live)/1e6)
	if res.RewrittenFiles != 8 || res.NewFiles != 1 {
		t.Fatalf("%d files rewritten into %d, want 8 into 1", res.RewrittenFiles, res.NewFiles)
	}
	if live > liveBound {
		t.Errorf("the compaction of %.1f MB held %.1f MB of live heap, more than %.0f MB", float64(in)/1e6, float64(live)/1e6, liveBound/1e6)
	}
	if v, ok := e.load(ident("mem")).Properties()[table.ParquetRowGroupSizeBytesKey]; ok {
		t.Errorf("the compaction set the table's %s to %s", table.ParquetRowGroupSizeBytesKey, v)
	}
	checkRowGroups(e, "mem", 40<<20)
}

// TestCompactWideRowsMemoryBounded: events of 256 KiB come a few to a
// batch. Two files of 400 such events (100 MiB of payloads each, 78 MB
// as stored, in one row group) compact with at most liveBound of live heap: batches of 31 events (8
// MiB by the width of a row in the input's footers), and each input row
// group's column chunks (78 MB), read whole. Without the width a batch
// held all 400 rows of a file, several such batches were held at once
// (674 MB live; 1,012 MB before any bound), and the output's row groups
// were a batch each, 78 MB.
func TestCompactWideRowsMemoryBounded(t *testing.T) {
	e := newEnv(t, nil, noFloors)
	in := eventFiles(e, "wide", 2, 400, 256<<10)
	res, live := compactMemory(e, "wide")
	t.Logf("%d files, %.1f MB → %d file(s): %.1f MB live at most", res.RewrittenFiles, float64(in)/1e6, res.NewFiles, float64(live)/1e6)
	if live > liveBound {
		t.Errorf("the compaction of %.1f MB held %.1f MB of live heap, more than %.0f MB", float64(in)/1e6, float64(live)/1e6, liveBound/1e6)
	}
	checkRowGroups(e, "wide", 40<<20)
}
