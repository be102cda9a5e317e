package warehouse

import (
	"context"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"sync"

	icebergio "github.com/apache/iceberg-go/io"
	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// Property keys read by the S3 backend and written by Warehouse.IOProps and
// Warehouse.ClientConfig. They are iceberg's standard FileIO properties.
const (
	propEndpoint       = icebergio.S3EndpointURL            // "s3.endpoint"
	propRegion         = icebergio.S3Region                 // "s3.region"
	propClientRegion   = icebergio.S3ClientRegion           // "client.region"
	propAccessKey      = icebergio.S3AccessKeyID            // "s3.access-key-id"
	propSecretKey      = icebergio.S3SecretAccessKey        // "s3.secret-access-key"
	propSessionToken   = icebergio.S3SessionToken           // "s3.session-token"
	propForceVirtual   = icebergio.S3ForceVirtualAddressing // "s3.force-virtual-addressing"
	propPathStyle      = "s3.path-style-access"
	defaultS3Region    = "us-east-1"
	maxCachedS3Clients = 64
)

func init() {
	for _, scheme := range s3Schemes {
		icebergio.Register(scheme, loadS3FS)
	}
}

// loadS3FS is the iceberg-go io.SchemeFactory for s3:// and s3a:// locations.
// The returned FileIO serves the bucket of the location and performs its
// operations under ctx.
func loadS3FS(ctx context.Context, parsed *url.URL, props map[string]string) (icebergio.IO, error) {
	if parsed.Host == "" {
		return nil, fmt.Errorf("warehouse: no bucket in s3 location %q", parsed.String())
	}
	p, err := s3ParamsFromProps(props)
	if err != nil {
		return nil, err
	}
	client, err := s3Client(p)
	if err != nil {
		return nil, err
	}
	return newS3FS(ctx, client, parsed.Host), nil
}

// s3Params is everything a minio client depends on. It is comparable and
// keys the client cache: identical properties share one client (and one
// connection pool).
type s3Params struct {
	host         string // host[:port], no scheme
	secure       bool
	region       string
	lookup       minio.BucketLookupType
	accessKey    string
	secretKey    string
	sessionToken string
}

// endpointURL returns the endpoint as a URL with its scheme.
func (p s3Params) endpointURL() string {
	if p.secure {
		return "https://" + p.host
	}
	return "http://" + p.host
}

// parseEndpoint accepts "http://host:port", "https://host" or a bare
// "host:port" (HTTPS). An empty endpoint means AWS S3.
func parseEndpoint(endpoint string) (host string, secure bool, err error) {
	if endpoint == "" {
		return "s3.amazonaws.com", true, nil
	}
	if !strings.Contains(endpoint, "://") {
		endpoint = "https://" + endpoint
	}
	u, err := url.Parse(endpoint)
	if err != nil {
		return "", false, fmt.Errorf("warehouse: invalid s3 endpoint %q: %w", endpoint, err)
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return "", false, fmt.Errorf("warehouse: s3 endpoint %q: scheme must be http or https", endpoint)
	case u.Host == "":
		return "", false, fmt.Errorf("warehouse: s3 endpoint %q has no host", endpoint)
	case u.Path != "" && u.Path != "/", u.RawQuery != "", u.Fragment != "", u.User != nil:
		return "", false, fmt.Errorf("warehouse: s3 endpoint %q must be scheme://host[:port] only", endpoint)
	}
	return u.Host, u.Scheme == "https", nil
}

// s3ParamsFromProps reads iceberg FileIO properties. Addressing style:
// s3.path-style-access=true forces path style and =false lets the client
// choose; otherwise s3.force-virtual-addressing=true forces virtual-host style
// and =false path style; with neither the client chooses (virtual-host style
// for AWS and GCS endpoints, path style for anything else).
func s3ParamsFromProps(props map[string]string) (s3Params, error) {
	var p s3Params
	var err error
	if p.host, p.secure, err = parseEndpoint(props[propEndpoint]); err != nil {
		return s3Params{}, err
	}
	p.region = props[propRegion]
	if p.region == "" {
		p.region = props[propClientRegion]
	}
	p.lookup = minio.BucketLookupAuto
	if v, ok := props[propPathStyle]; ok {
		pathStyle, err := strconv.ParseBool(v)
		if err != nil {
			return s3Params{}, fmt.Errorf("warehouse: %s=%q: %w", propPathStyle, v, err)
		}
		if pathStyle {
			p.lookup = minio.BucketLookupPath
		}
	} else if v, ok := props[propForceVirtual]; ok {
		virtual, err := strconv.ParseBool(v)
		if err != nil {
			return s3Params{}, fmt.Errorf("warehouse: %s=%q: %w", propForceVirtual, v, err)
		}
		p.lookup = minio.BucketLookupPath
		if virtual {
			p.lookup = minio.BucketLookupDNS
		}
	}
	p.accessKey = props[propAccessKey]
	p.secretKey = props[propSecretKey]
	p.sessionToken = props[propSessionToken]
	if (p.accessKey == "") != (p.secretKey == "") {
		return s3Params{}, fmt.Errorf("warehouse: %s and %s must be set together", propAccessKey, propSecretKey)
	}
	return p, nil
}

// props returns the iceberg FileIO properties that s3ParamsFromProps maps
// back to p.
func (p s3Params) props() map[string]string {
	m := map[string]string{
		propEndpoint:  p.endpointURL(),
		propPathStyle: strconv.FormatBool(p.lookup == minio.BucketLookupPath),
	}
	if p.lookup == minio.BucketLookupDNS {
		delete(m, propPathStyle)
		m[propForceVirtual] = "true"
	}
	if p.region != "" {
		m[propRegion] = p.region
		m[propClientRegion] = p.region
	}
	if p.accessKey != "" {
		m[propAccessKey] = p.accessKey
		m[propSecretKey] = p.secretKey
	}
	if p.sessionToken != "" {
		m[propSessionToken] = p.sessionToken
	}
	return m
}

var s3Clients struct {
	sync.Mutex
	m map[s3Params]*minio.Client
}

// s3Client returns the cached client for p, creating it on first use. The
// cache is bounded; when full it is emptied (clients in use stay valid).
func s3Client(p s3Params) (*minio.Client, error) {
	s3Clients.Lock()
	defer s3Clients.Unlock()
	if c, ok := s3Clients.m[p]; ok {
		return c, nil
	}
	c, err := newS3Client(p)
	if err != nil {
		return nil, err
	}
	if s3Clients.m == nil || len(s3Clients.m) >= maxCachedS3Clients {
		s3Clients.m = make(map[s3Params]*minio.Client)
	}
	s3Clients.m[p] = c
	return c, nil
}

func newS3Client(p s3Params) (*minio.Client, error) {
	var creds *credentials.Credentials
	if p.accessKey != "" {
		creds = credentials.NewStaticV4(p.accessKey, p.secretKey, p.sessionToken)
	} else {
		// No keys configured: the environment, the shared credentials file,
		// then the instance or pod identity (IRSA, ECS, EC2).
		creds = credentials.NewChainCredentials([]credentials.Provider{
			&credentials.EnvAWS{},
			&credentials.EnvMinio{},
			&credentials.FileAWSCredentials{},
			&credentials.IAM{},
		})
	}
	c, err := minio.New(p.host, &minio.Options{
		Creds:        creds,
		Secure:       p.secure,
		Region:       p.region,
		BucketLookup: p.lookup,
	})
	if err != nil {
		return nil, fmt.Errorf("warehouse: s3 client for %s: %w", p.endpointURL(), err)
	}
	return c, nil
}
