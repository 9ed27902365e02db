package cli

import (
	"time"

	"github.com/spf13/pflag"

	"github.com/mnpool/mnpool/agent"
	"github.com/mnpool/mnpool/nodecfg"
	"github.com/mnpool/mnpool/sshkeys"
)

// nodeCfgFlags are mnpoold's flags for reconfiguring the nodes a failover
// moved (agent.NodeConfig).
type nodeCfgFlags struct {
	disabled       bool
	parallel       int
	timeout        time.Duration
	deadline       time.Duration
	sshUser        string
	sshPort        int
	keyDir         string
	knownHosts     []string
	noHostKeyCheck bool
}

func (f *nodeCfgFlags) addFlags(fl *pflag.FlagSet) {
	fl.BoolVar(&f.disabled, "no-node-config", false, "after a failover, move the nodes in the database only; do not reconfigure them over SSH")
	fl.IntVar(&f.parallel, "node-parallel", agent.DefaultNodeParallel, "nodes reconfigured at once after a failover")
	fl.DurationVar(&f.timeout, "node-timeout", agent.DefaultNodeTimeout, "time allowed per node for reconfiguration after a failover")
	fl.DurationVar(&f.deadline, "node-deadline", agent.DefaultNodeDeadline, "time allowed for reconfiguring all the nodes of one failover")
	fl.StringVar(&f.sshUser, "node-ssh-user", nodecfg.DefaultSSHUser, "user to log in as on the nodes")
	fl.IntVar(&f.sshPort, "node-ssh-port", 22, "SSH port of the nodes")
	fl.StringVar(&f.keyDir, "node-key-dir", sshkeys.DefaultDir, "directory of the pool SSH key")
	fl.StringSliceVar(&f.knownHosts, "node-known-hosts", nodecfg.DefaultKnownHosts(), "known_hosts files with the nodes' host keys (those that exist are used)")
	fl.BoolVar(&f.noHostKeyCheck, "node-no-host-key-check", false, "accept any host key from the nodes (insecure)")
}

func (f *nodeCfgFlags) option() (agent.Option, error) {
	if f.parallel < 1 || f.timeout <= 0 || f.deadline <= 0 {
		return nil, usagef("--node-parallel %d, --node-timeout %v, --node-deadline %v: want values above 0", f.parallel, f.timeout, f.deadline)
	}
	if f.sshPort < 1 || f.sshPort > 65535 {
		return nil, usagef("--node-ssh-port %d: want 1-65535", f.sshPort)
	}
	return agent.WithNodeConfig(agent.NodeConfig{Disabled: f.disabled, Parallel: f.parallel, Timeout: f.timeout, Deadline: f.deadline,
		SSH: nodecfg.SSHConfig{KeyDir: f.keyDir, KnownHosts: f.knownHosts, InsecureIgnoreHostKey: f.noHostKeyCheck,
			User: f.sshUser, Port: f.sshPort}}), nil
}
