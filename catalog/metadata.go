package catalog

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"strings"
	"time"

	icebergio "github.com/apache/iceberg-go/io"
	"github.com/apache/iceberg-go/table"
	"github.com/klauspost/compress/zstd"
)

// readMetadata returns the parsed metadata file at loc and its raw JSON,
// from the cache when possible.
func (s *Service) readMetadata(ctx context.Context, loc string) (cachedMetadata, error) {
	if e, ok := s.cache.get(loc); ok && e.meta != nil {
		return e, nil
	}
	start := s.now()
	raw, err := readFile(s.wh.IO(), loc)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return cachedMetadata{}, missingFile(loc)
		}
		return cachedMetadata{}, fmt.Errorf("%w: reading metadata %s: %w", ErrUnavailable, loc, err)
	}
	if raw, err = decompress(loc, raw); err != nil {
		return cachedMetadata{}, fmt.Errorf("metadata file %s: %w", loc, err)
	}
	meta, err := table.ParseMetadataBytes(raw)
	if err != nil {
		return cachedMetadata{}, fmt.Errorf("metadata file %s: %w", loc, err)
	}
	e := cachedMetadata{raw: raw, meta: meta}
	s.cache.put(loc, e)
	// The file was there when it was read: that counts as a check.
	s.markChecked(loc, start)
	return e, nil
}

// missingFile is the error for a metadata file that is gone, worded as
// the reference catalog words it.
func missingFile(loc string) error {
	return fmt.Errorf("%w: Failed to open input stream for file: %s", ErrNotFound, loc)
}

// checkFile returns ErrNotFound if the file at loc is gone. A cached
// metadata file is immutable, but it can still be deleted under the
// catalog; a table whose current metadata file is gone cannot be read by
// anyone, and says so rather than answering from the cache. A local file
// is checked on every call (a stat). An object-store file is checked at
// most once per Options.MetadataCheckInterval: each check is a request to
// the store (a HEAD), which under load cost more than the rest of a
// loadTable; concurrent checks of one file share a request.
func (s *Service) checkFile(loc string) error {
	if s.remote && s.checkInterval > 0 {
		s.checked.Lock()
		seen, ok := s.checked.at[loc]
		s.checked.Unlock()
		if ok && s.now().Sub(seen) < s.checkInterval {
			return nil
		}
	}
	start := s.now()
	_, err, _ := s.checks.Do(loc, func() (any, error) { return nil, s.statFile(loc) })
	if err == nil {
		s.markChecked(loc, start)
	}
	return err
}

// markChecked records that loc was seen at time at, for checkFile.
func (s *Service) markChecked(loc string, at time.Time) {
	if !s.remote || s.checkInterval <= 0 {
		return
	}
	s.checked.Lock()
	defer s.checked.Unlock()
	if len(s.checked.at) >= s.cache.max {
		clear(s.checked.at)
	}
	s.checked.at[loc] = at
}

// forget drops what the catalog knows of files it deleted: their parsed
// metadata and when they were last seen.
func (s *Service) forget(locs ...string) {
	s.checked.Lock()
	for _, l := range locs {
		delete(s.checked.at, l)
	}
	s.checked.Unlock()
	s.cache.drop(locs...)
}

func (s *Service) statFile(loc string) error {
	st, ok := s.wh.IO().(interface {
		Stat(name string) (fs.FileInfo, error)
	})
	if !ok {
		return nil
	}
	_, err := st.Stat(loc)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, fs.ErrNotExist):
		return missingFile(loc)
	}
	return fmt.Errorf("%w: checking metadata %s: %w", ErrUnavailable, loc, err)
}

func readFile(fsys icebergio.IO, loc string) ([]byte, error) {
	if r, ok := fsys.(icebergio.ReadFileIO); ok {
		return r.ReadFile(loc)
	}
	f, err := fsys.Open(loc)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(f)
}

// writeMetadata encodes meta, compressed as its file name says, and writes
// it to loc. It returns the uncompressed JSON.
func (s *Service) writeMetadata(ctx context.Context, loc string, meta table.Metadata) ([]byte, error) {
	raw, err := encodeJSON(meta)
	if err != nil {
		return nil, err
	}
	start := s.now()
	if err := s.writeFile(loc, raw); err != nil {
		return nil, err
	}
	s.cache.put(loc, cachedMetadata{raw: raw, meta: meta})
	// The file was there when the write returned: the first loadTable
	// after this node's own commit (the ingest path reloads a table after
	// every flush) need not ask the store again, and does not wait on it
	// when the store has stopped answering.
	s.markChecked(loc, start)
	return raw, nil
}

// writeFile writes raw to loc, compressed as its name says.
func (s *Service) writeFile(loc string, raw []byte) error {
	w, ok := s.wh.IO().(icebergio.WriteFileIO)
	if !ok {
		return errors.New("warehouse IO cannot write")
	}
	body, err := compress(loc, raw)
	if err != nil {
		return err
	}
	if err := w.WriteFile(loc, body); err != nil {
		return fmt.Errorf("%w: writing metadata %s: %w", ErrUnavailable, loc, err)
	}
	return nil
}

// encodeJSON encodes table or view metadata. Metadata that encodes itself
// (iceberg-go's table metadata does, with json.Marshal) is taken as its
// MarshalJSON returns it: an encoder would scan and compact that output
// again, a third of the cost of a commit's metadata write, and change
// nothing, as json.Marshal's output is compact.
func encodeJSON(meta any) ([]byte, error) {
	if m, ok := meta.(json.Marshaler); ok {
		return m.MarshalJSON()
	}
	var buf bytes.Buffer
	// No HTML escaping: metadata carries docs and property values, not HTML.
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(meta); err != nil {
		return nil, err
	}
	return bytes.TrimRight(buf.Bytes(), "\n"), nil
}

// codecOf names the compression of a metadata file from its name, as
// Iceberg's NNNNN-uuid[.codec].metadata.json convention has it.
func codecOf(loc string) string {
	base := strings.TrimSuffix(path.Base(loc), ".metadata.json")
	switch {
	case strings.HasSuffix(base, ".gz"):
		return table.MetadataCompressionCodecGzip
	case strings.HasSuffix(base, ".zstd"):
		return table.MetadataCompressionCodecZstd
	}
	return table.MetadataCompressionCodecNone
}

func compress(loc string, raw []byte) ([]byte, error) {
	var buf bytes.Buffer
	switch codecOf(loc) {
	case table.MetadataCompressionCodecGzip:
		zw := gzip.NewWriter(&buf)
		if _, err := zw.Write(raw); err != nil {
			return nil, err
		}
		if err := zw.Close(); err != nil {
			return nil, err
		}
		return buf.Bytes(), nil
	case table.MetadataCompressionCodecZstd:
		enc, err := zstd.NewWriter(nil)
		if err != nil {
			return nil, err
		}
		defer enc.Close()
		return enc.EncodeAll(raw, nil), nil
	}
	return raw, nil
}

func decompress(loc string, body []byte) ([]byte, error) {
	switch codecOf(loc) {
	case table.MetadataCompressionCodecGzip:
		zr, err := gzip.NewReader(bytes.NewReader(body))
		if err != nil {
			return nil, err
		}
		return io.ReadAll(zr)
	case table.MetadataCompressionCodecZstd:
		dec, err := zstd.NewReader(nil)
		if err != nil {
			return nil, err
		}
		defer dec.Close()
		return dec.DecodeAll(body, nil)
	}
	return body, nil
}
