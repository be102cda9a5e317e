package auth

import (
	"context"
	"reflect"
	"testing"

	"github.com/zombi-db/zombi/catalog"
	"golang.org/x/crypto/bcrypt"
)

func TestParseGrant(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Grant
		err  bool
	}{
		{in: "reader", want: Grant{Role: RoleReader}},
		{in: "writer", want: Grant{Role: RoleWriter}},
		{in: "admin", want: Grant{Role: RoleAdmin}},
		{in: "writer@sales", want: Grant{Role: RoleWriter, Namespace: catalog.Namespace{"sales"}}},
		{in: "admin@sales.eu", want: Grant{Role: RoleAdmin, Namespace: catalog.Namespace{"sales", "eu"}}},
		{in: "none", err: true},
		{in: "Reader", err: true},
		{in: "", err: true},
		{in: "writer@", err: true},
		{in: "writer@sales..eu", err: true},
		{in: "writer@.sales", err: true},
		{in: "writer@sales/eu", err: true},
	} {
		g, err := ParseGrant(tc.in)
		if (err != nil) != tc.err || (err == nil && !reflect.DeepEqual(g, tc.want)) {
			t.Errorf("ParseGrant(%q) = %+v, %v; want %+v, error %v", tc.in, g, err, tc.want, tc.err)
		}
		if err == nil && g.String() != tc.in {
			t.Errorf("Grant(%q).String() = %q", tc.in, g.String())
		}
	}
}

func TestParseToken(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Token
		err  bool
	}{
		{in: "s3cret", want: Token{Secret: "s3cret", Plain: true}},
		{in: "s3cret:reader", want: Token{Secret: "s3cret", Grant: Grant{Role: RoleReader}}},
		{in: "s3cret:writer@sales.eu", want: Token{Secret: "s3cret", Grant: Grant{Role: RoleWriter, Namespace: catalog.Namespace{"sales", "eu"}}}},
		{in: "a:b:admin", want: Token{Secret: "a:b", Grant: Grant{Role: RoleAdmin}}},
		// What follows the colon is no role: all of it is the token.
		{in: "user:pass", want: Token{Secret: "user:pass", Plain: true}},
		{in: ":reader", want: Token{Secret: ":reader", Plain: true}},
		{in: "", err: true},
	} {
		got, err := ParseToken(tc.in)
		if (err != nil) != tc.err || (err == nil && !reflect.DeepEqual(got, tc.want)) {
			t.Errorf("ParseToken(%q) = %+v, %v; want %+v, error %v", tc.in, got, err, tc.want, tc.err)
		}
	}
}

func TestParseClient(t *testing.T) {
	hash, err := bcrypt.GenerateFromPassword([]byte("secret"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	h := string(hash)
	for _, tc := range []struct {
		in   string
		want Client
		err  bool
	}{
		{in: "spark:writer:" + h, want: Client{ID: "spark", Grant: Grant{Role: RoleWriter}, Hash: h}},
		{in: "bot@ops:reader@sales.eu:" + h, want: Client{ID: "bot@ops", Grant: Grant{Role: RoleReader, Namespace: catalog.Namespace{"sales", "eu"}}, Hash: h}},
		{in: "spark:" + h, err: true},
		{in: "spark:writer:secret", err: true},
		{in: "spark:boss:" + h, err: true},
		{in: ":writer:" + h, err: true},
		{in: "a b:writer:" + h, err: true},
		{in: "spark:writer:" + h + ":x", err: true},
	} {
		got, err := ParseClient(tc.in)
		if (err != nil) != tc.err || (err == nil && !reflect.DeepEqual(got, tc.want)) {
			t.Errorf("ParseClient(%q) = %+v, %v; want %+v, error %v", tc.in, got, err, tc.want, tc.err)
		}
	}
}

func TestPrincipalRole(t *testing.T) {
	p := &Principal{Grants: []Grant{
		{Role: RoleReader},
		{Role: RoleWriter, Namespace: catalog.Namespace{"sales"}},
		{Role: RoleAdmin, Namespace: catalog.Namespace{"sales", "eu"}},
	}}
	for _, tc := range []struct {
		ns   catalog.Namespace
		want Role
	}{
		{nil, RoleReader},
		{catalog.Namespace{"ops"}, RoleReader},
		{catalog.Namespace{"sales"}, RoleWriter},
		{catalog.Namespace{"sales", "us"}, RoleWriter},
		{catalog.Namespace{"sales", "eu"}, RoleAdmin},
		{catalog.Namespace{"sales", "eu", "de"}, RoleAdmin},
		{catalog.Namespace{"salesx"}, RoleReader},
		{catalog.Namespace{"sales.eu"}, RoleReader},
		{catalog.Namespace{"ops", "sales"}, RoleReader},
	} {
		if got := p.Role(tc.ns); got != tc.want {
			t.Errorf("Role(%q) = %v, want %v", tc.ns, got, tc.want)
		}
	}
	if got := p.Anywhere(); got != RoleAdmin {
		t.Errorf("Anywhere() = %v", got)
	}
	scoped := &Principal{Grants: []Grant{{Role: RoleAdmin, Namespace: catalog.Namespace{"sales"}}}}
	if got := scoped.Role(nil); got != RoleNone {
		t.Errorf("a scoped grant on the top level: %v", got)
	}
	ctx := NewContext(context.Background(), p)
	if got := TableRole(ctx, catalog.Ident{Namespace: catalog.Namespace{"sales", "eu"}, Name: "t"}); got != RoleAdmin {
		t.Errorf("TableRole = %v", got)
	}
	if got := TableRole(context.Background(), catalog.Ident{Namespace: catalog.Namespace{"sales"}, Name: "t"}); got != RoleNone {
		t.Errorf("TableRole without a caller = %v", got)
	}
}
