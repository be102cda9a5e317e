package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/zombi-db/zombi/catalog"
	"github.com/zombi-db/zombi/catalog/embedded"
	"github.com/zombi-db/zombi/catalog/postgres"
	"github.com/zombi-db/zombi/cluster"
	"github.com/zombi-db/zombi/compaction"
	"github.com/zombi-db/zombi/flusher"
	"github.com/zombi-db/zombi/hot"
	"github.com/zombi-db/zombi/ingest"
	"github.com/zombi-db/zombi/live"
	"github.com/zombi-db/zombi/planning"
	"github.com/zombi-db/zombi/server"
	"github.com/zombi-db/zombi/tail"
	"github.com/zombi-db/zombi/warehouse"
)

// openStore opens the pointer store the config names.
func openStore(ctx context.Context, c *config, log *slog.Logger, reg prometheus.Registerer) (catalog.Store, error) {
	if c.PostgresURL != "" {
		return postgres.Open(ctx, c.PostgresURL,
			postgres.WithLogger(log.With("component", "store")),
			postgres.WithRegisterer(reg),
			postgres.WithListen(c.PostgresListen),
			postgres.WithPollInterval(c.ChangePollInterval))
	}
	return embedded.Open(filepath.Join(c.DataDir, "catalog"), embedded.WithLogger(log))
}

func serve(ctx context.Context, c *config) error {
	log, err := c.logger()
	if err != nil {
		return err
	}
	lock, err := lockDataDir(c.DataDir)
	if err != nil {
		return err
	}
	defer lock.Close()
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	store, err := openStore(ctx, c, log, reg)
	if err != nil {
		return fmt.Errorf("opening pointer store: %w", err)
	}
	defer store.Close()
	wh, err := warehouse.Open(ctx, warehouse.Config{
		Root:           c.Warehouse,
		S3Endpoint:     c.S3Endpoint,
		S3Region:       c.S3Region,
		S3AccessKey:    c.S3AccessKey,
		S3SecretKey:    c.S3SecretKey,
		S3PathStyle:    c.S3PathStyle,
		VendStaticKeys: c.S3VendKeys,
		STS:            c.S3STS,
		STSEndpoint:    c.S3STSURL,
		STSRoleARN:     c.S3STSRole,
		STSDuration:    c.S3STSTTL,
		Allowed:        c.AllowedLocations,
	})
	if err != nil {
		return fmt.Errorf("opening warehouse: %w", err)
	}

	cat, err := catalog.New(catalog.Options{
		Store:                 store,
		Warehouse:             wh,
		Logger:                log.With("component", "catalog"),
		Registerer:            reg,
		ReceiptLifetime:       c.IdempotencyTTL,
		AllowedLocations:      c.AllowedLocations,
		MetadataCheckInterval: metadataCheckInterval(c.MetadataCheck),
	})
	if err != nil {
		return err
	}
	// Changes other nodes make to a shared store reach this node's caches
	// (Watch) until serve returns, after the final flush and before the
	// store closes.
	followCtx, stopFollow := context.WithCancel(context.Background())
	followed := make(chan struct{})
	go func() {
		defer close(followed)
		if err := cat.Follow(followCtx); err != nil {
			log.Error("following the changes of other nodes stopped", "err", err)
		}
	}()
	defer func() { stopFollow(); <-followed }()
	go func() {
		// Entries from before stores kept locations and UUIDs get them,
		// so the overlap checks see every table.
		n, err := cat.Backfill(ctx)
		if err != nil {
			log.Warn("recording table locations in the store", "err", err)
		} else if n > 0 {
			log.Info("recorded table and view locations in the store", "entries", n)
		}
	}()
	member, err := openMember(ctx, c, log, reg)
	if err != nil {
		return err
	}
	if member != nil {
		defer member.close(c.ShutdownTimeout)
	}
	durability := hot.Sync
	if c.Durability == "async" {
		durability = hot.Async
		log.Warn("--durability=async: a crash can lose the last moments of acknowledged events")
	}
	hotDB, err := hot.Open(filepath.Join(c.DataDir, "hot"), hot.Options{
		Durability:        durability,
		SyncInterval:      syncInterval(c.SyncInterval),
		NodeID:            c.NodeID,
		IdempotencyWindow: c.IdempotencyWindow,
		MaxBacklogBytes:   int64(c.MaxBacklog),
		Logger:            log.With("component", "hot"),
		Registerer:        reg,
		Stream:            member.stream(ctx),
	})
	if err != nil {
		return fmt.Errorf("opening hot tier: %w", err)
	}
	defer hotDB.Close()
	flOpts := flusher.Options{
		Catalog:    cat,
		Hot:        hotDB,
		FS:         wh.FS,
		Interval:   c.FlushInterval,
		Retention:  c.HotRetention,
		TailReuse:  c.LiveTailReuse,
		Logger:     log.With("component", "flusher"),
		Registerer: reg,
	}
	if c.Cluster {
		// One append per table per interval from the whole cluster.
		flOpts.Staging, flOpts.Leases = store.(*postgres.Store), cat
	}
	fl, err := flusher.New(flOpts)
	if err != nil {
		return err
	}
	defer func() {
		// Normally already closed by the shutdown below.
		cctx, cancel := context.WithTimeout(context.Background(), c.ShutdownTimeout)
		defer cancel()
		_ = fl.Close(cctx)
	}()
	comp, err := compaction.New(compaction.Options{
		Catalog:       cat,
		FS:            wh.FS,
		NodeID:        hotDB.NodeID(),
		CheckInterval: c.MaintenanceInterval,
		Logger:        log.With("component", "compaction"),
		Registerer:    reg,

		MinOrphanAge:   noFloorIfZero(c.MinOrphanAge),
		MinSnapshotAge: noFloorIfZero(c.MinSnapshotAge),
	})
	if err != nil {
		return err
	}
	defer comp.Close()
	inflight := ingest.NewInFlight(int64(c.MaxInFlight))
	ingestMetrics := ingest.NewMetrics(reg, inflight)
	ingOpts := ingest.Options{
		Catalog:          cat,
		Hot:              hotDB,
		DefaultNamespace: c.DefaultNamespace,
		AutoCreate:       c.AutoCreate,
		Infer: ingest.InferOptions{
			Disabled:   !c.InferSchemas,
			Timestamps: c.InferTimestamps,
			TimeField:  c.InferTimeField,
		},
		Committer:  fl,
		Files:      wh.FS,
		Flusher:    fl,
		CommitWait: c.CommitWait,
		Claims:     member.claims(c.Cluster),
		Logger:     log.With("component", "ingest"),
		Metrics:    ingestMetrics,
	}
	if c.Cluster {
		ingOpts.Staged = flOpts.Staging
	}
	ing, err := ingest.New(ingOpts)
	if err != nil {
		return err
	}
	defer ing.Close()
	planMode, _ := planning.ParseMode(c.ScanPlanning) // checked by parseConfig
	planner, err := planning.New(planning.Options{
		FS:         wh.FS,
		Logger:     log.With("component", "planning"),
		Registerer: reg,
		Lifetime:   c.PlanLifetime,
		MaxPlans:   c.MaxPlans,
		PageFiles:  c.PlanPageFiles,
	})
	if err != nil {
		return err
	}
	var liveView *live.Source
	if c.Live {
		if c.MinOrphanAge == 0 {
			log.Warn("--min-orphan-age=0: orphan cleanup may delete the hot-tail files of live plans while clients read them")
		}
		liveView, err = live.New(live.Options{
			Tables:       cat,
			Flusher:      fl,
			PinWindow:    c.LivePinWindow,
			PlanLifetime: planner.Lifetime(),
			Logger:       log.With("component", "live"),
			Registerer:   reg,
		})
		if err != nil {
			return err
		}
	}
	var nodes server.Nodes
	if member != nil {
		nodes = member
		// Claims a previous process left pending are settled before this
		// one takes writes.
		if _, err := member.Settle(ctx, hotDB.LookupKey); err != nil {
			log.Warn("settling idempotency claims; retried every minute", "err", err)
		}
	}
	hub, err := tail.New(tail.Options{
		Source:         ing,
		MaxSubscribers: c.MaxStreamSubscribers,
		Logger:         log.With("component", "tail"),
		Registerer:     reg,
	})
	if err != nil {
		return err
	}
	// Streams end with a final message when a shutdown starts, or they
	// would hold it for --shutdown-timeout.
	defer hub.Close()
	authn, err := c.authenticator(ctx, log.With("component", "auth"), reg)
	if err != nil {
		return err
	}
	srv := server.New(server.Options{
		Catalog:       cat,
		Ingest:        ing,
		InFlight:      inflight,
		IngestMetrics: ingestMetrics,
		Flusher:       fl,
		Compactor:     comp,
		Nodes:         nodes,
		Auth:          authn,
		MaxEventBytes: int64(c.MaxEventBytes),
		MaxBulkBytes:  int64(c.MaxBulkBytes),
		BodyTimeout:   c.BodyTimeout,
		MinBodyRate:   minBodyRate(c.MinBodyRate),
		Logger:        log.With("component", "http"),
		Registry:      reg,
		ReadyChecks: map[string]func(context.Context) error{
			// A failed WAL write stops the hot tier's appends until restart.
			"hot": func(context.Context) error { return hotDB.Err() },
			// Events of a table whose flushes keep failing pile up.
			"flush": func(context.Context) error { return fl.Stuck() },
			// Another process took this node's ID.
			"node": func(context.Context) error { return member.err() },
		},
		Planner:      planner,
		ScanPlanning: planMode,
		Live:         liveView,
		Signer:       wh,
		Vendor:       wh,
		Tail:         hub,
	})

	maxConns := c.MaxConnections
	if files := openFileLimit(); files > 0 && maxConns > files/2 {
		log.Warn("--max-connections lowered to half the open-file limit; raise the limit (ulimit -n) for more",
			"max_connections", files/2, "open_file_limit", files)
		maxConns = files / 2
	}
	ln, err := net.Listen("tcp", c.Listen)
	if err != nil {
		return err
	}
	ln = server.LimitListener(ln, maxConns, reg)
	httpSrv := &http.Server{
		Handler:           srv,
		ReadHeaderTimeout: 10 * time.Second,
		MaxHeaderBytes:    server.MaxHeaderBytes,
		IdleTimeout:       2 * time.Minute,
		ConnContext:       server.ConnContext,
	}
	httpSrv.RegisterOnShutdown(hub.Close)
	storeKind := "embedded"
	if c.PostgresURL != "" {
		storeKind = "postgres"
	}
	log.Info("zombi serving", "version", version, "addr", ln.Addr().String(), "store", storeKind, "warehouse", wh.Root(),
		"auth", authn.On(), "metrics_auth", authn.GuardsMetrics(), "oauth_clients", len(c.OAuthClients) > 0, "oidc", c.OIDCIssuer != "",
		"max_connections", maxConns, "node", hotDB.NodeID(), "stream", hotDB.Stream(), "cluster", c.Cluster,
		"flush_interval", c.FlushInterval, "scan_planning", planMode, "live", c.Live)

	if c.PprofListen != "" {
		go servePprof(c.PprofListen, log)
	}
	errc := make(chan error, 1)
	go func() { errc <- httpSrv.Serve(ln) }()
	go expireReceipts(ctx, cat, log)
	go planner.Run(ctx)
	var lost <-chan error // nil without a member: never ready
	if member != nil {
		// Heartbeats go on through the final flush, until the node leaves.
		lost = member.run(func() cluster.Stats {
			return cluster.Stats{BacklogBytes: hotDB.BacklogBytes(), OldestUnflushed: fl.OldestPending(), LastCommit: fl.LastCommit()}
		}, hotDB.LookupKey)
	}

	var stopErr error
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	case err := <-lost:
		// Another process holds this node's ID: stop taking writes, and
		// commit what was acknowledged.
		stopErr = err
	}
	log.Info("shutting down", "timeout", c.ShutdownTimeout)
	sctx, cancel := context.WithTimeout(context.Background(), c.ShutdownTimeout)
	defer cancel()
	if err := httpSrv.Shutdown(sctx); err != nil {
		return fmt.Errorf("graceful shutdown: %w", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	// No request writes any more: commit what the hot tier holds.
	if err := fl.Close(sctx); err != nil {
		log.Warn("final flush incomplete; the rest is flushed at the next start", "err", err)
	}
	if member != nil && stopErr == nil {
		if _, err := member.Settle(sctx, hotDB.LookupKey); err != nil {
			log.Warn("settling idempotency claims; the next start does", "err", err)
		}
	}
	log.Info("stopped")
	return stopErr
}

// servePprof serves the runtime profiles for diagnosing a live server.
func servePprof(addr string, log *slog.Logger) {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	log.Info("pprof serving", "addr", addr)
	srv := &http.Server{Addr: addr, Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	if err := srv.ListenAndServe(); err != nil {
		log.Error("pprof server stopped", "err", err)
	}
}

// expireReceipts deletes old idempotency receipts until ctx ends.
func expireReceipts(ctx context.Context, cat *catalog.Service, log *slog.Logger) {
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := cat.ExpireReceipts(ctx); err != nil && ctx.Err() == nil {
				log.Warn("expiring idempotency receipts", "err", err)
			}
		}
	}
}

func migrate(ctx context.Context, c *config) error {
	if c.PostgresURL == "" {
		return errors.New("migrate needs --postgres-url (or ZOMBI_POSTGRES_URL); the embedded store needs no migrations")
	}
	// Opening the Postgres store applies pending migrations under an
	// advisory lock.
	store, err := postgres.Open(ctx, c.PostgresURL)
	if err != nil {
		return err
	}
	defer store.Close()
	fmt.Println("migrations applied")
	return nil
}

// minBodyRate maps --min-body-rate to server.Options, where 0 is the
// default and a negative rate sets no deadline.
func minBodyRate(r byteSize) int64 {
	if r == 0 {
		return -1
	}
	return int64(r)
}

// syncInterval maps --sync-interval to hot.Options, where 0 is the
// default and a negative interval turns pacing off.
func syncInterval(d time.Duration) time.Duration {
	if d == 0 {
		return -1
	}
	return d
}

// noFloorIfZero maps a floor flag, where 0 is no floor, to
// compaction.Options, where 0 is the default and a negative value none.
func noFloorIfZero(d time.Duration) time.Duration {
	if d == 0 {
		return -1
	}
	return d
}

// metadataCheckInterval maps the flag (0: check every load) to
// catalog.Options (0: the default, negative: every load).
func metadataCheckInterval(d time.Duration) time.Duration {
	if d <= 0 {
		return -1
	}
	return d
}
