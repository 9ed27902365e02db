package xcat

import (
	"bytes"
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/mnpool/mnpool/internal/atomicfile"
	"github.com/mnpool/mnpool/pool"
	"github.com/mnpool/mnpool/pool/service"
	"github.com/mnpool/mnpool/pool/siteschema"
)

// The columns of the xCAT tables Export writes, as xCAT 2.x defines them
// (so tabrestore on an xCAT management node takes the files), and of
// mnpool's own tables, which hold what xCAT's tables cannot say.
var (
	colsSite        = []string{"key", "value", "comments", "disable"}
	colsNetworks    = []string{"netname", "net", "mask", "mgtifname", "gateway", "dhcpserver", "tftpserver", "nameservers", "ntpservers", "logservers", "dynamicrange", "staticrange", "staticrangeincrement", "nodehostname", "ddnsdomain", "vlanid", "domain", "mtu", "comments", "disable"}
	colsNodelist    = []string{"node", "groups", "status", "statustime", "appstatus", "appstatustime", "primarysn", "hidden", "updatestatus", "updatestatustime", "zonename", "comments", "disable"}
	colsNoderes     = []string{"node", "servicenode", "netboot", "tftpserver", "tftpdir", "nfsserver", "monserver", "nfsdir", "installnic", "primarynic", "discoverynics", "cmdinterface", "xcatmaster", "current_osimage", "next_osimage", "nimserver", "routenames", "nameservers", "proxydhcp", "comments", "disable"}
	colsServicenode = []string{"node", "nameserver", "dhcpserver", "tftpserver", "nfsserver", "conserver", "monserver", "ldapserver", "ntpserver", "ftpserver", "nimserver", "ipforward", "dhcpinterfaces", "proxydhcp", "comments", "disable"}
	colsMac         = []string{"node", "interface", "mac", "comments", "disable"}
	colsHosts       = []string{"node", "ip", "hostnames", "otherinterfaces", "comments", "disable"}
	colsMembers     = []string{"name", "services", "disabled", "addresses"}
	colsNodes       = []string{"node", "network", "manual"}
)

// mnpool's own tables in an export.
const (
	TableMembers = "mnpool_members"
	TableNodes   = "mnpool_nodes"
)

// ExportTables returns the pool st as tabdump files, by file name
// (site.csv, networks.csv, nodelist.csv, noderes.csv, servicenode.csv,
// mac.csv, hosts.csv, mnpool_members.csv, mnpool_nodes.csv). Rows are
// sorted, so the same pool gives the same bytes. Runtime state (the epoch,
// heartbeats, locks, leases, the audit log) is not exported.
func ExportTables(st *pool.State) (map[string][]byte, error) {
	tables := map[string]struct {
		cols []string
		rows [][]string
	}{
		"site":        {colsSite, siteRows(st)},
		"networks":    {colsNetworks, networkRows(st.Networks)},
		"nodelist":    {colsNodelist, nodelistRows(st)},
		"noderes":     {colsNoderes, noderesRows(st.Nodes)},
		"servicenode": {colsServicenode, servicenodeRows(st)},
		"mac":         {colsMac, macRows(st.Nodes)},
		"hosts":       {colsHosts, hostsRows(st)},
		TableMembers:  {colsMembers, memberRows(st.Members)},
		TableNodes:    {colsNodes, nodeRows(st.Nodes)},
	}
	out := make(map[string][]byte, len(tables))
	for name, t := range tables {
		var b bytes.Buffer
		if err := WriteTabdump(&b, t.cols, t.rows); err != nil {
			return nil, err
		}
		out[name+".csv"] = b.Bytes()
	}
	return out, nil
}

// Export reads the pool and writes its tables into dir (created if
// missing), each file replaced atomically. It returns the file names.
func Export(ctx context.Context, s *pool.Store, dir string) ([]string, error) {
	st, err := s.LoadState(ctx)
	if err != nil {
		return nil, err
	}
	files, err := ExportTables(st)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, err
	}
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		// The tables hold every node's address and MAC: not for everyone.
		if _, err := atomicfile.Write(filepath.Join(dir, n), files[n], atomicfile.Options{Mode: 0o640}); err != nil {
			return nil, fmt.Errorf("xcat: export: %w", err)
		}
	}
	return names, nil
}

func row(cols []string, kv map[string]string) []string {
	r := make([]string, len(cols))
	for i, c := range cols {
		r[i] = kv[c]
	}
	return r
}

func siteRows(st *pool.State) [][]string {
	keys := make([]string, 0, len(st.Site)+1)
	for k := range st.Site {
		keys = append(keys, k)
	}
	site := st.Site
	if _, ok := site[siteschema.Master]; !ok && st.Master.Member != "" {
		keys = append(keys, siteschema.Master)
	}
	sort.Strings(keys)
	var out [][]string
	for _, k := range keys {
		v := site[k]
		if k == siteschema.Master {
			v = st.Master.Member
		}
		out = append(out, row(colsSite, map[string]string{"key": k, "value": v}))
	}
	return out
}

func networkRows(nets []pool.Network) [][]string {
	var out [][]string
	for _, n := range nets {
		kv := map[string]string{"netname": n.Name, "net": n.Prefix.Addr().String(), "mgtifname": n.MgtIfName, "domain": n.Domain}
		if n.Prefix.Addr().Is4() {
			kv["mask"] = maskString(n.Prefix.Bits())
		} else {
			kv["mask"] = "/" + strconv.Itoa(n.Prefix.Bits())
		}
		var gws []string
		for _, g := range n.Gateways {
			gws = append(gws, g.String())
		}
		kv["gateway"] = strings.Join(gws, ",")
		if n.HasDynamicRange() {
			kv["dynamicrange"] = n.DynamicStart.String() + "-" + n.DynamicEnd.String()
		}
		out = append(out, row(colsNetworks, kv))
	}
	return out
}

func maskString(bits int) string {
	var v uint32
	if bits > 0 {
		v = ^uint32(0) << (32 - bits)
	}
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}).String()
}

func nodelistRows(st *pool.State) [][]string {
	var out [][]string
	for _, m := range st.Members {
		g := "service,all"
		if st.IsMN(m.Name) {
			g = "xcatmn,all"
		}
		out = append(out, row(colsNodelist, map[string]string{"node": m.Name, "groups": g}))
	}
	for _, n := range st.Nodes {
		out = append(out, row(colsNodelist, map[string]string{"node": n.Name, "groups": strings.Join(append(append([]string(nil), n.Groups...), "all"), ",")}))
	}
	return out
}

func noderesRows(nodes []pool.Node) [][]string {
	var out [][]string
	for _, n := range nodes {
		if len(n.ServiceNodes) > 0 {
			out = append(out, row(colsNoderes, map[string]string{"node": n.Name, "servicenode": strings.Join(n.ServiceNodes, ",")}))
		}
	}
	return out
}

func servicenodeRows(st *pool.State) [][]string {
	flag := func(m pool.Member, s service.Service) string {
		if m.Runs(s) {
			return "1"
		}
		return "0"
	}
	var out [][]string
	for _, m := range st.Members {
		if st.IsMN(m.Name) {
			continue
		}
		out = append(out, row(colsServicenode, map[string]string{"node": m.Name, "nameserver": flag(m, service.DNS), "dhcpserver": flag(m, service.DHCP),
			"tftpserver": flag(m, service.TFTP), "conserver": flag(m, service.Console), "ntpserver": flag(m, service.NTP)}))
	}
	return out
}

func macRows(nodes []pool.Node) [][]string {
	var out [][]string
	for _, n := range nodes {
		if len(n.MACs) > 0 {
			out = append(out, row(colsMac, map[string]string{"node": n.Name, "mac": strings.Join(n.MACs, "|")}))
		}
	}
	return out
}

// hostsRows: a member's address on the network with the most nodes (its
// install network) is its ip, the others its otherinterfaces
// (MEMBER-NETWORK:IP); a node's is its ip.
func hostsRows(st *pool.State) [][]string {
	users := map[string]int{}
	for _, n := range st.Nodes {
		users[n.Network]++
	}
	var out [][]string
	for _, m := range st.Members {
		nets := make([]string, 0, len(m.Addresses))
		for n := range m.Addresses {
			nets = append(nets, n)
		}
		sort.Slice(nets, func(i, j int) bool {
			if users[nets[i]] != users[nets[j]] {
				return users[nets[i]] > users[nets[j]]
			}
			return nets[i] < nets[j]
		})
		kv := map[string]string{"node": m.Name}
		var other []string
		for i, n := range nets {
			if i == 0 {
				kv["ip"] = m.Addresses[n].String()
				continue
			}
			other = append(other, m.Name+"-"+n+":"+m.Addresses[n].String())
		}
		kv["otherinterfaces"] = strings.Join(other, ",")
		out = append(out, row(colsHosts, kv))
	}
	for _, n := range st.Nodes {
		if n.IP.IsValid() {
			out = append(out, row(colsHosts, map[string]string{"node": n.Name, "ip": n.IP.String()}))
		}
	}
	return out
}

func memberRows(ms []pool.Member) [][]string {
	var out [][]string
	for _, m := range ms {
		svcs := make([]string, len(m.Services))
		for i, s := range m.Services {
			svcs[i] = string(s)
		}
		nets := make([]string, 0, len(m.Addresses))
		for n := range m.Addresses {
			nets = append(nets, n)
		}
		sort.Strings(nets)
		var addrs []string
		for _, n := range nets {
			addrs = append(addrs, n+"="+m.Addresses[n].String())
		}
		out = append(out, row(colsMembers, map[string]string{"name": m.Name, "services": strings.Join(svcs, ","), "disabled": boolFlag(m.Disabled), "addresses": strings.Join(addrs, ",")}))
	}
	return out
}

func nodeRows(nodes []pool.Node) [][]string {
	var out [][]string
	for _, n := range nodes {
		out = append(out, row(colsNodes, map[string]string{"node": n.Name, "network": n.Network, "manual": boolFlag(n.Manual)}))
	}
	return out
}

func boolFlag(b bool) string {
	if b {
		return "1"
	}
	return "0"
}
