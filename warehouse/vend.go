package warehouse

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/minio/minio-go/v7/pkg/credentials"
)

// Credential vending: temporary S3 credentials from the object store's
// STS (AssumeRole), limited by a session policy to one table's location.

// ErrNotVendable is returned by Vend for a location it will not vend
// credentials for.
var ErrNotVendable = errors.New("no credentials can be vended for this location")

const (
	// propSessionExpiresAtMs is when the session token expires, in Unix
	// milliseconds (Iceberg Java's S3FileIOProperties).
	propSessionExpiresAtMs = "s3.session-token-expires-at-ms"

	defaultSTSDuration = time.Hour
	// minSTSDuration and maxSTSDuration are AssumeRole's bounds
	// (DurationSeconds from 900 to 43200).
	minSTSDuration = 15 * time.Minute
	maxSTSDuration = 12 * time.Hour

	maxVendCache = 1024
)

// Vended are temporary credentials for one table.
type Vended struct {
	// Prefix is the location they are for: the table's location.
	Prefix string
	// Config is the table's client config with the temporary keys and
	// their expiry.
	Config  map[string]string
	Expires time.Time
}

// CanVend reports whether the warehouse vends temporary credentials.
func (w *Warehouse) CanVend() bool {
	return w.s3 != nil && w.cfg.STS
}

// Vend returns temporary credentials for the files of the table at
// tableLocation: read-only, or read-write when write is set. Credentials
// are reused while more than half their lifetime is left, so a client
// that asks again gets ones valid for at least half the duration.
func (w *Warehouse) Vend(ctx context.Context, tableLocation string, write bool) (Vended, error) {
	if !w.CanVend() {
		return Vended{}, fmt.Errorf("warehouse: %w: the warehouse has no STS", ErrNotVendable)
	}
	key, err := w.s3Key(tableLocation)
	if err != nil {
		return Vended{}, fmt.Errorf("%w: %w", ErrNotVendable, err)
	}
	policy, err := SessionPolicy(w.bucket, key, write)
	if err != nil {
		return Vended{}, err
	}
	v, err := w.vend.get(ctx, w, policy)
	if err != nil {
		return Vended{}, err
	}
	cfg := w.ClientConfig()
	cfg[propAccessKey] = v.AccessKeyID
	cfg[propSecretKey] = v.SecretAccessKey
	cfg[propSessionToken] = v.SessionToken
	cfg[propSessionExpiresAtMs] = strconv.FormatInt(v.Expiration.UnixMilli(), 10)
	return Vended{Prefix: "s3://" + w.bucket + "/" + key, Config: cfg, Expires: v.Expiration}, nil
}

// stsDuration is the lifetime asked of the STS.
func (w *Warehouse) stsDuration() time.Duration {
	if w.cfg.STSDuration == 0 {
		return defaultSTSDuration
	}
	return w.cfg.STSDuration
}

// checkSTS validates the STS settings of an S3 warehouse.
func (w *Warehouse) checkSTS() error {
	if !w.cfg.STS {
		return nil
	}
	if w.cfg.VendStaticKeys {
		return errors.New("warehouse: vending static keys and STS credentials exclude each other")
	}
	if w.cfg.S3AccessKey == "" {
		return errors.New("warehouse: STS needs the S3 access key and secret key to call AssumeRole with")
	}
	if d := w.stsDuration(); d < minSTSDuration || d > maxSTSDuration {
		return fmt.Errorf("warehouse: STS duration %v is outside [%v, %v]", d, minSTSDuration, maxSTSDuration)
	}
	if w.cfg.STSEndpoint != "" {
		if _, _, err := parseEndpoint(w.cfg.STSEndpoint); err != nil {
			return fmt.Errorf("warehouse: STS endpoint: %w", err)
		}
	}
	return nil
}

// vendCache holds the credentials last obtained for each session policy.
type vendCache struct {
	mu sync.Mutex
	m  map[string]credentials.Value
}

func (c *vendCache) get(ctx context.Context, w *Warehouse, policy string) (credentials.Value, error) {
	d := w.stsDuration()
	now := time.Now()
	c.mu.Lock()
	v, ok := c.m[policy]
	c.mu.Unlock()
	if ok && v.Expiration.Sub(now) > d/2 {
		return v, nil
	}
	v, err := w.assumeRole(ctx, policy, d)
	if err != nil {
		return credentials.Value{}, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = make(map[string]credentials.Value)
	}
	if len(c.m) >= maxVendCache {
		for k, old := range c.m {
			if old.Expiration.Sub(now) <= d/2 {
				delete(c.m, k)
			}
		}
		if len(c.m) >= maxVendCache {
			clear(c.m)
		}
	}
	c.m[policy] = v
	return v, nil
}

// assumeRole asks the STS for credentials limited by policy.
func (w *Warehouse) assumeRole(ctx context.Context, policy string, d time.Duration) (credentials.Value, error) {
	endpoint := w.cfg.STSEndpoint
	if endpoint == "" {
		endpoint = w.params.endpointURL()
	}
	creds, err := credentials.NewSTSAssumeRole(endpoint, credentials.STSAssumeRoleOptions{
		AccessKey:       w.cfg.S3AccessKey,
		SecretKey:       w.cfg.S3SecretKey,
		SessionToken:    w.cfg.S3SessionToken,
		Policy:          policy,
		Location:        w.params.region,
		DurationSeconds: int(d / time.Second),
		RoleARN:         w.cfg.STSRoleARN,
		RoleSessionName: "zombi",
	})
	if err != nil {
		return credentials.Value{}, fmt.Errorf("warehouse: STS: %w", err)
	}
	v, err := creds.GetWithContext(&credentials.CredContext{Client: http.DefaultClient, Context: ctx})
	if err != nil {
		return credentials.Value{}, fmt.Errorf("warehouse: STS AssumeRole at %s: %w", endpoint, err)
	}
	if v.SessionToken == "" || v.Expiration.IsZero() {
		return credentials.Value{}, fmt.Errorf("warehouse: STS AssumeRole at %s: answer without a session token or expiry", endpoint)
	}
	return v, nil
}

// policyDocument is an IAM policy.
type policyDocument struct {
	Version   string            `json:"Version"`
	Statement []policyStatement `json:"Statement"`
}

type policyStatement struct {
	Effect    string                         `json:"Effect"`
	Action    []string                       `json:"Action"`
	Resource  []string                       `json:"Resource"`
	Condition map[string]map[string][]string `json:"Condition,omitempty"`
}

// SessionPolicy is the session policy of credentials for the table whose
// location is key in bucket: it allows reading the objects under key/
// and listing them, and with write also putting and deleting them and
// multipart uploads. A session policy only narrows what the assumed role
// may do. Keys with characters that IAM reads as wildcards or variables
// (*, ?, $) are refused.
func SessionPolicy(bucket, key string, write bool) (string, error) {
	key = strings.Trim(key, "/")
	if bucket == "" || key == "" {
		return "", fmt.Errorf("warehouse: %w: empty bucket or key", ErrNotVendable)
	}
	if strings.ContainsAny(bucket+key, "*?$") {
		return "", fmt.Errorf("warehouse: %w: %q holds *, ? or $, which a policy cannot name literally", ErrNotVendable, key)
	}
	objects := "arn:aws:s3:::" + bucket + "/" + key + "/*"
	doc := policyDocument{
		Version: "2012-10-17",
		Statement: []policyStatement{
			{Effect: "Allow", Action: []string{"s3:GetObject"}, Resource: []string{objects}},
			{
				Effect:    "Allow",
				Action:    []string{"s3:ListBucket"},
				Resource:  []string{"arn:aws:s3:::" + bucket},
				Condition: map[string]map[string][]string{"StringLike": {"s3:prefix": {key + "/*"}}},
			},
		},
	}
	if write {
		doc.Statement = append(doc.Statement, policyStatement{
			Effect:   "Allow",
			Action:   []string{"s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"},
			Resource: []string{objects},
		})
	}
	b, err := json.Marshal(doc)
	if err != nil {
		return "", err
	}
	return string(b), nil
}
