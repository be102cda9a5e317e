package auth

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	authns      *prometheus.CounterVec
	authnSeries map[[2]string]prometheus.Counter
	forbidden   prometheus.Counter
	issued      *prometheus.CounterVec
	refused     *prometheus.CounterVec
	oidcFetches *prometheus.CounterVec
}

func newMetrics(r prometheus.Registerer) *metrics {
	m := &metrics{
		authns: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "zombi", Subsystem: "auth", Name: "authentications_total",
			Help: "Bearer tokens checked, by method (static, zombi: issued by /v1/oauth/tokens, oidc, unknown, none: no token) and result (ok, invalid, missing).",
		}, []string{"method", "result"}),
		forbidden: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "zombi", Subsystem: "auth", Name: "forbidden_total",
			Help: "Requests refused with 403 because the caller's role does not allow them.",
		}),
		issued: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "zombi", Subsystem: "auth", Name: "tokens_issued_total",
			Help: "Tokens issued by /v1/oauth/tokens, by grant type (client_credentials, token_exchange).",
		}, []string{"grant"}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "zombi", Subsystem: "auth", Name: "token_requests_refused_total",
			Help: "Requests to /v1/oauth/tokens refused, by OAuth error code.",
		}, []string{"error"}),
		oidcFetches: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "zombi", Subsystem: "auth", Name: "oidc_fetches_total",
			Help: "Fetches of the OIDC issuer's discovery document and keys, by what (discovery, keys) and result (ok, error).",
		}, []string{"what", "result"}),
	}
	if r != nil {
		r.MustRegister(m.authns, m.forbidden, m.issued, m.refused, m.oidcFetches)
	}
	// Looked up on every request: resolved once.
	m.authnSeries = map[[2]string]prometheus.Counter{}
	for _, method := range []string{"none", "static", "zombi", "oidc", "unknown"} {
		for _, result := range []string{"ok", "invalid", "missing"} {
			m.authnSeries[[2]string{method, result}] = m.authns.WithLabelValues(method, result)
		}
	}
	return m
}

func (m *metrics) authn(method, result string) { m.authnSeries[[2]string{method, result}].Inc() }

func (m *metrics) tokenIssued(grant string) {
	if grant == GrantTokenExchange {
		grant = "token_exchange"
	}
	m.issued.WithLabelValues(grant).Inc()
}

// tokenRefused counts a refusal; code is one of the OAuth error codes
// this package answers.
func (m *metrics) tokenRefused(code string) { m.refused.WithLabelValues(code).Inc() }
