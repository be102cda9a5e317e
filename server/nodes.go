package server

import (
	"context"
	"fmt"
	"net/http"

	"github.com/labstack/echo/v4"
	"github.com/zombi-db/zombi/catalog"
	"github.com/zombi-db/zombi/cluster"
	"github.com/zombi-db/zombi/openapi"
)

// Nodes is what the server needs from cluster membership.
type Nodes interface {
	Nodes(ctx context.Context) ([]cluster.Node, error)
}

// ListNodes lists the nodes registered on the database.
func (s *Server) ListNodes(c echo.Context) error {
	if s.nodes == nil {
		return fmt.Errorf("%w: this node keeps no node registry (it runs on the embedded store)", catalog.ErrNotFound)
	}
	nodes, err := s.nodes.Nodes(c.Request().Context())
	if err != nil {
		return fmt.Errorf("%w: %w", catalog.ErrUnavailable, err)
	}
	out := openapi.NodeList{Nodes: make([]openapi.Node, len(nodes))}
	for i, n := range nodes {
		o := openapi.Node{
			NodeId:              n.ID,
			Stream:              int(n.Stream),
			Cluster:             n.Cluster,
			State:               openapi.NodeState(n.State),
			StartedAt:           n.Started.UTC(),
			HeartbeatAgeSeconds: n.HeartbeatAge.Seconds(),
			BacklogBytes:        n.BacklogBytes,
		}
		if n.URL != "" {
			o.Url = &n.URL
		}
		if !n.OldestUnflushed.IsZero() {
			t := n.OldestUnflushed.UTC()
			o.OldestUnflushed = &t
		}
		if !n.LastCommit.IsZero() {
			t := n.LastCommit.UTC()
			o.LastCommit = &t
		}
		out.Nodes[i] = o
	}
	return c.JSON(http.StatusOK, out)
}
