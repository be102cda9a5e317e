package server

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/zombi-db/zombi/auth"
	"github.com/zombi-db/zombi/catalog"
	"github.com/zombi-db/zombi/catalog/embedded"
	"github.com/zombi-db/zombi/hot"
	"github.com/zombi-db/zombi/ingest"
	"github.com/zombi-db/zombi/internal/testenv"
	"github.com/zombi-db/zombi/tail"
	"github.com/zombi-db/zombi/warehouse"
)

// testServer is a Server over an embedded store, a local warehouse and a
// hot tier, all in a temporary directory.
type testServer struct {
	*Server
	hot *hot.DB
	hub *tail.Hub
	wh  *warehouse.Warehouse
	reg *prometheus.Registry
}

type testOptions struct {
	durability    hot.Durability
	tokens        []string // --auth-token values
	metricsTokens []string
	inflight      int64
	maxEvent      int64
	maxBacklog    int64
	maxBody       int64
	bodyTimeout   time.Duration
	minBodyRate   int64
	nodes         Nodes
	// The live tail: --max-stream-subscribers, its buffers, heartbeats.
	maxStreams   int
	streamBuffer int
	heartbeat    time.Duration
	// s3: the warehouse is a bucket on the test S3 server, whose keys it
	// vends (--s3-vend-static-keys) and signs with.
	s3 bool
	// sts: the warehouse is a bucket on MinIO, and vends temporary
	// credentials from its STS (--s3-sts) instead of its keys.
	sts bool
}

func newTestServer(tb testing.TB, o testOptions) *testServer {
	tb.Helper()
	dir := tb.TempDir()
	store, err := embedded.Open("catalog", embedded.WithFS(vfs.NewMem()), embedded.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { store.Close() })
	whc := warehouse.Config{Root: filepath.Join(dir, "warehouse")}
	if o.s3 {
		s3 := testenv.S3(tb)
		whc = warehouse.Config{Root: "s3://" + s3.Bucket + "/wh", S3Endpoint: s3.Endpoint, S3Region: s3.Region,
			S3AccessKey: s3.AccessKey, S3SecretKey: s3.SecretKey, S3PathStyle: true, VendStaticKeys: true}
	}
	if o.sts {
		s3 := testenv.MinIO(tb)
		whc = warehouse.Config{Root: "s3://" + s3.Bucket + "/wh", S3Endpoint: s3.Endpoint, S3Region: s3.Region,
			S3AccessKey: s3.AccessKey, S3SecretKey: s3.SecretKey, S3PathStyle: true, STS: true}
	}
	wh, err := warehouse.Open(context.Background(), whc)
	if err != nil {
		tb.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	cat, err := catalog.New(catalog.Options{Store: store, Warehouse: wh, Registerer: reg})
	if err != nil {
		tb.Fatal(err)
	}
	hdb, err := hot.Open(filepath.Join(dir, "hot"), hot.Options{
		Durability:      o.durability,
		MaxBacklogBytes: o.maxBacklog,
		Registerer:      reg,
		Logger:          slog.New(slog.DiscardHandler),
	})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { hdb.Close() })
	inflight := ingest.NewInFlight(o.inflight)
	im := ingest.NewMetrics(reg, inflight)
	ing, err := ingest.New(ingest.Options{Catalog: cat, Hot: hdb, AutoCreate: true, Metrics: im})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(ing.Close)
	var authn *auth.Authenticator
	if len(o.tokens)+len(o.metricsTokens) > 0 {
		ac := auth.Config{MetricsTokens: o.metricsTokens}
		for _, t := range o.tokens {
			tok, err := auth.ParseToken(t)
			if err != nil {
				tb.Fatal(err)
			}
			ac.Tokens = append(ac.Tokens, tok)
		}
		ac.Registerer = reg
		if authn, err = auth.New(context.Background(), ac); err != nil {
			tb.Fatal(err)
		}
	}
	hub, err := tail.New(tail.Options{Source: ing, MaxSubscribers: o.maxStreams, BufferBytes: o.streamBuffer, Registerer: reg})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(hub.Close)
	srv := New(Options{
		Tail:            hub,
		StreamHeartbeat: o.heartbeat,
		Catalog:         cat,
		Ingest:          ing,
		InFlight:        inflight,
		IngestMetrics:   im,
		MaxEventBytes:   o.maxEvent,
		MaxBodyBytes:    o.maxBody,
		BodyTimeout:     o.bodyTimeout,
		MinBodyRate:     o.minBodyRate,
		Auth:            authn,
		Registry:        reg,
		Nodes:           o.nodes,
		Signer:          wh,
		Vendor:          wh,
	})
	return &testServer{Server: srv, hot: hdb, hub: hub, wh: wh, reg: reg}
}

// rawClient is a keep-alive HTTP/1.1 client that sends prebuilt requests
// and allocates nothing per request, so that a benchmark's allocations are
// the server's.
type rawClient struct {
	c net.Conn
	r *bufio.Reader
}

func dialRaw(tb testing.TB, addr string) *rawClient {
	tb.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		tb.Fatal(err)
	}
	return &rawClient{c: c, r: bufio.NewReader(c)}
}

func rawRequest(path string, body []byte, headers ...string) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "POST %s HTTP/1.1\r\nHost: zombi\r\nContent-Type: application/json\r\nContent-Length: %d\r\n", path, len(body))
	for i := 0; i+1 < len(headers); i += 2 {
		fmt.Fprintf(&b, "%s: %s\r\n", headers[i], headers[i+1])
	}
	b.WriteString("\r\n")
	b.Write(body)
	return b.Bytes()
}

// do sends req and returns the status; it reads the body by Content-Length.
func (c *rawClient) do(req []byte) (int, error) {
	if _, err := c.c.Write(req); err != nil {
		return 0, err
	}
	line, err := c.r.ReadSlice('\n')
	if err != nil {
		return 0, err
	}
	if len(line) < 12 {
		return 0, fmt.Errorf("bad status line %q", line)
	}
	status := int(line[9]-'0')*100 + int(line[10]-'0')*10 + int(line[11]-'0')
	length := -1
	for {
		h, err := c.r.ReadSlice('\n')
		if err != nil {
			return 0, err
		}
		if len(h) <= 2 {
			break
		}
		if k, v, ok := bytes.Cut(h, []byte(":")); ok && bytes.EqualFold(k, []byte("Content-Length")) {
			n, err := strconv.Atoi(string(bytes.TrimSpace(v)))
			if err != nil {
				return 0, err
			}
			length = n
		}
	}
	if length < 0 {
		return 0, fmt.Errorf("response without Content-Length")
	}
	_, err = c.r.Discard(length)
	return status, err
}

// discardWriter is a minimal http.ResponseWriter.
type discardWriter struct {
	h      http.Header
	status int
}

func (w *discardWriter) Header() http.Header { return w.h }
func (w *discardWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
}
func (w *discardWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return len(b), nil
}

var _ io.Writer = (*discardWriter)(nil)

func tableIdent(ns, name string) catalog.Ident {
	return catalog.Ident{Namespace: catalog.Namespace{ns}, Name: name}
}
