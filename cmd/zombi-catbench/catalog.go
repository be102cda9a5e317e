package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"path"
	"strings"
	"time"

	"github.com/apache/iceberg-go"
)

// client speaks the REST catalog protocol to one server: plain net/http,
// keep-alive, no response compression (Go's transport would otherwise ask
// for gzip, and only the reference server compresses).
type client struct {
	http *http.Client
	base string // …/v1/ or …/v1/{prefix}/
}

func newClient(ctx context.Context, rawURL string, conns int) (*client, error) {
	c := &client{
		http: &http.Client{
			Transport: &http.Transport{MaxIdleConnsPerHost: conns, DisableCompression: true},
			Timeout:   30 * time.Second,
		},
		base: strings.TrimSuffix(rawURL, "/") + "/v1/",
	}
	var cfg struct {
		Overrides map[string]string `json:"overrides"`
		Defaults  map[string]string `json:"defaults"`
	}
	if _, err := c.do(ctx, "GET", "config", nil, nil, &cfg); err != nil {
		return nil, fmt.Errorf("GET /v1/config: %w", err)
	}
	prefix := cfg.Overrides["prefix"]
	if prefix == "" {
		prefix = cfg.Defaults["prefix"]
	}
	if prefix != "" {
		c.base += url.PathEscape(prefix) + "/"
	}
	return c, nil
}

// statusError is an answer other than the one a request expects.
type statusError struct {
	code int
	body string
}

func (e *statusError) Error() string { return fmt.Sprintf("HTTP %d: %s", e.code, e.body) }

func isConflict(err error) bool {
	se, ok := err.(*statusError)
	return ok && se.code == http.StatusConflict
}

// do sends one request; a 2xx or 304 answer is success. out, when not nil,
// receives the decoded JSON body; otherwise the body is read and dropped.
func (c *client) do(ctx context.Context, method, p string, body any, hdr http.Header, out any) (*http.Response, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+p, rd)
	if err != nil {
		return nil, err
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 && resp.StatusCode != http.StatusNotModified {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return resp, &statusError{resp.StatusCode, strings.TrimSpace(string(b))}
	}
	if out != nil && resp.StatusCode != http.StatusNotModified {
		return resp, json.NewDecoder(resp.Body).Decode(out)
	}
	_, err = io.Copy(io.Discard, resp.Body)
	return resp, err
}

func tablePath(ns, name string) string {
	return "namespaces/" + url.PathEscape(ns) + "/tables/" + url.PathEscape(name)
}

func (c *client) createNamespace(ctx context.Context, ns string) error {
	_, err := c.do(ctx, "POST", "namespaces", map[string]any{"namespace": []string{ns}}, nil, nil)
	return err
}

// benchSchema is the schema of every table the tool creates.
var benchSchema = json.RawMessage(`{"type":"struct","schema-id":0,"fields":[` +
	`{"id":1,"name":"id","required":true,"type":"long"},` +
	`{"id":2,"name":"v","required":false,"type":"string"}]}`)

// createTable creates a format-version 2 table (both servers' default, set
// explicitly so that they agree).
func (c *client) createTable(ctx context.Context, ns, name string) error {
	req := map[string]any{
		"name":       name,
		"schema":     benchSchema,
		"properties": map[string]string{"format-version": "2"},
	}
	_, err := c.do(ctx, "POST", "namespaces/"+url.PathEscape(ns)+"/tables", req, nil, nil)
	return err
}

// tableState is what a writer needs to build the next append.
type tableState struct {
	location string // the table location as the server spells it
	lastSeq  int64
	current  *int64 // current snapshot of main; nil before the first
}

// loadState loads a table and decodes what the next append builds on.
func (c *client) loadState(ctx context.Context, ns, name string) (tableState, error) {
	var res struct {
		Metadata struct {
			Location          string `json:"location"`
			LastSequence      int64  `json:"last-sequence-number"`
			CurrentSnapshotID *int64 `json:"current-snapshot-id"`
		} `json:"metadata"`
	}
	if _, err := c.do(ctx, "GET", tablePath(ns, name), nil, nil, &res); err != nil {
		return tableState{}, err
	}
	m := res.Metadata
	if m.CurrentSnapshotID != nil && *m.CurrentSnapshotID < 0 {
		m.CurrentSnapshotID = nil // format v1's "no snapshot"
	}
	return tableState{location: m.Location, lastSeq: m.LastSequence, current: m.CurrentSnapshotID}, nil
}

// appender builds append commits for one table: a manifest written once
// (one data file of one row) and, per commit, a manifest list naming it,
// both with iceberg-go under the table's metadata directory. The data file
// itself is not written: neither catalog reads table data, manifests or
// manifest lists on commit.
type appender struct {
	dir         string // local directory of the table's metadata
	metaLoc     string // the same as the server spells it
	manifest    string // the manifest's location
	manifestLen int64
}

// localPath turns a table location (a path, file:/…, file:///…) into a
// local directory.
func localPath(loc string) (string, error) {
	switch {
	case strings.HasPrefix(loc, "file://"):
		u, err := url.Parse(loc)
		if err != nil {
			return "", err
		}
		return u.Path, nil
	case strings.HasPrefix(loc, "file:"):
		return strings.TrimPrefix(loc, "file:"), nil
	case strings.HasPrefix(loc, "/"):
		return loc, nil
	}
	return "", fmt.Errorf("table location %q is not local: the tool writes manifest lists itself", loc)
}

func newAppender(st tableState) (*appender, error) {
	dir, err := localPath(st.location)
	if err != nil {
		return nil, err
	}
	a := &appender{dir: path.Join(dir, "metadata"), metaLoc: strings.TrimSuffix(st.location, "/") + "/metadata"}
	if err := os.MkdirAll(a.dir, 0o755); err != nil {
		return nil, err
	}
	schema := iceberg.NewSchema(0,
		iceberg.NestedField{ID: 1, Name: "id", Type: iceberg.PrimitiveTypes.Int64, Required: true},
		iceberg.NestedField{ID: 2, Name: "v", Type: iceberg.PrimitiveTypes.String},
	)
	df, err := iceberg.NewDataFileBuilder(*iceberg.UnpartitionedSpec, iceberg.EntryContentData,
		strings.TrimSuffix(st.location, "/")+"/data/bench.parquet", iceberg.ParquetFile, nil, nil, nil, 1, 1024)
	if err != nil {
		return nil, err
	}
	// The entry inherits its snapshot ID and sequence number from the
	// manifest list that names the manifest: each append adds it anew.
	entry := iceberg.NewManifestEntry(iceberg.EntryStatusADDED, nil, nil, nil, df.Build())
	name := fmt.Sprintf("bench-%016x-m0.avro", rand.Uint64())
	var buf bytes.Buffer
	if _, err := iceberg.WriteManifest(a.metaLoc+"/"+name, &buf, 2, *iceberg.UnpartitionedSpec, schema, 0, []iceberg.ManifestEntry{entry}); err != nil {
		return nil, err
	}
	if err := os.WriteFile(path.Join(a.dir, name), buf.Bytes(), 0o644); err != nil {
		return nil, err
	}
	a.manifest, a.manifestLen = a.metaLoc+"/"+name, int64(buf.Len())
	return a, nil
}

type snapshotJSON struct {
	SnapshotID   int64             `json:"snapshot-id"`
	ParentID     *int64            `json:"parent-snapshot-id,omitempty"`
	Sequence     int64             `json:"sequence-number"`
	TimestampMs  int64             `json:"timestamp-ms"`
	ManifestList string            `json:"manifest-list"`
	Summary      map[string]string `json:"summary"`
	SchemaID     int               `json:"schema-id"`
}

// commit is one append on st: a new snapshot with a fresh manifest list,
// made current on main, required to build on st's current snapshot. On
// success it returns the state after it.
func (c *client) appendCommit(ctx context.Context, ns, name string, a *appender, st tableState) (tableState, error) {
	id := rand.Int64N(1<<62) + 1
	seq := st.lastSeq + 1
	file := fmt.Sprintf("snap-%d-1-bench.avro", id)
	var buf bytes.Buffer
	mf := iceberg.NewManifestFile(2, a.manifest, a.manifestLen, 0, id).AddedFiles(1).AddedRows(1).Build()
	if err := iceberg.WriteManifestList(2, &buf, id, st.current, &seq, 0, []iceberg.ManifestFile{mf}); err != nil {
		return st, err
	}
	if err := os.WriteFile(path.Join(a.dir, file), buf.Bytes(), 0o644); err != nil {
		return st, err
	}
	req := map[string]any{
		"identifier": map[string]any{"namespace": []string{ns}, "name": name},
		"requirements": []map[string]any{
			{"type": "assert-ref-snapshot-id", "ref": "main", "snapshot-id": st.current},
		},
		"updates": []map[string]any{
			{"action": "add-snapshot", "snapshot": snapshotJSON{
				SnapshotID: id, ParentID: st.current, Sequence: seq,
				TimestampMs: time.Now().UnixMilli(), ManifestList: a.metaLoc + "/" + file,
				Summary: map[string]string{
					"operation": "append", "added-data-files": "1", "added-records": "1", "added-files-size": "1024",
				},
			}},
			{"action": "set-snapshot-ref", "ref-name": "main", "type": "branch", "snapshot-id": id},
		},
	}
	if _, err := c.do(ctx, "POST", tablePath(ns, name), req, nil, nil); err != nil {
		return st, err
	}
	return tableState{location: st.location, lastSeq: seq, current: &id}, nil
}
