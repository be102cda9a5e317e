package warehouse

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestSessionPolicy(t *testing.T) {
	read := policyStatement{Effect: "Allow", Action: []string{"s3:GetObject"},
		Resource: []string{"arn:aws:s3:::wh/pre/ns/t/*"}}
	list := policyStatement{Effect: "Allow", Action: []string{"s3:ListBucket"},
		Resource:  []string{"arn:aws:s3:::wh"},
		Condition: map[string]map[string][]string{"StringLike": {"s3:prefix": {"pre/ns/t/*"}}}}
	write := policyStatement{Effect: "Allow",
		Action:   []string{"s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"},
		Resource: []string{"arn:aws:s3:::wh/pre/ns/t/*"}}

	for _, tc := range []struct {
		name   string
		bucket string
		key    string
		write  bool
		want   []policyStatement
		bad    bool
	}{
		{name: "reader", bucket: "wh", key: "pre/ns/t", want: []policyStatement{read, list}},
		{name: "writer", bucket: "wh", key: "pre/ns/t", write: true, want: []policyStatement{read, list, write}},
		{name: "slashes trimmed", bucket: "wh", key: "/pre/ns/t/", want: []policyStatement{read, list}},
		{name: "empty key", bucket: "wh", key: "", bad: true},
		{name: "only slashes", bucket: "wh", key: "//", bad: true},
		{name: "empty bucket", bucket: "", key: "t", bad: true},
		{name: "star", bucket: "wh", key: "ns/t*", bad: true},
		{name: "question mark", bucket: "wh", key: "ns/t?", bad: true},
		{name: "policy variable", bucket: "wh", key: "ns/${aws:username}", bad: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := SessionPolicy(tc.bucket, tc.key, tc.write)
			if tc.bad {
				if !errors.Is(err, ErrNotVendable) {
					t.Fatalf("SessionPolicy = %s, %v; want ErrNotVendable", got, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var doc policyDocument
			if err := json.Unmarshal([]byte(got), &doc); err != nil {
				t.Fatal(err)
			}
			if doc.Version != "2012-10-17" {
				t.Errorf("Version = %q", doc.Version)
			}
			if !reflect.DeepEqual(doc.Statement, tc.want) {
				t.Errorf("statements:\n got %+v\nwant %+v", doc.Statement, tc.want)
			}
		})
	}
}

func TestSTSConfigRefused(t *testing.T) {
	s3 := Config{Root: "s3://bucket/wh", S3Endpoint: "http://127.0.0.1:1", S3AccessKey: "k", S3SecretKey: "s", STS: true}
	for _, tc := range []struct {
		name   string
		change func(*Config)
		want   string
	}{
		{"local warehouse", func(c *Config) { c.Root = t.TempDir() }, "need an S3 warehouse"},
		{"static keys too", func(c *Config) { c.VendStaticKeys = true }, "exclude each other"},
		{"no static keys", func(c *Config) { c.S3AccessKey, c.S3SecretKey = "", "" }, "needs the S3 access key"},
		{"too short", func(c *Config) { c.STSDuration = time.Minute }, "outside"},
		{"too long", func(c *Config) { c.STSDuration = 13 * time.Hour }, "outside"},
		{"bad endpoint", func(c *Config) { c.STSEndpoint = "ftp://x" }, "STS endpoint"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := s3
			tc.change(&cfg)
			_, err := Open(context.Background(), cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Open: %v, want an error with %q", err, tc.want)
			}
		})
	}
}
