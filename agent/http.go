package agent

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/mnpool/mnpool/pool"
	"github.com/mnpool/mnpool/pool/liveness"
)

// Health is what /healthz reports. OK is false (HTTP 503) while the agent
// starts, when its last heartbeat is older than 3 heartbeat intervals (at
// least 5 s), when the database node in use is not healthy, or when the
// last sync failed; Problems says which.
type Health struct {
	Member   string   `json:"member"`
	Phase    string   `json:"phase"`
	OK       bool     `json:"ok"`
	Problems []string `json:"problems,omitempty"`
	Timing   Timing   `json:"timing"`
	// LastBeat is the age of the last committed heartbeat (on this
	// process's clock); BeatError the error of the last failed one.
	LastBeat  time.Duration `json:"last_beat_ns"`
	BeatError string        `json:"beat_error,omitempty"`
	DB        *pool.Health  `json:"db,omitempty"`
	Sync      *syncStatus   `json:"sync,omitempty"`
	Master    pool.Master   `json:"master"`
	// ServeDynamic: this member serves the DHCP dynamic range now.
	ServeDynamic bool `json:"serve_dynamic"`
	// AutoFailover is site.autofailover as last read (AutoFailoverError
	// when its value is not 0 or 1); Leader is set while this agent holds
	// the failover lease, with its fencing token.
	AutoFailover      bool                 `json:"autofailover"`
	AutoFailoverError string               `json:"autofailover_error,omitempty"`
	Leader            bool                 `json:"leader"`
	Token             int64                `json:"token,omitempty"`
	Members           []liveness.Judgement `json:"members,omitempty"`
}

// Health returns the agent's health now.
func (a *Agent) Health() Health {
	a.mu.Lock()
	h := Health{Member: a.self, Phase: a.phase, Timing: a.timing, Leader: a.leader, Token: a.token,
		AutoFailover: a.autofail, AutoFailoverError: a.autofailErr, ServeDynamic: a.served}
	if a.phase == PhaseStarting && a.startErr != nil {
		h.Problems = append(h.Problems, "waiting for the pool database: "+a.startErr.Error())
	}
	if !a.lastBeat.IsZero() {
		h.LastBeat = time.Since(a.lastBeat)
	}
	if a.beatErr != nil {
		h.BeatError = a.beatErr.Error()
	}
	if !a.healthAt.IsZero() {
		db := a.health
		h.DB = &db
		switch {
		case a.healthErr != nil:
			h.Problems = append(h.Problems, "database health: "+a.healthErr.Error())
		case !db.Healthy:
			h.Problems = append(h.Problems, fmt.Sprintf("database node %s not healthy: %s", db.Node, db.Problem))
		}
	}
	if !a.lastSync.At.IsZero() {
		s := a.lastSync
		h.Sync = &s
		if !s.OK {
			h.Problems = append(h.Problems, "last sync failed: "+s.Err)
		}
	}
	if a.state != nil {
		h.Master = a.state.Master
	}
	obs, running, iv := a.obs, a.phase == PhaseRunning, a.timing.HeartbeatInterval
	a.mu.Unlock()
	if running {
		if limit := max(3*iv, 5*time.Second); h.LastBeat == 0 || h.LastBeat > limit {
			h.Problems = append(h.Problems, fmt.Sprintf("no heartbeat committed for more than %v", limit))
		}
	} else {
		h.Problems = append(h.Problems, "agent "+h.Phase)
	}
	if obs != nil {
		v := obs.View()
		for _, m := range v.Members() {
			h.Members = append(h.Members, v[m])
		}
	}
	h.OK = len(h.Problems) == 0
	return h
}

// Timeouts of the agent's HTTP server, used for a zero field of
// HTTPTimeouts.
const (
	// DefaultHTTPReadTimeout bounds reading a request, headers and body.
	DefaultHTTPReadTimeout = 10 * time.Second
	// DefaultHTTPWriteTimeout bounds writing a response.
	DefaultHTTPWriteTimeout = 30 * time.Second
	// DefaultHTTPIdleTimeout closes a keep-alive connection that has sent
	// no new request for this long.
	DefaultHTTPIdleTimeout = 30 * time.Second
)

// HTTPTimeouts are the agent's HTTP server timeouts; a zero field takes
// its default.
type HTTPTimeouts struct {
	Read, Write, Idle time.Duration
}

func (t HTTPTimeouts) withDefaults() HTTPTimeouts {
	if t.Read <= 0 {
		t.Read = DefaultHTTPReadTimeout
	}
	if t.Write <= 0 {
		t.Write = DefaultHTTPWriteTimeout
	}
	if t.Idle <= 0 {
		t.Idle = DefaultHTTPIdleTimeout
	}
	return t
}

// WithHTTPTimeouts sets the read, write and idle timeouts of the HTTP
// server started by WithHTTPAddr or WithHTTPListener.
func WithHTTPTimeouts(t HTTPTimeouts) Option { return func(o *options) { o.httpTimeout = t } }

// WithHTTPToken sets the bearer token that unlocks the detail of
// /healthz (the JSON Health: database node, members, failover state).
// Without the token in "Authorization: Bearer TOKEN", /healthz says only
// "ok" (200) or "unhealthy" (503); without WithHTTPToken it never shows
// more.
func WithHTTPToken(token string) Option { return func(o *options) { o.httpToken = token } }

// Handler serves /metrics (Prometheus text format) and /healthz, for a
// product that runs its own HTTP server. /healthz answers 200 "ok" or
// 503 "unhealthy" (text) to anyone, and the JSON Health to a request
// carrying the WithHTTPToken token. /metrics is not authenticated: serve
// it on loopback or a management network only.
func (a *Agent) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(a.reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		h := a.Health()
		w.Header().Set("Cache-Control", "no-store")
		if !a.authorized(r) {
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			if !h.OK {
				w.WriteHeader(http.StatusServiceUnavailable)
				io.WriteString(w, "unhealthy\n")
				return
			}
			io.WriteString(w, "ok\n")
			return
		}
		w.Header().Set("Content-Type", "application/json")
		if !h.OK {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(h)
	})
	return mux
}

// authorized reports whether r carries the /healthz token.
func (a *Agent) authorized(r *http.Request) bool {
	if a.o.httpToken == "" {
		return false
	}
	got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	return ok && subtle.ConstantTimeCompare([]byte(got), []byte(a.o.httpToken)) == 1
}

func (a *Agent) listen() (net.Listener, error) {
	if a.o.httpLn != nil {
		return a.o.httpLn, nil
	}
	ln, err := net.Listen("tcp", a.o.httpAddr)
	if err != nil {
		return nil, fmt.Errorf("agent: metrics and health address: %w", err)
	}
	return ln, nil
}

// serveHTTP serves Handler on ln until ctx ends, then shuts the server
// down gracefully.
func (a *Agent) serveHTTP(ctx context.Context, ln net.Listener) error {
	to := a.o.httpTimeout.withDefaults()
	srv := &http.Server{
		Handler:           a.Handler(),
		ReadHeaderTimeout: min(5*time.Second, to.Read),
		ReadTimeout:       to.Read,
		WriteTimeout:      to.Write,
		IdleTimeout:       to.Idle,
		MaxHeaderBytes:    16 << 10,
	}
	a.log.Info("agent: serving /metrics and /healthz", "addr", ln.Addr().String())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	select {
	case err := <-done:
		return fmt.Errorf("agent: HTTP server: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), a.o.shutdown)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		a.log.Warn("agent: HTTP shutdown", "err", err)
	}
	<-done
	return ctx.Err()
}
