package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/mnpool/mnpool/pool"
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
	AutoFailover      bool            `json:"autofailover"`
	AutoFailoverError string          `json:"autofailover_error,omitempty"`
	Leader            bool            `json:"leader"`
	Token             int64           `json:"token,omitempty"`
	Members           []pool.Liveness `json:"members,omitempty"`
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

// Handler serves /metrics (Prometheus text format) and /healthz (JSON,
// 200 when healthy, 503 otherwise), for a product that runs its own HTTP
// server.
func (a *Agent) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(a.reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		h := a.Health()
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
	srv := &http.Server{Handler: a.Handler(), ReadHeaderTimeout: 5 * time.Second}
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
