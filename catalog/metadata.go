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
	"net/url"
	"path"
	"strings"

	icebergio "github.com/apache/iceberg-go/io"
	"github.com/apache/iceberg-go/table"
	"github.com/klauspost/compress/zstd"
)

// readMetadata returns the parsed metadata file at loc and its raw JSON,
// from the cache when possible.
func (s *Service) readMetadata(ctx context.Context, loc string) (cachedMetadata, error) {
	if e, ok := s.cache.get(loc); ok {
		return e, nil
	}
	raw, err := readFile(s.wh.IO(), loc)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return cachedMetadata{}, fmt.Errorf("metadata file %s is missing: %w", loc, err)
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
	return e, nil
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
	w, ok := s.wh.IO().(icebergio.WriteFileIO)
	if !ok {
		return nil, errors.New("warehouse IO cannot write")
	}
	raw, err := encodeJSON(meta)
	if err != nil {
		return nil, err
	}
	body, err := compress(loc, raw)
	if err != nil {
		return nil, err
	}
	if err := w.WriteFile(loc, body); err != nil {
		return nil, fmt.Errorf("%w: writing metadata %s: %w", ErrUnavailable, loc, err)
	}
	s.cache.put(loc, cachedMetadata{raw: raw, meta: meta})
	return raw, nil
}

func encodeJSON(meta table.Metadata) ([]byte, error) {
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

// inside reports whether loc is root or below it. Locations with dot
// segments, other schemes or other buckets are not inside.
func inside(root, loc string) bool {
	r, err1 := url.Parse(root)
	l, err2 := url.Parse(loc)
	if err1 != nil || err2 != nil {
		return false
	}
	if r.Scheme == "file" && l.Scheme == "" {
		l.Scheme = "file"
	}
	if r.Scheme != l.Scheme || r.Host != l.Host {
		return false
	}
	if l.RawQuery != "" || l.Fragment != "" || strings.Contains(l.Path, "//") {
		return false
	}
	for _, seg := range strings.Split(l.Path, "/") {
		if seg == "." || seg == ".." {
			return false
		}
	}
	rp := strings.TrimSuffix(r.Path, "/")
	return l.Path == rp || strings.HasPrefix(l.Path, rp+"/")
}
