package server

import (
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/zombi-db/zombi/auth"
	"github.com/zombi-db/zombi/catalog"
	"github.com/zombi-db/zombi/console"
	"github.com/zombi-db/zombi/flusher"
	"github.com/zombi-db/zombi/openapi"
)

// The routes the web console (console/, served at /ui/) reads beside the
// catalog's own: a table's activity on this node, its files by partition,
// and who the caller is.

// GetTableActivity answers the table's counters, watermarks and last
// commits on this node.
func (s *Server) GetTableActivity(c echo.Context, table string) error {
	ctx := c.Request().Context()
	a, err := s.ingest.Activity(ctx, table)
	if err != nil {
		return err
	}
	out := openapi.TableActivity{
		Table:       a.Table,
		At:          time.Now().UTC(),
		High:        int64(a.High),
		Committed:   int64(a.Committed),
		Accepted:    a.Counts.Accepted,
		Duplicates:  a.Counts.Duplicate,
		Rejected:    a.Counts.Rejected,
		DeadLetters: a.Counts.DeadLetters,
		Commits:     []openapi.ActivityCommit{},
	}
	if s.flush != nil {
		out.Node = s.flush.NodeID()
		if fa, ok := s.flush.Activity(a.HotKey); ok {
			out.Committed = max(out.Committed, int64(fa.Committed))
			out.FlushFailures = fa.Failures
			if fa.Failures > 0 && fa.LastError != nil {
				msg := fa.LastError.Error()
				out.FlushError = &msg
			}
			if !fa.Oldest.IsZero() {
				t := fa.Oldest.UTC()
				out.OldestUnflushed = &t
			}
			for _, cm := range fa.Commits {
				out.Commits = append(out.Commits, openapi.ActivityCommit{
					At: cm.At.UTC(), SnapshotId: cm.SnapshotID, Rows: cm.Rows, Files: cm.Files,
					Bytes: cm.Bytes, LagSeconds: cm.Lag.Seconds(), Shared: cm.Shared,
				})
			}
			if q := flusher.LagQuantiles(fa.Commits, 0.5, 0.99); q != nil {
				p50, p99 := q[0].Seconds(), q[1].Seconds()
				out.LagP50Seconds, out.LagP99Seconds = &p50, &p99
			}
		}
	}
	out.Backlog = max(out.High-out.Committed, 0)
	return c.JSON(http.StatusOK, out)
}

// GetTableFiles answers the files of the table's current snapshot by
// partition.
func (s *Server) GetTableFiles(c echo.Context, namespace, name string) error {
	if s.planner == nil {
		return fmt.Errorf("%w: this server reads no manifests (no planner)", catalog.ErrUnavailable)
	}
	id, err := ident(namespace, name)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	t, err := s.cat.LoadTable(ctx, id)
	if err != nil {
		return err
	}
	st, err := s.planner.FileStats(ctx, t)
	if err != nil {
		return err
	}
	out := openapi.TableFiles{
		SnapshotId: st.SnapshotID, DataFiles: st.DataFiles, DeleteFiles: st.DeleteFiles,
		DataBytes: st.DataBytes, DeleteBytes: st.DeleteBytes, Records: st.Records, Truncated: st.Truncated,
		Fields:     make([]openapi.PartitionFieldRef, len(st.Fields)),
		Partitions: make([]openapi.PartitionFiles, len(st.Partitions)),
	}
	for i, f := range st.Fields {
		out.Fields[i] = openapi.PartitionFieldRef{Name: f.Name, Transform: f.Transform}
	}
	for i, p := range st.Partitions {
		values := make([]any, len(p.Values))
		for j, v := range p.Values {
			values[j] = v
		}
		out.Partitions[i] = openapi.PartitionFiles{
			Values: values, DataFiles: p.DataFiles, DeleteFiles: p.DeleteFiles,
			DataBytes: p.DataBytes, DeleteBytes: p.DeleteBytes, Records: p.Records,
		}
	}
	return c.JSON(http.StatusOK, out)
}

// WhoAmI answers the caller's name and grants.
func (s *Server) WhoAmI(c echo.Context) error {
	p, ok := auth.FromContext(c.Request().Context())
	if !ok {
		return errUndeclared
	}
	out := openapi.WhoAmI{Name: p.Name, Method: p.Method, Metrics: s.monitoring(c.Request()), Maintenance: !p.NoMaintenance,
		Grants: make([]openapi.RoleGrant, 0, len(p.Grants))}
	for _, g := range p.Grants {
		rg := openapi.RoleGrant{Role: openapi.RoleGrantRole(g.Role.String())}
		if len(g.Namespace) > 0 {
			ns := strings.Join(g.Namespace, ".")
			rg.Namespace = &ns
		}
		out.Grants = append(out.Grants, rg)
	}
	return c.JSON(http.StatusOK, out)
}

// GetConsole serves the console's page.
func (s *Server) GetConsole(c echo.Context) error {
	return s.GetConsoleAsset(c, console.Index)
}

// GetConsoleAsset serves a file of the console.
func (s *Server) GetConsoleAsset(c echo.Context, asset string) error {
	if !console.Serve(c.Response(), c.Request(), asset) {
		return fmt.Errorf("%w: the console has no file %q", catalog.ErrNotFound, asset)
	}
	return nil
}
