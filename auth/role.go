package auth

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/zombi-db/zombi/catalog"
)

// Role is what a caller may do in a namespace. Roles are ordered: each
// may do everything the roles before it may.
type Role int8

const (
	// RoleNone may do nothing.
	RoleNone Role = iota
	// RoleReader may load and list tables, views and namespaces, plan
	// scans, read hot events and report metrics.
	RoleReader
	// RoleWriter may also create tables and views, commit to them (alone
	// or in multi-table transactions) and ingest events.
	RoleWriter
	// RoleAdmin may also create, change and drop namespaces, drop, purge,
	// rename and register tables and views, and flush, compact and
	// maintain tables.
	RoleAdmin
)

var roleNames = [...]string{RoleNone: "none", RoleReader: "reader", RoleWriter: "writer", RoleAdmin: "admin"}

func (r Role) String() string {
	if r < 0 || int(r) >= len(roleNames) {
		return fmt.Sprintf("Role(%d)", r)
	}
	return roleNames[r]
}

// ParseRole parses reader, writer or admin.
func ParseRole(s string) (Role, error) {
	for r, name := range roleNames {
		if r != int(RoleNone) && s == name {
			return Role(r), nil
		}
	}
	return RoleNone, fmt.Errorf("unknown role %q: want reader, writer or admin", s)
}

// Grant gives a role in a namespace and in every namespace below it. A
// grant without a namespace applies to every namespace.
type Grant struct {
	Role      Role
	Namespace catalog.Namespace
}

// ParseGrant parses ROLE or ROLE@NAMESPACE, the namespace's levels
// separated by dots: "writer@sales.eu" is the writer role in sales.eu and
// below it. A namespace whose levels hold dots cannot be named.
func ParseGrant(s string) (Grant, error) {
	role, ns, scoped := strings.Cut(s, "@")
	r, err := ParseRole(role)
	if err != nil {
		return Grant{}, err
	}
	g := Grant{Role: r}
	if scoped {
		g.Namespace = catalog.Namespace(strings.Split(ns, "."))
		if err := catalog.ValidateNamespace(g.Namespace); err != nil {
			return Grant{}, fmt.Errorf("grant %q: %w", s, err)
		}
	}
	return g, nil
}

func (g Grant) String() string {
	if len(g.Namespace) == 0 {
		return g.Role.String()
	}
	return g.Role.String() + "@" + strings.Join(g.Namespace, ".")
}

// covers reports whether a grant in scope applies to ns: ns is scope or
// lies below it. The empty scope covers every namespace, and only it
// covers the empty namespace (the top level).
func covers(scope, ns catalog.Namespace) bool {
	return len(scope) <= len(ns) && slices.Equal(scope, ns[:len(scope)])
}

// Principal is an authenticated caller.
type Principal struct {
	// Name says who the caller is in logs: "token 2", "client spark",
	// "oidc alice". It never holds a secret.
	Name string
	// Method is how the caller authenticated: none (auth is off), static,
	// zombi (a token from /v1/oauth/tokens) or oidc.
	Method string
	Grants []Grant
	// Metrics: the caller may read /metrics and the details of
	// /health/ready whatever its grants.
	Metrics bool
	// NoMaintenance: the caller may not compact or maintain tables on
	// request whatever its role; a plain --auth-token keeps this meaning
	// of before roles.
	NoMaintenance bool
}

// Everyone is the caller of every request when auth is off.
var Everyone = &Principal{Name: "anyone", Method: "none", Grants: []Grant{{Role: RoleAdmin}}, Metrics: true}

// Role is the caller's role in ns: the highest of its grants that cover
// ns. For the empty namespace (the top level) only grants on every
// namespace count.
func (p *Principal) Role(ns catalog.Namespace) Role {
	best := RoleNone
	for _, g := range p.Grants {
		if g.Role > best && covers(g.Namespace, ns) {
			best = g.Role
		}
	}
	return best
}

// Anywhere is the caller's highest role in any namespace.
func (p *Principal) Anywhere() Role {
	best := RoleNone
	for _, g := range p.Grants {
		best = max(best, g.Role)
	}
	return best
}

type contextKey struct{}

// NewContext returns ctx carrying p.
func NewContext(ctx context.Context, p *Principal) context.Context {
	return context.WithValue(ctx, contextKey{}, p)
}

// FromContext returns the caller a request's context carries.
func FromContext(ctx context.Context) (*Principal, bool) {
	p, ok := ctx.Value(contextKey{}).(*Principal)
	return p, ok && p != nil
}

// TableRole is the role of the request's caller on table id: what it may
// do with the table, and so which storage credentials it may be given
// (reader: read-only; writer and admin: read-write). It is RoleAdmin when
// auth is off, and RoleNone when ctx carries no caller (the server puts
// the caller into the context of every catalog request).
func TableRole(ctx context.Context, id catalog.Ident) Role {
	return NamespaceRole(ctx, id.Namespace)
}

// NamespaceRole is the role of the request's caller in ns (see TableRole).
func NamespaceRole(ctx context.Context, ns catalog.Namespace) Role {
	p, ok := FromContext(ctx)
	if !ok {
		return RoleNone
	}
	return p.Role(ns)
}
