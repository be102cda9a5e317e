package warehouse

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/signer"
)

// SignRequest is an S3 request a catalog client asks the catalog to sign
// (remote signing): what Iceberg's S3V4RestSigner and PyIceberg's
// S3V4RestSigner send.
type SignRequest struct {
	Method  string
	URI     string
	Headers http.Header
	// Body is the request's body, which Iceberg Java sends only for
	// DeleteObjects (POST ?delete): its keys are checked and its SHA-256
	// signed. Nil: none.
	Body *string
}

// Signed is the answer to a SignRequest: the URI to send the request to
// and the headers to add to it, among them Authorization.
type Signed struct {
	URI     string
	Headers http.Header
}

// ErrNotSignable wraps every reason a request is not signed: it is not
// for the warehouse's endpoint and bucket, names an object outside the
// table, or is an S3 operation Zombi does not sign.
var ErrNotSignable = errors.New("request not signed")

// ErrNoSigning is returned by Sign when the warehouse cannot sign: it is
// local, or holds no static S3 keys.
var ErrNoSigning = errors.New("the warehouse does not sign requests (it needs an S3 warehouse with static keys)")

// CanSign reports whether Sign can sign requests: an S3 warehouse with
// static keys.
func (w *Warehouse) CanSign() bool {
	return w.s3 != nil && w.params.accessKey != ""
}

// SignConfig returns the FileIO properties of a table whose S3 requests
// are signed by the catalog: ClientConfig without any credentials.
func (w *Warehouse) SignConfig() map[string]string {
	m := w.ClientConfig()
	delete(m, propAccessKey)
	delete(m, propSecretKey)
	delete(m, propSessionToken)
	return m
}

// Writes reports whether an S3 method changes objects.
func Writes(method string) bool {
	return method != http.MethodGet && method != http.MethodHead
}

// unsignedHeaders are the client's headers left out of the signature:
// they may change between signing and sending (a retry's attempt count)
// or are not the request's (the client's own auth, hop-by-hop headers).
var unsignedHeaders = map[string]bool{
	"Authorization":         true,
	"User-Agent":            true,
	"Accept-Encoding":       true,
	"Connection":            true,
	"Expect":                true,
	"Transfer-Encoding":     true,
	"Content-Length":        true,
	"Amz-Sdk-Invocation-Id": true,
	"Amz-Sdk-Request":       true,
	"X-Amzn-Trace-Id":       true,
	"X-Amz-Date":            true,
	"X-Amz-Security-Token":  true,
}

// Sign signs req with the warehouse's keys if it is an S3 request this
// catalog allows on the table at tableLocation: to the warehouse's
// endpoint and bucket, for an object strictly inside the table's location
// (or a listing of a prefix inside it), one of the operations Iceberg
// clients use to read and write a table's files. The caller checks that
// its client may use req.Method (Writes).
func (w *Warehouse) Sign(tableLocation string, req SignRequest) (Signed, error) {
	if !w.CanSign() {
		return Signed{}, ErrNoSigning
	}
	u, err := w.checkSignable(tableLocation, req.Method, req.URI)
	if err != nil {
		return Signed{}, err
	}
	var payloadHash string
	if isDeleteObjects(req.Method, u) {
		if payloadHash, err = w.checkDeleteObjects(tableLocation, req); err != nil {
			return Signed{}, err
		}
	} else if req.Body != nil && *req.Body != "" {
		return Signed{}, fmt.Errorf("%w: a body is signed for DeleteObjects only", ErrNotSignable)
	}
	for k := range req.Headers {
		if err := checkSignedHeader(k); err != nil {
			return Signed{}, err
		}
	}
	hr, err := http.NewRequest(req.Method, u.String(), nil)
	if err != nil {
		return Signed{}, fmt.Errorf("%w: %v", ErrNotSignable, err)
	}
	for k, vs := range req.Headers {
		k = http.CanonicalHeaderKey(k)
		if unsignedHeaders[k] || k == "Host" {
			continue
		}
		hr.Header[k] = append([]string(nil), vs...)
	}
	switch {
	case payloadHash != "":
		// The body's hash is in the signature: S3 refuses the request
		// with any other body than the one whose keys were checked.
		hr.Header.Set("X-Amz-Content-Sha256", payloadHash)
	case hr.Header.Get("X-Amz-Content-Sha256") == "":
		hr.Header.Set("X-Amz-Content-Sha256", "UNSIGNED-PAYLOAD")
	}
	region := w.params.region
	if region == "" {
		region = "us-east-1"
	}
	signed := signer.SignV4(*hr, w.params.accessKey, w.params.secretKey, w.params.sessionToken, region)
	// Only what the client must add or change: PyIceberg adds each header
	// to the ones it has, so repeating one would double it.
	out := Signed{URI: u.String(), Headers: http.Header{}}
	for k, vs := range signed.Header {
		if !equalValues(vs, headerValues(req.Headers, k)) {
			out.Headers[k] = vs
		}
	}
	return out, nil
}

// amzHeaders are the x-amz-* request headers Zombi signs: the payload's
// hash and checksums, user metadata, encryption and storage class, and
// the ones left unsigned anyway. Any other x-amz-* header would make the
// signed request another operation than the one checked — a copy from any
// key (x-amz-copy-source), a public ACL (x-amz-acl, x-amz-grant-*), a
// redirect, a retention or legal hold — and is refused.
var amzHeaders = map[string]bool{
	"x-amz-content-sha256":                        true,
	"x-amz-decoded-content-length":                true,
	"x-amz-sdk-checksum-algorithm":                true,
	"x-amz-checksum-algorithm":                    true,
	"x-amz-storage-class":                         true,
	"x-amz-date":                                  true,
	"x-amz-security-token":                        true,
	"x-amz-user-agent":                            true,
	"x-amz-te":                                    true, // the AWS SDK asks for a checksum trailer in the answer
	"x-amz-expected-bucket-owner":                 true,
	"x-amz-server-side-encryption":                true,
	"x-amz-request-payer":                         true,
	"x-amz-server-side-encryption-aws-kms-key-id": true,
}

// checkSignedHeader refuses a request header that would change what the
// signed request does (amzHeaders).
func checkSignedHeader(name string) error {
	k := strings.ToLower(name)
	if !strings.HasPrefix(k, "x-amz-") || amzHeaders[k] ||
		strings.HasPrefix(k, "x-amz-meta-") || strings.HasPrefix(k, "x-amz-checksum-") ||
		strings.HasPrefix(k, "x-amz-server-side-encryption-customer-") {
		return nil
	}
	return fmt.Errorf("%w: header %s is not signed", ErrNotSignable, name)
}

func headerValues(h http.Header, key string) []string {
	var out []string
	for k, vs := range h {
		if strings.EqualFold(k, key) {
			out = append(out, vs...)
		}
	}
	return out
}

func equalValues(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// objectOps are the query parameters of the object operations Zombi signs,
// by method: GetObject and HeadObject (partNumber), PutObject and
// UploadPart, CreateMultipartUpload (uploads) and
// CompleteMultipartUpload, DeleteObject and AbortMultipartUpload.
var objectOps = map[string]map[string]bool{
	http.MethodGet:    {"partNumber": true, "versionId": true},
	http.MethodHead:   {"partNumber": true, "versionId": true},
	http.MethodPut:    {"partNumber": true, "uploadId": true},
	http.MethodPost:   {"uploads": true, "uploadId": true},
	http.MethodDelete: {"uploadId": true},
}

// listParams are the query parameters of ListObjects (v1 and v2), the
// one bucket operation Zombi signs.
var listParams = map[string]bool{
	"list-type": true, "prefix": true, "delimiter": true, "max-keys": true,
	"continuation-token": true, "start-after": true, "marker": true,
	"encoding-type": true, "fetch-owner": true,
}

// checkSignable parses a request URI and checks it against the
// warehouse's endpoint and bucket and the table's location.
func (w *Warehouse) checkSignable(tableLocation, method, uri string) (*url.URL, error) {
	refuse := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrNotSignable, fmt.Sprintf(format, args...))
	}
	if _, ok := objectOps[method]; !ok {
		return nil, refuse("method %q is not signed", method)
	}
	u, err := url.Parse(uri)
	if err != nil {
		return nil, refuse("uri: %v", err)
	}
	scheme := "http"
	if w.params.secure {
		scheme = "https"
	}
	if u.Scheme != scheme || u.User != nil || u.Fragment != "" || u.Opaque != "" {
		return nil, refuse("uri %q is not a request to the warehouse's endpoint %s", uri, w.params.endpointURL())
	}
	// The raw path, decoded once: S3 reads the key from it that way.
	path, err := url.PathUnescape(u.EscapedPath())
	if err != nil {
		return nil, refuse("uri path: %v", err)
	}
	var key string
	host := strings.ToLower(u.Host)
	switch {
	case host == strings.ToLower(w.params.host) && w.params.lookup != minio.BucketLookupDNS:
		bucket, rest, _ := strings.Cut(strings.TrimPrefix(path, "/"), "/")
		if !strings.HasPrefix(path, "/") || bucket != w.bucket {
			return nil, refuse("uri %q is not in the warehouse's bucket", uri)
		}
		key = rest
	case host == strings.ToLower(w.bucket+"."+w.params.host) && w.params.lookup != minio.BucketLookupPath:
		if !strings.HasPrefix(path, "/") {
			return nil, refuse("uri %q has no path", uri)
		}
		key = path[1:]
	default:
		return nil, refuse("uri %q is not a request to the warehouse's endpoint %s and bucket", uri, w.params.endpointURL())
	}
	query, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return nil, refuse("uri query: %v", err)
	}
	for k, vs := range query {
		if len(vs) != 1 {
			return nil, refuse("query parameter %q is repeated", k)
		}
	}
	if strings.ContainsAny(key, "\\\x00") {
		return nil, refuse("object key %q has a backslash or NUL", key)
	}
	if key == "" {
		// A bucket request: a listing of a prefix inside the table, or
		// DeleteObjects (its keys are checked from the body, Sign).
		if method == http.MethodPost && len(query) == 1 && query.Has("delete") && query.Get("delete") == "" {
			return u, nil
		}
		if method != http.MethodGet {
			return nil, refuse("%s on the bucket is not signed", method)
		}
		for k := range query {
			if !listParams[k] {
				return nil, refuse("bucket operation with %q is not signed", k)
			}
		}
		if v, ok := query["list-type"]; ok && v[0] != "2" {
			return nil, refuse("list-type %q", v[0])
		}
		prefix := query.Get("prefix")
		if err := w.checkPrefixInTable(tableLocation, prefix); err != nil {
			return nil, refuse("listing %q: %v", prefix, err)
		}
		return u, nil
	}
	allowed := objectOps[method]
	for k := range query {
		if !allowed[k] {
			return nil, refuse("%s with query parameter %q is not signed", method, k)
		}
	}
	if method == http.MethodPost && len(query) != 1 {
		return nil, refuse("POST on an object is signed for uploads or uploadId only")
	}
	if err := checkKey(key); err != nil {
		return nil, refuse("object key %q: %v", key, err)
	}
	if err := CheckInTable(tableLocation, "s3://"+w.bucket+"/"+key); err != nil {
		return nil, refuse("%v", err)
	}
	return u, nil
}

// checkPrefixInTable checks that a listing prefix selects only keys
// inside the table's location: it begins with the location's key and a
// slash.
func (w *Warehouse) checkPrefixInTable(tableLocation, prefix string) error {
	u, err := parseObjectURI(tableLocation)
	if err != nil {
		return err
	}
	if u.bucket != w.bucket {
		return fmt.Errorf("table location %q is not in bucket %q", tableLocation, w.bucket)
	}
	// The location's key in its canonical spelling, checked as a file
	// would be: any file below it must be inside the table.
	if err := CheckInTable(tableLocation, "s3://"+w.bucket+"/"+prefix+"x"); err != nil {
		return err
	}
	tableKey := strings.TrimSuffix(u.key, "/")
	if !strings.HasPrefix(prefix, tableKey+"/") {
		return fmt.Errorf("prefix %q is not below %q", prefix, tableKey)
	}
	return checkSegments(prefix)
}

// maxDeleteObjects is the most keys one DeleteObjects names (S3's limit),
// and maxDeleteBody the largest body Zombi reads for it.
const (
	maxDeleteObjects = 1000
	maxDeleteBody    = 1 << 20
)

func isDeleteObjects(method string, u *url.URL) bool {
	return method == http.MethodPost && u.Query().Has("delete")
}

// deleteBody is DeleteObjects' request body.
type deleteBody struct {
	XMLName xml.Name `xml:"Delete"`
	Objects []struct {
		Key       string `xml:"Key"`
		VersionID string `xml:"VersionId"`
	} `xml:"Object"`
	Quiet bool `xml:"Quiet"`
}

// checkDeleteObjects checks that every key the body of a DeleteObjects
// names lies inside the table, and returns the body's hex SHA-256, which
// the signature then covers. A payload hash the client sent must be that
// one.
func (w *Warehouse) checkDeleteObjects(tableLocation string, req SignRequest) (string, error) {
	refuse := func(format string, args ...any) error {
		return fmt.Errorf("%w: DeleteObjects: %s", ErrNotSignable, fmt.Sprintf(format, args...))
	}
	if req.Body == nil || *req.Body == "" {
		return "", refuse("no body to check (the client must send it)")
	}
	body := *req.Body
	if len(body) > maxDeleteBody {
		return "", refuse("body of %d bytes", len(body))
	}
	var d deleteBody
	dec := xml.NewDecoder(strings.NewReader(body))
	dec.Strict = true
	if err := dec.Decode(&d); err != nil {
		return "", refuse("body: %v", err)
	}
	if len(d.Objects) == 0 || len(d.Objects) > maxDeleteObjects {
		return "", refuse("%d keys", len(d.Objects))
	}
	for _, o := range d.Objects {
		if err := checkKey(o.Key); err != nil {
			return "", refuse("key %q: %v", o.Key, err)
		}
		if strings.ContainsAny(o.Key, "\\\x00") {
			return "", refuse("key %q has a backslash or NUL", o.Key)
		}
		if err := CheckInTable(tableLocation, "s3://"+w.bucket+"/"+o.Key); err != nil {
			return "", refuse("%v", err)
		}
	}
	sum := sha256.Sum256([]byte(body))
	hash := hex.EncodeToString(sum[:])
	if got := headerValues(req.Headers, "X-Amz-Content-Sha256"); len(got) > 0 && got[0] != hash && got[0] != "UNSIGNED-PAYLOAD" {
		return "", refuse("x-amz-content-sha256 %q is not the body's", got[0])
	}
	return hash, nil
}
