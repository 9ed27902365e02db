package cli

import (
	"context"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/mnpool/mnpool/pool"
	"github.com/mnpool/mnpool/pool/dsn"
	"github.com/mnpool/mnpool/pool/siteschema"
)

// completionTimeout bounds the pool read behind one completion: a shell
// must never hang on a database that does not answer.
const completionTimeout = 2 * time.Second

// What a completion offers, read from the pool database.
type completeKind int

const (
	compNodeRange  completeKind = iota // nodes, groups and "all", comma-separated
	compNodes                          // node names
	compMembers                        // member names
	compMemberList                     // member names, comma-separated
	compGroups                         // group names, comma-separated
	compNetworks                       // network names
	compNetworkEq                      // NETWORK= (for --ip NETWORK=IP)
	compSiteKey                        // KEY= (for site set KEY=VALUE)
)

// positionalCompletion says what the arguments of a command are, by its
// path. Commands not listed complete nothing (no file names either).
func positionalCompletion(path string) (completeKind, bool) {
	switch path {
	case "mnpool node list", "mnpool node remove", "mnpool node set", "mnpool assign", "mnpool route",
		"mnpool dns resolvconf", "mnpool ntp chrony", "mnpool console set", "mnpool console list",
		"mnpool console remove", "mnpool xdsh", "mnpool export", "snmove", "makedhcp":
		return compNodeRange, true
	case "mnpool console", "mnpool console open":
		return compNodes, true
	case "mnpool member set", "mnpool member remove":
		return compMembers, true
	case "mnpool network remove":
		return compNetworks, true
	case "mnpool site set":
		return compSiteKey, true
	}
	return 0, false
}

// flagCompletion says what a flag takes, by its name, on every command
// that has it.
func flagCompletion(path, flag string) (completeKind, bool) {
	switch flag {
	case "self", "member", "source", "dest":
		return compMembers, true
	case "servicenodes", "servers":
		return compMemberList, true
	case "groups":
		return compGroups, true
	case "network":
		return compNetworks, true
	case "node":
		return compNodes, true
	case "interface":
		return compNetworkEq, true
	case "ip":
		if path == "mnpool member add" || path == "mnpool member set" || path == "mnpool init" {
			return compNetworkEq, true
		}
	}
	return 0, false
}

// addCompletion gives every command under cmd dynamic completion of the
// names in the pool (ValidArgsFunction and flag completion), unless the
// command set its own.
func addCompletion(cmd *cobra.Command) {
	for _, c := range cmd.Commands() {
		addCompletion(c)
	}
	path := cmd.CommandPath()
	if k, ok := positionalCompletion(path); ok && cmd.ValidArgsFunction == nil && len(cmd.ValidArgs) == 0 {
		cmd.ValidArgsFunction = completer(k)
	}
	visit := func(name string) {
		if k, ok := flagCompletion(path, name); ok {
			if _, exists := cmd.GetFlagCompletionFunc(name); !exists {
				_ = cmd.RegisterFlagCompletionFunc(name, completer(k))
			}
		}
	}
	cmd.LocalNonPersistentFlags().VisitAll(func(f *pflag.Flag) { visit(f.Name) })
	cmd.PersistentFlags().VisitAll(func(f *pflag.Flag) { visit(f.Name) })
}

func completer(k completeKind) cobra.CompletionFunc {
	return func(c *cobra.Command, _ []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		ctx, cancel := context.WithTimeout(c.Context(), completionTimeout)
		defer cancel()
		st, ok := completionState(ctx, c)
		if !ok {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		return completeFrom(st, k, toComplete)
	}
}

// completeFrom offers the names of kind k that start with toComplete; in
// comma-separated lists, for the last element.
func completeFrom(st *pool.State, k completeKind, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
	dir := cobra.ShellCompDirectiveNoFileComp
	var names []string
	suffix := ""
	list := false
	switch k {
	case compNodeRange:
		names, list = append(nodeNames(st), append(groupNames(st), "all")...), true
	case compNodes:
		names = nodeNames(st)
	case compMembers, compMemberList:
		for _, m := range st.Members {
			names = append(names, m.Name)
		}
		list = k == compMemberList
	case compGroups:
		names, list = groupNames(st), true
	case compNetworks, compNetworkEq:
		for _, n := range st.Networks {
			names = append(names, n.Name)
		}
		if k == compNetworkEq {
			suffix, dir = "=", dir|cobra.ShellCompDirectiveNoSpace
		}
	case compSiteKey:
		keys := map[string]bool{siteschema.Domain: true, siteschema.DisjointDHCPs: true, siteschema.SharedTFTP: true,
			siteschema.Forwarders: true, siteschema.ExtNTPServers: true, siteschema.AutoFailover: true}
		for key := range st.Site {
			keys[key] = key != siteschema.Master
		}
		for key, ok := range keys {
			if ok {
				names = append(names, key)
			}
		}
		suffix, dir = "=", dir|cobra.ShellCompDirectiveNoSpace
	}
	head, last := "", toComplete
	if list {
		if i := strings.LastIndexByte(toComplete, ','); i >= 0 {
			head, last = toComplete[:i+1], toComplete[i+1:]
		}
	}
	sort.Strings(names)
	var out []cobra.Completion
	for i, n := range names {
		if strings.HasPrefix(n, last) && (i == 0 || names[i-1] != n) {
			out = append(out, head+n+suffix)
		}
	}
	return out, dir
}

func nodeNames(st *pool.State) []string {
	out := make([]string, len(st.Nodes))
	for i, n := range st.Nodes {
		out[i] = n.Name
	}
	return out
}

func groupNames(st *pool.State) []string {
	seen := map[string]bool{}
	var out []string
	for _, n := range st.Nodes {
		for _, g := range n.Groups {
			if !seen[g] {
				seen[g] = true
				out = append(out, g)
			}
		}
	}
	return out
}

// completionState reads the pool for a completion: the database of the
// command line (--db, --db-file, $MNPOOL_DB, /etc/mnpool/db), never
// created or migrated, within ctx. ok is false when there is none.
func completionState(ctx context.Context, c *cobra.Command) (*pool.State, bool) {
	var db, dbFile string
	if f := c.Flag("db"); f != nil {
		db = f.Value.String()
	}
	if f := c.Flag("db-file"); f != nil {
		dbFile = f.Value.String()
	}
	source, _, err := dsn.Resolve(db, dbFile)
	if err != nil {
		return nil, false
	}
	d, err := dsn.Parse(source)
	if err != nil {
		return nil, false
	}
	if d.Kind == dsn.SQLite {
		if _, err := os.Stat(d.Path); err != nil {
			return nil, false
		}
	}
	s, err := pool.Open(ctx, source)
	if err != nil {
		return nil, false
	}
	defer s.Close()
	if v, err := s.SchemaVersion(ctx); err != nil || v == 0 {
		return nil, false
	}
	st, err := s.LoadState(ctx)
	if err != nil {
		return nil, false
	}
	return st, true
}
