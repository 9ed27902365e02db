package agent

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/mnpool/mnpool/internal/buildinfo"
	"github.com/mnpool/mnpool/pool"
	"github.com/mnpool/mnpool/pool/liveness"
)

// metrics are the agent's Prometheus series (docs/AGENT.md lists them).
type metrics struct {
	info              prometheus.Gauge
	heartbeats        prometheus.Counter
	heartbeatFailures prometheus.Counter
	epoch             prometheus.Gauge
	isMN              prometheus.Gauge
	dynamic           prometheus.Gauge
	dbHealthy         prometheus.Gauge
	dbClusterSize     prometheus.Gauge
	version           prometheus.Gauge
	autofailover      prometheus.Gauge
	leader            prometheus.Gauge
	failovers         *prometheus.CounterVec
	failoverNodes     *prometheus.CounterVec
	suppressed        *prometheus.CounterVec
	failoverSeconds   prometheus.Histogram
	render            *prometheus.HistogramVec
	syncs             *prometheus.CounterVec
	stepErrors        *prometheus.CounterVec
	nodecfgNodes      *prometheus.CounterVec
	nodecfgSeconds    prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer, self string, members func() memberSnapshot) (*metrics, error) {
	m := &metrics{
		info: prometheus.NewGauge(prometheus.GaugeOpts{Name: "mnpool_agent_info", Help: "Always 1; the member this agent runs for.",
			ConstLabels: prometheus.Labels{"member": self}}),
		heartbeats:        prometheus.NewCounter(prometheus.CounterOpts{Name: "mnpool_heartbeats_total", Help: "Heartbeats of this member committed."}),
		heartbeatFailures: prometheus.NewCounter(prometheus.CounterOpts{Name: "mnpool_heartbeat_failures_total", Help: "Heartbeats of this member that failed."}),
		epoch:             prometheus.NewGauge(prometheus.GaugeOpts{Name: "mnpool_mn_epoch", Help: "Epoch of the master record last read."}),
		isMN:              prometheus.NewGauge(prometheus.GaugeOpts{Name: "mnpool_is_mn", Help: "1 when the master record names this member."}),
		dynamic:           prometheus.NewGauge(prometheus.GaugeOpts{Name: "mnpool_dhcp_dynamic", Help: "1 when this member serves the DHCP dynamic range (confirmed MN)."}),
		dbHealthy:         prometheus.NewGauge(prometheus.GaugeOpts{Name: "mnpool_db_healthy", Help: "1 when the database node in use is healthy (Galera: Primary, ready, Synced)."}),
		dbClusterSize:     prometheus.NewGauge(prometheus.GaugeOpts{Name: "mnpool_db_cluster_size", Help: "Galera cluster size seen by the node in use (0 for SQLite)."}),
		version:           prometheus.NewGauge(prometheus.GaugeOpts{Name: "mnpool_pool_version", Help: "Change counter of the pool last applied."}),
		autofailover:      prometheus.NewGauge(prometheus.GaugeOpts{Name: "mnpool_autofailover_enabled", Help: "1 when site.autofailover is 1 (and this agent takes part)."}),
		leader:            prometheus.NewGauge(prometheus.GaugeOpts{Name: "mnpool_failover_leader", Help: "1 while this agent holds the failover lease."}),
		failovers: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "mnpool_failovers_total",
			Help: "Failovers performed by this agent as the leader, by failed member."}, []string{"member"}),
		failoverNodes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "mnpool_failover_nodes_total",
			Help: "Nodes handled by failovers of this agent, by outcome (moved, no-target, failed)."}, []string{"status"}),
		suppressed: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "mnpool_failovers_suppressed_total",
			Help: "Dead members not failed over, by reason (cool-down, limit, never-seen-alive)."}, []string{"reason"}),
		failoverSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "mnpool_failover_duration_seconds",
			Help: "Time from the failover decision to the last node moved.", Buckets: prometheus.ExponentialBuckets(0.01, 2, 14)}),
		render: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "mnpool_render_duration_seconds",
			Help: "Duration of each sync step (render and apply), by step.", Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16)}, []string{"step"}),
		syncs: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "mnpool_syncs_total",
			Help: "Syncs of this member's configuration, by result (ok, error)."}, []string{"result"}),
		stepErrors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "mnpool_sync_step_errors_total",
			Help: "Sync steps that failed, by step."}, []string{"step"}),
		nodecfgNodes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "mnpool_nodecfg_nodes_total",
			Help: "Nodes moved by this agent's failovers whose configuration was pushed, by result (reconfigured, unreachable, failed)."}, []string{"result"}),
		nodecfgSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "mnpool_nodecfg_duration_seconds",
			Help: "Time to reconfigure the nodes moved by one failover.", Buckets: prometheus.ExponentialBuckets(0.01, 2, 16)}),
	}
	m.info.Set(1)
	for _, c := range []prometheus.Collector{m.info, m.heartbeats, m.heartbeatFailures, m.epoch, m.isMN, m.dynamic, m.dbHealthy,
		m.dbClusterSize, m.version, m.autofailover, m.leader, m.failovers, m.failoverNodes, m.suppressed, m.failoverSeconds,
		m.render, m.syncs, m.stepErrors, m.nodecfgNodes, m.nodecfgSeconds, &memberCollector{snap: members}} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	if err := registerBuildInfo(reg); err != nil {
		return nil, err
	}
	for _, r := range []string{"ok", "error"} {
		m.syncs.WithLabelValues(r)
	}
	for _, r := range []string{"reconfigured", "unreachable", "failed"} {
		m.nodecfgNodes.WithLabelValues(r)
	}
	for _, s := range []string{string(pool.MoveMoved), string(pool.MoveNoTarget), string(pool.MoveFailed)} {
		m.failoverNodes.WithLabelValues(s)
	}
	return m, nil
}

// defaultRegistry is a registry with the Go and process collectors.
func defaultRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// memberSnapshot is what the per-member series are computed from at
// scrape time.
type memberSnapshot struct {
	view  liveness.View
	nodes map[string][2]int // member -> primary, listed
}

// memberCollector exports the per-member series from the observer's view
// and the last pool snapshot, computed at scrape time so a removed member
// leaves no stale series.
type memberCollector struct {
	snap func() memberSnapshot
}

var (
	descAge    = prometheus.NewDesc("mnpool_heartbeat_age_seconds", "Time the member's heartbeat counter has not moved, on this agent's clock.", []string{"member"}, nil)
	descState  = prometheus.NewDesc("mnpool_member_state", "1 for the member's liveness state as judged by this agent (unknown, alive, suspect, dead).", []string{"member", "state"}, nil)
	descNodes  = prometheus.NewDesc("mnpool_member_nodes", "Nodes whose servicenode list starts with the member (the nodes it serves).", []string{"member"}, nil)
	descListed = prometheus.NewDesc("mnpool_member_listed_nodes", "Nodes whose servicenode list names the member anywhere.", []string{"member"}, nil)
	allStates  = []liveness.State{liveness.Unknown, liveness.Alive, liveness.Suspect, liveness.Dead}
)

func (c *memberCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descAge
	ch <- descState
	ch <- descNodes
	ch <- descListed
}

func (c *memberCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.snap()
	for _, m := range s.view.Members() {
		l := s.view[m]
		ch <- prometheus.MustNewConstMetric(descAge, prometheus.GaugeValue, l.Silent.Seconds(), m)
		for _, st := range allStates {
			v := 0.0
			if l.State == st {
				v = 1
			}
			ch <- prometheus.MustNewConstMetric(descState, prometheus.GaugeValue, v, m, string(st))
		}
	}
	for m, n := range s.nodes {
		ch <- prometheus.MustNewConstMetric(descNodes, prometheus.GaugeValue, float64(n[0]), m)
		ch <- prometheus.MustNewConstMetric(descListed, prometheus.GaugeValue, float64(n[1]), m)
	}
}

func boolGauge(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// registerBuildInfo registers mnpool_build_info: always 1, labelled with
// the version, commit and dirty flag of the running binary (the same as
// `mnpool version`), so a dashboard shows which build each member runs.
func registerBuildInfo(reg prometheus.Registerer) error {
	in := buildinfo.Get()
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "mnpool_build_info",
		Help: "Always 1; the version, commit and dirty flag mnpool was built from, and the Go version.",
		ConstLabels: prometheus.Labels{
			"version":   in.Version,
			"commit":    in.Commit,
			"dirty":     strconv.FormatBool(in.Dirty),
			"goversion": in.GoVersion,
		},
	})
	g.Set(1)
	return reg.Register(g)
}
