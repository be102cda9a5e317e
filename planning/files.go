package planning

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/apache/iceberg-go"
	icebergio "github.com/apache/iceberg-go/io"
	"github.com/apache/iceberg-go/table"
	"github.com/zombi-db/zombi/catalog"
	"github.com/zombi-db/zombi/warehouse"
)

// MaxFilePartitions is how many partitions FileStats lists at most; the
// totals count them all.
const MaxFilePartitions = 500

// FileStats are the files a table's current snapshot reads, by
// partition: what the console shows of a table's layout.
type FileStats struct {
	// SnapshotID is the snapshot counted; 0 for a table without one.
	SnapshotID int64
	// Fields are the partition fields of the specs the files were written
	// with, in spec order; a partition's Values follow Fields.
	Fields                 []PartitionField
	DataFiles, DeleteFiles int
	DataBytes, DeleteBytes int64
	Records                int64
	Partitions             []PartitionFiles
	// Truncated: there were more than MaxFilePartitions partitions; the
	// ones listed sort last by value (the newest time partitions).
	Truncated bool
}

// PartitionField is one partition field.
type PartitionField struct {
	Name      string
	Transform string
}

// PartitionFiles are the files of one partition.
type PartitionFiles struct {
	// Values are the partition's values as Iceberg's JSON single-value
	// form, one per FileStats.Fields entry (null where the partition's
	// spec has no such field).
	Values                 []json.RawMessage
	DataFiles, DeleteFiles int
	DataBytes, DeleteBytes int64
	Records                int64
}

// FileStats counts the files of t's current snapshot by partition. It
// reads the snapshot's manifests (inside t's location only) as a scan
// would, without a filter, in one of the planner's slots: like a plan,
// it waits for one at most QueueWait and is refused with ErrBusy.
func (p *Planner) FileStats(ctx context.Context, t *catalog.Table) (FileStats, error) {
	meta := t.Metadata
	snap := meta.CurrentSnapshot()
	if snap == nil {
		return FileStats{}, nil
	}
	if err := p.acquire(ctx); err != nil {
		return FileStats{}, err
	}
	defer p.releaseSlot()
	fsys, err := p.opts.FS(ctx)
	if err != nil {
		return FileStats{}, err
	}
	confined := warehouse.Confine(fsys, meta.Location())
	fsF := func(context.Context) (icebergio.IO, error) { return confined, nil }
	ident := append(append(table.Identifier{}, t.Ident.Namespace...), t.Ident.Name)
	tasks, err := table.New(ident, meta, t.MetadataLocation, fsF, nil).
		Scan(table.WithMaxConcurrency(4)).PlanFiles(ctx)
	if err != nil {
		return FileStats{}, readError(err)
	}
	enc, err := newEncoder(meta, meta.CurrentSchema(), nil, nil)
	if err != nil {
		return FileStats{}, err
	}
	out := FileStats{SnapshotID: snap.SnapshotID}
	// The union of the specs' fields by field ID, in the order met.
	col := map[int]int{}
	addFields := func(specID int) (*partType, error) {
		pt, err := enc.partitionType(specID)
		if err != nil {
			return nil, err
		}
		spec := meta.PartitionSpecByID(specID)
		for i, id := range pt.ids {
			if _, ok := col[id]; !ok {
				col[id] = len(out.Fields)
				out.Fields = append(out.Fields, PartitionField{Name: pt.names[i], Transform: spec.Field(i).Transform.String()})
			}
		}
		return pt, nil
	}
	type part struct {
		key    string
		values map[int]json.RawMessage // by field ID
		files  PartitionFiles
	}
	parts := map[string]*part{}
	count := func(f iceberg.DataFile, del bool) error {
		pt, err := addFields(int(f.SpecID()))
		if err != nil {
			return err
		}
		values := make(map[int]json.RawMessage, len(pt.ids))
		var key strings.Builder
		fmt.Fprintf(&key, "%d", f.SpecID())
		for i, id := range pt.ids {
			v, err := partitionValue(f.Partition()[id], pt.types[i])
			if err != nil {
				return fmt.Errorf("partition field %s: %w", pt.names[i], err)
			}
			values[id] = v
			fmt.Fprintf(&key, "\x00%d=%s", id, v)
		}
		pa := parts[key.String()]
		if pa == nil {
			pa = &part{key: key.String(), values: values}
			parts[pa.key] = pa
		}
		if del {
			pa.files.DeleteFiles++
			pa.files.DeleteBytes += f.FileSizeBytes()
			out.DeleteFiles++
			out.DeleteBytes += f.FileSizeBytes()
			return nil
		}
		pa.files.DataFiles++
		pa.files.DataBytes += f.FileSizeBytes()
		pa.files.Records += f.Count()
		out.DataFiles++
		out.DataBytes += f.FileSizeBytes()
		out.Records += f.Count()
		return nil
	}
	seenDeletes := map[string]bool{}
	for _, task := range tasks {
		if err := count(task.File, false); err != nil {
			return FileStats{}, err
		}
		for _, d := range task.DeleteFiles {
			// A delete file applies to many data files: count it once.
			if seenDeletes[d.FilePath()] {
				continue
			}
			seenDeletes[d.FilePath()] = true
			if err := count(d, true); err != nil {
				return FileStats{}, err
			}
		}
	}
	list := make([]*part, 0, len(parts))
	for _, pa := range parts {
		list = append(list, pa)
	}
	// By value, field by field; the last MaxFilePartitions are kept: for
	// time partitions, the newest.
	ids := make([]int, len(col))
	for id, i := range col {
		ids[i] = id
	}
	slices.SortFunc(list, func(a, b *part) int {
		for _, id := range ids {
			if c := compareValues(a.values[id], b.values[id]); c != 0 {
				return c
			}
		}
		return cmp.Compare(a.key, b.key)
	})
	if len(list) > MaxFilePartitions {
		list, out.Truncated = list[len(list)-MaxFilePartitions:], true
	}
	for _, pa := range list {
		pa.files.Values = make([]json.RawMessage, len(ids))
		for i, id := range ids {
			if v, ok := pa.values[id]; ok {
				pa.files.Values[i] = v
			} else {
				pa.files.Values[i] = json.RawMessage("null")
			}
		}
		out.Partitions = append(out.Partitions, pa.files)
	}
	return out, nil
}

// compareValues orders partition values: missing and null first, numbers
// by value, anything else (strings: dates and times in ISO form sort as
// text) by its JSON text.
func compareValues(a, b json.RawMessage) int {
	na, nb := len(a) == 0 || string(a) == "null", len(b) == 0 || string(b) == "null"
	switch {
	case na || nb:
		return cmp.Compare(btoi(!na), btoi(!nb))
	}
	var fa, fb float64
	if json.Unmarshal(a, &fa) == nil && json.Unmarshal(b, &fb) == nil {
		return cmp.Compare(fa, fb)
	}
	return strings.Compare(string(a), string(b))
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}
