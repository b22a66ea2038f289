package api

import (
	"context"
	_ "embed" // openapi.yaml
	"errors"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.temporal.io/sdk/client"
)

//go:embed openapi.yaml
var openAPIDocument []byte

// OpenAPIDocument is the API's OpenAPI document (openapi.yaml), as GET /openapi.yaml serves it;
// the test suites validate their exchanges against it (internal/testkit/openapicheck).
func OpenAPIDocument() []byte { return openAPIDocument }

func serveOpenAPI(c *gin.Context) {
	c.Header("Cache-Control", "no-cache")
	c.Data(http.StatusOK, "application/yaml", openAPIDocument)
}

// healthz answers while the process serves HTTP; it checks nothing else, so a dependency's
// outage never gets the API restarted.
func (s *Server) healthz(c *gin.Context) {
	c.Header("Cache-Control", "no-store")
	c.JSON(http.StatusOK, gin.H{"status": "ok"})
}

// readyz checks Postgres and Temporal, each within readyTimeout and concurrently, and names
// the failing ones. Reasons are logged, not shown: they can carry addresses.
func (s *Server) readyz(c *gin.Context) {
	checks := map[string]func(context.Context) error{
		"postgres": func(ctx context.Context) error {
			if s.store == nil {
				return errors.New("no store")
			}
			return s.store.Ping(ctx)
		},
		"temporal": func(ctx context.Context) error {
			if s.temporal == nil {
				return errors.New("no temporal client")
			}
			_, err := s.temporal.CheckHealth(ctx, &client.CheckHealthRequest{})
			return err
		},
	}
	results := make(map[string]string, len(checks))
	var mu sync.Mutex
	var wg sync.WaitGroup
	for name, check := range checks {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(c.Request.Context(), readyTimeout)
			defer cancel()
			state := "ok"
			if err := check(ctx); err != nil {
				state = "unavailable"
				s.log.Warn("readiness check failed", "check", name, "error", err)
			}
			mu.Lock()
			results[name] = state
			mu.Unlock()
		})
	}
	wg.Wait()
	status, overall := http.StatusOK, "ok"
	for _, state := range results {
		if state != "ok" {
			status, overall = http.StatusServiceUnavailable, "unavailable"
		}
	}
	c.Header("Cache-Control", "no-store")
	c.JSON(status, gin.H{"status": overall, "checks": results})
}

// httpMetrics are the RED metrics of the API, labelled by route template so that no id or
// token ever becomes a label value.
type httpMetrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	problems *prometheus.CounterVec
}

func newHTTPMetrics(reg *prometheus.Registry) *httpMetrics {
	m := &httpMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "http_requests_total",
			Help: "HTTP requests answered, by method, route template and status.",
		}, []string{"method", "route", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "http_request_duration_seconds",
			Help: "Time to answer HTTP requests, by method and route template.",
			// Up to 20 s: creates and accepts wait for the workflow, which waits for the database.
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 20},
		}, []string{"method", "route"}),
	}
	// Problem codes say why requests were refused (seats_exhausted, rate_limited, ...): the
	// refusals the API decides itself never reach the worker's metrics.
	m.problems = register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "http_problems_total",
		Help: "Problem answers by route template and problem code.",
	}, []string{"route", "code"}))
	m.requests = register(reg, m.requests)
	m.duration = register(reg, m.duration)
	register(reg, collectors.NewGoCollector())
	register(reg, collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// register registers c, or returns the equal collector registered before, so two servers
// (tests, or an API embedded beside a worker) can share one registry.
func register[C prometheus.Collector](reg *prometheus.Registry, c C) C {
	if err := reg.Register(c); err != nil {
		var already prometheus.AlreadyRegisteredError
		if errors.As(err, &already) {
			if existing, ok := already.ExistingCollector.(C); ok {
				return existing
			}
		}
		panic(err) // a conflicting metric is a programming error, caught by any test
	}
	return c
}

// knownMethods bounds the method label: anything else is counted as OTHER.
var knownMethods = map[string]bool{
	http.MethodGet: true, http.MethodHead: true, http.MethodPost: true, http.MethodPut: true,
	http.MethodPatch: true, http.MethodDelete: true, http.MethodOptions: true,
}

func (m *httpMetrics) observe(method, route string, status int, elapsed time.Duration) {
	if !knownMethods[method] {
		method = "OTHER"
	}
	m.requests.WithLabelValues(method, route, strconv.Itoa(status)).Inc()
	m.duration.WithLabelValues(method, route).Observe(elapsed.Seconds())
}

// problem counts a problem answer; codes are the service's own fixed set.
func (m *httpMetrics) problem(route, code string) {
	m.problems.WithLabelValues(route, code).Inc()
}

func metricsHandler(reg *prometheus.Registry) gin.HandlerFunc {
	return gin.WrapH(MetricsHandler(reg))
}

// MetricsHandler serves reg's metrics: on METRICS_ADDR when it is set, off the public listener.
func MetricsHandler(reg *prometheus.Registry) http.Handler {
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg})
}
