package warehouse

import (
	"encoding/json"
	"errors"
	"reflect"
	"testing"
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
